"""Benchmark (outside the test suite): the generator and `dbt build` at real sizes.

Each step runs `--repeats` times on fresh outputs; the table reports medians and rows per second.
    .venv/bin/python benchmarks/build_benchmark.py --sizes 100000 1000000 --repeats 3
With --engines: a full `dbt build` of the same raw files on DuckDB and on the local Spark
target (make benchmark-spark).
    .venv/bin/python benchmarks/build_benchmark.py --engines --sizes 10000 100000 --repeats 3
With --daily: make build's dbt part on yesterday's warehouse when a file of the new day's orders
and lines arrives in their directories, against a full build of the same source (make
benchmark-daily).
    .venv/bin/python benchmarks/build_benchmark.py --daily --sizes 1000000 --repeats 3
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import duckdb

from cvm import publish, quality, semantic
from cvm.build import PROJECT_DIR, Settings, build_warehouse
from cvm.dbt_runs import run_dbt
from cvm.generate import generate
from cvm.quality.mart_gate import run_mart_gate
from cvm.quality.raw_gate import run_raw_gate


def timed(step: Callable[[], object], repeats: int, label: str) -> float:
    """Median wall-clock seconds of `repeats` runs of `step`."""
    seconds = []
    for i in range(repeats):
        started = time.perf_counter()
        step()
        seconds.append(time.perf_counter() - started)
        print(f"  {label} run {i + 1}/{repeats}: {seconds[-1]:.1f} s", file=sys.stderr, flush=True)
    return statistics.median(seconds)


def dbt(args: list[str], raw_dir: Path, warehouse: Path, work: Path) -> None:
    env = {"CVM_RAW_DIR": str(raw_dir), "CVM_DUCKDB_PATH": str(warehouse), "CVM_AS_OF_DATE": None}
    result = run_dbt(args, env=env, work_dir=work, capture=True)
    if result.returncode != 0:
        sys.exit(f"dbt {' '.join(args)} failed:\n{result.stdout[-4000:]}")


def run_results(work: Path) -> list[dict]:
    """dbt's results of the last run in ``work``, one per node."""
    return json.loads((work / "target" / "run_results.json").read_text())["results"]


def node_seconds(work: Path, name: str) -> float:
    """The execution time dbt recorded for node ``name`` in the last run in ``work``."""
    return next(
        r["execution_time"] for r in run_results(work) if r["unique_id"].endswith(f".{name}")
    )


def fresh(path: Path) -> Path:
    if path.is_dir():
        shutil.rmtree(path)
    path.unlink(missing_ok=True)
    return path


