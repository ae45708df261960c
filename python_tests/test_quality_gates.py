"""Great Expectations gates: each one passes on good data and fails on data made to violate it."""

from __future__ import annotations

import datetime as dt
import math
import re
import shutil
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from cvm.generate import generate
from cvm.quality import GxRunner, load_thresholds
from cvm.quality.mart_gate import run_mart_gate
from cvm.quality.raw_gate import run_raw_gate, tolerated_share
from cvm.quality.runner import Batch, import_gx
from dbt_project import (
    lifetimes_example_orders,
    make_build,
    make_build_env,
    write_orders_and_customers,
)

END_DATE = dt.date(2026, 6, 30)
EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")


@pytest.fixture(scope="module")
def clean_raw(tmp_path_factory) -> Path:
    raw = tmp_path_factory.mktemp("gate_raw") / "raw"
    generate(raw, customers=2_000, seed=5, end_date=END_DATE, quiet=True)
    return raw


def violated(clean_raw: Path, tmp_path: Path, table: str, select: str | None) -> Path:
    """A copy of the raw files whose `table` is replaced by `select` over it (None: removed)."""
    raw = tmp_path / "raw"
    shutil.copytree(clean_raw, raw)
    path = raw / f"{table}.parquet"
    if select is None:
        path.unlink()
        return raw
    changed = tmp_path / f"{table}.changed.parquet"
    with duckdb.connect() as con:
        query = select.format(t=f"read_parquet('{path}')")
        con.execute(f"copy ({query}) to '{changed}' (format parquet)")
    changed.replace(path)
    return raw


def raw_gate(raw: Path, as_of: dt.date | None = END_DATE, docs: Path | None = None):
    return run_raw_gate(raw, as_of, load_thresholds(), GxRunner(docs))


def test_raw_gate_passes_clean_files_and_its_data_docs_hold_no_pii(clean_raw, tmp_path):
    result = raw_gate(clean_raw, docs=tmp_path / "docs")
    assert result.passed and not result.findings, result.report()
    assert result.expectations_run > 30
    with duckdb.connect() as con:  # the raw customers file does hold emails...
        ((emails,),) = con.execute(
            f"select count(email) from read_parquet('{clean_raw / 'customers.parquet'}')"
        ).fetchall()
    assert emails > 0
    pages = list((tmp_path / "docs").rglob("*.html"))
    assert len(pages) > 5
    for page in pages:  # ...and no Data Docs page does
        assert not EMAIL.search(page.read_text()), page


def test_the_raw_gate_writes_one_data_docs_site_for_all_its_files(clean_raw, tmp_path):
    """GX renders the whole site on every write: the raw gate validates file by file (to sample
    each file's bad values) and writes the site once, with every file's page in its index."""
    runner = GxRunner(tmp_path / "docs")
    writes = []
    build_data_docs = runner.context.build_data_docs

    def counted(**kwargs):
        writes.append(kwargs["resource_identifiers"])
        return build_data_docs(**kwargs)

    runner.context.build_data_docs = counted
    result = run_raw_gate(clean_raw, END_DATE, load_thresholds(), runner)
    assert result.passed and len(writes) == 1
    files = sorted(path.stem for path in clean_raw.glob("*.parquet"))
    assert len(files) == 7
    index = result.docs_index.read_text()
    assert all(f"raw.{name}." in index for name in files), index[:2000]
    assert len(writes[0]) >= 2 * len(files)  # a validation result and a suite per file
    # The next gate writes its own pages only (the site keeps the earlier ones).
    gxe = import_gx().expectations
    expectation = gxe.ExpectColumnValuesToBeBetween(column="row_count", min_value=1)
    runner.validate("marts", [Batch("m", pd.DataFrame({"row_count": [3]}), [expectation])], result)
    assert len(writes) == 2 and len(writes[1]) == 2


