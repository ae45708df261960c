"""The generator's Arrow schemas of the raw contract's tables (the contract: cvm.contract).

customers(customer_id, signup_date, email, first_name, country, acquisition_channel),
orders(order_id, customer_id, ordered_at, status, order_total),
order_items(order_item_id, order_id, product_id, quantity, unit_price, discount_amount),
products(product_id, product_name, category, list_price, unit_cost),
complaints(complaint_id, customer_id, order_id, opened_at, resolved_at, category, severity,
compensation_amount), surveys(response_id, customer_id, responded_at, nps_score, csat_score,
share_of_wallet_pct), contacts(contact_id, customer_id, sent_at, channel, strategy, is_holdout,
responded, converted). Timestamps are naive, second precision; money has 2 decimals.

Separate because both sides use it: the modules that build the tables and the writer that
opens one file per table.
"""

from __future__ import annotations

import pyarrow as pa

from cvm import contract

TS = pa.timestamp("s")
SCHEMAS: dict[str, pa.Schema] = {
    "customers": pa.schema(
        [
            ("customer_id", pa.int64()),
            ("signup_date", pa.date32()),
            ("email", pa.string()),
            ("first_name", pa.string()),
            ("country", pa.string()),
            ("acquisition_channel", pa.string()),
        ]
    ),
    "orders": pa.schema(
        [
            ("order_id", pa.int64()),
            ("customer_id", pa.int64()),
            ("ordered_at", TS),
            ("status", pa.string()),
            ("order_total", pa.float64()),
        ]
    ),
    "order_items": pa.schema(
        [
            ("order_item_id", pa.int64()),
            ("order_id", pa.int64()),
            ("product_id", pa.int64()),
            ("quantity", pa.int32()),
            ("unit_price", pa.float64()),
            ("discount_amount", pa.float64()),
        ]
    ),
    "products": pa.schema(
        [
            ("product_id", pa.int64()),
            ("product_name", pa.string()),
            ("category", pa.string()),
            ("list_price", pa.float64()),
            ("unit_cost", pa.float64()),
        ]
    ),
    "complaints": pa.schema(
        [
            ("complaint_id", pa.int64()),
            ("customer_id", pa.int64()),
            ("order_id", pa.int64()),
            ("opened_at", TS),
            ("resolved_at", TS),
            ("category", pa.string()),
            ("severity", pa.string()),
            ("compensation_amount", pa.float64()),
        ]
    ),
    "surveys": pa.schema(
        [
            ("response_id", pa.int64()),
            ("customer_id", pa.int64()),
            ("responded_at", TS),
            ("nps_score", pa.int32()),
            ("csat_score", pa.int32()),
            ("share_of_wallet_pct", pa.int32()),
        ]
    ),
    "contacts": pa.schema(
        [
            ("contact_id", pa.int64()),
            ("customer_id", pa.int64()),
            ("sent_at", TS),
            ("channel", pa.string()),
            ("strategy", pa.string()),
            ("is_holdout", pa.bool_()),
            ("responded", pa.bool_()),
            ("converted", pa.bool_()),
        ]
    ),
}
# The contract's tables the generator writes (not credit_notes), in the contract's order.
TABLES = tuple(name for name in contract.load().table_names if name in SCHEMAS)
KEY_COLUMNS = {name: contract.load().table(name).key for name in TABLES}
