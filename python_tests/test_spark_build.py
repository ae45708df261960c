"""The whole project on local Spark (profiles.yml target `spark`, run through cvm.spark_dbt):
`dbt build` of every seed, snapshot, model (the Python models too), data test and unit test
from the same raw files as a DuckDB build, and every mart equal to DuckDB's."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conftest import PUBLISHED_AS_OF, PUBLISHED_END_DATE, once_per_run
from cvm import build
from cvm.generate import generate
from dbt_project import dbt_build, make_build_env
from test_incremental import (
    CHANGED_SOURCE,
    YESTERDAY,
    add_late_credit_notes,
    held_back_orders,
    raw_variant,
    without_orders,
)

pytestmark = pytest.mark.slow

CUSTOMERS = 10_000
# Relative tolerance of numbers; the CLV fits' parameters are an optimiser's answer, equal to
# its tolerance, and everything scored from them follows them.
RELATIVE = 1e-9
CLV_RELATIVE = 1e-6
CLV_MARTS = {
    "clv_model_parameters",
    "clv_holdout_report",
    "customer_value",
    "next_best_actions",
    "contact_plan",
    "contact_plan_summary",
}

EXPORT_SPARK_MARTS = """
import sys
from pathlib import Path
import pyarrow.parquet as pq
from cvm.spark_warehouse import SparkConnection, local_session
session = local_session()
out = Path(sys.argv[1])
for schema, name in SparkConnection(session).relation_names(["marts"]):
    pq.write_table(session.table(f"{schema}.{name}").toArrow(), out / f"{name}.parquet")
