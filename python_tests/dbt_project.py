"""Run the dbt project against a raw directory and a warehouse of a test's own."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import duckdb

PROJECT_DIR = Path(__file__).resolve().parents[1]
DBT = Path(sys.executable).with_name("dbt")


def dbt_build(
    raw_dir: Path, warehouse: Path, work_dir: Path, *args: str, as_of: str | None = None
) -> subprocess.CompletedProcess[str]:
    return run_dbt("build", raw_dir, warehouse, work_dir, *args, as_of=as_of)


def run_dbt(
    command: str,
    raw_dir: Path,
    warehouse: Path,
    work_dir: Path,
    *args: str,
    as_of: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """dbt in a subprocess (dbt keeps global state) with its own target and log paths."""
    env = {
        **os.environ,
        "CVM_RAW_DIR": str(raw_dir),
        "CVM_DUCKDB_PATH": str(warehouse),
        "DBT_PROFILES_DIR": str(PROJECT_DIR),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "DBT_USE_COLORS": "false",
    }
    env.pop("CVM_AS_OF_DATE", None)
    if as_of is not None:
        env["CVM_AS_OF_DATE"] = as_of
    return subprocess.run(
        [
            str(DBT),
            command,
            "--project-dir", str(PROJECT_DIR),
            "--target-path", str(work_dir / "target"),
            "--log-path", str(work_dir / "logs"),
            *args,
        ],
        cwd=PROJECT_DIR,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )  # fmt: skip


def query(warehouse: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute(sql).fetchall()