RAW_VIOLATIONS = {
    # name: (table, select over the clean file, expectation, column, a sample bad value)
    "unknown status": (
        "orders",
        "select * replace (case when hash(order_id) % 50 = 0 then 'shipped' else status end "
        "as status) from {t}",
        "expect_column_values_to_be_between",
        "status not allowed share",
        "shipped",
    ),
    "unparseable timestamps": (
        "orders",
        "select * replace (case when hash(order_id) % 100 = 0 then 'last tuesday' "
        "else cast(ordered_at as varchar) end as ordered_at) from {t}",
        "expect_column_values_to_be_between",
        "ordered_at unparseable share",
        "last tuesday",
    ),
    "duplicated keys": (
        "orders",
        "select * from {t} union all select * from {t} where hash(order_id) % 50 = 0",
        "expect_column_values_to_be_between",
        "unique_key_rate",
        None,
    ),
    "null keys": (
        "customers",
        "select * replace (case when hash(customer_id) % 50 = 0 then null else customer_id end "
        "as customer_id) from {t}",
        "expect_column_values_to_be_between",
        "customer_id null share",
        None,
    ),
    "dates in the future": (
        "orders",
        "select * replace (case when hash(order_id) % 1000 = 0 then ordered_at + interval 80 year "
        "else ordered_at end as ordered_at) from {t}",
        "expect_column_max_to_be_between",
        "latest_ordered_at",
        None,
    ),
    "the last days missing (a truncated export)": (
        "orders",
        "select * from {t} where cast(ordered_at as date) < date '2026-06-28'",
        "expect_column_values_to_be_between",
        "rows_in_latest_days",
        None,
    ),
    "a required column missing": (
        "orders",
        "select * exclude (status) from {t}",
        "expect_table_columns_to_match_set",
        None,
        None,
    ),
    "a required file missing": ("orders", None, "required_file_present", None, None),
}


@pytest.mark.parametrize("violation", sorted(RAW_VIOLATIONS))
def test_raw_gate_fails_on_a_critical_violation(clean_raw, tmp_path, violation):
    table, select, expectation, column, sample = RAW_VIOLATIONS[violation]
    result = raw_gate(violated(clean_raw, tmp_path, table, select))
    assert not result.passed
    (finding,) = result.critical
    assert finding.subject.startswith(table)
    assert (finding.expectation, finding.column) == (expectation, column), finding.line()
    if sample is not None:
        assert sample in finding.samples
    assert finding.hint, finding.line()  # every finding says what the user can do


@pytest.mark.parametrize(("missing_days", "passes"), [(1, True), (5, False)])
def test_a_small_shops_quiet_day_passes_and_its_truncated_export_stops(
    clean_raw, tmp_path, missing_days, passes
):
    """A shop of about five orders a day (the clean file thinned): a day without orders happens
    (1 in 200 days; a rule on the ratio to the quietest days alone stopped it), five days
    without orders at the end are a truncated export."""
    last_kept = END_DATE - dt.timedelta(days=missing_days)
    raw = violated(
        clean_raw,
        tmp_path,
        "orders",
        f"select * from {{t}} where hash(order_id) % 5 = 0 "
        f"and cast(ordered_at as date) <= date '{last_kept}'",
    )
    result = raw_gate(raw)
    assert result.passed is passes, result.report()
    if not passes:
        (finding,) = result.critical
        assert finding.column == "rows_in_latest_days" and "observed 0" in finding.detail


@pytest.mark.parametrize(("days_cut", "passes"), [(0, True), (3, False)])
def test_a_shrinking_customer_base_passes_and_its_truncated_export_stops(
    tmp_path, days_cut, passes
):
    """lifetimes' example transactions: one cohort of 5,000 customers dying off over 2014, so
    its December holds half the orders per day of its October. Against the 90 days before, the
    complete file's last week looked half-loaded (43 orders, at least 43.5 expected); against
    the 28 days before, it passes, and the same file without its last three days stops."""
    as_of = dt.date(2014, 12, 31)
    orders = lifetimes_example_orders(10.0)
    cut = as_of - dt.timedelta(days=days_cut)
    raw = tmp_path / "raw"
    write_orders_and_customers(raw, orders[pd.to_datetime(orders["ordered_at"]).dt.date <= cut])
    result = raw_gate(raw, as_of=as_of)
    assert result.passed is passes, result.report()
    if not passes:
        (finding,) = result.critical
        assert finding.column == "rows_in_latest_days", finding.line()


SMALL_SHOP_ORDERS = [
    f"o{i},c{i % 3},2025-0{i}-05 10:00:00,completed,{20 * i}.00" for i in range(1, 9)
]


