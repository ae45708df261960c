"""Run the dbt project against a raw directory and a warehouse of a test's own."""

from __future__ import annotations

import functools
import importlib.metadata
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from cvm import build, dbt_runs

DBT = Path(sys.executable).with_name("dbt")
MF = Path(sys.executable).with_name("mf")
# What a copy of the project leaves behind: environments, build outputs, data and caches.
NOT_COPIED = shutil.ignore_patterns(
    ".venv*", ".git", "target", "logs", "data", "warehouse", "build", "*_cache", "__pycache__"
)

# A condition on information_schema.tables that leaves out staging by file's records of the
# raw files each base model staged (macros/staging_by_file.sql): DuckDB's tables beside the
# models, not models, and naming the files by design.
MODEL_RELATIONS_ONLY = "not suffix(table_name, '__raw_files')"


# dbt's unit tests check the SQL on fixed inputs, so their answer does not depend on a test's
# data: they run in the bad-rows builds (conftest.build_generated; test_staging.py checks that
# each passed), and the other builds leave them out, as `make build` does.
NO_UNIT_TESTS = ("--exclude-resource-type", "unit_test")


# What every test's dbt runs with: no usage statistics sent, output without colour codes (the
# tests read it).
PLAIN_DBT = {"DBT_SEND_ANONYMOUS_USAGE_STATS": "false", "DBT_USE_COLORS": "false"}


# dbt's saved parse of the project (dbt_working_directory in cvm.dbt_runs): one `dbt parse` per
# test run (conftest's saved_dbt_parse), made when a test first runs dbt, that each test's dbt
# starts from, so that it parses only the files whose inputs differ (the raw directory, the
# as-of date) instead of the whole project (about 5 s each). It fits warehouses named as it was
# parsed and builds without extra vars; dbt parses in full for any other.
SAVED_PARSE = "partial_parse.msgpack"
SAVED_PARSE_WAREHOUSE = "cvm.duckdb"
_saved_parse: Callable[[], Path | None] | None = None


def parse_project(work_dir: Path) -> Path | None:
    """`dbt parse` into ``work_dir``: its saved parse, or None when dbt could not parse (each
    test's dbt then says why). dbt in full, not run_dbt, which would start from this parse."""
    env = dbt_env(work_dir / "raw", work_dir / SAVED_PARSE_WAREHOUSE, as_of=None)
    result = dbt_runs.run_dbt(["parse"], env=env, work_dir=work_dir, capture=True)
    saved = work_dir / "target" / SAVED_PARSE
    return saved if result.returncode == 0 and saved.is_file() else None


def use_saved_parse(make: Callable[[], Path | None]) -> None:
    """How to make the saved parse new target/ directories start from (it may make None: no
    saved parse); made once, when a test first runs dbt, so runs without dbt parse nothing."""
    global _saved_parse
    _saved_parse = functools.cache(make)


def start_from_saved_parse(target_dir: Path) -> None:
    """A target/ that dbt has not written to yet starts with the run's saved parse."""
    if _saved_parse is None or (target_dir / SAVED_PARSE).exists():
        return
    if (saved := _saved_parse()) is not None:
        target_dir.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(saved, target_dir / SAVED_PARSE)


def dbt_build(
    raw_dir: Path,
    warehouse: Path,
    work_dir: Path,
    *args: str,
    as_of: str | None = None,
    unit_tests: bool = False,
) -> subprocess.CompletedProcess[str]:
    """`dbt build` of ``raw_dir`` into ``warehouse`` (``unit_tests``: dbt's unit tests too)."""
    extra = () if unit_tests else NO_UNIT_TESTS
    return run_dbt("build", raw_dir, warehouse, work_dir, *args, *extra, as_of=as_of)


