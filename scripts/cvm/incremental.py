"""Where the source changed before the incremental window (doc block `incremental_orders`).

`make build` rebuilds staging first, then asks here for the earliest order date at which the
freshly staged orders, order lines and products differ from the order facts the last build
stored, or the staged complaints' compensation from the monthly blocks of its tier history.
The marts are then built with `reprocess_orders_from` set to that date (for complaints,
`reprocess_tier_months_from`: they change the tier history, not the order facts), so that a
change of any age (a late order, a deletion, a corrected line, a re-costed product, a late
complaint's compensation) gives the same marts as a full refresh, at the cost of rebuilding
only from that date.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import duckdb

from cvm.manifest import public_view
from cvm.relations import Relations

FACTS = ("fct_orders", "fct_order_items")
# What the last build stored that the checks below compare staging with.
STORED = (*FACTS, "int_orders_aggregated_to_customer_months")

# Each query returns the earliest order date among rows that differ, or null. Orders and lines
# compare by key and every source column (a hash per row keeps the join narrow; an order's
# credit notes count as its columns, so a late credit note reprocesses the order it refunds),
# dated by the earlier of the stored and the staged date: an order redated to before its
# stored day must be rebuilt from its new day (the facts keep every day before the reprocess
# date and append only the days after the last one kept). Products by the attributes the lines
# copy from them, dated by the earliest line of a changed product.
CHANGED_ORDERS = """
    with credited as (
        select order_id, cast(sum(amount) as decimal(18, 2)) as credited_amount
        from {stg_shop__credit_notes}
        group by order_id
    ),
    staged as (
        select orders.order_id, cast(orders.ordered_at as date) as order_date,
               hash(orders.customer_id, orders.ordered_at, orders.status, orders.order_total,
                    coalesce(credited.credited_amount, cast(0 as decimal(18, 2)))) as row_hash
        from {stg_shop__orders} as orders
        left join credited on orders.order_id = credited.order_id
    ),
    stored as (
        select order_id, order_date,
               hash(customer_id, ordered_at, exported_status, order_total, credited_amount)
                   as row_hash
        from {fct_orders}
    )
    select min(least(stored.order_date, staged.order_date))
    from staged full join stored on staged.order_id = stored.order_id
    where staged.row_hash is distinct from stored.row_hash
"""

CHANGED_ORDER_LINES = """
    with staged as (
        select order_item_id, order_id,
               hash(order_id, product_id, quantity, unit_price, discount_amount) as row_hash
        from {stg_shop__order_items}
    ),
    stored as (
        select order_item_id, order_date,
               hash(order_id, product_id, quantity, unit_price, discount_amount) as row_hash
        from {fct_order_items}
    ),
    changed as (
        select stored.order_date, staged.order_id
        from staged full join stored on staged.order_item_id = stored.order_item_id
        where staged.row_hash is distinct from stored.row_hash
    )
    select min(least(changed.order_date, cast(orders.ordered_at as date)))
    from changed left join {stg_shop__orders} as orders on changed.order_id = orders.order_id
"""

CHANGED_PRODUCTS = """
    with stored as (
        select distinct product_id, product_category, list_price, unit_cost
        from {fct_order_items}
    ),
    changed as (
        select stored.product_id
        from stored left join {stg_shop__products} as products
            on stored.product_id = products.product_id
        where stored.product_category is distinct from products.category
            or stored.list_price is distinct from products.list_price
            or stored.unit_cost is distinct from products.unit_cost
    )
    select min(order_date) from {fct_order_items}
    where product_id in (select product_id from changed)
"""

# Complaints by the only thing of theirs the incremental tier history reads: the compensation
# per customer and month (a complaint resolved or re-categorised later rebuilds nothing). The
# first day of the earliest month that differs.
CHANGED_COMPLAINTS = """
    with staged as (
        select customer_id, cast(date_trunc('month', opened_at) as date) as activity_month,
               sum(compensation_amount) as complaint_compensation
        from {stg_shop__complaints}
        group by customer_id, cast(date_trunc('month', opened_at) as date)
    ),
    stored as (
        select customer_id, activity_month, complaint_compensation
        from {int_orders_aggregated_to_customer_months}
        where complaint_compensation <> 0
    )
    select min(coalesce(stored.activity_month, staged.activity_month))
    from staged full join stored
        on staged.customer_id = stored.customer_id
        and staged.activity_month = stored.activity_month
    where coalesce(staged.complaint_compensation, 0) <> coalesce(stored.complaint_compensation, 0)
