"""Incremental builds (doc block `incremental_orders`): a daily `make build` on a warehouse gives
the same marts as a full refresh, with late-arriving, changed and deleted source rows, and a
second build of the same data changes nothing. Deleted orders stay in the order snapshot."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from conftest import Published
from cvm.incremental import stale_incremental_models, stored_columns_expected
from daily_source import (
    LATE_COMPLAINT,
    LATE_INSIDE_LOOKBACK,
    LATE_OUTSIDE_LOOKBACK,
    PUBLISHED_AS_OF,
    YESTERDAY,
    DailySource,
)
from dbt_project import copy_warehouse, dbt_build, make_build, make_build_env, query, run_dbt

pytestmark = pytest.mark.slow


def mart_differences(left: Path, right: Path) -> dict[str, int]:
    """Tables of `marts` and `bi` whose rows differ between two warehouses, with the number of
    rows that found no equal partner. Rows pair up in the order of all their columns; doubles
    match within a relative 1e-9 (fits and sums run in another row order), and the `_seconds`
    columns that time a step are left out."""
    differences = {}
    with duckdb.connect() as con:
        con.execute(f"attach '{left}' as left_db (read_only)")
        con.execute(f"attach '{right}' as right_db (read_only)")
        tables = con.execute(
            "select schema_name, table_name from duckdb_tables() "
            "where database_name = 'left_db' and schema_name in ('marts', 'bi') "
            "union all select schema_name, view_name from duckdb_views() "
            "where database_name = 'left_db' and schema_name in ('marts', 'bi') order by all"
        ).fetchall()
        assert len(tables) > 20, tables
        for schema, table in tables:
            columns = con.execute(
                "select column_name, data_type in ('DOUBLE', 'FLOAT') from duckdb_columns() "
                "where database_name = 'left_db' and schema_name = ? and table_name = ? "
                "and column_name not like '%\\_seconds' escape '\\' order by column_index",
                [schema, table],
            ).fetchall()
            exact = [f'"{name}"' for name, is_double in columns if not is_double]
            doubles = [f'"{name}"' for name, is_double in columns if is_double]
            order = ", ".join([*exact, *(f"round({c}, 3)" for c in doubles)])
            same = [f"l.{c} is not distinct from r.{c}" for c in exact] + [
                f"(l.{c} is null and r.{c} is null or abs(l.{c} - r.{c}) "
                f"<= 1e-9 * greatest(1, abs(l.{c}), abs(r.{c})))"
                for c in doubles
            ]
            relation = f'"{schema}"."{table}"'
            numbered = (
                "select row_number() over (order by {order}) as row_position, * from {db}.{rel}"
            )
            (unmatched,) = con.execute(
                f"""
                with l as ({numbered.format(order=order, db="left_db", rel=relation)}),
                r as ({numbered.format(order=order, db="right_db", rel=relation)})
                select count(*) from l full join r using (row_position)
                where not ({" and ".join(same)})
                """
            ).fetchone()
            if unmatched:
                differences[f"{schema}.{table}"] = unmatched
    return differences


def succeed(result) -> str:
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return result.stdout


def test_a_daily_build_with_late_orders_equals_a_full_refresh(
    published_build: Published, yesterday_build: Published, tmp_path
):
    daily = yesterday_build.copy_to(tmp_path / "daily")
    base = published_build.raw_dir
    env = make_build_env(tmp_path, base, daily)
    stdout = succeed(make_build(env | {"CVM_AS_OF_DATE": PUBLISHED_AS_OF}))
    # The complaint and the order three weeks late are older than the lookback: make build
    # found them, and rebuilt the order facts from the late order's day, the tier history from
    # the complaint's month (a year earlier: no need to rebuild a year of order facts).
    with duckdb.connect() as con:
        (complaint_month,) = con.execute(
            f"with source_rows as (select * from read_parquet('{base}/complaints.parquet')) "
            f"select cast(date_trunc('month', opened_at) as date) from source_rows "
            f"where {LATE_COMPLAINT}"
        ).fetchone()
    assert f"orders from {LATE_OUTSIDE_LOOKBACK}" in stdout, stdout[-3000:]
    assert f"complaints from {complaint_month}" in stdout, stdout[-3000:]
    assert (
        f"the order facts are rebuilt from {LATE_OUTSIDE_LOOKBACK} (reprocess_orders_from), "
        f"the tier history from {complaint_month} (reprocess_tier_months_from)"
    ) in stdout
    late = query(
        daily,
        f"select count(*) from marts.fct_orders where order_date = date '{LATE_OUTSIDE_LOOKBACK}'",
    )
    assert late == query(
        published_build.warehouse,
        f"select count(*) from marts.fct_orders where order_date = date '{LATE_OUTSIDE_LOOKBACK}'",
    )
    # The published build is the full refresh of the same source as of the same day; the
    # monthly blocks of the tier history, incremental too, equal its blocks.
    assert mart_differences(daily, published_build.warehouse) == {}
    blocks = "select * from intermediate.int_orders_aggregated_to_customer_months"
    assert set(query(daily, blocks)) == set(query(published_build.warehouse, blocks))
    # make build let the order snapshot compare only the reprocessed orders; its current
    # versions are still the source's orders, as in the full build's first snapshot of them.
    current = f"select {SNAPSHOT_COLUMNS} from snapshots.order_snapshots where dbt_valid_to is null"
    assert set(query(daily, current)) == set(query(published_build.warehouse, current))


def test_dbt_alone_picks_up_late_orders_inside_the_lookback_only(
    published_build: Published, yesterday_build: Published, tmp_path
):
    """Without make build's comparison, `dbt build` reprocesses the lookback window only, and
    the recount of the order facts from staging says which orders it missed."""
    daily = yesterday_build.copy_to(tmp_path / "daily")
    raw = published_build.raw_dir
    result = dbt_build(
        raw,
        daily,
        tmp_path,
        "--select",
        "staging",
        "int_order_items_costed",  # the incremental tables of the two fact views
        "int_orders_costed",
        "fct_order_items",
        "fct_orders",
        as_of=PUBLISHED_AS_OF,
    )
    # The late orders inside the lookback are all there (their order numbers are not: the
    # customer's missed order three weeks back is not counted).
    inside = ", ".join(f"date '{day}'" for day in LATE_INSIDE_LOOKBACK)
    order_ids = f"select order_id from marts.fct_orders where order_date in ({inside}) order by 1"
    assert query(daily, order_ids) == query(published_build.warehouse, order_ids)
    outside = f"select count(*) from marts.fct_orders where order_date = '{LATE_OUTSIDE_LOOKBACK}'"
    [(published,)], [(kept,)] = query(published_build.warehouse, outside), query(daily, outside)
    assert kept < published
    # The only failure: the money recount finds exactly the orders three weeks late missing.
    assert result.returncode != 0
    assert "PASS=" in result.stdout and "ERROR=1 " in result.stdout, result.stdout[-3000:]
    assert f"FAIL {published - kept} assert_order_money_recounts_from_staging" in result.stdout


def test_an_incremental_run_tests_the_keys_it_wrote_against_every_row(
    yesterday_build: Published, tmp_path
):
    """The key test of the order facts, on an incremental run, checks the keys of the rows the
    run wrote against every row (macro cvm_written_rows); `dbt test` on its own checks them all."""
    daily = yesterday_build.copy_to(tmp_path / "daily")
    table = "intermediate.int_orders_costed"
    [(newest, oldest)] = query(
        daily,
        f"select arg_max(order_id, ordered_at), arg_min(order_id, ordered_at) from {table}",
    )
    with duckdb.connect(str(daily)) as con:
        # A kept copy of the newest order (dated a year back, before anything the run
        # rewrites): the run rewrites the order itself, so one of its rows is written.
        con.execute(
            f"insert into {table} select * replace (order_date - 365 as order_date) "
            f"from {table} where order_id = ?",
            [newest],
        )
        # A second copy of the oldest order: both rows kept, neither written by the run.
        con.execute(f"insert into {table} select * from {table} where order_id = ?", [oldest])
    raw = yesterday_build.raw_dir
    result = dbt_build(
        raw, daily, tmp_path, "--select", "int_orders_costed", "fct_orders", as_of=YESTERDAY
    )
    assert "FAIL 1 fct_orders_order_id_is_unique" in result.stdout, result.stdout[-3000:]
    alone = run_dbt(
        "test", raw, daily, tmp_path, "--select", "fct_orders_order_id_is_unique", as_of=YESTERDAY
    )
    assert "FAIL 2 fct_orders_order_id_is_unique" in alone.stdout, alone.stdout[-3000:]
    # What the run recorded: the last order date it kept, before the lookback's three days.
    recorded = query(daily, f"select kept_through from {table}__kept_rows")
    kept = f"select max(order_date) from {table} where order_date < date '{YESTERDAY}' - 3"
    assert recorded == query(daily, kept) and len(recorded) == 1


def test_the_lines_aggregate_drops_the_lines_a_run_deleted(yesterday_build: Published, tmp_path):
    """The per-customer aggregate of the lines, incremental by customer, aggregates again a
    customer whose recent lines vanished from the source: no line of theirs is after the date
    the order facts kept any more, but their stored aggregate held such lines."""
    daily = yesterday_build.copy_to(tmp_path / "daily")
    lines, aggregate = (
        "intermediate.int_order_items_costed",
        "intermediate.int_order_items_aggregated_to_customers",
    )
    recent = f"order_status = 'completed' and order_date >= date '{YESTERDAY}' - 3"
    with duckdb.connect(str(daily)) as con:
        [(customer,)] = con.execute(
            f"select min(customer_id) from {lines} where {recent} and customer_id in "
            f"(select customer_id from {lines} where order_date < date '{YESTERDAY}' - 3)"
        ).fetchall()
        con.execute(
            f"delete from staging.base_shop__order_items where order_id in "
            f"(select order_id from {lines} where customer_id = ? and {recent})",
            [customer],
        )
    result = dbt_build(
        yesterday_build.raw_dir,
        daily,
        tmp_path,
        "--select",
        "int_order_items_costed",
        "int_order_items_aggregated_to_customers",
        as_of=YESTERDAY,
    )
    succeed(result)
    recount = query(
        daily,
        "select customer_id, count(distinct product_id), count(distinct product_category), "
        "sum(gross_amount), sum(discount_amount), max(order_date) "
        f"from {lines} where order_status = 'completed' group by customer_id",
    )
    stored = query(
        daily,
        "select customer_id, distinct_product_count, distinct_category_count, gross_item_sales, "
        f"item_discount_amount, last_line_order_date from {aggregate}",
    )
    assert set(stored) == set(recount)
    # Their latest line is now one before the window.
    latest = f"select last_line_order_date < date '{YESTERDAY}' - 3 from {aggregate} where "
    assert query(daily, latest + f"customer_id = '{customer}'") == [(True,)]


def test_source_changes_of_any_age_equal_a_full_refresh_and_deletions_are_snapshotted(
    yesterday_build: Published,
    daily_source: DailySource,
    changed_source_build: Published,
    tmp_path,
):
    warehouse, changed = yesterday_build.warehouse, daily_source.changed
    daily = yesterday_build.copy_to(tmp_path / "daily")
    today = make_build_env(tmp_path, changed, daily) | {"CVM_AS_OF_DATE": PUBLISHED_AS_OF}
    stdout = succeed(make_build(today))
    assert "The source changed since the last build (orders from" in stdout
    assert "products from" in stdout

    full = changed_source_build.warehouse
    assert mart_differences(daily, full) == {}
    # The per-customer aggregate of the lines, incremental by customer, equals its full build.
    breadth = "select * from intermediate.int_order_items_aggregated_to_customers"
    assert set(query(daily, breadth)) == set(query(full, breadth))
    # The late credit notes netted the old orders they refund, one of them in full.
    credited = query(
        daily,
        "select status, exported_status, credited_amount = order_total from marts.fct_orders "
        "where credited_amount > 0 order by 3",
    )
    assert credited == [("completed", "completed", False), ("returned", "completed", True)]

    # Every order deleted from the source is closed in the snapshot, with its last values.
    deleted = set(
        query(
            warehouse,
            "select order_id from marts.fct_orders except select order_id from "
            f"read_parquet('{changed}/orders.parquet')",
        )
    )
    assert len(deleted) > 5
    recorded = set(
        query(daily, "select order_id from snapshots.order_snapshots where dbt_is_deleted = 'True'")
    )
    assert recorded == deleted
    # The returned order has two versions, completed then returned; the redated order two
    # with the same status, the later one dated before every other order.
    versions = query(
        daily,
        """select list(status order by dbt_valid_from),
                  list(ordered_at order by dbt_valid_from)[2] = min(min(ordered_at)) over ()
           from snapshots.order_snapshots
           group by order_id having count(*) = 2 and bool_and(dbt_is_deleted = 'False')
           order by 2""",
    )
    assert len(versions) == 2 and versions[0] == (["completed", "returned"], False), versions
    assert versions[1][1] and len(set(versions[1][0])) == 1, versions

    # Building the same source again changes no mart.
    before = copy_warehouse(daily, tmp_path / "before")
    again = succeed(make_build(today))
    assert "The source changed" not in again
    assert again.count("Done. PASS=") == 2  # over stored facts: staging, the check, the rest
    assert mart_differences(daily, before) == {}


SNAPSHOT_COLUMNS = "order_id, customer_id, ordered_at, status, order_total, dbt_is_deleted"


def test_told_the_source_is_unchanged_before_the_reprocess_date_snapshot_and_tier_history_redo_less(
    published_build: Published, tmp_path
):
    """With var source_unchanged_before_reprocess_date (make build sets it when its comparison
    found the source equal to the stored facts before the reprocess date), the order snapshot
    compares only the orders from that date: a difference planted in the current version of
    an older order goes unseen, one inside the window gets a new version. The tier history
    recomputes only its latest stored month (the reprocess date's): a value planted in the
    month before stays. Without the var the snapshot compares every order and sees both, and
    the history recomputes tier_history_reprocess_months (2) months, repairing the plant."""
    warehouse = published_build.copy_to(tmp_path / "warehouse")
    planted = {
        "old": "ordered_at < date '2026-01-01'",
        # Inside the 3-day lookback before the as-of date.
        "recent": f"cast(ordered_at as date) = date '{PUBLISHED_AS_OF}'",
    }
    # April 2026: the month before the latest stored one (May 2026, the as-of month).
    month_before = "date '2026-04-01'"
    tier_month = (
        "select net_revenue_window from intermediate.int_customer_months_tiered "
        f"where period_month = {month_before} and customer_id = ?"
    )
    with duckdb.connect(str(warehouse)) as con:
        order_ids = {
            name: con.execute(
                "select min(order_id) from snapshots.order_snapshots "
                f"where dbt_valid_to is null and status = 'completed' and {where}"
            ).fetchone()[0]
            for name, where in planted.items()
        }
        con.execute(
            "update snapshots.order_snapshots set order_total = order_total + 1 "
            f"where dbt_valid_to is null and order_id in ({', '.join('?' * len(order_ids))})",
            list(order_ids.values()),
        )
        (customer_id,) = con.execute(
            "select min(customer_id) from intermediate.int_customer_months_tiered "
            f"where period_month = {month_before}"
        ).fetchone()
        (published_value,) = con.execute(tier_month, [customer_id]).fetchone()
        con.execute(
            "update intermediate.int_customer_months_tiered "
            "set net_revenue_window = net_revenue_window + 1000 "
            f"where period_month = {month_before} and customer_id = ?",
            [customer_id],
        )

    def versions() -> dict[str, int]:
        counts = {}
        for name, order_id in order_ids.items():
            [(counts[name],)] = query(
                warehouse,
                f"select count(*) from snapshots.order_snapshots where order_id = '{order_id}'",
            )
        return counts

    def tier_value() -> Decimal:
        with duckdb.connect(str(warehouse), read_only=True) as con:
            return con.execute(tier_month, [customer_id]).fetchone()[0]

    raw = published_build.raw_dir
    windowed = ("--vars", "{source_unchanged_before_reprocess_date: true}")
    for args in (windowed, ()):
        result = run_dbt(
            "build",
            raw,
            warehouse,
            tmp_path,
            "--select",
            "order_snapshots int_customer_months_tiered",
            "--exclude-resource-type",
            "test",
            "--exclude-resource-type",
            "unit_test",
            *args,
            as_of=PUBLISHED_AS_OF,
        )
        succeed(result)
        if args:
            assert versions() == {"old": 1, "recent": 2}
            assert tier_value() == published_value + 1000
    assert versions() == {"old": 2, "recent": 2}
    assert tier_value() == published_value
    # The window's view went with the merge.
    assert not query(
        warehouse,
        "select table_name from information_schema.tables where table_schema = 'snapshots' "
        "and table_name like '%compared_window%'",
    )


# Orders of the published build to plant a stale value in: item_quantity is derived from the
# lines, so make build's source comparison does not see the change, and only a rebuild of the
# order's day repairs it.
STALE_ORDER = (
    "(select min(order_id) from marts.fct_orders "
    "where order_date between date '{}' and date '{}' and item_quantity > 0)"
)
BEFORE_BACKFILL = STALE_ORDER.format("2026-01-01", "2026-01-31")
INSIDE_BACKFILL = STALE_ORDER.format("2026-03-01", "2026-03-31")


def with_stale_orders(published: Published, directory: Path) -> tuple[Path, list[str]]:
    """A copy of the published warehouse whose order facts hold a wrong item_quantity for one
    order in January 2026 and one in March 2026."""
    warehouse = published.copy_to(directory)
    with duckdb.connect(str(warehouse)) as con:
        stale = [
            con.execute(f"select {order}").fetchone()[0]
            for order in (BEFORE_BACKFILL, INSIDE_BACKFILL)
        ]
        con.execute(
            "update intermediate.int_orders_costed set item_quantity = item_quantity + 100 "
            "where order_id in (?, ?)",
            stale,
        )
    return warehouse, stale


def item_quantities(warehouse: Path, order_ids: list[str]) -> list[int]:
    return [
        quantity
        for (quantity,) in query(
            warehouse,
            "select item_quantity from marts.fct_orders where order_id in "
            f"({', '.join(repr(o) for o in order_ids)}) order by order_date",
        )
    ]


def test_reprocess_orders_from_rebuilds_the_orders_from_that_date(
    published_build: Published, tmp_path
):
    """CVM_REPROCESS_ORDERS_FROM (a backfill): the order facts from that date are rebuilt, the
    older ones kept as they are (the January order stays stale: proof it was not a full run)."""
    warehouse, stale = with_stale_orders(published_build, tmp_path / "daily")
    published = item_quantities(published_build.warehouse, stale)
    raw = published_build.raw_dir
    env = make_build_env(tmp_path, raw, warehouse) | {
        "CVM_AS_OF_DATE": PUBLISHED_AS_OF,
        "CVM_REPROCESS_ORDERS_FROM": "2026-03-01",
    }
    stdout = succeed(make_build(env))
    assert "The source changed" not in stdout  # the backfill date, not a source change, did it
    assert item_quantities(warehouse, stale) == [published[0] + 100, published[1]]


def test_full_refresh_rebuilds_every_order(published_build: Published, tmp_path):
    """CVM_FULL_REFRESH=1: the incremental models are rebuilt from scratch, so both stale
    orders are repaired and every mart equals the published full build."""
    warehouse, stale = with_stale_orders(published_build, tmp_path / "daily")
    raw = published_build.raw_dir
    env = make_build_env(tmp_path, raw, warehouse) | {
        "CVM_AS_OF_DATE": PUBLISHED_AS_OF,
        "CVM_FULL_REFRESH": "1",
    }
    succeed(make_build(env))
    assert item_quantities(warehouse, stale) == item_quantities(published_build.warehouse, stale)
    assert mart_differences(warehouse, published_build.warehouse) == {}


def stale_check_manifest(view_columns: list[str], own_contract: bool = False) -> dict:
    """An incremental table behind a public view (macro cvm_view_source), or with a contract of
    its own listing the same columns."""
    table, view = "model.p.int_facts", "model.p.fct_facts"
    columns = {name: {} for name in view_columns}
    return {
        "nodes": {
            table: {
                "unique_id": table,
                "resource_type": "model",
                "schema": "intermediate",
                "alias": "int_facts",
                "config": {"materialized": "incremental", "contract": {"enforced": own_contract}},
                "columns": columns if own_contract else {"order_id": {}},
            },
            view: {
                "unique_id": view,
                "resource_type": "model",
                "schema": "marts",
                "alias": "fct_facts",
                "config": {"materialized": "view", "contract": {"enforced": True}},
                "columns": columns,
                "depends_on": {"nodes": [table], "macros": ["macro.p.cvm_view_source"]},
            },
        },
        "child_map": {table: [view], view: []},
    }


@pytest.mark.parametrize("own_contract", [False, True], ids=["view's contract", "own contract"])
def test_an_incremental_table_with_other_columns_than_its_contract_is_stale(own_contract):
    with duckdb.connect() as con:
        con.execute("create schema intermediate")
        assert stale_incremental_models(con, stale_check_manifest(["order_id"])) == []  # not built
        con.execute("create table intermediate.int_facts (order_id varchar, amount decimal)")
        same = stale_check_manifest(["order_id", "amount"], own_contract)
        assert stale_incremental_models(con, same) == []
        more = stale_check_manifest(["order_id", "amount", "currency"], own_contract)
        assert stale_incremental_models(con, more) == ["intermediate.int_facts"]


def test_an_incremental_table_without_a_contract_is_checked_against_its_documented_columns():
    manifest = stale_check_manifest(["order_id", "amount"])
    manifest["nodes"]["model.p.int_facts"]["columns"] = {"order_id": {}, "amount": {}}
    del manifest["nodes"]["model.p.fct_facts"]  # no public view either
    manifest["child_map"]["model.p.int_facts"] = []
    with duckdb.connect() as con:
        con.execute("create schema intermediate")
        con.execute("create table intermediate.int_facts (order_id varchar, amount decimal)")
        assert stale_incremental_models(con, manifest) == []
        con.execute("alter table intermediate.int_facts drop column amount")
        assert stale_incremental_models(con, manifest) == ["intermediate.int_facts"]


def test_every_incremental_model_lists_the_columns_it_stores(published_build: Published):
    """What the stale check expects of each incremental model (its contract, its public view's,
    or its documented columns) is what a fresh build stores: an incomplete list would rebuild
    it in full on every build, a missing one would let an upgrade fail on the old columns."""
    target = Path(published_build.env["DBT_TARGET_PATH"])
    manifest = json.loads((target / "manifest.json").read_text())
    incremental = [
        node
        for node in manifest["nodes"].values()
        if node["resource_type"] == "model" and node["config"].get("materialized") == "incremental"
    ]
    assert len(incremental) >= 6
    assert all(stored_columns_expected(node, manifest) for node in incremental)
    with duckdb.connect(str(published_build.warehouse), read_only=True) as con:
        assert stale_incremental_models(con, manifest) == []


TIER_HISTORY = "intermediate.int_customer_months_tiered"
PLANTED_TIER = "Planted"


def run_tier_tables(published: Published, warehouse: Path, work: Path, *args: str) -> str:
    """`dbt run` of the tier bands, the tier history and the migrations on ``warehouse``."""
    result = run_dbt(
        "run",
        published.raw_dir,
        warehouse,
        work,
        "--select",
        "int_value_tier_bands",
        "int_customer_months_tiered",
        "fct_tier_migrations",
        *args,
        as_of=PUBLISHED_AS_OF,
    )
    return succeed(result)


@pytest.mark.parametrize("change", ["var tier_window_months", "seed value_tiers"])
def test_a_change_of_tier_rules_rebuilds_the_tier_history_in_full(
    published_build: Published, tmp_path, change
):
    """The tier history keeps its older months; they are only right while the rules that made
    them hold. A planted tier in the first month stays through a run with the same rules (the
    old months are kept) and is gone after a change of a tier var or of a threshold, whose run
    then equals a full refresh under the new rules."""
    warehouse = copy_warehouse(published_build.warehouse, tmp_path / "incremental")
    with duckdb.connect(str(warehouse)) as con:
        con.execute(
            f"update {TIER_HISTORY} set value_tier = '{PLANTED_TIER}' "
            f"where period_month = (select min(period_month) from {TIER_HISTORY})"
        )
    planted = f"select count(*) from {TIER_HISTORY} where value_tier = '{PLANTED_TIER}'"
    [(planted_rows,)] = query(warehouse, planted)
    assert planted_rows > 0
    stdout = run_tier_tables(published_build, warehouse, tmp_path)
    assert "tier rules changed" not in stdout
    assert query(warehouse, planted) == [(planted_rows,)]

    full = copy_warehouse(warehouse, tmp_path / "full")
    rules: tuple[str, ...] = ()
    if change == "seed value_tiers":
        # As `dbt seed` would load an edited value_tiers.csv: every threshold 10 % lower.
        for copy in (warehouse, full):
            with duckdb.connect(str(copy)) as con:
                con.execute(
                    "update reference.value_tiers set min_value_lookback = min_value_lookback * 0.9"
                )
    else:
        rules = ("--vars", "{tier_window_months: 6}")
    stdout = run_tier_tables(published_build, warehouse, tmp_path, *rules)
    assert "The tier rules changed since int_customer_months_tiered was built" in stdout
    assert "The tier rules changed since fct_tier_migrations was built" in stdout
    assert query(warehouse, planted) == [(0,)]
    run_tier_tables(published_build, full, tmp_path, *rules, "--full-refresh")
    # The tier history (as fct_customer_tier_months) and the migrations; the other marts,
    # which neither run touched, stay equal.
    assert mart_differences(warehouse, full) == {}
