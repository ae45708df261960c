"""Tests of the raw data generator (the package scripts/cvm/generate/).

Fast (well under a minute): the largest data set has 30,000 customers. Run with
``.venv/bin/pytest python_tests/test_generator.py``.

Everything is checked from the written files with independent code (duckdb SQL, scipy
likelihoods), never with the generator's own helpers, except where a test is about the latent
draws themselves.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from scipy import optimize, special, stats

from cvm import contract
from cvm import generate as gen

CONTRACT = contract.load()
TABLES = tuple(name for name in CONTRACT.table_names if name != "credit_notes")  # not generated
END_DATE = "2026-06-30"
LAST_SECOND = "2026-06-30 23:59:59"
WINDOW_END = "2026-07-01 00:00:00"  # T runs to the end of END_DATE
SEED = 2026
N_CUSTOMERS = 30_000  # large enough to recover the process parameters (see the tolerances)
CHUNK = 11_000  # three chunks, the last one partial
BAD_RATE = 0.002
STATUSES = ("completed", "cancelled", "returned")
KEYS = CONTRACT.keys
# The staging layer's reason codes, per file (spelled out here, not imported).
EXPECTED_REASONS = {
    "customers": {"null_key", "duplicate_key", "unparseable_date", "future_date"},
    "orders": {
        "null_key",
        "duplicate_key",
        "negative_amount",
        "unknown_customer",
        "unparseable_date",
        "future_date",
        "invalid_status",
    },
    "order_items": {"null_key", "duplicate_key", "negative_amount", "unknown_order"},
    "products": {"null_key", "duplicate_key", "negative_amount"},
    "complaints": {
        "null_key",
        "duplicate_key",
        "unknown_customer",
        "unparseable_date",
        "future_date",
    },
    "surveys": {
        "null_key",
        "duplicate_key",
        "unknown_customer",
        "unparseable_date",
        "future_date",
        "out_of_range",
    },
    "contacts": {
        "null_key",
        "duplicate_key",
        "unknown_customer",
        "unparseable_date",
        "future_date",
    },
}


# ------------------------------------------------------------------------------------------
# Fixtures and readers
# ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def clean(tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("clean")
    manifest = gen.generate(out, N_CUSTOMERS, seed=SEED, fmt="both", chunk_size=CHUNK)
    return out, manifest


@pytest.fixture(scope="module")
def bad(tmp_path_factory) -> tuple[Path, dict]:
    """Same arguments as ``clean`` plus injected bad rows."""
    out = tmp_path_factory.mktemp("bad")
    manifest = gen.generate(
        out,
        N_CUSTOMERS,
        seed=SEED,
        fmt="both",
        chunk_size=CHUNK,
        inject_bad_rows=True,
        bad_row_rate=BAD_RATE,
    )
    return out, manifest


@pytest.fixture(scope="module")
def con(clean) -> duckdb.DuckDBPyConnection:
    """The clean Parquet files as duckdb views."""
    out, _ = clean
    db = duckdb.connect()
    for name in TABLES:
        db.execute(f"create view {name} as select * from read_parquet('{out / name}.parquet')")
    return db


def read_csv(path: Path, schema: pa.Schema) -> pa.Table:
    options = pacsv.ConvertOptions(
        column_types={f.name: f.type for f in schema}, strings_can_be_null=True
    )
    return pacsv.read_csv(path, convert_options=options).select(schema.names)


def read_as_text(out: Path, name: str, fmt: str) -> pa.Table:
    """A file with every column as text (as a loader would see it) and its row number."""
    if fmt == "parquet":
        table = pq.read_table(out / f"{name}.parquet")
    else:
        schema = pq.read_schema(out / f"{name}.parquet")
        table = read_csv(out / f"{name}.csv", pa.schema([(n, pa.string()) for n in schema.names]))
    text = pa.table({f.name: table.column(f.name).cast(pa.string()) for f in table.schema})
    return text.append_column("_row", pa.array(np.arange(text.num_rows)))


def count_by_customer(values: np.ndarray, n_customers: int) -> np.ndarray:
    return np.bincount(values, minlength=n_customers + 1)[1:]


# ------------------------------------------------------------------------------------------
# Independent detection of bad rows (SQL over text columns, like a staging layer)
# ------------------------------------------------------------------------------------------
def _null(col: str) -> str:
    return f"{col} is null"


def _dup(col: str) -> str:
    return f"({col} is not null and row_number() over (partition by {col} order by _row) > 1)"


def _unparseable(col: str, typ: str) -> str:
    return f"({col} is not null and try_cast({col} as {typ}) is null)"


def _future(col: str, typ: str) -> str:
    limit = f"date '{END_DATE}'" if typ == "date" else f"timestamp '{LAST_SECOND}'"
    return f"try_cast({col} as {typ}) > {limit}"


def _unknown(col: str, table: str, key: str) -> str:
    return (
        f"({col} is not null and {col} not in (select {key} from {table} where {key} is not null))"
    )


def _negative(*cols: str) -> str:
    return "(" + " or ".join(f"try_cast({c} as double) < 0" for c in cols) + ")"


def _outside(col: str, low: int, high: int) -> str:
    return f"try_cast({col} as double) not between {low} and {high}"


DEFECTS: dict[str, dict[str, str]] = {
    "customers": {
        "null_key": _null("customer_id"),
        "duplicate_key": _dup("customer_id"),
        "unparseable_date": _unparseable("signup_date", "date"),
        "future_date": _future("signup_date", "date"),
    },
    "orders": {
        "null_key": _null("order_id"),
        "duplicate_key": _dup("order_id"),
        "negative_amount": _negative("order_total"),
        "unknown_customer": _unknown("customer_id", "customers", "customer_id"),
        "unparseable_date": _unparseable("ordered_at", "timestamp"),
        "future_date": _future("ordered_at", "timestamp"),
        "invalid_status": f"status not in {STATUSES}",
    },
    "order_items": {
        "null_key": _null("order_item_id"),
        "duplicate_key": _dup("order_item_id"),
        "negative_amount": _negative("quantity", "unit_price"),
        "unknown_order": _unknown("order_id", "orders", "order_id"),
    },
    "products": {
        "null_key": _null("product_id"),
        "duplicate_key": _dup("product_id"),
        "negative_amount": _negative("list_price"),
    },
    "complaints": {
        "null_key": _null("complaint_id"),
        "duplicate_key": _dup("complaint_id"),
        "unknown_customer": _unknown("customer_id", "customers", "customer_id"),
        "unparseable_date": _unparseable("opened_at", "timestamp"),
        "future_date": _future("opened_at", "timestamp"),
    },
    "surveys": {
        "null_key": _null("response_id"),
        "duplicate_key": _dup("response_id"),
        "unknown_customer": _unknown("customer_id", "customers", "customer_id"),
        "unparseable_date": _unparseable("responded_at", "timestamp"),
        "future_date": _future("responded_at", "timestamp"),
        "out_of_range": "("
        + " or ".join(
            [
                _outside("nps_score", 0, 10),
                _outside("csat_score", 1, 5),
                _outside("share_of_wallet_pct", 0, 100),
            ]
        )
        + ")",
    },
    "contacts": {
        "null_key": _null("contact_id"),
        "duplicate_key": _dup("contact_id"),
        "unknown_customer": _unknown("customer_id", "customers", "customer_id"),
        "unparseable_date": _unparseable("sent_at", "timestamp"),
        "future_date": _future("sent_at", "timestamp"),
    },
}


def defect_flags(out: Path, fmt: str) -> dict[str, dict[str, np.ndarray]]:
    """Per file, per reason: a boolean per row (in file order)."""
    db = duckdb.connect()
    for name in TABLES:
        db.register(f"{name}_arrow", read_as_text(out, name, fmt))
        db.execute(f"create table {name} as select * from {name}_arrow")
    flags = {}
    for name, checks in DEFECTS.items():
        select = ", ".join(f"coalesce({sql}, false) as {code}" for code, sql in checks.items())
        result = db.execute(f"select {select} from {name} order by _row").fetchnumpy()
        flags[name] = {code: np.asarray(result[code], dtype=bool) for code in checks}
    return flags


# ------------------------------------------------------------------------------------------
# Determinism, sizes, formats
# ------------------------------------------------------------------------------------------
def test_same_seed_gives_identical_files_and_other_seed_differs(tmp_path):
    args = {"chunk_size": 1_000, "fmt": "both", "inject_bad_rows": True}
    first = gen.generate(tmp_path / "a", 2_500, seed=5, **args)
    second = gen.generate(tmp_path / "b", 2_500, seed=5, **args)
    other = gen.generate(tmp_path / "c", 2_500, seed=6, **args)
    assert first == second
    files = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert len(files) == 2 * len(TABLES) + 1
    for name in files:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    for name in TABLES:
        a = pq.read_table(tmp_path / "a" / f"{name}.parquet")
        c = pq.read_table(tmp_path / "c" / f"{name}.parquet")
        assert not a.equals(c), name
    assert other["row_counts"] != first["row_counts"]


def test_every_file_is_written_with_the_manifest_counts(clean):
    out, manifest = clean
    for name in TABLES:
        rows = pq.read_metadata(out / f"{name}.parquet").num_rows
        assert manifest["row_counts"][name] == rows, name
        assert (out / f"{name}.csv").is_file()
    assert json.loads((out / "generator_manifest.json").read_text()) == manifest
    assert manifest["bad_rows"] == {}
    assert manifest["args"]["customers"] == N_CUSTOMERS


def test_sizes(con):
    [(customers, distinct)] = con.sql(
        "select count(*), count(distinct customer_id) from customers"
    ).fetchall()
    assert customers == distinct == N_CUSTOMERS
    [(orders, lines, buyers)] = con.sql(
        "select (select count(*) from orders), (select count(*) from order_items), "
        "(select count(distinct customer_id) from orders)"
    ).fetchall()
    # The defaults were tuned to 10.0 orders per customer (9.98 on 1M customers). Orders per
    # customer have an sd of about 15, so the standard error of the mean here is about 0.09;
    # +-0.5 is more than 5 standard errors.
    assert abs(orders / customers - 10.0) < 0.5
    assert abs(lines / orders - 1.8) < 0.05  # 1 + Poisson(0.8) lines, rarely capped
    # About 10 % never order (a little more: the last days' signups order after the end).
    assert 0.08 < 1 - buyers / customers < 0.13
    [(products,)] = con.sql("select count(*) from products").fetchall()
    assert products == gen.N_PRODUCTS


@pytest.mark.parametrize("name", TABLES)
def test_csv_and_parquet_hold_the_same_rows(clean, name):
    out, _ = clean
    parquet = pq.read_table(out / f"{name}.parquet")
    schema = gen.SCHEMAS[name]
    assert parquet.cast(schema).equals(read_csv(out / f"{name}.csv", schema))


# ------------------------------------------------------------------------------------------
# Clean data: integrity and the raw file contract
# ------------------------------------------------------------------------------------------
def scalar(con: duckdb.DuckDBPyConnection, sql: str):
    return con.sql(sql).fetchone()[0]


def test_keys_are_unique_and_references_resolve(con):
    for name in TABLES:
        key = KEYS[name]
        assert scalar(con, f"select count(*) - count(distinct {key}) from {name}") == 0, name
    assert scalar(con, "select count(*) - count(distinct email) from customers") == 0
    orphans = {
        "orders.customer_id": "select count(*) from orders anti join customers using (customer_id)",
        "order_items.order_id": "select count(*) from order_items "
        "anti join orders using (order_id)",
        "order_items.product_id": "select count(*) from order_items "
        "anti join products using (product_id)",
        "complaints.customer_id": "select count(*) from complaints "
        "anti join customers using (customer_id)",
        "surveys.customer_id": "select count(*) from surveys "
        "anti join customers using (customer_id)",
        "contacts.customer_id": "select count(*) from contacts "
        "anti join customers using (customer_id)",
        # a complaint's order belongs to the complaining customer
        "complaints.order_id": "select count(*) from complaints c where c.order_id is not null "
        "and not exists (select 1 from orders o where o.order_id = c.order_id "
        "and o.customer_id = c.customer_id)",
    }
    for what, sql in orphans.items():
        assert scalar(con, sql) == 0, what
    assert scalar(con, "select count(*) from orders anti join order_items using (order_id)") == 0


def test_order_totals_equal_the_sum_of_their_lines(con):
    mismatches, bad_lines = con.sql(
        """
        with lines as (
            select order_id,
                sum(round(quantity * unit_price * 100) - round(discount_amount * 100)) as cents,
                min(quantity * unit_price - discount_amount) as min_net
            from order_items group by order_id
        )
        select count(*) filter (where l.cents != round(o.order_total * 100)),
            count(*) filter (where l.min_net <= 0)
        from orders o join lines l using (order_id)
        """
    ).fetchone()
    assert mismatches == 0
    assert bad_lines == 0
    # Money has two decimals; quantities and prices are positive, discounts never negative.
    [(not_cents, negative)] = con.sql(
        "select count(*) filter (where abs(unit_price * 100 - round(unit_price * 100)) > 1e-6 "
        "or abs(discount_amount * 100 - round(discount_amount * 100)) > 1e-6), "
        "count(*) filter (where quantity < 1 or unit_price <= 0 or discount_amount < 0) "
        "from order_items"
    ).fetchall()
    assert not_cents == negative == 0


def test_prices_are_close_to_list_prices_and_promos_are_rare(con):
    median_gap, share_within_10pct = con.sql(
        "select median(abs(i.unit_price / p.list_price - 1)), "
        "avg((abs(i.unit_price / p.list_price - 1) < 0.1)::int) "
        "from order_items i join products p using (product_id)"
    ).fetchone()
    assert median_gap < 0.03
    assert share_within_10pct > 0.97
    # Promo orders discount 5-30 % of the gross amount; most lines carry no discount.
    [(no_discount, max_rate)] = con.sql(
        "select avg((discount_amount = 0)::int), max(discount_amount / (quantity * unit_price)) "
        "from order_items"
    ).fetchall()
    assert no_discount > 0.7
    assert max_rate < 0.31
    [(low, high, categories)] = con.sql(
        "select min(unit_cost / list_price), max(unit_cost / list_price), count(distinct category) "
        "from products"
    ).fetchall()
    assert low >= 0.3
    assert high <= 0.8
    assert 10 <= categories <= 12


def test_timestamps_lie_between_signup_and_end_date(con):
    window = f"timestamp '{LAST_SECOND}'"
    checks = {
        "signup": "select count(*) from customers where signup_date > date '2026-06-30' "
        "or signup_date < date '2021-06-30'",
        "orders": "select count(*) from orders join customers using (customer_id) "
        f"where ordered_at < signup_date or ordered_at > {window}",
        "complaints": "select count(*) from complaints join customers using (customer_id) "
        f"where opened_at < signup_date or opened_at > {window} "
        f"or resolved_at < opened_at or resolved_at > {window}",
        "surveys": "select count(*) from surveys join customers using (customer_id) "
        f"where responded_at < signup_date or responded_at > {window}",
        # contacts: within the last year, never before the customer's first order
        "contacts": "select count(*) from contacts c where sent_at > "
        f"{window} or sent_at < {window} - interval 365 day or sent_at < "
        "(select min(ordered_at) from orders o where o.customer_id = c.customer_id)",
    }
    for what, sql in checks.items():
        assert scalar(con, sql) == 0, what
    # The data run right up to the end date.
    assert str(scalar(con, "select max(ordered_at)::date from orders")) == END_DATE


def test_categorical_values_and_scores_are_in_the_contract(con):
    shares = dict(
        con.sql("select status, count(*) / sum(count(*)) over () from orders group by 1").fetchall()
    )
    assert set(shares) == set(STATUSES)
    assert abs(shares["completed"] - 0.90) < 0.01
    assert abs(shares["cancelled"] - 0.04) < 0.01
    assert abs(shares["returned"] - 0.06) < 0.01
    channels = con.sql("select distinct acquisition_channel from customers").fetchall()
    assert {c for (c,) in channels} == {
        "organic_search",
        "paid_search",
        "social",
        "referral",
        "email",
        "marketplace",
        "direct",
    }
    violations = {
        "scores": "select count(*) from surveys where nps_score not between 0 and 10 "
        "or csat_score not between 1 and 5 or share_of_wallet_pct not between 0 and 100",
        "country": "select count(*) from customers "
        "where not regexp_full_match(country, '[A-Z]{2}')",
        "email": "select count(*) from customers where not regexp_full_match("
        "email, '[a-z]+\\.[a-z]+[0-9]+@example\\.(com|org|net)')",
    }
    for what, sql in violations.items():
        assert scalar(con, sql) == 0, what
    # A minority answers surveys, and a minority of answers has a share of wallet.
    [(respondents, sow_answered)] = con.sql(
        f"select count(distinct customer_id) / {N_CUSTOMERS}, "
        "avg((share_of_wallet_pct is not null)::int) from surveys"
    ).fetchall()
    assert 0.15 <= respondents <= 0.25
    assert sow_answered < 0.5


# ------------------------------------------------------------------------------------------
# Injected bad rows
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_injected_bad_rows_are_counted_exactly_in_the_manifest(bad, fmt):
    out, manifest = bad
    flags = defect_flags(out, fmt)
    assert set(manifest["bad_rows"]) == set(TABLES)
    for name in TABLES:
        clean_rows = manifest["clean_row_counts"][name]
        expected_n = max(3, int(np.floor(BAD_RATE * clean_rows + 0.5)))
        assert set(manifest["bad_rows"][name]) == EXPECTED_REASONS[name], name
        n_defects = np.sum([f.astype(int) for f in flags[name].values()], axis=0)
        for code, found in flags[name].items():
            assert found.sum() == manifest["bad_rows"][name][code] == expected_n, (name, code)
        # Every injected row has exactly one defect and comes after the clean rows.
        assert n_defects.shape[0] == manifest["row_counts"][name]
        assert (n_defects[:clean_rows] == 0).all(), name
        assert (n_defects[clean_rows:] == 1).all(), name


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_without_the_flag_there_are_no_bad_rows(clean, fmt):
    out, _ = clean
    for name, per_code in defect_flags(out, fmt).items():
        for code, found in per_code.items():
            assert not found.any(), (name, code)


def test_bad_rows_leave_the_clean_rows_intact(clean, bad):
    (clean_out, clean_manifest), (bad_out, bad_manifest) = clean, bad
    assert bad_manifest["clean_row_counts"] == clean_manifest["row_counts"]
    for name in TABLES:
        with_bad = pq.read_table(bad_out / f"{name}.parquet")
        expected = gen.stringify_dates(
            pq.read_table(clean_out / f"{name}.parquet").cast(gen.SCHEMAS[name])
        )
        n_clean = clean_manifest["row_counts"][name]
        assert with_bad.slice(0, n_clean).equals(expected.cast(with_bad.schema)), name
        # Date columns are text in this mode, in Parquet too.
        date_columns = [f.name for f in gen.SCHEMAS[name] if f.type in (pa.date32(), gen.TS)]
        assert all(with_bad.schema.field(c).type == pa.string() for c in date_columns)


@pytest.mark.parametrize(
    ("customers", "options"),
    [
        (1, {}),
        (40, {"chunk_size": 3, "end_date": "2024-02-29"}),
        (5, {"chunk_size": 2, "years": 0.001}),  # a one-day history: nobody orders in time
    ],
)
def test_tiny_runs_count_their_bad_rows(tmp_path, customers, options):
    manifest = gen.generate(tmp_path, customers, inject_bad_rows=True, fmt="both", **options)
    assert manifest["row_counts"]["customers"] == customers + 4 * 3
    for fmt in ("parquet", "csv"):
        for name, per_code in defect_flags(tmp_path, fmt).items():
            for code, found in per_code.items():
                # A file without clean rows has nothing to copy: none of its kinds is injected.
                assert found.sum() == manifest["bad_rows"].get(name, {}).get(code, 0)


def test_duplicates_are_exact_copies_of_clean_rows(bad):
    out, manifest = bad
    db = duckdb.connect()
    for name in TABLES:
        if name == "contacts":
            continue  # its bad rows come from their own stream (writing.py); not covered here
        key = KEYS[name]
        table = pq.read_table(out / f"{name}.parquet")
        n_clean = manifest["clean_row_counts"][name]
        head, tail = table.slice(0, n_clean), table.slice(n_clean)
        db.register("head", head)
        db.register("copies", tail.filter(pc.is_in(tail.column(key), head.column(key))))
        assert (
            scalar(db, "select count(*) from copies") == manifest["bad_rows"][name]["duplicate_key"]
        )
        assert scalar(db, "select count(*) from (from copies except all from head)") == 0, name


def test_nothing_refers_to_an_injected_row(bad):
    out, manifest = bad
    db = duckdb.connect()
    for name in TABLES:
        db.register(name, pq.read_table(out / f"{name}.parquet"))

    def fresh_ids(name: str, key: str) -> str:
        n_clean = manifest["clean_row_counts"][name]
        return (
            f"(select {key} from (select {key}, row_number() over () as i from {name}) "
            f"where i > {n_clean} and {key} not in "
            f"(select {key} from (select {key}, row_number() over () as i from {name}) "
            f"where i <= {n_clean}))"
        )

    references = [
        ("orders", "customer_id", fresh_ids("customers", "customer_id")),
        ("complaints", "customer_id", fresh_ids("customers", "customer_id")),
        ("surveys", "customer_id", fresh_ids("customers", "customer_id")),
        ("contacts", "customer_id", fresh_ids("customers", "customer_id")),
        ("order_items", "order_id", fresh_ids("orders", "order_id")),
        ("complaints", "order_id", fresh_ids("orders", "order_id")),
        ("order_items", "product_id", fresh_ids("products", "product_id")),
    ]
    for table, column, ids in references:
        assert scalar(db, f"select count(*) from {table} where {column} in {ids}") == 0
    # Fresh ids exist and lie beyond the clean id range.
    [(n_fresh, low)] = db.sql(
        f"select count(*), min(order_id) from {fresh_ids('orders', 'order_id')}"
    ).fetchall()
    assert n_fresh > 0
    assert low > manifest["clean_row_counts"]["orders"]


# ------------------------------------------------------------------------------------------
# The purchase and spend processes
# ------------------------------------------------------------------------------------------
def test_latent_draws_follow_their_distributions():
    bg, gg = gen.DEFAULT_BG_NBD, gen.DEFAULT_GAMMA_GAMMA
    latents = gen.draw_latents(np.random.default_rng(SEED), 20_000, bg, gg)
    cases = [
        (latents.lam, lambda alpha: stats.gamma(bg.r, scale=1 / alpha).cdf, bg.alpha),
        (latents.p, lambda b: stats.beta(bg.a, b).cdf, bg.b),
        (latents.nu, lambda v: stats.gamma(gg.q, scale=1 / v).cdf, gg.v),
    ]
    for draws, cdf_with, true in cases:
        assert stats.kstest(draws, cdf_with(true)).pvalue > 1e-3
        # Power check: a 15 % error in the rate parameter would be caught.
        assert stats.kstest(draws, cdf_with(true * 1.15)).pvalue < 1e-6


def test_latents_are_the_ones_behind_the_written_data(tmp_path):
    """simulate_customers (used for the latents) reproduces what generate writes."""
    n = 4_000
    manifest = gen.generate(tmp_path, n, seed=SEED)
    result = gen.simulate_customers(n, seed=SEED)
    for name, table in result.tables.items():
        assert pq.read_table(tmp_path / f"{name}.parquet").cast(table.schema).equals(table)
    orders = pq.read_table(tmp_path / "orders.parquet").column("customer_id").to_numpy()
    n_orders = count_by_customer(orders, n)
    assert (n_orders == result.purchases.n_orders).all()
    buyers = result.purchases.ordering
    assert (n_orders[buyers] - 1 == result.purchases.x[buyers]).all()
    assert manifest["parameters"]["bg_nbd"]["r"] == gen.DEFAULT_BG_NBD.r


def bgnbd_log_likelihood(
    log_params: np.ndarray, x: np.ndarray, t_x: np.ndarray, T: np.ndarray
) -> float:
    """Fader, Hardie & Lee (2005), eq. 6, in log space."""
    r, alpha, a, b = np.exp(log_params)
    log_a1 = special.gammaln(r + x) - special.gammaln(r) + r * np.log(alpha)
    log_a2 = special.betaln(a, b + x) - special.betaln(a, b)
    log_alive = -(r + x) * np.log(alpha + T)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_dead = np.log(a) - np.log(b + x - 1) - (r + x) * np.log(alpha + t_x)
    log_dead = np.where(x > 0, log_dead, -np.inf)
    return float(np.sum(log_a1 + log_a2 + np.logaddexp(log_alive, log_dead)))


def gamma_gamma_log_likelihood(log_params: np.ndarray, n: np.ndarray, mean: np.ndarray) -> float:
    """Marginal likelihood of a customer's mean order value over n orders."""
    p, q, v = np.exp(log_params)
    pn = p * n
    return float(
        np.sum(
            special.gammaln(pn + q)
            - special.gammaln(pn)
            - special.gammaln(q)
            + q * np.log(v)
            + (pn - 1) * np.log(mean)
            + pn * np.log(n)
            - (pn + q) * np.log(v + n * mean)
        )
    )