"""

CHECKS = {
    "orders": CHANGED_ORDERS,
    "order lines": CHANGED_ORDER_LINES,
    "products": CHANGED_PRODUCTS,
    "complaints": CHANGED_COMPLAINTS,
}


# Changes that reach the order facts; the others (complaints) only the tier history.
ORDER_FACT_CHANGES = ("orders", "order lines", "products")


@dataclass(frozen=True)
class ReprocessPlan:
    """What the marts' dbt step rebuilds after source changes: the order facts (and the tier
    history) from ``orders_from`` (var reprocess_orders_from; None: the lookback only), the tier
    history also from the month of ``tier_months_from`` (var reprocess_tier_months_from)."""

    orders_from: str | None
    tier_months_from: str | None
    message: str


def reprocess_plan(changes: dict[str, dt.date], requested: str | None) -> ReprocessPlan:
    """The reprocess dates for the earliest changes per kind (earliest_source_changes) and a
    backfill date the user ``requested`` (it wins when earlier). A late complaint rebuilds the
    tier history from its month, not a month of order facts as well."""
    order_days = [changes[kind].isoformat() for kind in ORDER_FACT_CHANGES if kind in changes]
    orders_from = min([*order_days, *([requested] if requested else [])], default=None)
    tier_day = changes["complaints"].isoformat() if "complaints" in changes else None
    if tier_day is not None and orders_from is not None and orders_from <= tier_day:
        tier_day = None  # the order facts' date covers the tier history's
    if tier_day is None:
        rebuilt = (
            f"the order facts and the tier history are rebuilt from {orders_from} "
            f"(reprocess_orders_from)"
        )
    elif orders_from is None:
        rebuilt = (
            f"the tier history is rebuilt from {tier_day} (reprocess_tier_months_from), the "
            f"order facts over the lookback only"
        )
    else:
        rebuilt = (
            f"the order facts are rebuilt from {orders_from} (reprocess_orders_from), the tier "
            f"history from {tier_day} (reprocess_tier_months_from)"
        )
    found = ", ".join(f"{kind} from {day}" for kind, day in changes.items())
    message = f"The source changed since the last build ({found}): {rebuilt}."
    return ReprocessPlan(orders_from, tier_day, message)


def stored_columns_expected(node: dict[str, Any], manifest: dict[str, Any]) -> set[str]:
    """The columns a model's table must have: its own contract's; for an intermediate table
    behind a public view, the view's contract (it selects them all); else the columns its YAML
    documents (every incremental model documents all it stores: python_tests/test_incremental.py
    checks a fresh build). Empty when none are listed."""
    contracted = node if node["config"].get("contract", {}).get("enforced") else None
    listed = contracted or public_view(node, manifest) or node
    return {name.lower() for name in listed["columns"]}


def stale_incremental_models(con: duckdb.DuckDBPyConnection, manifest: dict[str, Any]) -> list[str]:
    """Incremental models stored with other columns than their contract now has (built by an
    earlier version of the project): an incremental run of them would fail, so they need a
    full refresh. Models not stored yet are not stale."""
    stale = []
    for node in manifest["nodes"].values():
        if node["resource_type"] != "model" or node["config"].get("materialized") != "incremental":
            continue
        expected = stored_columns_expected(node, manifest)
        stored = {
            name.lower()
            for (name,) in con.execute(
                "select column_name from information_schema.columns "
                "where table_schema = ? and table_name = ?",
                [node["schema"], node["alias"]],
            ).fetchall()
        }
        if stored and expected and stored != expected:
            stale.append(f"{node['schema']}.{node['alias']}")
    return sorted(stale)


def facts_stored(relations: Relations) -> bool:
    """Whether an earlier build stored the order facts (and the monthly blocks) the new
    staging is compared with."""
    return all(stored in relations for stored in STORED)


def earliest_source_changes(
    con: duckdb.DuckDBPyConnection, relations: Relations | None = None
) -> dict[str, dt.date] | None:
    """The earliest changed order date per kind of change (kinds without changes left out;
    empty: the source equals the stored facts). None when the facts were never built: there is
    nothing to compare with, and the build creates them in full.
    ``con`` may be cvm.spark_warehouse's connection, with its ``relations``: the SQL is
    portable (each engine's own row hash compares rows it stored itself)."""
    relations = Relations(con) if relations is None else relations
    if not facts_stored(relations):
        return None
    changes = {}
    for kind, sql in CHECKS.items():
        (earliest,) = con.execute(sql.format_map(relations)).fetchone()
        if earliest is not None:
            changes[kind] = earliest
    return changes