def run_dbt(
    command: str,
    raw_dir: Path,
    warehouse: Path,
    work_dir: Path,
    *args: str,
    as_of: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """dbt on a test's own raw directory and warehouse, with plain (uncoloured) output."""
    start_from_saved_parse(work_dir / "target")
    env = dbt_env(raw_dir, warehouse, as_of)
    return dbt_runs.run_dbt([command, *args], env=env, work_dir=work_dir, capture=True)


def dbt_env(raw_dir: Path, warehouse: Path, as_of: str | None) -> dict[str, str | None]:
    """What dbt reads from the environment for a test's raw directory, warehouse and as-of date
    (None: unset)."""
    return {
        "CVM_RAW_DIR": str(raw_dir),
        "CVM_DUCKDB_PATH": str(warehouse),
        "CVM_AS_OF_DATE": as_of,
        **PLAIN_DBT,
    }


def make_build_env(work_dir: Path, raw_dir: Path, warehouse: Path) -> dict[str, str]:
    """The environment of a `make build` on a test's own raw directory, warehouse, target/ (it
    starts from the run's saved parse), report and Data Docs directories (nothing shared, so
    builds may run side by side)."""
    env = {
        **os.environ,
        "CVM_RAW_DIR": str(raw_dir),
        "CVM_DUCKDB_PATH": str(warehouse),
        "CVM_REPORT_DIR": str(work_dir / "report"),
        "CVM_DATA_DOCS_DIR": str(work_dir / "data_docs"),
        "DBT_TARGET_PATH": str(work_dir / "target"),
        "DBT_LOG_PATH": str(work_dir / "logs"),
        **PLAIN_DBT,
    }
    env.pop("CVM_AS_OF_DATE", None)
    start_from_saved_parse(work_dir / "target")
    return env


def make_build(env: Mapping[str, str], **popen: Any) -> subprocess.CompletedProcess[str]:
    """`make build`, the user's command, in the project directory."""
    return subprocess.run(
        ["make", "--no-print-directory", "build"],
        cwd=build.PROJECT_DIR,
        env=dict(env),
        capture_output=True,
        text=True,
        check=False,
        **popen,
    )


def copy_warehouse(warehouse: Path, directory: Path) -> Path:
    """A copy of ``warehouse`` in ``directory``, under the same file name: DuckDB names the
    database after the file stem, and the views in the file refer to that name."""
    directory.mkdir(parents=True, exist_ok=True)
    return Path(shutil.copyfile(warehouse, directory / warehouse.name))


def dbt_test_on_tampered_copy(
    raw_dir: Path, warehouse: Path, work_dir: Path, tamper: str, *test_names: str
) -> subprocess.CompletedProcess[str]:
    """`dbt test --select test_names` on a copy of ``warehouse`` changed by the SQL ``tamper``:
    how a test shows that a dbt data test can fail."""
    tampered = copy_warehouse(warehouse, work_dir)
    with duckdb.connect(str(tampered)) as con:
        con.execute(tamper)
    return run_dbt("test", raw_dir, tampered, work_dir, "--select", *test_names)


def query(warehouse: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute(sql).fetchall()


def copy_project(dest: Path) -> Path:
    """A throwaway copy of the project's sources (no venv, build outputs or data)."""
    shutil.copytree(build.PROJECT_DIR, dest, ignore=NOT_COPIED)
    return dest


def dbt_in(
    project: Path, *args: str, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """dbt in another copy of the project, with that copy's profiles.yml."""
    return tool_in(project, [str(DBT), *args, "--project-dir", str(project)], env)


def mf_in(
    project: Path, *args: str, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """MetricFlow's CLI in another copy of the project (it reads that copy's target/)."""
    return tool_in(project, [str(MF), *args], env)


def tool_in(
    project: Path, command: list[str], env: Mapping[str, str] | None
) -> subprocess.CompletedProcess[str]:
    full_env = {
        **os.environ,
        "DBT_PROFILES_DIR": str(project),
        **PLAIN_DBT,
        **(env or {}),
    }
    return subprocess.run(
        command, cwd=project, env=full_env, capture_output=True, text=True, check=False
    )


def write_orders_and_customers(raw: Path, orders: pd.DataFrame) -> None:
    """``orders`` as raw/orders.csv and their customers as raw/customers.csv, each signed up at
    their first order: the two required files of an export that has only orders."""
    raw.mkdir(parents=True, exist_ok=True)
    orders.to_csv(raw / "orders.csv", index=False)
    customers = orders.groupby("customer_id", as_index=False)["ordered_at"].min()
    customers.rename(columns={"ordered_at": "signup_date"}).to_csv(
        raw / "customers.csv", index=False
    )


def lifetimes_example_orders(order_total: float) -> pd.DataFrame:
    """lifetimes' example transactions (5,000 customers of one cohort dying off over 2014; a
    date and a customer id, no amount) as completed orders of ``order_total`` each."""
    transactions = pd.read_csv(
        importlib.metadata.distribution("lifetimes").locate_file(
            "lifetimes/datasets/example_transactions.csv"
        )
    )
    return pd.DataFrame(
        {
            "order_id": [f"t{i}" for i in range(len(transactions))],
            "customer_id": transactions["id"],
            "ordered_at": transactions["date"],
            "status": "completed",
            "order_total": order_total,
        }
    )