def bench_size(customers: int, repeats: int, work: Path) -> list[str]:
    raw_dir, warehouse = work / "raw", work / "cvm.duckdb"
    manifest: dict = {}

    def run_generator() -> None:
        manifest.update(generate(fresh(raw_dir), customers=customers, quiet=True))

    def run_staging() -> None:
        fresh(warehouse)
        dbt(["run", "--select", "staging"], raw_dir, warehouse, work)

    def run_build() -> None:
        fresh(warehouse)
        dbt(["build"], raw_dir, warehouse, work)

    def run_incremental() -> None:
        # `make build`'s dbt steps on the warehouse just built, with the same source: staging,
        # the check for older source changes (none), then the marts, the order facts and tier
        # history from the lookback window only (doc block incremental_orders).
        settings = Settings(raw_dir, warehouse, is_demo=False, target_dir=work / "target")
        if not build_warehouse(warehouse, settings):
            sys.exit("the incremental build failed")

    def run_publish() -> None:
        # What `make build` adds to `dbt build`: the staging copy, the saved-query exports, the
        # checkpoint and the atomic rename (the build just timed is the published warehouse).
        with publish.staged_build(warehouse) as staging:
            semantic.export_saved_queries(
                staging, work / "target" / "semantic_manifest.json", progress=lambda _: None
            )
            publish.publish(staging, warehouse)

    def run_gates() -> None:
        # The Great Expectations gates `make build` runs around `dbt build` (Data Docs too).
        thresholds = quality.load_thresholds()
        runner = quality.GxRunner(fresh(work / "data_docs"))
        for gate in (
            run_raw_gate(raw_dir, None, thresholds, runner),
            run_mart_gate(warehouse, thresholds, runner, previous=warehouse),
        ):
            if not gate.passed:
                sys.exit(gate.report())

    def order_snapshot(windowed: bool) -> float:
        # The snapshot alone on the warehouse just built (the source unchanged), as dbt alone
        # runs it and as make build does once its comparison found nothing older changed.
        extra = ["--vars", "{source_unchanged_before_reprocess_date: true}"] if windowed else []
        dbt(["snapshot", "--select", "order_snapshots", *extra], raw_dir, warehouse, work)
        return node_seconds(work, "order_snapshots")

    print(f"{customers:,} customers", file=sys.stderr)
    gen_s = timed(run_generator, repeats, "generate")
    raw_rows = sum(manifest["row_counts"].values())
    orders = manifest["row_counts"]["orders"]
    stage_s = timed(run_staging, repeats, "dbt run -s staging")
    build_s = timed(run_build, repeats, "dbt build")
    incremental_s = timed(run_incremental, repeats, "incremental rebuild")
    # Interleaved, so that a machine that speeds up or slows down favours neither; at least
    # three pairs (a snapshot run is short).
    snapshot_s = {True: [], False: []}
    for _ in range(max(repeats, 3)):
        for windowed in (False, True):
            snapshot_s[windowed].append(order_snapshot(windowed))
    print(f"  order snapshot (node seconds): {snapshot_s}", file=sys.stderr, flush=True)
    gates_s = timed(run_gates, repeats, "raw and mart gates")
    publish_s = timed(run_publish, repeats, "copy + exports + publish")
    steps = [
        ("generate (Parquet)", gen_s),
        ("`dbt run --select staging`", stage_s),
        ("`dbt build` (all models and tests)", build_s),
        ("incremental rebuild (staging, change check, marts)", incremental_s),
        (
            "`order_snapshots` node, every order compared (dbt alone)",
            statistics.median(snapshot_s[False]),
        ),
        (
            "`order_snapshots` node, reprocessed orders compared (make build)",
            statistics.median(snapshot_s[True]),
        ),
        ("Great Expectations raw and mart gates", gates_s),
        ("copy, saved-query exports, atomic publish", publish_s),
    ]
    return [
        f"| {customers:,} | {orders:,} | {raw_rows:,} | {step} | {s:.1f} | {raw_rows / s:,.0f} |"
        for step, s in steps
    ]


DAILY_TABLES = ("orders", "order_items")


def split_by_day(source: Path, day: str, yesterday: Path, today: Path) -> None:
    """Two raw directories from one generated source: ``yesterday``'s orders and order lines
    (each a directory) hold one file of everything before ``day``; ``today``'s hold the same
    file and a second one with ``day``'s rows, as a daily export delivers them. The other
    files are the same in both."""
    for raw in (yesterday, today):
        fresh(raw).mkdir(parents=True)
        for path in source.glob("*.parquet"):
            if path.stem not in DAILY_TABLES:
                (raw / path.name).symlink_to(path)
    with duckdb.connect() as con:
        con.execute(
            f"create table day_orders as select order_id, cast(ordered_at as date) as order_date "
            f"from read_parquet('{source}/orders.parquet')"
        )
        for table in DAILY_TABLES:
            rows = f"read_parquet('{source}/{table}.parquet')"
            if table != "orders":
                rows += " as rows join day_orders using (order_id)"
            else:
                rows = f"(select *, cast(ordered_at as date) as order_date from {rows})"
            for raw in (yesterday, today):
                (raw / table).mkdir()
            history = today / table / "history.parquet"
            con.execute(
                f"copy (select * exclude (order_date) from {rows} where order_date < date '{day}') "
                f"to '{history}' (format parquet)"
            )
            (yesterday / table / history.name).symlink_to(history)
            con.execute(
                f"copy (select * exclude (order_date) from {rows} where order_date = date '{day}') "
                f"to '{today / table / day}.parquet' (format parquet)"
            )


