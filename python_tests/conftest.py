"""Shared fixtures: the project built once per session on generated data with bad rows."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pyspark.sql import SparkSession

from cvm.generate import generate
from dbt_project import dbt_build


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

    def build(fmt: str) -> Build:
        if fmt not in builds:
            work = tmp_path_factory.mktemp(f"bad_rows_{fmt}")
            raw_dir = work / "raw"
            manifest = generate(
                raw_dir, customers=2_000, seed=7, fmt=fmt, inject_bad_rows=True, quiet=True
            )
            warehouse = work / "cvm.duckdb"
            builds[fmt] = Build(raw_dir, warehouse, manifest, dbt_build(raw_dir, warehouse, work))
        return builds[fmt]

    return build


@pytest.fixture(scope="session", params=["parquet", "csv"])
def bad_rows_build(request, build_generated) -> Build:
    return build_generated(request.param)


@pytest.fixture(scope="session")
def parquet_build(build_generated) -> Build:
    return build_generated("parquet")


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
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()
