"""Customer value and tier marts on a real build: reconciliation tests that must be able to
fail, and the incremental tier history."""

from __future__ import annotations

import shutil

import duckdb
import pytest

from dbt_project import query, run_dbt

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
    # Same file name: DuckDB views refer to their catalog, which is named after the file.
    tampered = tmp_path / parquet_build.warehouse.name
    shutil.copy(parquet_build.warehouse, tampered)
    with duckdb.connect(str(tampered)) as con:
        con.execute(tamper)
    result = run_dbt("test", parquet_build.raw_dir, tampered, tmp_path, "--select", test_name)
    assert result.returncode != 0
    assert f"FAIL 1 {test_name}" in result.stdout


def test_incremental_tier_history_equals_the_full_build(parquet_build, tmp_path):
    """Drop the latest months, run the model incrementally, get back exactly what was there."""
    warehouse = tmp_path / parquet_build.warehouse.name
    shutil.copy(parquet_build.warehouse, warehouse)
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
