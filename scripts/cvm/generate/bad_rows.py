"""The injected bad rows: rows with exactly one defect each, for staging to catch.

``--inject-bad-rows`` appends, as a last row group, extra rows with exactly one defect each
(``BAD_ROW_KINDS``; counts in the manifest under ``bad_rows``). Clean rows are untouched, injected
rows get fresh ids (or ids far beyond every real id for unknown references) and nothing refers to
them. In that mode date and timestamp columns are strings in Parquet as well.

Separate because it works on finished tables only: it takes clean rows as templates and never
touches the processes that made them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from cvm.generate._vectors import IntArray
from cvm.generate.customers import IdStart
from cvm.generate.parameters import N_PRODUCTS, Window
from cvm.generate.schemas import KEY_COLUMNS, TABLES

# Bad rows: file -> reason codes (the staging layer's codes).
BAD_ROW_KINDS: dict[str, tuple[str, ...]] = {
    "customers": ("null_key", "duplicate_key", "unparseable_date", "future_date"),
    "orders": (
        "null_key",
        "duplicate_key",
        "negative_amount",
        "unknown_customer",
        "unparseable_date",
        "future_date",
        "invalid_status",
    ),
    "order_items": ("null_key", "duplicate_key", "negative_amount", "unknown_order"),
    "products": ("null_key", "duplicate_key", "negative_amount"),
    "complaints": (
        "null_key",
        "duplicate_key",
        "unknown_customer",
        "unparseable_date",
        "future_date",
    ),
    "surveys": (
        "null_key",
        "duplicate_key",
        "unknown_customer",
        "unparseable_date",
        "future_date",
        "out_of_range",
    ),
    "contacts": (
        "null_key",
        "duplicate_key",
        "unknown_customer",
        "unparseable_date",
        "future_date",
    ),
}
UNKNOWN_ID_BASE = 1_000_000_000_000  # references to ids that no row has
FUTURE_YEARS = 50
BAD_DATES = ("2024-02-30", "not a date", "31/12/2024", "2023-13-01")
BAD_TIMESTAMPS = ("2024-02-30 10:00:00", "not a date", "31/12/2024 10:00", "2023-13-01 08:00:00")
INVALID_STATUSES = ("shipped", "COMPLETE?", "pending", "on_hold")

DATE_COLUMNS = {
    "customers": "signup_date",
    "orders": "ordered_at",
    "complaints": "opened_at",
    "surveys": "responded_at",
    "contacts": "sent_at",
}


def stringify_dates(table: pa.Table) -> pa.Table:
    """Date/timestamp columns as 'YYYY-MM-DD' / 'YYYY-MM-DD HH:MM:SS' strings."""
    for i, f in enumerate(table.schema):
        if pa.types.is_date(f.type) or pa.types.is_timestamp(f.type):
            table = table.set_column(i, f.name, table.column(i).cast(pa.string()))
    return table


def bad_row_count(rate: float, clean_rows: int) -> int:
    """Rows to inject per kind: max(3, round half up(rate * clean rows))."""
    return max(3, math.floor(rate * clean_rows + 0.5))


def _set(table: pa.Table, column: str, values: Any) -> pa.Table:
    i = table.schema.get_field_index(column)
    return table.set_column(i, column, pa.array(values, table.schema.field(i).type))


def _future_day(window: Window, n: int) -> list[str]:
    base = window.end_date + timedelta(days=round(FUTURE_YEARS * 365.25))
    return [(base + timedelta(days=i % 30)).isoformat() for i in range(n)]


def _future_ts(window: Window, n: int) -> list[str]:
    base = datetime.combine(window.end_date, datetime.min.time()) + timedelta(
        days=round(FUTURE_YEARS * 365.25)
    )
    return [(base + timedelta(days=i % 30, seconds=37_000 + i)).isoformat(" ") for i in range(n)]


def _cycle(values: Sequence[Any], n: int) -> list[Any]:
    return [values[i % len(values)] for i in range(n)]


class _IdCounter:
    """Hands out consecutive ids starting at ``start``."""

    def __init__(self, start: int) -> None:
        self.next = start

    def take(self, n: int) -> np.ndarray:
        ids = np.arange(self.next, self.next + n, dtype=np.int64)
        self.next += n
        return ids


def _renumber(text: pa.ChunkedArray, numbers: IntArray, width: int) -> pa.Array:
    """Replace the last group of digits in every value with ``numbers`` (zero padded).

    Injected customers and products get fresh ids, and their email or name follows suit so
    that it stays unique (a duplicated email or name would be a second defect).
    """
    parts = pc.extract_regex(text, r"^(?P<head>.*?)(?P<num>\d+)(?P<tail>\D*)$")
    digits = pc.utf8_lpad(pc.cast(pa.array(numbers), pa.string()), width, "0")
    head, tail = pc.struct_field(parts, "head"), pc.struct_field(parts, "tail")
    return pc.binary_join_element_wise(head, digits, tail, "")


def _defect(
    name: str,
    code: str,
    rows: pa.Table,
    *,
    window: Window,
    fresh: _IdCounter,
    unknown: _IdCounter,
) -> pa.Table:
    """Give template rows (string dates) exactly one defect of kind ``code`` and fresh keys."""
    n = rows.num_rows
    key = KEY_COLUMNS[name]
    if code == "duplicate_key":
        return rows
    fresh_ids = fresh.take(n)
    rows = _set(rows, key, fresh_ids)
    if name == "customers":
        rows = _set(rows, "email", _renumber(rows.column("email"), fresh_ids, 1))
    if name == "products":
        name_col = rows.column("product_name")
        rows = _set(rows, "product_name", _renumber(name_col, fresh_ids, 5))
    if code == "null_key":
        return _set(rows, key, [None] * n)
    date_col = DATE_COLUMNS.get(name, "")
    date_defect = code in ("unparseable_date", "future_date")
    if name == "complaints" and (date_defect or code == "unknown_customer"):
        # A resolution before the bad opening time, or an order of another customer, would be a
        # second defect: such complaints are open and refer to no order.
        rows = _set(rows, "resolved_at", [None] * n)
        rows = _set(rows, "order_id", [None] * n)
    if code == "unparseable_date":
        return _set(rows, date_col, _cycle(BAD_DATES if name == "customers" else BAD_TIMESTAMPS, n))
    if code == "future_date":
        return _set(rows, date_col, (_future_day if name == "customers" else _future_ts)(window, n))
    if code == "unknown_customer":
        return _set(rows, "customer_id", unknown.take(n))
    if code == "unknown_order":
        return _set(rows, "order_id", unknown.take(n))
    if code == "invalid_status":
        return _set(rows, "status", _cycle(INVALID_STATUSES, n))
    if code == "negative_amount":
        return _negative_amount(name, rows)
    if code == "out_of_range":
        return _out_of_range(rows)
    raise ValueError(f"unknown bad row kind {name}.{code}")


def _negative_amount(name: str, rows: pa.Table) -> pa.Table:
    if name == "orders":
        return _set(rows, "order_total", pc.negate(rows.column("order_total")))
    if name == "products":
        return _set(rows, "list_price", pc.negate(rows.column("list_price")))
    # order_items: alternate a negative quantity and a negative unit price.
    even = np.arange(rows.num_rows) % 2 == 0
    qty = rows.column("quantity").to_numpy()
    price = rows.column("unit_price").to_numpy()
    rows = _set(rows, "quantity", np.where(even, -qty, qty).astype(np.int32))
    return _set(rows, "unit_price", np.where(even, price, -price))


def _out_of_range(rows: pa.Table) -> pa.Table:
    """Cycle through nps 11..15, csat 0/6 and share of wallet 101..150 (one field per row)."""
    i = np.arange(rows.num_rows)
    replacements = (
        ("nps_score", 11 + i % 5),
        ("csat_score", np.where(i % 2 == 0, 6, 0)),
        ("share_of_wallet_pct", 101 + i % 50),
    )
    for which, (column, bad) in enumerate(replacements):
        hit = i % 3 == which
        old = rows.column(column)
        values = pc.if_else(pa.array(hit), pa.array(bad.astype(np.int32)), old)
        rows = _set(rows, column, values)
    return rows


def make_bad_rows(
    rng: np.random.Generator,
    name: str,
    pool: pa.Table,
    clean_rows: int,
    *,
    rate: float,
    window: Window,
    fresh: _IdCounter,
    unknown: _IdCounter,
) -> tuple[pa.Table, dict[str, int]]:
    """Injected rows of one file (string dates) and their count per reason code."""
    counts: dict[str, int] = {}
    parts: list[pa.Table] = []
    for code in BAD_ROW_KINDS[name]:
        n = bad_row_count(rate, clean_rows) if pool.num_rows else 0
        # Distinct templates where possible so that each duplicate copies its own clean row.
        idx = rng.choice(pool.num_rows, n, replace=n > pool.num_rows) if n else np.array([], int)
        templates = pool.take(pa.array(np.sort(idx), pa.int64()))
        parts.append(_defect(name, code, templates, window=window, fresh=fresh, unknown=unknown))
        counts[code] = n
    schema = parts[0].schema if parts else pool.schema
    return pa.concat_tables([p.cast(schema) for p in parts]), counts


def pool_sample(rng: np.random.Generator, table: pa.Table, rate: float) -> pa.Table:
    """Random clean rows kept as templates for the bad rows (enough for every kind)."""
    keep = min(table.num_rows, math.ceil(rate * table.num_rows) + 3)
    idx = np.sort(rng.choice(table.num_rows, keep, replace=False))
    return table.take(pa.array(idx, pa.int64()))


def bad_row_tables(
    rngs: dict[str, np.random.Generator],
    pools: dict[str, list[pa.Table]],
    schemas: dict[str, pa.Schema],
    clean: dict[str, int],
    next_ids: IdStart,
    *,
    rate: float,
    window: Window,
) -> dict[str, tuple[pa.Table, dict[str, int]]]:
    """Bad rows of every file, with fresh ids after the last clean id of each file."""
    fresh_start = {
        "customers": next_ids.customer,
        "orders": next_ids.order,
        "order_items": next_ids.order_item,
        "products": N_PRODUCTS + 1,
        "complaints": next_ids.complaint,
        "surveys": next_ids.response,
        "contacts": next_ids.contact,
    }
    unknown = _IdCounter(UNKNOWN_ID_BASE)  # shared, so every unknown reference is distinct
    tables = {}
    for name in TABLES:
        pool = pa.concat_tables(pools[name]) if pools[name] else schemas[name].empty_table()
        tables[name] = make_bad_rows(
            rngs[name],
            name,
            pool,
            clean[name],
            rate=rate,
            window=window,
            fresh=_IdCounter(fresh_start[name]),
            unknown=unknown,
        )
    return tables
