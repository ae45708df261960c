"""One set of models for every engine: DuckDB-only SQL lives in `duckdb__` dispatch macros and
nowhere else. A quick, static check (the Spark build in test_spark_build.py is the full one):
it names the file and the construct in seconds, without Java."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from cvm.build import PROJECT_DIR

SQL_FOLDERS = ("models", "macros", "snapshots", "tests", "analyses")
# DuckDB syntax and functions Spark SQL lacks (or reads otherwise), with what to write instead.
DUCKDB_ONLY = {
    r"::\s*\w": "the :: cast (write cast(x as type))",
    r"\btry_cast\s*\(": "try_cast (dbt.safe_cast dispatches)",
    r"\bread_(csv|parquet|json)\w*\s*\(": "DuckDB's file readers (the raw hook's dispatch)",
    r"\bglob\s*\(": "glob()",
    r"\b(list|array)_\w+\s*\(": "DuckDB's list functions",
    r"\bstruct_pack\s*\(": "struct_pack",
    r"\b(date_diff|date_sub|date_part|datepart)\s*\(": "date_diff and kin (dbt.datediff, extract)",
    r"(?<!\.)\bstr[fp]time\s*\(": "strftime / strptime (Python's, in Jinja, may)",
    r"\bepoch(_ms)?\s*\(": "epoch()",
    r"\barg_(max|min)\s*\(": "arg_max / arg_min (a window with row_number)",
    r"\bqualify\b": "QUALIFY (a filtered subquery)",
    r"\bexclude\s*\(": "SELECT * EXCLUDE",
    r"\bcolumns\s*\(": "COLUMNS(...)",
    r"\bunnest\s*\(": "unnest",
    r"\bregexp_(matches|full_match)\s*\(": "DuckDB's regexp functions",
    r"\bquantile(_cont|_disc)?\s*\(|\bmedian\s*\(": "quantile / median (percentile_cont)",
    r"\bifnull\s*\(": "ifnull (coalesce)",
    r"\binterval\s+'": "interval literals (dbt.dateadd)",
    r"\bvarchar\b": "varchar (string, or dbt.type_string())",
}
MACRO = re.compile(r"{%-?\s*macro\s+(\w+).*?{%-?\s*endmacro\s*-?%}", re.S)
COMMENTS = re.compile(r"{#.*?#}|--[^\n]*", re.S)


def sql_outside_duckdb_macros(text: str) -> str:
    """``text`` without comments and without the bodies of `duckdb__` macros."""
    text = COMMENTS.sub("", text)
    return MACRO.sub(lambda m: "" if m.group(1).startswith("duckdb__") else m.group(0), text)


def duckdb_only_constructs(text: str) -> list[str]:
    code = sql_outside_duckdb_macros(text)
    return [what for pattern, what in DUCKDB_ONLY.items() if re.search(pattern, code, re.I)]


def sql_files() -> list[Path]:
    return sorted(
        path
        for folder in SQL_FOLDERS
        if (PROJECT_DIR / folder).is_dir()
        for path in (PROJECT_DIR / folder).rglob("*.sql")
    )


def test_no_duckdb_only_sql_outside_dispatch_macros():
    found = {
        str(path.relative_to(PROJECT_DIR)): constructs
        for path in sql_files()
        if (constructs := duckdb_only_constructs(path.read_text()))
    }
    assert len(sql_files()) > 60
    assert not found, f"DuckDB-only SQL outside a duckdb__ dispatch macro: {found}"


@pytest.mark.parametrize(
    "planted",
    [
        "select order_id::varchar from orders",
        "select arg_max(order_id, ordered_at) from orders",
        "select * from orders qualify row_number() over (order by 1) = 1",
        "{% macro cvm_x() %}select try_cast(a as int){% endmacro %}",
    ],
)
def test_the_check_finds_planted_duckdb_sql(planted):
    assert duckdb_only_constructs(planted)


def test_duckdb_macros_and_comments_may_use_it():
    assert not duckdb_only_constructs(
        "{% macro duckdb__cvm_x() %}select try_cast(a as int), x::date{% endmacro %}\n"
        "-- arg_max would be faster here\nselect 1 {#- qualify -#}"
    )