def fit(log_likelihood, start: list[float], *data: np.ndarray) -> np.ndarray:
    result = optimize.minimize(
        lambda theta: -log_likelihood(theta, *data), np.log(start), method="L-BFGS-B"
    )
    assert result.success, result.message
    return np.exp(result.x)


def test_parameters_are_recovered_from_the_written_orders(con, clean):
    _, manifest = clean
    data = con.sql(
        f"""
        select count(*) - 1 as x,
            (epoch(max(ordered_at)) - epoch(min(ordered_at))) / 86400 as t_x,
            (epoch(timestamp '{WINDOW_END}') - epoch(min(ordered_at))) / 86400 as T,
            count(*) as n, avg(order_total) as mean
        from orders group by customer_id
        """
    ).fetchnumpy()
    x, n = data["x"].astype(float), data["n"].astype(float)
    bg = fit(bgnbd_log_likelihood, [1.0, 10.0, 1.0, 1.0], x, data["t_x"], data["T"])
    gg = fit(gamma_gamma_log_likelihood, [1.0, 2.0, float(data["mean"].mean())], n, data["mean"])
    true = manifest["parameters"]
    # Relative tolerances of about 4 standard errors: over 20 seeds at 30,000 customers the
    # estimates were unbiased (mean relative error < 0.5 %) with a relative sd of r 0.8 %,
    # alpha 1.3 %, a 4.4 %, b 5.4 %, p 5.5 %, q 1.1 %, v 6.3 % (a and b, and p and v, are
    # strongly correlated; e.g. only p * v / (q - 1), the mean order value, is sharp).
    tolerance = {"r": 0.04, "alpha": 0.06, "a": 0.18, "b": 0.22, "p": 0.22, "q": 0.05, "v": 0.25}
    estimates = [
        *(
            ("bg_nbd", name, value)
            for name, value in zip(("r", "alpha", "a", "b"), bg, strict=True)
        ),
        *(("gamma_gamma", name, value) for name, value in zip(("p", "q", "v"), gg, strict=True)),
    ]
    for model, name, estimate in estimates:
        expected = true[model][name]
        assert abs(estimate / expected - 1) < tolerance[name], (name, estimate, expected)


