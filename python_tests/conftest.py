"""Shared fixtures: the project built once per session on generated data with bad rows."""

from __future__ import annotations

import fcntl
import html
import os
import pickle
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
from pyspark.sql import SparkSession

from cvm.generate import generate
from cvm.spark_warehouse import session_settings
from daily_source import (
    PUBLISHED_AS_OF,
    PUBLISHED_END_DATE,
    YESTERDAY,
    DailySource,
    split_into_days,
)
from dbt_project import (
    copy_warehouse,
    dbt_build,
    make_build,
    make_build_env,
    parse_project,
    use_saved_parse,
)

# An xdist worker's __main__ has neither __spec__ nor __file__, which pyspark.sql.connect
# (imported by Great Expectations) takes for a doctest run and exits on: give it a file name.
if getattr(sys.modules["__main__"], "__spec__", None) is None:
    sys.modules["__main__"].__dict__.setdefault("__file__", "pytest-worker")

# Files whose tests chain the most builds (minutes each), handed out first so that no worker
# is left running one of them alone at the end (a scheduling hint: a stale entry costs only
# time). The rest keep their collection order. make test passes --no-loadscope-reorder, or
# xdist would hand out the files with the most tests first instead.
LONGEST_FILES = (
    "test_spark_build.py",
    "test_incremental.py",
    "test_real_exports.py",
    "test_publish.py",
)

T = TypeVar("T")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The longest files first, in LONGEST_FILES' order; each file's tests stay together and in
    order (a stable sort on the file), so module fixtures are set up once."""
    rank = {name: position for position, name in enumerate(LONGEST_FILES)}
    items.sort(key=lambda item: rank.get(item.path.name, len(LONGEST_FILES)))


def once_per_run(tmp_path_factory, name: str, make: Callable[[Path], T]) -> T:
    """``make(directory)`` once per test run, also when pytest-xdist runs several workers: the
    first worker to ask builds under a file lock and pickles the result beside it; the others
    wait for it and reuse it. Tests only read a shared build (they copy it to change it)."""
    if os.environ.get("PYTEST_XDIST_WORKER") is None:
        return make(tmp_path_factory.mktemp(name))
    run_dir = tmp_path_factory.getbasetemp().parent  # the run's directory, shared by workers
    result_file = run_dir / f"{name}.pickle"
    with (run_dir / f"{name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if result_file.is_file():
            return pickle.loads(result_file.read_bytes())
        directory = run_dir / name
        shutil.rmtree(directory, ignore_errors=True)  # a worker that failed to build it
        directory.mkdir()
        result = make(directory)
        result_file.write_bytes(pickle.dumps(result))
        return result


@pytest.fixture(scope="session", autouse=True)
def saved_dbt_parse(tmp_path_factory) -> None:
    """One `dbt parse` per test run, the saved parse each test's dbt starts from
    (dbt_project.SAVED_PARSE), made when a test first runs dbt."""
    use_saved_parse(lambda: once_per_run(tmp_path_factory, "dbt_parse", parse_project))


@dataclass(frozen=True)
class Build:
    raw_dir: Path
    warehouse: Path
    manifest: dict[str, Any]
    result: subprocess.CompletedProcess[str]


@pytest.fixture(scope="session")
def build_generated(tmp_path_factory) -> Callable[[str], Build]:
    """Builds generated data (2,000 customers, every kind of bad row) once per file format."""
    builds: dict[str, Build] = {}

    def build_in(fmt: str, work: Path) -> Build:
        raw_dir = work / "raw"
        manifest = generate(
            raw_dir, customers=2_000, seed=7, fmt=fmt, inject_bad_rows=True, quiet=True
        )
        warehouse = work / "cvm.duckdb"
        result = dbt_build(raw_dir, warehouse, work, unit_tests=True)
        return Build(raw_dir, warehouse, manifest, result)

    def build(fmt: str) -> Build:
        if fmt not in builds:
            builds[fmt] = once_per_run(
                tmp_path_factory, f"bad_rows_{fmt}", lambda work: build_in(fmt, work)
            )
        return builds[fmt]

    return build


@pytest.fixture(scope="session", params=["parquet", "csv"])
def bad_rows_build(request, build_generated) -> Build:
    return build_generated(request.param)


@pytest.fixture(scope="session")
def parquet_build(build_generated) -> Build:
    return build_generated("parquet")


@dataclass(frozen=True)
class Published:
    """A warehouse published by `make build`, with the environment that built it."""

    warehouse: Path
    env: dict[str, str]
    stdout: str

    def copy_to(self, directory: Path) -> Path:
        """A copy of the warehouse in ``directory``, under its file name."""
        return copy_warehouse(self.warehouse, directory)

    @property
    def raw_dir(self) -> Path:
        """The raw files this build read."""
        return Path(self.env["CVM_RAW_DIR"])

    @property
    def report_dir(self) -> Path:
        """Where this build wrote its report (make_build_env sets CVM_REPORT_DIR)."""
        return Path(self.env["CVM_REPORT_DIR"])


def published_as_of(work: Path, raw_dir: Path, as_of: str) -> Published:
    """`make build` of ``raw_dir`` as of ``as_of`` into a warehouse of its own under ``work``
    (its environment without the as-of date: each test sets that for its own builds)."""
    env = make_build_env(work, raw_dir, work / "warehouse" / "cvm.duckdb")
    result = make_build(env | {"CVM_AS_OF_DATE": as_of})
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return Published(Path(env["CVM_DUCKDB_PATH"]), env, result.stdout)


@pytest.fixture(scope="session")
def published_raw(tmp_path_factory) -> Path:
    """The published build's raw files: 3,000 generated customers up to PUBLISHED_END_DATE."""

    def generated(work: Path) -> Path:
        raw_dir = work / "raw"
        generate(raw_dir, customers=3_000, seed=11, end_date=PUBLISHED_END_DATE, quiet=True)
        return raw_dir

    return once_per_run(tmp_path_factory, "published_raw", generated)


