"""The daily build on Spark: yesterday's source, then today's with late, changed and deleted
rows of every age (test_incremental's scenario), each a `make build-spark` on one Spark
warehouse; today's marts equal a full refresh of today's source, and deletions are recorded."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from conftest import PUBLISHED_AS_OF, PUBLISHED_END_DATE, once_per_run
from cvm.generate import generate
from dbt_project import dbt_build, make_build_env
from engines import (
    CLV_MARTS,
    CLV_RELATIVE,
    RELATIVE,
    build_spark,
    differences,
    duckdb_marts,
    export_spark,
)
from test_incremental import (
    CHANGED_SOURCE,
    YESTERDAY,
    add_late_credit_notes,
    held_back_orders,
    raw_variant,
    without_orders,
)

pytestmark = [pytest.mark.slow, pytest.mark.spark_extended]


@dataclass(frozen=True)
class DailyOnSpark:
    yesterday: subprocess.CompletedProcess[str]
    today: subprocess.CompletedProcess[str]
    spark_marts: dict[str, pd.DataFrame]
    full_refresh: dict[str, pd.DataFrame]
    deleted_orders: set[str]
    snapshot_deletions: set[str]


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
                str(row[0])  # staging keeps keys as text
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
