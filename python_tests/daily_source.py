"""The day-after-day scenario the daily-build tests share (test_incremental on DuckDB,
test_spark_build on Spark): yesterday's and today's raw files of the published build's shop.
Yesterday's source lacks the as-of day and after, some late orders and one late complaint;
today's changed source has changes of every age (deleted, returned, redated and corrected
orders, a re-costed product) and late credit notes."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import duckdb

# The published build's data: generated up to END_DATE, analysed as of a month earlier, so a
# rebuild as of END_DATE moves time forward like a daily production run. Yesterday's build
# is as of the day before the published one.
PUBLISHED_END_DATE = "2026-06-30"
PUBLISHED_AS_OF = "2026-05-31"
YESTERDAY = "2026-05-30"
# Orders that reach the source a day late (inside the 3-day lookback) and three weeks late.
LATE_INSIDE_LOOKBACK = ("2026-05-29", "2026-05-30")
LATE_OUTSIDE_LOOKBACK = "2026-05-10"


def raw_variant(source: Path, dest: Path, edits: dict[str, str]) -> Path:
    """The raw Parquet files of ``source`` in ``dest``, each file in ``edits`` replaced by a
    query on it (the file's rows are the relation ``source_rows``; ``{raw}`` is ``source``)."""
    shutil.copytree(source, dest)
    with duckdb.connect() as con:
        for name, sql in edits.items():
            path = dest / f"{name}.parquet"
            con.execute(
                f"copy (with source_rows as (select * from read_parquet('{path}')) "
                f"{sql.replace('{raw}', str(source))}) to '{path}.new' (format parquet)"
            )
            Path(f"{path}.new").replace(path)
    return dest


def held_back_orders() -> str:
    """Orders a build of yesterday has not received: the as-of day and after, some of the last
    two days' orders, and one day's orders three weeks back."""
    return f"""
        cast(ordered_at as date) >= date '{PUBLISHED_AS_OF}'
        or (cast(ordered_at as date) in ({", ".join(f"date '{d}'" for d in LATE_INSIDE_LOOKBACK)})
            and hash(order_id) % 3 = 0)
        or (cast(ordered_at as date) = date '{LATE_OUTSIDE_LOOKBACK}' and hash(order_id) % 3 = 0)
    """


# A complaint with compensation, opened long before the lookback, that reaches the source late:
# it lowers its customer's value in the tier history from its month on.
LATE_COMPLAINT = """
    complaint_id = (select min(complaint_id) from source_rows
                    where compensation_amount > 0
                      and opened_at >= date '2025-01-01' and opened_at < date '2025-04-01')
"""


def without_orders(condition: str) -> dict[str, str]:
    """Edits removing the orders matching ``condition`` and their lines."""
    return {
        "orders": f"select * from source_rows where not ({condition})",
        "order_items": f"""
            select * from source_rows where order_id not in (
                select order_id from read_parquet('{{raw}}/orders.parquet') where {condition})
        """,
    }


# Changes to the source at every age: deleted orders (old, inside the lookback, and every order
# of one customer), an old order returned, an old line corrected, a product re-costed, and a
# recent order's date corrected to before every other order (the rebuild must start there, not
# at its stored date, or the order falls between the kept days and the rebuilt ones).
DELETED_ORDERS = f"""
    order_id in (select order_id from read_parquet('{{raw}}/orders.parquet')
                 where cast(ordered_at as date) between date '2025-03-01' and date '2025-03-03'
                   and hash(order_id) % 5 = 0)
    or (cast(ordered_at as date) = date '{LATE_INSIDE_LOOKBACK[0]}' and hash(order_id) % 4 = 1)
    or customer_id = (select min(customer_id) from read_parquet('{{raw}}/orders.parquet')
                      where cast(ordered_at as date) < date '2024-01-01')
"""
REDATED_ORDER = f"""
    order_id = (select min(order_id) from source_rows
                where cast(ordered_at as date) = date '{LATE_OUTSIDE_LOOKBACK}'
                  and not ({DELETED_ORDERS}))
"""
CHANGED_SOURCE = {
    "orders": f"""
        select * replace (
            case when order_id = (select min(order_id) from source_rows
                                  where status = 'completed' and ordered_at < date '2025-06-01'
                                    and not ({DELETED_ORDERS}))
                 then 'returned' else status end as status,
            case when {REDATED_ORDER}
                 then (select min(ordered_at) from source_rows) - interval 1 day
                 else ordered_at end as ordered_at)
        from source_rows where not ({DELETED_ORDERS})
    """,
    "order_items": f"""
        select * replace (
            case when order_item_id = (select min(order_item_id) from source_rows)
                 then quantity + 1 else quantity end as quantity)
        from source_rows where order_id not in (
            select order_id from read_parquet('{{raw}}/orders.parquet') where {DELETED_ORDERS})
    """,
    "products": """
        select * replace (
            case when product_id = (select min(product_id) from source_rows)
                 then unit_cost * 2 else unit_cost end as unit_cost)
        from source_rows
    """,
}


def add_late_credit_notes(raw: Path) -> None:
    """A credit-notes file arriving with today's source (the orders in ``raw`` are today's, so
    none is deleted): half of one old order refunded (written negative, as exports do) and
    another old order refunded in full."""
    with duckdb.connect() as con:
        con.execute(
            f"""
            copy (
                with old as (
                    select order_id, ordered_at, order_total
                    from read_parquet('{raw}/orders.parquet')
                    where status = 'completed' and ordered_at < date '2025-01-01'
                      and order_total > 1
                    order by order_id limit 2
                )
                select 'cn-' || order_id as credit_note_id, order_id,
                       ordered_at + interval 3 day as credited_at,
                       case when row_number() over (order by order_id) = 1
                            then -round(order_total / 2, 2) else order_total end as amount
                from old
            ) to '{raw}/credit_notes.parquet' (format parquet)
            """
        )


@dataclass(frozen=True)
class DailySource:
    """Yesterday's raw files (``yesterday``) and today's changed ones (``changed``), both made
    from one shop's raw files (today's plain source: the late rows arrived, nothing changed)."""

    yesterday: Path
    changed: Path


def split_into_days(base: Path, work: Path) -> DailySource:
    """Yesterday's and today's changed raw files of the shop in ``base``, under ``work``."""
    held_back = without_orders(held_back_orders()) | {
        "complaints": f"select * from source_rows where not ({LATE_COMPLAINT})"
    }
    changed = raw_variant(base, work / "raw_changed", CHANGED_SOURCE)
    add_late_credit_notes(changed)
    return DailySource(raw_variant(base, work / "raw_yesterday", held_back), changed)