@pytest.fixture(scope="session")
def published_build(tmp_path_factory, published_raw: Path) -> Published:
    """`make build` of the published raw files as of PUBLISHED_AS_OF."""
    return once_per_run(
        tmp_path_factory,
        "published",
        lambda work: published_as_of(work, published_raw, PUBLISHED_AS_OF),
    )


@pytest.fixture(scope="session")
def daily_source(tmp_path_factory, published_raw: Path) -> DailySource:
    """Yesterday's and today's changed raw files of the published shop (daily_source.py)."""
    return once_per_run(
        tmp_path_factory, "daily_source", lambda work: split_into_days(published_raw, work)
    )


@pytest.fixture(scope="session")
def yesterday_build(tmp_path_factory, daily_source: DailySource) -> Published:
    """`make build` of yesterday's source as of YESTERDAY: the warehouse the daily builds of
    test_incremental (DuckDB) start from, and what yesterday's Spark build must equal."""
    return once_per_run(
        tmp_path_factory,
        "yesterday",
        lambda work: published_as_of(work, daily_source.yesterday, YESTERDAY),
    )


@pytest.fixture(scope="session")
def changed_source_build(tmp_path_factory, daily_source: DailySource) -> Published:
    """A full `make build` of today's changed source as of PUBLISHED_AS_OF: what a daily build
    of it on yesterday's warehouse must equal, on DuckDB and on Spark."""
    return once_per_run(
        tmp_path_factory,
        "changed_source",
        lambda work: published_as_of(work, daily_source.changed, PUBLISHED_AS_OF),
    )


@dataclass(frozen=True)
class ShopBuild:
    """A `make build` of a test's own raw files: its output, raw files, warehouse and report."""

    result: subprocess.CompletedProcess[str]
    raw_dir: Path
    warehouse: Path
    report_dir: Path


@pytest.fixture(scope="session")
def orders_only(tmp_path_factory) -> ShopBuild:
    """A generated shop of 3,000 customers with only its customers and orders files (no costs,
    complaints, surveys or contacts), built with the default settings."""

    def build(work: Path) -> ShopBuild:
        raw = work / "raw"
        generate(raw, customers=3_000, seed=21, end_date=PUBLISHED_END_DATE, fmt="csv", quiet=True)
        for path in raw.iterdir():
            if path.stem not in {"customers", "orders"}:
                path.unlink()
        env = make_build_env(work, raw, work / "warehouse" / "cvm.duckdb")
        return ShopBuild(
            make_build(env), raw, Path(env["CVM_DUCKDB_PATH"]), Path(env["CVM_REPORT_DIR"])
        )

    return once_per_run(tmp_path_factory, "orders_only", build)


def reasons_not_drawn(index: Path) -> dict[str, str]:
    """Each chart of a report page that says why it is not drawn, with its reason (read from
    the HTML as written, without a browser)."""
    found = re.findall(
        r'<figure class="chart missing" id="(\w+)".*?<p class="missing-reason">(.*?)</p>',
        index.read_text(),
    )
    return {name: html.unescape(reason) for name, reason in found}


JVM_OPTIONS = session_settings()["spark.driver.extraJavaOptions"]


@pytest.fixture(scope="session")
def spark() -> SparkSession:
    """One local SparkSession per test run (about 10 s to start), for the Spark code paths."""
    session = (
        SparkSession.builder.master("local[1]")
        .appName("cvm-tests")
        .config("spark.sql.shuffle.partitions", "1")
        .config("spark.ui.enabled", "false")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        # The `spark` target's JVM options (the quick compiler only: profiles.yml says why).
        .config("spark.driver.extraJavaOptions", JVM_OPTIONS)
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


def pytest_sessionfinish(session, exitstatus):
    """A skipped test is a check nobody ran: `make test` (and CI) must report 0 skipped, so a
    skip fails the run, with the tests named."""
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter else []
    if skipped and exitstatus == pytest.ExitCode.OK:
        reporter.write_line(
            f"{len(skipped)} test(s) skipped; every path make test can run must run: "
            + ", ".join(report.nodeid for report in skipped[:10]),
            red=True,
        )
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