def bench_daily(customers: int, repeats: int, work: Path) -> list[str]:
    """`make build`'s dbt part (staging, the source comparison, the rest) on the day a new file
    of orders and lines arrives: on yesterday's warehouse (the daily build) and on a fresh one
    (the full build of the same source), interleaved."""
    day = "2026-06-30"
    source, yesterday_raw, today_raw = work / "raw", work / "raw_yesterday", work / "raw_today"
    manifest = generate(source, customers=customers, end_date=day, quiet=True)
    split_by_day(source, day, yesterday_raw, today_raw)
    yesterday = work / "yesterday" / "cvm.duckdb"
    yesterday.parent.mkdir()

    def build(raw: Path, warehouse: Path, as_of: str) -> float:
        settings = Settings(
            raw, warehouse, is_demo=False, as_of_date=as_of, target_dir=work / "target"
        )
        started = time.perf_counter()
        if not build_warehouse(warehouse, settings):
            sys.exit(f"the build of {raw} as of {as_of} failed")
        return time.perf_counter() - started

    print(f"{customers:,} customers: yesterday's warehouse", file=sys.stderr, flush=True)
    build(yesterday_raw, yesterday, "2026-06-29")
    seconds: dict[str, list[float]] = {"full": [], "daily": []}
    slowest: list[tuple[float, str]] = []
    for i in range(repeats):
        warehouse = work / "today" / "cvm.duckdb"
        fresh(warehouse.parent).mkdir(parents=True)
        seconds["full"].append(build(today_raw, warehouse, day))
        publish.seed_staging(yesterday, warehouse)  # as make build copies it, log included
        seconds["daily"].append(build(today_raw, warehouse, day))
        # unique_id is <type>.<project>.<name>[.<hash of a test's arguments>]
        slowest = sorted(
            ((r["execution_time"], r["unique_id"].split(".")[2]) for r in run_results(work)),
            reverse=True,
        )[:10]
        print(
            f"  run {i + 1}/{repeats}: full {seconds['full'][-1]:.1f} s, "
            f"daily {seconds['daily'][-1]:.1f} s",
            file=sys.stderr,
            flush=True,
        )
    print(
        "  slowest nodes of the last daily build after staging: "
        + ", ".join(f"{name} {s:.1f}" for s, name in slowest),
        file=sys.stderr,
    )
    full, daily = statistics.median(seconds["full"]), statistics.median(seconds["daily"])
    orders = manifest["row_counts"]["orders"]
    return [f"| {customers:,} | {orders:,} | {full:.1f} | {daily:.1f} | {daily / full:.2f} |"]


def bench_engines(customers: int, repeats: int, work: Path) -> list[str]:
    """A full `dbt build` (every model, snapshot, seed and test) of one raw directory on DuckDB
    and on local Spark, each on a fresh warehouse."""
    raw_dir, warehouse, spark_warehouse = work / "raw", work / "cvm.duckdb", work / "spark"
    manifest = generate(raw_dir, customers=customers, quiet=True)

    def on_duckdb() -> None:
        fresh(warehouse)
        dbt(["build"], raw_dir, warehouse, work)

    def on_spark() -> None:
        fresh(spark_warehouse)
        env = {"CVM_RAW_DIR": str(raw_dir), "CVM_SPARK_WAREHOUSE": str(spark_warehouse)}
        result = run_dbt(["build"], env=env, work_dir=work, capture=True, engine="spark")
        if result.returncode != 0:
            sys.exit(f"dbt build on Spark failed:\n{result.stdout[-4000:]}")

    print(f"{customers:,} customers", file=sys.stderr)
    duckdb_s = timed(on_duckdb, repeats, "dbt build on DuckDB")
    spark_s = timed(on_spark, repeats, "dbt build on local Spark")
    orders, raw_rows = manifest["row_counts"]["orders"], sum(manifest["row_counts"].values())
    return [
        f"| {customers:,} | {orders:,} | {raw_rows:,} | {duckdb_s:.1f} | {spark_s:.1f} "
        f"| {spark_s / duckdb_s:.1f} |"
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--work-dir", type=Path, default=PROJECT_DIR / "build" / "benchmark")
    parser.add_argument(
        "--engines", action="store_true", help="dbt build on DuckDB and on local Spark"
    )
    parser.add_argument(
        "--daily",
        action="store_true",
        help="make build's dbt part on the day a new file of orders arrives, against a full build",
    )
    args = parser.parse_args(argv)

    if args.daily:
        rows = [
            "| customers | orders | full build s | daily build s | daily / full |",
            "|---:|---:|---:|---:|---:|",
        ]
    elif args.engines:
        rows = [
            "| customers | orders | raw rows (all files) "
            "| DuckDB s | local Spark s | Spark / DuckDB |",
            "|---:|---:|---:|---:|---:|---:|",
        ]
    else:
        rows = [
            "| customers | orders | raw rows (all files) | step | median s | raw rows / s |",
            "|---:|---:|---:|---|---:|---:|",
        ]
    for customers in args.sizes:
        work = fresh(args.work_dir / str(customers))
        work.mkdir(parents=True)
        bench = bench_daily if args.daily else bench_engines if args.engines else bench_size
        rows += bench(customers, args.repeats, work)
        shutil.rmtree(work)
    report = "\n".join(
        [
            f"Median of {args.repeats} runs; {os.cpu_count()} cores, "
            f"Python {platform.python_version()}.",
            "",
            *rows,
        ]
    )
    print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