# ------------------------------------------------------------------------------------------
# Complaints and surveys
# ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def simulated() -> gen.ChunkResult:
    return gen.simulate_customers(N_CUSTOMERS, seed=SEED + 1)


def test_complaints_cluster_before_churn_by_the_latents(simulated):
    """Active = did not drop out before the end of the window (the generator's latent state)."""
    pur = simulated.purchases
    complaints = simulated.tables["complaints"]
    complained = count_by_customer(complaints.column("customer_id").to_numpy(), N_CUSTOMERS) > 0
    buyers = pur.ordering
    active_if_complained = (~pur.died[buyers & complained]).mean()
    active_otherwise = (~pur.died[buyers & ~complained]).mean()
    # Churners complain at 0.30, active buyers at 0.04: about 0.16 vs 0.66 active.
    assert active_if_complained < active_otherwise - 0.3

    # Churners' complaints come right after their last orders.
    customer = complaints.column("customer_id").to_numpy() - 1
    opened = complaints.column("opened_at").cast(pa.int64()).to_numpy()
    last_order = np.zeros(N_CUSTOMERS, dtype=np.int64)
    np.maximum.at(last_order, pur.order_customer, pur.order_s)
    gap_days = (last_order[customer] - opened) / 86_400
    churner = pur.died[customer]
    assert np.median(np.abs(gap_days[churner])) < 7
    assert np.median(np.abs(gap_days[~churner & buyers[customer]])) > 60