session.stop()
"""


@dataclass(frozen=True)
class EngineBuilds:
    duckdb_marts: dict[str, pd.DataFrame]
    spark_marts: dict[str, pd.DataFrame]
    spark_result: subprocess.CompletedProcess[str]


def normalised(table: pa.Table) -> pd.DataFrame:
    """One representation for both engines: decimals as floats, time zones dropped (Spark
    reads timestamps in the session's zone, UTC), integers as nullable Int64."""
    columns = {}
    for name, column in zip(table.column_names, table.columns, strict=True):
        kind = column.type
        if pa.types.is_decimal(kind) or pa.types.is_floating(kind):
            columns[name] = column.cast(pa.float64()).to_pandas()
        elif pa.types.is_integer(kind):
            columns[name] = column.cast(pa.int64()).to_pandas(types_mapper=pd.ArrowDtype)
        elif pa.types.is_timestamp(kind):
            columns[name] = column.cast(pa.timestamp("us")).to_pandas()
        else:
            columns[name] = column.to_pandas()
    return pd.DataFrame(columns)


def differences(expected: pd.DataFrame, actual: pd.DataFrame, relative: float) -> list[str]:
    """How ``actual`` differs from ``expected``: columns, row count, and per column the rows
    whose value differs (numbers beyond ``relative`` of the value or of the column's largest
    value), rows matched after sorting both by every column (numbers rounded, so a last-digit
    difference does not reorder them)."""
    # Columns that time a step (fit_seconds, solve_seconds) differ from run to run.
    timed = [c for c in expected.columns if c.endswith("_seconds")]
    expected, actual = expected.drop(columns=timed), actual.drop(columns=timed, errors="ignore")
    if list(expected.columns) != list(actual.columns):
        return [f"columns {list(expected.columns)} != {list(actual.columns)}"]
    if len(expected) != len(actual):
        return [f"{len(expected)} rows != {len(actual)} rows"]
    numbers = [c for c in expected.columns if pd.api.types.is_float_dtype(expected[c])]

    def sorted_rows(frame: pd.DataFrame) -> pd.DataFrame:
        keys = frame.astype({c: "float64" for c in numbers}).round(dict.fromkeys(numbers, 6))
        keys = keys.apply(lambda column: column.map(lambda v: "" if pd.isna(v) else str(v)))
        return frame.iloc[np.lexsort([keys[c] for c in reversed(keys.columns)])].reset_index(
            drop=True
        )

    expected, actual = sorted_rows(expected), sorted_rows(actual)
    found = []
    for column in expected.columns:
        want, got = expected[column], actual[column]
        if column in numbers:
            want, got = want.astype("float64"), got.astype("float64")
            # Relative to the value, or to the column's largest value: a difference of two
            # near-equal numbers (a gain net of its cost) keeps its inputs' absolute error.
            scale = np.nanmax(np.abs(want)) if want.notna().any() else 0.0
            same = np.isclose(got, want, rtol=relative, atol=relative * scale, equal_nan=True)
        else:
            same = (want.isna() & got.isna()) | (want.astype(str) == got.astype(str))
        if not np.all(same):
            row = int(np.flatnonzero(~np.asarray(same))[0])
            found.append(
                f"{column}: {int((~np.asarray(same)).sum())} rows differ, e.g. {want[row]!r} "
                f"!= {got[row]!r}"
            )
    return found


def duckdb_marts(warehouse: Path) -> dict[str, pd.DataFrame]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        names = [
            row[0]
            for row in con.execute(
                "select table_name from information_schema.tables where table_schema = 'marts'"
            ).fetchall()
        ]
        return {
            name: normalised(con.execute(f"select * from marts.{name}").arrow().read_all())
            for name in names
        }


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
        exported = work / "spark_marts"
        exported.mkdir()
        if spark.returncode == 0:
            subprocess.run(
                [sys.executable, "-c", EXPORT_SPARK_MARTS, str(exported)],
                env={**os.environ, **env},
                check=True,
                capture_output=True,
            )
        spark_marts = {
            path.stem: normalised(pq.read_table(path)) for path in exported.glob("*.parquet")
        }
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
    planted = customer_value.copy()
    planted.loc[planted.index[7], "monetary_lookback"] *= 1 + 1e-8
    assert differences(customer_value, planted, RELATIVE)[0].startswith("monetary_lookback: 1 rows")
    renamed = customer_value.copy()
    renamed.loc[renamed.index[3], "customer_id"] = "not-a-customer"
    assert differences(customer_value, renamed, RELATIVE)
    assert differences(customer_value, customer_value.iloc[1:], RELATIVE)


# The daily build on Spark: yesterday's source, then today's with late, changed and deleted
# rows of every age (test_incremental's scenario), each `make build-spark` (cvm.build with
# CVM_ENGINE=spark) on one Spark warehouse; today's marts equal a full refresh of today's source.
@dataclass(frozen=True)
class DailyOnSpark:
    yesterday: subprocess.CompletedProcess[str]
    today: subprocess.CompletedProcess[str]
    spark_marts: dict[str, pd.DataFrame]
    full_refresh: dict[str, pd.DataFrame]
    deleted_orders: set[int]
    snapshot_deletions: set[int]


def build_spark(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`make build-spark` (the command it runs), with ``env`` as its whole environment."""
    return subprocess.run(
        [sys.executable, "-m", "cvm.build"],
        cwd=build.PROJECT_DIR,
        env=env | {"CVM_ENGINE": "spark"},
        capture_output=True,
        text=True,
        check=False,
    )


def export_spark(warehouse: Path, out: Path, schema: str = "marts") -> dict[str, pd.DataFrame]:
    out.mkdir(parents=True)
    script = EXPORT_SPARK_MARTS.replace('["marts"]', f'["{schema}"]')
    subprocess.run(
        [sys.executable, "-c", script, str(out)],
        env={**os.environ, "CVM_SPARK_WAREHOUSE": str(warehouse)},
        check=True,
        capture_output=True,
    )
    return {path.stem: normalised(pq.read_table(path)) for path in out.glob("*.parquet")}


@pytest.fixture(scope="module")
def daily_on_spark(tmp_path_factory) -> DailyOnSpark:
    def daily(work: Path) -> DailyOnSpark:
        base = work / "raw"
        generate(base, customers=1_000, seed=11, end_date=PUBLISHED_END_DATE, quiet=True)
        yesterday_raw = raw_variant(
            base, work / "raw_yesterday", without_orders(held_back_orders())
        )
        today_raw = raw_variant(base, work / "raw_today", CHANGED_SOURCE)
        add_late_credit_notes(today_raw)
        env = make_build_env(work, base, work / "unused.duckdb") | {
            "CVM_SPARK_WAREHOUSE": str(work / "spark")
        }
        yesterday = build_spark(
            env | {"CVM_RAW_DIR": str(yesterday_raw), "CVM_AS_OF_DATE": YESTERDAY}
        )
        today = build_spark(
            env | {"CVM_RAW_DIR": str(today_raw), "CVM_AS_OF_DATE": PUBLISHED_AS_OF}
        )
        full = dbt_build(today_raw, work / "full.duckdb", work / "full", as_of=PUBLISHED_AS_OF)
        assert full.returncode == 0, full.stdout[-3000:]
        spark_marts = (
            export_spark(work / "spark", work / "spark_marts") if today.returncode == 0 else {}
        )
        snapshots = (
            export_spark(work / "spark", work / "spark_snapshots", "snapshots")
            if today.returncode == 0
            else {}
        )
        with duckdb.connect() as con:
            deleted = {
                row[0]
                for row in con.execute(
                    f"select order_id from read_parquet('{yesterday_raw}/orders.parquet') except "
                    f"select order_id from read_parquet('{today_raw}/orders.parquet')"
                ).fetchall()
            }
        order_snapshots = snapshots.get(
            "order_snapshots", pd.DataFrame(columns=["order_id", "dbt_is_deleted"])
        )
        recorded = set(
            order_snapshots.loc[order_snapshots["dbt_is_deleted"].astype(str) == "True", "order_id"]
        )
        return DailyOnSpark(
            yesterday, today, spark_marts, duckdb_marts(work / "full.duckdb"), deleted, recorded
        )

    return once_per_run(tmp_path_factory, "daily_on_spark", daily)


def test_a_daily_build_on_spark_equals_a_full_refresh(daily_on_spark):
    for result in (daily_on_spark.yesterday, daily_on_spark.today):
        assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    stdout = daily_on_spark.today.stdout
    assert "The source changed since the last build (orders from" in stdout, stdout[-3000:]
    assert "Warehouse built on local Spark" in stdout
    found = {
        name: problems
        for name, expected in daily_on_spark.full_refresh.items()
        if (
            problems := differences(
                expected,
                daily_on_spark.spark_marts[name],
                CLV_RELATIVE if name in CLV_MARTS else RELATIVE,
            )
        )
    }
    assert not found, found


def test_orders_deleted_at_the_source_are_closed_in_the_spark_snapshot(daily_on_spark):
    assert len(daily_on_spark.deleted_orders) > 5
    assert daily_on_spark.snapshot_deletions == daily_on_spark.deleted_orders
