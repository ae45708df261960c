"""The whole project on local Spark (profiles.yml target `spark`), day after day, from the same
raw files as DuckDB (the published build's 3,000 generated customers, split into days as
test_incremental does: daily_source.py). Yesterday's source: `dbt build` of every seed,
snapshot, model (the Python models too), data test and unit test on Spark, and every mart equal
to DuckDB's `make build` of it. Today's source, with late, changed and deleted rows of every age:
`make build-spark` on the same Spark warehouse, incremental, and every mart equal to a DuckDB
full refresh, with the deleted orders closed in the Spark order snapshot. Both DuckDB builds
are test_incremental's (conftest: built once per run). Then CSV exports with bad rows, staged
alike (the daily build's source is clean: `make build-spark` runs the raw gate, which stops bad
rows of that kind, as it should)."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from conftest import Published, once_per_run
from cvm.generate import generate
from daily_source import PUBLISHED_AS_OF, YESTERDAY, DailySource
from dbt_project import NO_UNIT_TESTS, PLAIN_DBT, dbt_build, make_build_env
from engines import CLV_MARTS, CLV_RELATIVE, RELATIVE, differences, duckdb_marts, run_on_spark

pytestmark = pytest.mark.slow

# Small data on two cores: one shuffle partition per stage, and four dbt threads so that both
# cores stay busy while statements wait on the metastore (the results do not depend on either).
SPARK_SETTINGS = {"CVM_SPARK_SHUFFLE_PARTITIONS": "1", "CVM_SPARK_THREADS": "4"}


@dataclass(frozen=True)
class Yesterday:
    """Yesterday's `dbt build` on the Spark warehouse ``spark`` of yesterday's source."""

    work: Path
    spark: Path
    source: DailySource
    result: subprocess.CompletedProcess[str]
    spark_marts: dict[str, pd.DataFrame]


@dataclass(frozen=True)
class Today:
    """Today's `make build-spark` of the changed source on yesterday's Spark warehouse."""

    result: subprocess.CompletedProcess[str]
    spark_marts: dict[str, pd.DataFrame]
    deleted_orders: set[str]
    snapshot_deletions: set[str]


def succeeded(result: subprocess.CompletedProcess[str]) -> bool:
    return result.returncode == 0


@pytest.fixture(scope="module")
def yesterday(tmp_path_factory, daily_source: DailySource) -> Yesterday:
    def build_yesterday(work: Path) -> Yesterday:
        spark = work / "spark"
        env = {
            "CVM_RAW_DIR": str(daily_source.yesterday),
            "CVM_AS_OF_DATE": YESTERDAY,
            "CVM_SPARK_WAREHOUSE": str(spark),
            "DBT_TARGET_PATH": str(work / "spark_dbt" / "target"),
            "DBT_LOG_PATH": str(work / "spark_dbt" / "logs"),
            **PLAIN_DBT,
            **SPARK_SETTINGS,
        }
        result, exported = run_on_spark(["build"], env, work / "spark_yesterday")
        return Yesterday(work, spark, daily_source, result, exported.get("marts", {}))

    return once_per_run(tmp_path_factory, "spark_yesterday", build_yesterday)


@pytest.fixture(scope="module")
def today(yesterday: Yesterday) -> Today:
    assert succeeded(yesterday.result), yesterday.result.stdout[-3000:]
    work, spark, source = yesterday.work, yesterday.spark, yesterday.source
    result, exported = run_on_spark(
        ["make", "build-spark"],
        make_build_env(work, source.changed, work / "unused.duckdb")
        | {"CVM_AS_OF_DATE": PUBLISHED_AS_OF, "CVM_SPARK_WAREHOUSE": str(spark)}
        | SPARK_SETTINGS,
        work / "spark_today",
        "marts",
        "snapshots",
    )
    with duckdb.connect() as con:
        deleted = {
            str(row[0])  # staging keeps keys as text
            for row in con.execute(
                f"select order_id from read_parquet('{source.yesterday}/orders.parquet') except "
                f"select order_id from read_parquet('{source.changed}/orders.parquet')"
            ).fetchall()
        }
    order_snapshots = exported.get("snapshots", {}).get(
        "order_snapshots", pd.DataFrame(columns=["order_id", "dbt_is_deleted"])
    )
    recorded = set(
        order_snapshots.loc[order_snapshots["dbt_is_deleted"].astype(str) == "True", "order_id"]
    )
    return Today(result, exported.get("marts", {}), deleted, recorded)


def mart_differences(
    expected: dict[str, pd.DataFrame], actual: dict[str, pd.DataFrame]
) -> dict[str, list[str]]:
    """Per mart, how the Spark build differs from DuckDB's (engines.differences)."""
    assert sorted(actual) == sorted(expected)
    found = {}
    for name, frame in expected.items():
        relative = CLV_RELATIVE if name in CLV_MARTS else RELATIVE
        if problems := differences(frame, actual[name], relative):
            found[name] = problems
    return found


