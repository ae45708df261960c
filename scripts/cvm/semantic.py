"""The semantic layer on dbt Core: saved-query exports as tables, without dbt Cloud.

dbt Cloud runs a saved query's ``exports``; dbt Core does not. :func:`export_saved_queries` does
it for DuckDB: MetricFlow compiles each saved query to SQL against the warehouse being built,
and DuckDB materialises the result as ``<schema>.<export name>`` in that same file, so the
exports are published with (and agree with) the marts they summarise.

MetricFlow is driven in process with a DuckDB connection of our own rather than through ``mf``
(which always reads ``target/`` and opens the warehouse through a dbt profile): the build
chooses the semantic manifest and the (unpublished) warehouse file explicitly.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb
from metricflow.data_table.mf_table import MetricFlowDataTable
from metricflow.engine.metricflow_engine import MetricFlowEngine, MetricFlowQueryRequest
from metricflow.protocols.sql_client import SqlEngine
from metricflow.sql.render.duckdb_renderer import DuckDbSqlPlanRenderer
from metricflow.sql.render.sql_plan_renderer import SqlPlanRenderer
from metricflow_semantics.model.dbt_manifest_parser import (
    parse_manifest_from_dbt_generated_manifest,
)
from metricflow_semantics.model.semantic_manifest_lookup import SemanticManifestLookup
from metricflow_semantics.sql.sql_bind_parameters import SqlBindParameterSet

NO_BIND_PARAMETERS = SqlBindParameterSet()


@dataclass(frozen=True)
class Export:
    saved_query: str
    schema: str
    table: str


@dataclass(frozen=True)
class ExportResult:
    export: Export
    rows: int
    seconds: float


class DuckDbSqlClient:
    """MetricFlow's SqlClient protocol over a DuckDB connection."""

    def __init__(self, connection: duckdb.DuckDBPyConnection) -> None:
        self._connection = connection

    @property
    def sql_engine_type(self) -> SqlEngine:
        return SqlEngine.DUCKDB

    @property
    def sql_plan_renderer(self) -> SqlPlanRenderer:
        return DuckDbSqlPlanRenderer()

    def query(
        self, stmt: str, sql_bind_parameter_set: SqlBindParameterSet = NO_BIND_PARAMETERS
    ) -> MetricFlowDataTable:
        self._no_bind_parameters(sql_bind_parameter_set)
        cursor = self._connection.execute(stmt)
        columns = [column[0] for column in cursor.description]
        return MetricFlowDataTable.create_from_rows(columns, cursor.fetchall())

    def execute(
        self, stmt: str, sql_bind_parameter_set: SqlBindParameterSet = NO_BIND_PARAMETERS
    ) -> None:
        self._no_bind_parameters(sql_bind_parameter_set)
        self._connection.execute(stmt)

    def dry_run(
        self, stmt: str, sql_bind_parameter_set: SqlBindParameterSet = NO_BIND_PARAMETERS
    ) -> None:
        self._no_bind_parameters(sql_bind_parameter_set)
        self._connection.execute(f"explain {stmt}")

    def close(self) -> None:
        self._connection.close()

    def render_bind_parameter_key(self, bind_parameter_key: str) -> str:
        raise NotImplementedError("MetricFlow's queries here carry no bind parameters")

    @staticmethod
    def _no_bind_parameters(parameters: SqlBindParameterSet) -> None:
        if parameters.param_items:
            raise NotImplementedError("MetricFlow's queries here carry no bind parameters")


def load_semantic_manifest(path: Path):
    if not path.is_file():
        raise FileNotFoundError(
            f"No semantic manifest at {path}: run `dbt parse` (or a build) to write it."
        )
    return parse_manifest_from_dbt_generated_manifest(manifest_json_string=path.read_text())


def saved_query_exports(semantic_manifest) -> list[Export]:
    """Every export of every saved query, as declared in the YAML (schema defaults to ``bi``)."""
    return [
        Export(query.name, export.config.schema_name or "bi", export.config.alias or export.name)
        for query in sorted(semantic_manifest.saved_queries, key=lambda q: q.name)
        for export in query.exports
    ]


def engine(semantic_manifest, connection: duckdb.DuckDBPyConnection) -> MetricFlowEngine:
    return MetricFlowEngine(
        semantic_manifest_lookup=SemanticManifestLookup(semantic_manifest),
        sql_client=DuckDbSqlClient(connection),
    )


def saved_query_sql(mf: MetricFlowEngine, saved_query: str) -> str:
    """The SQL MetricFlow compiles a saved query to (what `mf query --explain` prints)."""
    request = MetricFlowQueryRequest.create(saved_query_name=saved_query)
    return mf.explain(mf_request=request).sql_statement.without_descriptions.sql


def export_saved_queries(
    warehouse: Path,
    semantic_manifest_path: Path,
    *,
    only: Sequence[str] | None = None,
    progress: Callable[[str], None] = print,
) -> list[ExportResult]:
    """Materialise every saved-query export as a table in ``warehouse`` (replacing it)."""
    manifest = load_semantic_manifest(semantic_manifest_path)
    exports = [e for e in saved_query_exports(manifest) if only is None or e.saved_query in only]
    results = []
    with duckdb.connect(str(warehouse)) as connection:
        _check_database_name(manifest, connection, warehouse)
        connection.execute("set enable_progress_bar = false")
        mf = engine(manifest, connection)
        for export in exports:
            started = time.perf_counter()
            sql = saved_query_sql(mf, export.saved_query)
            target = f'"{export.schema}"."{export.table}"'
            connection.execute(f'create schema if not exists "{export.schema}"')
            connection.execute(f"create or replace table {target} as {sql}")
            rows = connection.execute(f"select count(*) from {target}").fetchone()[0]
            result = ExportResult(export, rows, time.perf_counter() - started)
            progress(
                f"  exported saved query {export.saved_query:<34} -> {export.schema}.{export.table}"
                f" ({rows:,} rows, {result.seconds:.1f} s)"
            )
            results.append(result)
    return results


def _check_database_name(semantic_manifest, connection, warehouse: Path) -> None:
    """MetricFlow's SQL names relations by the database dbt parsed with (DuckDB: the file stem)."""
    parsed = {m.node_relation.database for m in semantic_manifest.semantic_models}
    actual = connection.execute("select current_database()").fetchone()[0]
    if parsed != {actual}:
        raise ValueError(
            f"The semantic manifest names database {sorted(parsed)} but {warehouse} is "
            f"{actual!r}: parse with a profile whose path has the same file name as the warehouse."
        )
