"""The warehouse a local Spark build wrote, read through Spark: the same SparkSession settings
as the profile's `spark` target (read from profiles.yml, so the two cannot drift), and a
connection with the few DuckDB methods the build's summary uses (``execute`` returning
``fetchone``, ``fetchall`` and ``df``).

Spark's embedded metastore (Derby) admits one process at a time: `make build-spark` runs dbt
in its own process, on this session (cvm.dbt_runs.DbtSteps); nothing else may open the warehouse
meanwhile.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import jinja2
import pandas as pd
import yaml

from cvm import PROJECT_DIR
from cvm.relations import DBT_SCHEMAS

PROFILES = PROJECT_DIR / "profiles.yml"


def session_settings(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The `spark` target's server_side_parameters, its env_var() calls rendered from ``env``.
    Relative paths in them are relative to the project directory, as for dbt."""
    env = os.environ if env is None else env
    target = yaml.safe_load(PROFILES.read_text())["cvm"]["outputs"]["spark"]

    def env_var(name: str, default: str | None = None) -> str:
        if name in env:
            return env[name]
        if default is None:
            raise KeyError(f"profiles.yml needs the environment variable {name}")
        return default

    render = jinja2.Environment(undefined=jinja2.StrictUndefined)
    return {
        name: render.from_string(str(value)).render(env_var=env_var)
        for name, value in target["server_side_parameters"].items()
    }


def local_session(env: Mapping[str, str] | None = None) -> Any:
    """A Hive-enabled SparkSession on the local Spark warehouse (as dbt-spark's session
    method makes it), run from the project directory so relative paths agree with dbt's."""
    from pyspark.sql import SparkSession

    os.chdir(PROJECT_DIR)
    builder = SparkSession.builder.enableHiveSupport()
    for name, value in session_settings(env).items():
        builder = builder.config(name, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    return session


class _Result:
    def __init__(self, frame: Any) -> None:
        self._frame = frame

    def fetchall(self) -> list[tuple[Any, ...]]:
        return [tuple(row) for row in self._frame.collect()]

    def fetchone(self) -> tuple[Any, ...] | None:
        rows = self._frame.take(1)
        return tuple(rows[0]) if rows else None

    def df(self) -> pd.DataFrame:
        return self._frame.toArrow().to_pandas()


class SparkConnection:
    """``execute(sql)`` on a SparkSession, answering like a DuckDB connection."""

    def __init__(self, session: Any) -> None:
        self.session = session

    def execute(self, sql: str) -> _Result:
        return _Result(self.session.sql(sql))

    def relation_names(self, schemas: Sequence[str] = DBT_SCHEMAS) -> Iterable[tuple[str, str]]:
        """(schema, name) of every table and view in ``schemas`` that exist."""
        existing = {row[0] for row in self.session.sql("show schemas").collect()}
        for schema in schemas:
            if schema in existing:
                for row in self.session.sql(f"show tables in {schema}").collect():
                    if not row["isTemporary"]:
                        yield schema, row["tableName"]
