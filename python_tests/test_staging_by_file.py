"""Staging by file (doc block `staging_by_file`): on yesterday's warehouse, staging parses only
the orders' and lines' files it has not stored, and stages every file again whenever a stored
row's verdict could change; either way its tables equal a full refresh of the same raw files.

A hand-written shop whose orders and lines arrive as one CSV file a day, with a future-dated
order, an order of an unknown customer and a line of an order not yet delivered."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from dbt_project import SAVED_PARSE_WAREHOUSE, query, run_dbt

pytestmark = pytest.mark.slow

YESTERDAY = "2026-06-02"
TODAY = "2026-06-03"
CUSTOMERS = """customer_id,signup_date
c1,2026-01-01
c2,2026-01-02
c3,2026-01-03
"""
# Per file: orders (order_id, customer_id, ordered_at, status, order_total), then lines
# (order_item_id, order_id, product_id, quantity, unit_price).
ORDERS = {
    "2026-06-01": [
        "o1,c1,2026-06-01 10:00,completed,10.00",
        "o2,c2,2026-06-01 11:00,completed,20.00",
        "o3,c9,2026-06-01 12:00,completed,30.00",  # c9: no such customer (yet)
    ],
    "2026-06-02": [
        "o4,c3,2026-06-02 09:00,completed,40.00",
        "o5,c1,2026-06-05 09:00,completed,50.00",  # dated after the as-of day
    ],
}
LINES = {
    "2026-06-01": [
        "i1,o1,p1,1,10.00",
        "i2,o2,p1,2,10.00",
        "i3,o6,p1,1,5.00",  # o6 comes later
    ],
    "2026-06-02": ["i4,o4,p1,4,10.00"],
}
NEW_DAY_ORDERS = ["o7,c2,2026-06-03 08:00,completed,70.00"]
NEW_DAY_LINES = ["i5,o7,p1,7,10.00"]
ORDER_COLUMNS = "order_id,customer_id,ordered_at,status,order_total"
LINE_COLUMNS = "order_item_id,order_id,product_id,quantity,unit_price"
# Every column, the raw record of quarantined rows included.
COMPARED = ("base_shop__orders", "base_shop__order_items")


def write_day(raw: Path, table: str, day: str, header: str, rows: list[str]) -> None:
    (raw / table).mkdir(exist_ok=True)
    (raw / table / f"{day}.csv").write_text("\n".join([header, *rows]) + "\n")


def write_raw(raw: Path) -> Path:
    raw.mkdir()
    (raw / "customers.csv").write_text(CUSTOMERS)
    for day, rows in ORDERS.items():
        write_day(raw, "orders", day, ORDER_COLUMNS, rows)
    for day, rows in LINES.items():
        write_day(raw, "order_items", day, LINE_COLUMNS, rows)
    return raw


def stage(raw: Path, warehouse: Path, work: Path, as_of: str, *args: str) -> str:
    result = run_dbt("run", raw, warehouse, work, "--select", "staging", *args, as_of=as_of)
    assert result.returncode == 0, result.stdout[-3000:]
    return result.stdout


def said(log: str, model: str) -> str:
    """What the pre-hook of ``model`` logged."""
    lines = [line.split(f"{model}: ", 1)[1] for line in log.splitlines() if f"{model}: " in line]
    assert len(lines) == 1, log[-3000:]
    return lines[0]


@pytest.fixture(scope="module")
def yesterday(tmp_path_factory) -> tuple[Path, Path]:
    """Yesterday's raw files and the warehouse staged from them."""
    work = tmp_path_factory.mktemp("yesterday")
    raw = write_raw(work / "raw")
    stage(raw, work / "cvm.duckdb", work, YESTERDAY)
    return raw, work / "cvm.duckdb"


def new_day(raw: Path) -> None:
    write_day(raw, "orders", TODAY, ORDER_COLUMNS, NEW_DAY_ORDERS)
    write_day(raw, "order_items", TODAY, LINE_COLUMNS, NEW_DAY_LINES)


def changed_and_vanished_files(raw: Path) -> None:
    """o2's total corrected in place (the same size: the modification time tells), and
    yesterday's lines withdrawn."""
    new_day(raw)
    write_day(
        raw,
        "orders",
        "2026-06-01",
        ORDER_COLUMNS,
        [row.replace("20.00", "21.00") for row in ORDERS["2026-06-01"]],
    )
    (raw / "order_items" / "2026-06-02.csv").unlink()