def test_every_node_builds_and_passes_on_spark(yesterday):
    result = yesterday.result
    assert succeeded(result), result.stdout[-5000:]
    # Seeds, snapshots, SQL and Python models, data and unit tests all ran.
    for kind in (
        "seed file",
        "snapshot snapshots.",
        "sql table model",
        "python table model",
        "unit_test",
    ):
        assert kind in result.stdout, kind
    assert "ERROR=0" in result.stdout and "SKIP=0" in result.stdout


def test_every_mart_on_spark_equals_duckdb(yesterday, yesterday_build: Published):
    expected = duckdb_marts(yesterday_build.warehouse)
    assert not mart_differences(expected, yesterday.spark_marts)


def test_a_daily_build_on_spark_equals_a_full_refresh(today, changed_source_build: Published):
    result = today.result
    assert succeeded(result), result.stdout[-4000:] + result.stderr[-4000:]
    assert "The source changed since the last build (orders from" in result.stdout, result.stdout[
        -3000:
    ]
    assert "Warehouse built on local Spark" in result.stdout
    assert not mart_differences(duckdb_marts(changed_source_build.warehouse), today.spark_marts)


def test_orders_deleted_at_the_source_are_closed_in_the_spark_snapshot(today):
    assert len(today.deleted_orders) > 5
    assert today.snapshot_deletions == today.deleted_orders


def test_the_comparison_finds_a_planted_difference(yesterday):
    customer_value = yesterday.spark_marts["customer_value"]
    assert differences(customer_value, customer_value.copy(), RELATIVE) == []
    # 1e-8 of the largest value: beyond 1e-9 of the value and of the column's largest.
    planted = customer_value.copy()
    planted.loc[planted["monetary_lookback"].idxmax(), "monetary_lookback"] *= 1 + 1e-8
    assert differences(customer_value, planted, RELATIVE)[0].startswith("monetary_lookback: 1 rows")
    # An error of a small value within 1e-9 of the column's largest passes (a gain net of its
    # cost keeps its inputs' absolute error); 1e-8 of the largest does not.
    small = customer_value["monetary_lookback"].abs().idxmin()
    largest = customer_value["monetary_lookback"].abs().max()
    planted = customer_value.copy()
    planted.loc[small, "monetary_lookback"] += 0.5e-9 * largest
    assert differences(customer_value, planted, RELATIVE) == []
    planted.loc[small, "monetary_lookback"] += 1e-8 * largest
    assert differences(customer_value, planted, RELATIVE)
    renamed = customer_value.copy()
    renamed.loc[renamed.index[3], "customer_id"] = "not-a-customer"
    assert differences(customer_value, renamed, RELATIVE)
    assert differences(customer_value, customer_value.iloc[1:], RELATIVE)


def test_a_csv_table_directory_stages_alike_on_both_engines(tmp_path):
    """Staging of CSV exports with bad rows, the orders as a directory of monthly files: every
    base table, staging view and quarantine row equal on DuckDB and on Spark."""
    raw = tmp_path / "raw"
    generate(raw, customers=300, seed=3, fmt="csv", inject_bad_rows=True, bad_row_rate=0.02)
    (raw / "orders").mkdir()
    with duckdb.connect() as con:
        source = f"read_csv('{raw}/orders.csv', all_varchar = true)"
        for half in (0, 1):
            con.execute(
                f"copy (select * exclude (row_number) from (select *, row_number() over () "
                f"as row_number from {source}) where row_number % 2 = {half}) "
                f"to '{raw}/orders/part-{half}.csv' (header)"
            )
    (raw / "orders.csv").unlink()
    duck = dbt_build(raw, tmp_path / "cvm.duckdb", tmp_path / "duckdb", "--select", "staging")
    assert duck.returncode == 0, duck.stdout[-3000:]
    env = {
        "CVM_RAW_DIR": str(raw),
        "CVM_SPARK_WAREHOUSE": str(tmp_path / "spark"),
        "DBT_TARGET_PATH": str(tmp_path / "spark_dbt" / "target"),
        "DBT_LOG_PATH": str(tmp_path / "spark_dbt" / "logs"),
    }
    # The staging unit tests ran on Spark in yesterday's build above.
    spark, exported = run_on_spark(
        ["build", "--select", "staging", *NO_UNIT_TESTS], env, tmp_path / "exported", "staging"
    )
    assert spark.returncode == 0, spark.stdout[-3000:]
    expected = duckdb_marts(tmp_path / "cvm.duckdb", "staging")
    actual = exported["staging"]
    assert sorted(actual) == sorted(expected)
    assert len(expected["stg_shop__quarantined_rows"]) > 10
    found = {
        name: problems
        for name, frame in expected.items()
        if (problems := differences(frame, actual[name], RELATIVE))
    }
    assert not found, found
