"""The customer value mart on a real build: reconciliation tests that must be able to fail."""

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
