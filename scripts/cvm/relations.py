"""Where dbt put each model in a warehouse: the one lookup of schema-qualified table names.

dbt chooses a model's schema (`+schema` in dbt_project.yml, macro generate_schema_name) and
names the relation after the model. Python that queries the warehouse (the build summary, the
gates, the incremental check) asks here by model name instead of spelling `marts.x` itself, so
a model moved to another schema is found, and a missing one fails with a clear message.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping

import duckdb

# Schemas of the project's own relations; `main` holds nothing of dbt's, `bi` holds the
# saved-query exports (no dbt models).
DBT_SCHEMAS = ("raw", "staging", "intermediate", "marts", "snapshots", "semantic")


class Relations(Mapping[str, str]):
    """Model name -> `schema.name` (or `database.schema.name` for another attached database)
    of every table and view in the project's schemas."""

    def __init__(self, con: duckdb.DuckDBPyConnection, database: str | None = None) -> None:
        rows = con.execute(
            """
            select schema_name, table_name from duckdb_tables()
            where database_name = coalesce(?, current_database())
            union all
            select schema_name, view_name from duckdb_views()
            where database_name = coalesce(?, current_database()) and not internal
            """,
            [database, database],
        ).fetchall()
        self._names = self._by_model(rows, f"{database}." if database else "")

    @classmethod
    def from_names(cls, rows: Iterable[tuple[str, str]]) -> Relations:
        """From (schema, name) pairs another engine listed (cvm.spark_warehouse)."""
        relations = cls.__new__(cls)
        relations._names = cls._by_model(rows, "")
        return relations

    @staticmethod
    def _by_model(rows: Iterable[tuple[str, str]], prefix: str) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {}
        for schema, name in rows:
            if schema in DBT_SCHEMAS:
                found.setdefault(name, []).append(f"{prefix}{schema}.{name}")
        return found

    def __getitem__(self, model: str) -> str:
        names = self._names.get(model)
        if not names:
            raise KeyError(
                f"{model} is not in the warehouse (schemas {', '.join(DBT_SCHEMAS)}): "
                "was the build complete?"
            )
        if len(names) > 1:
            raise KeyError(f"{model} is in more than one schema: {', '.join(sorted(names))}")
        return names[0]

    def __contains__(self, model: object) -> bool:
        return isinstance(model, str) and len(self._names.get(model, ())) == 1

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)
