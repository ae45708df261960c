"""Run the dbt project against a raw directory and a warehouse of a test's own."""

from __future__ import annotations

import subprocess
from pathlib import Path

import duckdb

from cvm import build


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
    """dbt on a test's own raw directory and warehouse, with plain (uncoloured) output."""
    env = {
        "CVM_RAW_DIR": str(raw_dir),
        "CVM_DUCKDB_PATH": str(warehouse),
        "CVM_AS_OF_DATE": as_of,
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "DBT_USE_COLORS": "false",
    }
    return build.run_dbt([command, *args], env=env, work_dir=work_dir, capture=True)


def query(warehouse: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute(sql).fetchall()