def test_complaints_cluster_before_churn_in_the_data(con):
    """Active = ordered in the last 90 days before the end date (observable proxy)."""
    active_if_complained, active_otherwise = con.sql(
        f"""
        with buyers as (
            select customer_id,
                max(ordered_at) >= timestamp '{WINDOW_END}' - interval 90 days as active
            from orders group by customer_id
        ),
        complainers as (select distinct customer_id from complaints)
        select avg(active::int) filter (where c.customer_id is not null),
            avg(active::int) filter (where c.customer_id is null)
        from buyers b left join complainers c using (customer_id)
        """
    ).fetchone()
    assert active_if_complained < active_otherwise - 0.15


def test_churners_give_lower_scores(simulated):
    surveys = simulated.tables["surveys"]
    churner = simulated.purchases.died[surveys.column("customer_id").to_numpy() - 1]
    for score in ("nps_score", "csat_score"):
        values = surveys.column(score).to_numpy(zero_copy_only=False).astype(float)
        assert np.nanmean(values[churner]) < np.nanmean(values[~churner]) - 0.3, score


# ------------------------------------------------------------------------------------------
# Command line
# ------------------------------------------------------------------------------------------
def run_cli(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # the installed package
    return subprocess.run(
        [sys.executable, "-m", "cvm.generate", *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=120,
    )


def test_cli_writes_files_and_manifest(tmp_path):
    out = tmp_path / "raw"
    result = run_cli(
        "--customers", "300", "--out", str(out), "--format", "csv",
        "--end-date", "2024-12-31", "--years", "2", "--seed", "3",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "chunk" in result.stderr  # progress bar without --quiet
    manifest = json.loads((out / "generator_manifest.json").read_text())
    assert manifest["args"]["customers"] == 300
    assert manifest["end_date"] == "2024-12-31"
    assert sorted(p.name for p in out.glob("*.csv")) == sorted(f"{t}.csv" for t in TABLES)
    [(max_ordered, min_signup, rows)] = duckdb.sql(
        f"select max(ordered_at), (select min(signup_date) from read_csv('{out}/customers.csv')), "
        f"(select count(*) from read_csv('{out}/customers.csv')) from read_csv('{out}/orders.csv')"
    ).fetchall()
    assert str(max_ordered) <= "2024-12-31 23:59:59"
    assert str(min_signup) >= "2023-01-01"
    assert rows == 300


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--customers", "0"], "--customers: must be >= 1"),
        (["--customers", "ten"], "--customers: 'ten' is not a valid integer"),
        (["--customers", "10", "--end-date", "2026-02-30"], "--end-date"),
        (["--customers", "10", "--bad-row-rate", "2"], "--bad-row-rate: must be <= 1"),
    ],
)
def test_cli_rejects_bad_arguments(tmp_path, args, message):
    result = run_cli(*args, "--out", str(tmp_path / "x"), "--quiet")
    assert result.returncode == 2
    assert message in result.stderr
    assert not (tmp_path / "x").exists()


def test_generate_rejects_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="customers must be >= 1"):
        gen.generate(tmp_path, 0)
    with pytest.raises(ValueError, match="format"):
        gen.generate(tmp_path, 10, fmt="xlsx")


