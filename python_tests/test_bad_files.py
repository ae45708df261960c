"""Bad files, not just bad rows: each stops `make build` with a clear message and leaves the
published warehouse as it was, or is a documented tolerance that loses no row."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import duckdb
import pytest

from cvm.generate import generate
from dbt_project import make_build, make_build_env, query

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def clean_csv(tmp_path_factory) -> Path:
    raw = tmp_path_factory.mktemp("bad_files") / "clean"
    generate(raw, customers=2_000, seed=9, fmt="csv", quiet=True)
    return raw


def orders_text(raw: Path) -> str:
    return (raw / "orders.csv").read_text()


def write_orders(text: str | bytes) -> Callable[[Path], None]:
    def apply(raw: Path) -> None:
        target = raw / "orders.csv"
        if isinstance(text, bytes):
            target.write_bytes(text)
        else:
            target.write_text(text)

    return apply


def replace_with_parquet(content: bytes) -> Callable[[Path], None]:
    def apply(raw: Path) -> None:
        (raw / "orders.csv").unlink()
        (raw / "orders.parquet").write_bytes(content)

    return apply


def first_lines(text: str, n: int) -> str:
    return "".join(text.splitlines(keepends=True)[:n])


# kind: (how to spoil the orders file, given its clean text, and what the message must say)
FAILING = {
    "missing required file": (
        lambda t: lambda raw: (raw / "orders.csv").unlink(),
        "required_file_present",
    ),
    "renamed required column": (
        lambda t: write_orders(t.replace("order_total", "total", 1)),
        "expect_table_columns_to_match_set",
    ),
    "truncated file": (lambda t: write_orders(t[: len(t) // 2]), "truncated: the file does not"),
    "truncated at a line break": (
        lambda t: write_orders(
            first_lines(t, 500) + ",".join(t.splitlines()[500].split(",")[:3]) + "\n"
        ),
        "truncated: the last line has 3 of the header's 5 fields",
    ),
    "empty file": (lambda t: write_orders(""), "the file is empty (0 bytes)"),
    "header without rows": (lambda t: write_orders(first_lines(t, 1)), "orders.csv.row_count"),
    "another encoding": (
        lambda t: write_orders(t.replace("completed", "complété").encode("latin-1")),
        "not utf-8 encoded",
    ),
    "truncated parquet": (lambda t: replace_with_parquet(b"PAR1" + b"\0" * 100), "unreadable"),
}


@pytest.mark.parametrize("kind", sorted(FAILING))
def test_a_bad_file_stops_the_build_and_keeps_the_published_warehouse(
    published_build, clean_csv, tmp_path, kind
):
    spoil, message = FAILING[kind]
    raw = tmp_path / "raw"
    shutil.copytree(clean_csv, raw)
    spoil(orders_text(clean_csv))(raw)
    warehouse = published_build.copy_to(tmp_path / "warehouse")
    before = warehouse.read_bytes()

    result = make_build(make_build_env(tmp_path, raw, warehouse))

    assert result.returncode != 0
    assert message in result.stdout, result.stdout[-2000:]
    assert "[critical] orders" in result.stdout
    assert "The raw gate failed" in result.stderr and "is unchanged" in result.stderr
    assert warehouse.read_bytes() == before


@pytest.fixture(scope="module")
def tolerated(clean_csv, tmp_path_factory) -> tuple[Path, str]:
    """`make build` of the clean export with both tolerated defects in its orders file: another
    delimiter (semicolons) and the header repeated inside the rows (one build for both tests)."""
    work = tmp_path_factory.mktemp("tolerated")
    raw = work / "raw"
    shutil.copytree(clean_csv, raw)
    text = orders_text(clean_csv)
    assert ";" not in text
    lines = text.replace(",", ";").splitlines(keepends=True)
    write_orders("".join([*lines[:100], lines[0], *lines[100:]]))(raw)
    warehouse = work / "warehouse" / "cvm.duckdb"
    result = make_build(make_build_env(work, raw, warehouse))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    return warehouse, result.stdout


def test_another_delimiter_is_detected_and_loses_no_row(clean_csv, tolerated):
    warehouse, _ = tolerated
    with duckdb.connect() as con:
        ((raw_orders,),) = con.execute(
            f"select count(*) from read_csv('{clean_csv / 'orders.csv'}')"
        ).fetchall()
    assert query(warehouse, "select count(*) from marts.fct_orders") == [(raw_orders,)]


def test_a_repeated_header_is_quarantined_with_a_warning(tolerated):
    warehouse, stdout = tolerated
    assert "[warning] orders.csv.repeated_header_rows" in stdout
    quarantined = query(
        warehouse,
        "select quarantine_reason from staging.stg_shop__quarantined_rows "
        "where source_table = 'orders' and raw_record like 'order_id=order_id;%'",
    )
    assert len(quarantined) == 1