@pytest.mark.parametrize(
    ("change", "passes", "column"),
    [
        ("one order repeated", True, None),
        ("one order total with a decimal comma", True, None),
        ("the export appended to itself", False, "unique_key_rate"),
        ("every order total with a decimal comma", False, "order_total unparseable share"),
    ],
)
def test_a_small_shops_dirty_row_passes_and_its_broken_file_stops(tmp_path, change, passes, column):
    """Eight orders: one dirty row is staging's to quarantine (one in eight is 12.5 %, far
    above the 0.1 % a large file may hold, yet what a file at 0.1 % shows by chance, with
    probability 0.008); a file whose ids or numbers are wrong as a whole still stops."""

    def decimal_comma(line: str) -> str:
        rest, total = line.rsplit(",", 1)
        return f'{rest},"{total.replace(".", ",")}"'

    orders = list(SMALL_SHOP_ORDERS)
    if change == "one order repeated":
        orders.append(orders[3])
    elif change == "one order total with a decimal comma":
        orders[3] = decimal_comma(orders[3])
    elif change == "the export appended to itself":
        orders += orders
    else:
        orders = [decimal_comma(line) for line in orders]
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "customers.csv").write_text(
        "customer_id,signup_date\nc0,2025-01-01\nc1,2025-01-01\nc2,2025-01-01\n"
    )
    (raw / "orders.csv").write_text(
        "order_id,customer_id,ordered_at,status,order_total\n" + "\n".join(orders) + "\n"
    )
    result = raw_gate(raw, as_of=dt.date(2025, 8, 31))
    assert result.passed is passes, result.report()
    if not passes:
        (finding,) = result.critical
        assert finding.column == column, finding.line()


@pytest.mark.parametrize("rows", [2, 8, 100, 1_000, 20_000])
def test_the_tolerated_share_is_the_binomial_tail_at_the_threshold(rows):
    """tolerated_share against the binomial tail summed term by term: a file at exactly the
    threshold shows more offending rows than tolerated with a chance of at most max_chance,
    and at least as many as tolerated with a larger one."""
    threshold, max_chance = 0.001, 0.001
    tolerated = round(tolerated_share(threshold, rows, max_chance) * rows)

    def chance_of_more_than(k: int) -> float:
        at_most_k = sum(
            math.comb(rows, i) * threshold**i * (1 - threshold) ** (rows - i) for i in range(k + 1)
        )
        return 1 - at_most_k

    assert chance_of_more_than(tolerated) <= max_chance < chance_of_more_than(tolerated - 1)


def test_a_large_files_tolerance_stays_near_its_threshold():
    assert 0.001 < tolerated_share(0.001, 1_000_000, 0.001) < 0.00111
    assert tolerated_share(0.001, 0, 0.001) == 0.001


def test_raw_gate_reports_a_warning_without_failing(clean_raw, tmp_path):
    raw = violated(
        clean_raw,
        tmp_path,
        "surveys",
        "select * replace (case when hash(response_id) % 20 = 0 then 11 else nps_score end "
        "as nps_score) from {t}",
    )
    result = raw_gate(raw)
    assert result.passed
    (finding,) = result.warnings
    assert (finding.column, finding.severity) == ("nps_score out of range share", "warning")
    assert "11" in finding.samples


@pytest.fixture
def mart_copy(published_build, tmp_path) -> Path:
    return published_build.copy_to(tmp_path / "staging")


def mart_gate(warehouse: Path, previous: Path | None = None):
    return run_mart_gate(warehouse, load_thresholds(), GxRunner(None), previous=previous)


def change(warehouse: Path, sql: str) -> None:
    with duckdb.connect(str(warehouse)) as con:
        con.execute(sql)


@pytest.mark.slow
def test_mart_gate_passes_a_real_build(published_build, mart_copy):
    result = mart_gate(mart_copy, previous=published_build.warehouse)
    assert result.passed and not result.findings, result.report()


# Each rule of the mart gate against the problem it exists for (tampered copies of a real build).
MART_VIOLATIONS = {
    "customers lost between staging and the marts": (
        "delete from intermediate.int_customers_valued where hash(customer_id) % 100 = 0",
        "row counts",
        "expect_column_pair_values_to_be_equal",
    ),
    "an RFM score collapsed to one value": (
        "update intermediate.int_customers_valued set frequency_score = 3 "
        "where frequency_score is not null",
        "marts.customer_value.frequency_score",
        "collapsed",
    ),
    "an RFM score outside 1-5": (
        "update intermediate.int_customers_valued set monetary_score = 6 "
        "where customer_id = (select min(customer_id) from marts.customer_value "
        "where monetary_score = 5)",
        "marts.customer_value.monetary_score",
        "customers_out_of_range",
    ),
    "a purchasing customer without an RFM score": (
        "update intermediate.int_customers_valued set recency_score = null "
        "where customer_id = (select min(customer_id) from marts.customer_value "
        "where recency_score is not null)",
        "marts.customer_value.recency_score",
        "customers_out_of_range",
    ),
    "a tie split across two scores (not tie-safe)": (
        "update intermediate.int_customers_valued set frequency_score = frequency_score + 1 "
        "where customer_id = (select min(customer_id) from marts.customer_value "
        "where frequency_score = 2)",
        "marts.customer_value.frequency_score",
        "overlapping_scores",
    ),
    "CLV missing for purchasing customers of a fitted model": (
        "update intermediate.int_customers_valued set clv = null where hash(customer_id) % 10 = 0",
        "marts.customer_value (purchasing customers)",
        "share_with_clv",
    ),
}