# ------------------------------------------------------------------------------------------
# Contacts (retention campaigns)
# ------------------------------------------------------------------------------------------
def test_contacts_have_a_random_holdout_that_is_never_sent(con):
    [(share, holdout_responses, treated_missing)] = con.sql(
        "select avg(is_holdout::int), "
        "count(*) filter (where is_holdout and responded is not null), "
        "count(*) filter (where not is_holdout and responded is null) from contacts"
    ).fetchall()
    assert abs(share - gen.HOLDOUT_SHARE) < 0.01
    assert holdout_responses == 0
    assert treated_missing == 0
    # Random: the holdout buys as often as the treated would have without the campaign, i.e.
    # the treated convert more (by the strategies' persuasion), never less.
    [(treated, holdout)] = con.sql(
        "select avg(converted::int) filter (where not is_holdout), "
        "avg(converted::int) filter (where is_holdout) from contacts"
    ).fetchall()
    assert treated > holdout + 0.02


def test_contacts_respond_more_on_their_favourite_channel_and_by_strategy(con):
    # A customer's most used channel is (mostly) the favourite, where they respond more.
    [(on_top, elsewhere)] = con.sql(
        "with used as (select customer_id, channel, count(*) as n from contacts group by all), "
        "usage as (select *, row_number() over (partition by customer_id order by n desc, channel) "
        "as k from used) "
        "select avg(responded::int) filter (where u.k = 1), avg(responded::int) filter "
        "(where u.k > 1) from contacts c join usage u using (customer_id, channel) "
        "where not is_holdout"
    ).fetchall()
    assert on_top > elsewhere
    rates = dict(
        con.sql(
            "select strategy, avg(responded::int) from contacts where not is_holdout group by 1"
        ).fetchall()
    )
    assert set(rates) == set(gen.CONTACT_STRATEGIES)
    assert rates["reward_recognition"] > rates["needs_migration"]


def test_contacts_leave_the_other_files_as_they_were(tmp_path, monkeypatch):
    """Contacts draw from streams of their own: without them the other files are unchanged."""
    with_contacts = tmp_path / "with"
    gen.generate(with_contacts, customers=600, seed=5, chunk_size=250, inject_bad_rows=True)

    def no_contacts(rng, ctx, lam, first_id):
        return gen.SCHEMAS["contacts"].empty_table()

    # Patched where simulate_chunk looks it up.
    monkeypatch.setattr("cvm.generate.customers.make_contacts", no_contacts)
    without = tmp_path / "without"
    manifest = gen.generate(without, customers=600, seed=5, chunk_size=250, inject_bad_rows=True)
    assert manifest["row_counts"]["contacts"] == 0  # the patch took effect
    for name in gen.TABLES:
        if name != "contacts":
            assert (with_contacts / f"{name}.parquet").read_bytes() == (
                without / f"{name}.parquet"
            ).read_bytes(), name
