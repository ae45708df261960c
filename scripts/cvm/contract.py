"""The raw file contract, as Python reads it: the only Python reader of
``models/staging/shop/_shop__sources.yml``.

That YAML is the contract's one definition (tables, columns, keys, PII, required or optional,
the type staging parses each column into, and how a table's file is found and read). dbt reads
it through ``graph.sources`` (the hook ``register_raw_sources``, the quarantine); the raw gate,
the build, the generator and the tests read it through this module. How a value parses is
not restated here either: :func:`parse_sql` renders staging's own macros (macros/parsing.sql).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import jinja2
import yaml

from cvm import PROJECT_DIR

SOURCES_FILE = PROJECT_DIR / "models/staging/shop/_shop__sources.yml"
SOURCE_NAME = "shop"
TIMESTAMP_TYPES = ("timestamp", "date")


class AmbiguousRawFile(ValueError):
    """A table's raw data cannot be told apart: more than one input (e.g. both
    ``orders.parquet`` and ``orders.csv``, or ``orders.csv`` and a directory ``orders/``), a
    directory with files of both formats, or a directory without any."""


@dataclass(frozen=True)
class RawInput:
    """Where a table's raw data are: one file ``<name>.<format>``, or a directory ``<name>/``
    of files of one format at any depth (dated files such as ``orders/2026-06-30.csv``, or
    hive-style partitions such as ``orders/ordered_date=2026-06-30/part-0.parquet``), read as
    one table."""

    location: Path  # the file, or the directory
    files: tuple[Path, ...]  # the file, or the directory's data files (sorted)
    file_format: str  # parquet or csv

    @property
    def is_directory(self) -> bool:
        return self.files != (self.location,)  # a directory's files lie under it

    @property
    def name(self) -> str:
        """How messages name it: ``orders.csv``, or ``orders/ (31 .csv files)``."""
        if not self.is_directory:
            return self.location.name
        return f"{self.location.name}/ ({len(self.files):,} .{self.file_format} files)"

    @property
    def pattern(self) -> str:
        """The path the reader reads: the file, or every data file under the directory."""
        if self.is_directory:
            return str(self.location / "**" / f"*.{self.file_format}")
        return str(self.location)


@dataclass(frozen=True)
class Column:
    name: str
    required: bool
    pii: bool
    parse_as: str | None  # the type staging parses the text into; None: kept as text

    @property
    def is_timestamp(self) -> bool:
        return self.parse_as in TIMESTAMP_TYPES


@dataclass(frozen=True)
class Table:
    name: str
    required: bool
    key: str
    columns: tuple[Column, ...]

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(column.name for column in self.columns)


@dataclass(frozen=True)
class Contract:
    tables: tuple[Table, ...]
    file_formats: tuple[str, ...]  # a table's file is `<name>.<format>` (or `<name>/*.<format>`)
    readers: dict[str, str]  # format -> SQL reading it, with `{path}` a quoted path (or glob)

    def table(self, name: str) -> Table:
        return next(table for table in self.tables if table.name == name)

    @property
    def table_names(self) -> tuple[str, ...]:
        return tuple(table.name for table in self.tables)

    @property
    def keys(self) -> dict[str, str]:
        return {table.name: table.key for table in self.tables}

    def find_raw_input(self, raw_dir: Path, name: str) -> RawInput | None:
        """The raw data of table ``name`` in ``raw_dir`` (:class:`RawInput`), or None; more
        than one input, or a directory of mixed or no data files, is an error."""
        found = [
            RawInput(path, (path,), f)
            for f, path in ((f, raw_dir / f"{name}.{f}") for f in self.file_formats)
            if path.is_file()
        ]
        directory = raw_dir / name
        if directory.is_dir():
            by_format = {
                f: tuple(sorted(p for p in directory.rglob(f"*.{f}") if p.is_file()))
                for f in self.file_formats
            }
            formats = [f for f, files in by_format.items() if files]
            if len(formats) != 1:
                kinds = (" and " if formats else " or ").join(
                    f".{f}" for f in (formats or self.file_formats)
                )
                raise AmbiguousRawFile(
                    f"{directory} holds {'both ' if formats else 'no '}{kinds} files; a table's "
                    "directory holds files of one format"
                )
            found.append(RawInput(directory, by_format[formats[0]], formats[0]))
        if len(found) > 1:
            both = " and ".join(str(i.location) for i in found)
            raise AmbiguousRawFile(f"Both {both} exist; keep one so it is clear which to load.")
        return found[0] if found else None

    def reader_sql(self, raw: RawInput) -> str:
        """SQL reading ``raw`` as the dbt hook reads it (a CSV as text; a Parquet file keeps
        its types, which the hook's view and the gate's ``as_text`` cast to text)."""
        return self.readers[raw.file_format].replace("{path}", sql_string(raw.pattern))


@functools.cache
def load(path: Path = SOURCES_FILE) -> Contract:
    with path.open() as handle:
        sources = yaml.safe_load(handle)["sources"]
    source = next(s for s in sources if s["name"] == SOURCE_NAME)
    tables = tuple(
        Table(
            name=table["name"],
            required=bool(table.get("meta", {}).get("required")),
            key=table["meta"]["key"],
            columns=tuple(
                Column(
                    name=column["name"],
                    required=bool(column.get("meta", {}).get("required")),
                    pii=bool(column.get("meta", {}).get("pii")),
                    parse_as=column.get("meta", {}).get("parse_as"),
                )
                for column in table["columns"]
            ),
        )
        for table in source["tables"]
    )
    meta = source["meta"]
    return Contract(tables, tuple(meta["file_formats"]), dict(meta["readers"]))


def find_raw_input(raw_dir: Path, name: str) -> RawInput | None:
    return load().find_raw_input(raw_dir, name)


def reader_sql(raw: RawInput) -> str:
    return load().reader_sql(raw)


def sql_string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


# Staging's parsing macros, rendered outside dbt: the types and the safe cast as dbt-duckdb
# renders them, so the raw gate judges a value parseable exactly when staging parses it.
DUCKDB_TYPES = {
    "timestamp": "timestamp",
    "bigint": "bigint",
    "string": "varchar",
    "boolean": "boolean",
}
PARSING_MACROS = ("macros/safe_cast.sql", "macros/parsing.sql")


@functools.cache
def _staging_macros() -> dict[str, object]:
    environment = jinja2.Environment(extensions=["jinja2.ext.do"])
    definitions = environment.from_string(
        "\n".join((PROJECT_DIR / file).read_text() for file in PARSING_MACROS)
    )
    dbt = _DbtOnDuckdb(definitions.module.duckdb__safe_cast)
    module = definitions.make_module({"dbt": dbt})
    return {name: getattr(module, name) for name in dir(module) if name.startswith("cvm_")}


class _DbtOnDuckdb:
    """The few ``dbt.*`` macros parsing.sql calls, as dbt renders them on DuckDB."""

    def __init__(self, safe_cast: object) -> None:
        self.safe_cast = safe_cast

    def __getattr__(self, name: str) -> object:
        if name.startswith("type_") and name.removeprefix("type_") in DUCKDB_TYPES:
            return lambda: DUCKDB_TYPES[name.removeprefix("type_")]
        raise AttributeError(name)


def macro_sql(name: str, *args: str) -> str:
    """The SQL of staging's macro ``name`` (macros/parsing.sql) for the given arguments."""
    return str(_staging_macros()[name](*args)).strip()


def parse_sql(column_sql: str, parse_as: str) -> str:
    """Staging's parse of a raw text column into ``parse_as`` (null when it does not parse)."""
    return macro_sql("cvm_parse_as", column_sql, parse_as)


def unparseable_sql(column_sql: str, parse_as: str) -> str:
    """True when something is there and staging cannot parse it (staging's own test)."""
    return macro_sql("cvm_is_unparseable", parse_sql(column_sql, parse_as), column_sql)