@pytest.mark.slow
@pytest.mark.parametrize("violation", sorted(MART_VIOLATIONS))
def test_mart_gate_fails_on_a_critical_violation(mart_copy, violation):
    sql, subject, check = MART_VIOLATIONS[violation]
    change(mart_copy, sql)
    result = mart_gate(mart_copy)
    assert not result.passed
    (finding,) = result.critical
    assert finding.subject == subject, finding.line()
    assert check in (finding.column, finding.expectation), finding.line()
    assert finding.hint and "np.float64" not in finding.line()


@pytest.mark.slow
def test_mart_gate_passes_when_ties_leave_a_score_empty(mart_copy):
    """CDNOW's case: most customers bought once, so their tie takes several fifths and a score
    stays empty. That is correct tie-safe scoring, not a collapse."""
    change(
        mart_copy,
        "update intermediate.int_customers_valued "
        "set frequency_score = case when frequency_score <= 3 "
        "then 1 else frequency_score end where frequency_score is not null",
    )
    result = mart_gate(mart_copy)
    assert result.passed and not result.findings, result.report()


@pytest.mark.slow
def test_mart_gate_does_not_ask_for_clv_when_the_fit_failed(mart_copy):
    change(
        mart_copy,
        "update marts.clv_model_parameters set fit_status = 'not_identified', value = null "
        "where fit_purpose = 'scoring' and model = 'bg_nbd'; "
        "update intermediate.int_customers_valued set clv = null, p_alive = null",
    )
    result = mart_gate(mart_copy)
    assert result.passed and not result.findings, result.report()


@pytest.mark.slow
def test_mart_gate_warns_when_p_alive_is_implausible(mart_copy):
    change(mart_copy, "update intermediate.int_customers_valued set p_alive = p_alive / 1000")
    result = mart_gate(mart_copy)
    assert result.passed
    (finding,) = result.warnings
    assert finding.column == "mean_p_alive"
    assert "%; expected between 5.00% and 99.00%" in finding.detail


@pytest.mark.slow
def test_mart_gate_warns_when_the_tier_mix_shifts(published_build, mart_copy):
    change(
        mart_copy,
        "update intermediate.int_customers_valued set value_tier = 'Bronze' "
        "where value_tier is not null and hash(customer_id) % 4 = 0",
    )
    result = mart_gate(mart_copy, previous=published_build.warehouse)
    assert result.passed
    assert {f.column for f in result.warnings} == {"share_shift"}
    assert any("Bronze" in f.subject for f in result.warnings)


@pytest.mark.slow
def test_make_build_stops_on_the_raw_gate_before_dbt(published_build, clean_raw, tmp_path):
    warehouse = published_build.copy_to(tmp_path / "warehouse")
    before = warehouse.read_bytes()
    table, select, *_ = RAW_VIOLATIONS["unknown status"]
    raw = violated(clean_raw, tmp_path, table, select)
    result = make_build(make_build_env(tmp_path, raw, warehouse))
    assert result.returncode != 0
    assert "[critical] orders.parquet.status not allowed share" in result.stdout
    assert "'shipped'" in result.stdout
    assert "The raw gate failed" in result.stderr and "is unchanged" in result.stderr
    assert "Building into" not in result.stdout  # dbt never ran
    assert warehouse.read_bytes() == before


@pytest.mark.slow
def test_no_mart_column_holds_an_email_address(published_build):
    """Raw emails and names stop at staging: scan every text column the build publishes."""
    with duckdb.connect(str(published_build.warehouse), read_only=True) as con:
        columns = con.execute(
            "select table_schema, table_name, column_name from information_schema.columns "
            "where table_schema in ('marts', 'bi', 'snapshots') and data_type = 'VARCHAR'"
        ).fetchall()
        assert len(columns) > 20
        for schema, table, column in columns:
            ((hits,),) = con.execute(
                f'select count(*) from "{schema}"."{table}" '
                f"where regexp_matches(\"{column}\", '[^@\\s]+@[^@\\s]+\\.[A-Za-z]{{2,}}')"
            ).fetchall()
            assert hits == 0, f"{schema}.{table}.{column} holds email-shaped values"
        ((raw_emails,),) = con.execute(
            "select count(*) from raw.customers where email like '%@%'"
        ).fetchall()
    assert raw_emails > 0  # the scan looks for something the raw data has
