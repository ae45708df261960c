"""The whole project on local Spark (profiles.yml target `spark`, run through cvm.spark_dbt):
`dbt build` of every seed, snapshot, model (the Python models too), data test and unit test
from the same raw files as a DuckDB build, and every mart equal to DuckDB's."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from conftest import once_per_run
from cvm import build
from cvm.generate import generate
from dbt_project import dbt_build
from engines import CLV_MARTS, CLV_RELATIVE, RELATIVE, differences, duckdb_marts, export_spark

pytestmark = pytest.mark.slow

CUSTOMERS = 10_000


@dataclass(frozen=True)
class EngineBuilds:
    duckdb_marts: dict[str, pd.DataFrame]
    spark_marts: dict[str, pd.DataFrame]
    spark_result: subprocess.CompletedProcess[str]


@pytest.fixture(scope="module")
def engine_builds(tmp_path_factory) -> EngineBuilds:
    def both(work: Path) -> EngineBuilds:
        raw = work / "raw"
        generate(raw, customers=CUSTOMERS, seed=5, inject_bad_rows=True, quiet=True)
        duck = dbt_build(raw, work / "cvm.duckdb", work / "duckdb")
        assert duck.returncode == 0, duck.stdout[-3000:]
        env = {
            "CVM_RAW_DIR": str(raw),
            "CVM_SPARK_WAREHOUSE": str(work / "spark"),
            "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
            "DBT_USE_COLORS": "false",
        }
        spark = build.run_dbt(
            ["build"], env=env, work_dir=work / "spark_dbt", capture=True, engine="spark"
        )
        ok = spark.returncode == 0
        spark_marts = export_spark(work / "spark", work / "spark_marts") if ok else {}
        return EngineBuilds(duckdb_marts(work / "cvm.duckdb"), spark_marts, spark)

    return once_per_run(tmp_path_factory, "engine_builds", both)


def test_every_node_builds_and_passes_on_spark(engine_builds):
    result = engine_builds.spark_result
    assert result.returncode == 0, result.stdout[-5000:]
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


def test_every_mart_on_spark_equals_duckdb(engine_builds):
    assert sorted(engine_builds.spark_marts) == sorted(engine_builds.duckdb_marts)
    found = {}
    for name, expected in engine_builds.duckdb_marts.items():
        relative = CLV_RELATIVE if name in CLV_MARTS else RELATIVE
        problems = differences(expected, engine_builds.spark_marts[name], relative)
        if problems:
            found[name] = problems
    assert not found, found


def test_the_comparison_finds_a_planted_difference(engine_builds):
    customer_value = engine_builds.spark_marts["customer_value"]
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


@pytest.mark.spark_extended
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
    env = {"CVM_RAW_DIR": str(raw), "CVM_SPARK_WAREHOUSE": str(tmp_path / "spark")}
    spark = build.run_dbt(
        ["build", "--select", "staging"],
        env=env,
        work_dir=tmp_path / "spark_dbt",
        capture=True,
        engine="spark",
    )
    assert spark.returncode == 0, spark.stdout[-3000:]
    expected = duckdb_marts(tmp_path / "cvm.duckdb", "staging")
    actual = export_spark(tmp_path / "spark", tmp_path / "exported", "staging")
    assert sorted(actual) == sorted(expected)
    assert len(expected["stg_shop__quarantined_rows"]) > 10
    found = {
        name: problems
        for name, frame in expected.items()
        if (problems := differences(frame, actual[name], RELATIVE))
    }
    assert not found, found
