"""Customer value and tier marts on a real build: reconciliation tests that must be able to
fail, the incremental tier history and the SCD2 snapshot."""

from __future__ import annotations

import shutil

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from dbt_project import copy_warehouse, dbt_build, dbt_test_on_tampered_copy, query, run_dbt

pytestmark = pytest.mark.slow


def test_every_customer_is_in_the_mart_once(parquet_build):
    assert query(
        parquet_build.warehouse,
        "select count(*), count(distinct customer_id) from marts.customer_value",
    ) == query(parquet_build.warehouse, "select count(*), count(*) from marts.dim_customers")


@pytest.mark.parametrize(
    ("tamper", "test_name"),
    [
        (
            "update marts.customer_value set net_revenue_lifetime = net_revenue_lifetime + 1 "
            "where customer_id = (select min(customer_id) from marts.customer_value "
            "where purchase_count_lifetime > 0)",
            "assert_customer_value_revenue_reconciles",
        ),
        (
            "delete from marts.customer_value where customer_id = "
            "(select min(customer_id) from marts.fct_orders)",
            "assert_every_ordering_customer_in_customer_value",
        ),
    ],
)
def test_reconciliation_tests_fail_when_the_mart_drifts(parquet_build, tmp_path, tamper, test_name):
    result = dbt_test_on_tampered_copy(
        parquet_build.raw_dir, parquet_build.warehouse, tmp_path, tamper, test_name
    )
    assert result.returncode != 0
    assert f"FAIL 1 {test_name}" in result.stdout


def test_incremental_tier_history_equals_the_full_build(parquet_build, tmp_path):
    """Drop the latest months, run the model incrementally, get back exactly what was there."""
    warehouse = copy_warehouse(parquet_build.warehouse, tmp_path)
    with duckdb.connect(str(warehouse)) as con:
        con.execute(
            "create table main.full_history as select * from marts.fct_customer_tier_months"
        )
        con.execute(
            "delete from marts.fct_customer_tier_months where period_month > "
            "(select max(period_month) - interval 4 month from marts.fct_customer_tier_months)"
        )
    result = run_dbt(
        "run", parquet_build.raw_dir, warehouse, tmp_path, "--select", "fct_customer_tier_months"
    )
    assert result.returncode == 0, result.stdout[-3000:]
    tables = ("main.full_history", "marts.fct_customer_tier_months")
    for left, right in (tables, tables[::-1]):
        sql = f"select count(*) from (select * from {left} except all select * from {right})"
        assert query(warehouse, sql) == [(0,)], (left, right)
    assert query(warehouse, "select count(*) from main.full_history")[0][0] > 0


SNAPSHOT_CHECK_COLUMNS = (
    "value_tier, predicted_value_tier, rfm_segment, gross_margin_lookback, "
    "purchase_count_lifetime, last_purchase_date"
)


def test_snapshot_records_changes_and_hard_deletes(parquet_build, tmp_path):
    """Delete a customer at the source and rebuild: the snapshot closes that customer with a
    deletion record, versions exactly the customers whose checked values changed, and its
    current rows equal the new mart."""
    warehouse = copy_warehouse(parquet_build.warehouse, tmp_path)
    with duckdb.connect(str(warehouse)) as con:
        con.execute(
            "create table main.mart_before as "
            f"select customer_id, {SNAPSHOT_CHECK_COLUMNS} from marts.customer_value"
        )
        [(deleted,)] = con.execute(
            "select min(customer_id) from marts.customer_value where purchase_count_lifetime > 2"
        ).fetchall()
    raw_dir = tmp_path / "raw"
    shutil.copytree(parquet_build.raw_dir, raw_dir)
    customers = pq.read_table(raw_dir / "customers.parquet")
    keep = pc.not_equal(pc.cast(customers["customer_id"], pa.string()), deleted)
    pq.write_table(customers.filter(keep), raw_dir / "customers.parquet")

    # dbt alone does not see that the customer's old orders left staging (older than the
    # incremental window; `make build` finds that itself): a full refresh, which keeps snapshots.
    result = dbt_build(raw_dir, warehouse, tmp_path, "--full-refresh")
    assert result.returncode == 0, result.stdout[-3000:]

    snapshot = "snapshots.customer_tier_snapshots"
    deleted_rows = query(
        warehouse,
        f"select dbt_is_deleted, dbt_valid_to is null from {snapshot} "
        f"where customer_id = '{deleted}' order by dbt_valid_from",
    )
    assert deleted_rows == [("False", False), ("True", True)]
    changed = query(
        warehouse,
        f"""
        select count(*) from (
            select customer_id, {SNAPSHOT_CHECK_COLUMNS} from main.mart_before
            except
            select customer_id, {SNAPSHOT_CHECK_COLUMNS} from marts.customer_value
        ) where customer_id <> '{deleted}'
        """,
    )[0][0]
    versioned = query(
        warehouse,
        f"select count(*) from (select customer_id from {snapshot} "
        f"where customer_id <> '{deleted}' group by customer_id having count(*) > 1)",
    )[0][0]
    assert versioned == changed > 0  # removing a customer shifts some RFM ranks
    current = f"""
        select customer_id, {SNAPSHOT_CHECK_COLUMNS} from {snapshot}
        where dbt_valid_to is null and dbt_is_deleted = 'False'
    """
    mart = f"select customer_id, {SNAPSHOT_CHECK_COLUMNS} from marts.customer_value"
    for left, right in ((current, mart), (mart, current)):
        assert query(warehouse, f"select count(*) from ({left} except all {right})") == [(0,)]