def key_delivered_again(raw: Path) -> None:
    """The new day's file corrects yesterday's o4."""
    write_day(
        raw,
        "orders",
        TODAY,
        ORDER_COLUMNS,
        [*NEW_DAY_ORDERS, "o4,c3,2026-06-02 09:00,completed,41.00"],
    )
    write_day(raw, "order_items", TODAY, LINE_COLUMNS, NEW_DAY_LINES)


def customer_arrives(raw: Path) -> None:
    new_day(raw)
    (raw / "customers.csv").write_text(CUSTOMERS + "c9,2026-01-09\n")


def customer_refused(raw: Path) -> None:
    """c2 is delivered again with a signup date that cannot be read: o2 and o7 lose their
    customer."""
    new_day(raw)
    (raw / "customers.csv").write_text(CUSTOMERS.replace("c2,2026-01-02", "c2,yesterday"))


def order_arrives(raw: Path) -> None:
    write_day(
        raw,
        "orders",
        TODAY,
        ORDER_COLUMNS,
        [*NEW_DAY_ORDERS, "o6,c1,2026-06-03 12:00,completed,5.00"],
    )
    write_day(raw, "order_items", TODAY, LINE_COLUMNS, NEW_DAY_LINES)


APPENDED = "1 new raw file(s) to stage, the stored ones kept"
NOTHING_NEW = "0 new raw file(s) to stage, the stored ones kept"
# scenario: (change to yesterday's raw files, as-of date, what the log says of orders, of lines)
SCENARIOS: dict[str, tuple[Callable[[Path], None], str, str, str]] = {
    "a new day": (new_day, TODAY, APPENDED, APPENDED),
    "nothing new": (lambda raw: None, YESTERDAY, NOTHING_NEW, NOTHING_NEW),
    "a changed and a vanished file": (
        changed_and_vanished_files,
        TODAY,
        "1 stored raw file(s) changed or gone",
        "1 stored raw file(s) changed or gone",
    ),
    "a key delivered again": (
        key_delivered_again,
        TODAY,
        "1 new row(s) with a key already stored",
        APPENDED,
    ),
    "the as-of date passes a future-dated order": (
        new_day,
        "2026-06-05",
        "1 stored row(s) on the other side of the new as-of cutoff",
        APPENDED,
    ),
    "an unknown customer arrives": (
        customer_arrives,
        TODAY,
        "1 stored row(s) whose customer_id was accepted or refused since",
        APPENDED,
    ),
    "a customer is refused": (
        customer_refused,
        TODAY,
        "1 stored row(s) whose customer_id was accepted or refused since",
        "1 stored row(s) whose order_id was accepted or refused since",
    ),
    "a missing order arrives": (
        order_arrives,
        TODAY,
        APPENDED,
        "1 stored row(s) whose order_id was accepted or refused since",
    ),
}


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_staging_by_file_equals_a_full_refresh(yesterday, tmp_path, scenario):
    change, as_of, orders_said, lines_said = SCENARIOS[scenario]
    raw = tmp_path / "raw"
    shutil.copytree(yesterday[0], raw)  # keeps the files' modification times
    change(raw)
    # Each warehouse in a directory of its own, named as the run's saved parse (dbt_project);
    # the queries name the daily one as DuckDB does, after its file, the other as attached.
    daily = tmp_path / "daily" / SAVED_PARSE_WAREHOUSE
    daily.parent.mkdir()
    shutil.copy(yesterday[1], daily)
    log = stage(raw, daily, daily.parent, as_of)
    assert orders_said in said(log, "base_shop__orders")
    assert lines_said in said(log, "base_shop__order_items")
    refreshed = tmp_path / "refreshed" / SAVED_PARSE_WAREHOUSE
    stage(raw, refreshed, refreshed.parent, as_of)
    for table in COMPARED:
        daily_rows, refreshed_rows = (
            f"select * from {name}.staging.{table}" for name in (daily.stem, "refreshed")
        )
        differing = query(
            daily,
            f"attach '{refreshed}' as refreshed (read_only); select count(*) from ("
            f"({daily_rows} except all {refreshed_rows}) "
            f"union all ({refreshed_rows} except all {daily_rows}))",
        )
        assert differing == [(0,)], f"{table} differs from a full refresh after {scenario}"
    if orders_said == APPENDED:
        # The stored rows were kept, not staged again.
        kept = query(
            daily, "select count(distinct staged_at) from staging.base_shop__orders__raw_files"
        )
        assert kept == [(2,)]
