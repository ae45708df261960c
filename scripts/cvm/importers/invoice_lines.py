"""Convert an invoice-line export into the warehouse's raw file contract.

Many shops can only export one row per invoice line (the shape of the public "Online Retail"
data sets: InvoiceNo, StockCode, Description, Quantity, InvoiceDate, UnitPrice, CustomerID,
Country). :func:`convert` turns such a file (CSV or Parquet) into ``customers.csv``,
``orders.csv``, ``order_items.csv``, ``products.csv`` and ``credit_notes.csv`` for CVM_RAW_DIR,
plus ``unattributed_lines.csv``: the lines without a customer id, which a customer-value
warehouse cannot attribute to anyone, set aside with their original values and counted.

Lines
-----
Every line with a customer is exactly one of: a *zero-quantity* line (quantity 0, ignored but
counted, whatever its invoice number), a *credit line* (invoice number starting with the credit
prefix, default ``C``, case-insensitive; or quantity < 0; or unit price < 0), or a *purchase
line* (every other line). An invoice with at least one purchase line is a completed order whose
total is the sum of quantity x unit price over its purchase lines; its items are numbered
``<invoice>-1``, ``<invoice>-2``, ... over those purchase lines in input order. A customer's
signup date is their first invoice date (such exports carry no registration date), their country
that of their most recent line naming one. Sums are rounded to cents after summing.

Credit notes: the matching rule
-------------------------------
These exports record a cancellation or return as a separate negative invoice that does not say
which invoice it refunds. A credit line refunds |quantity| units at |unit price| each. It is
matched to the same customer's purchase lines of the same product at or before its timestamp,
most recent first (a return usually concerns the latest purchase); each purchase line absorbs
at most its quantity not yet credited by earlier credit lines. Events are processed per
(customer, product) in time order, purchases before credits at equal timestamps, and lines with
equal timestamps in input order (a later line counts as more recent). A quantity q allocated to
a purchase line credits q x the credit line's |unit price| to that line's invoice. Quantity that
finds no purchase line left (the purchase predates the export, another product was bought, the
credit line has no product, ...) is *unmatched*. ``credit_notes.csv`` gets one row per (credit
invoice, original invoice) with a matched amount > 0, id ``<credit invoice>:<original
invoice>``, and one row per credit invoice with an unmatched amount > 0, id ``<credit
invoice>:unmatched`` and an empty order_id (staging quarantines it with a reason: visible, not
counted). credited_at is the credit invoice's earliest line timestamp; amounts are positive.
"""

from __future__ import annotations

import codecs
import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

ROLE_ALIASES: dict[str, tuple[str, ...]] = {
    "invoice": ("InvoiceNo", "Invoice", "invoice_id"),
    "product": ("StockCode", "product_id", "sku"),
    "description": ("Description", "product_name"),
    "quantity": ("Quantity",),
    "timestamp": ("InvoiceDate", "invoice_date", "date"),
    "unit_price": ("UnitPrice", "Price", "unit_price"),
    "customer": ("CustomerID", "Customer ID", "customer_id"),
    "country": ("Country",),
}
REQUIRED_ROLES = ("invoice", "quantity", "timestamp", "unit_price", "customer")
CSV_SUFFIXES = (".csv", ".tsv", ".txt")
PARQUET_SUFFIXES = (".parquet", ".pq")
DELIMITERS = (",", ";", "\t", "|")
US_FORMATS = ("%m/%d/%Y %H:%M:%S", "%m/%d/%Y %H:%M", "%m/%d/%Y", "%m/%d/%Y %I:%M:%S %p")
US_FORMATS += ("%m/%d/%Y %I:%M %p", "%m/%d/%y %H:%M:%S", "%m/%d/%y %H:%M", "%m/%d/%y")
MISSING_IDS = ("nan", "none", "null")
UTC_OFFSET = r"(?<=\d)(?:Z|[+-]\d\d:?\d\d)$"
TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S"
SAMPLES = 5
EPSILON = 1e-9

OUTPUT_COLUMNS: dict[str, tuple[str, ...]] = {
    "customers": ("customer_id", "signup_date", "country"),
    "orders": ("order_id", "customer_id", "ordered_at", "status", "order_total"),
    "order_items": ("order_item_id", "order_id", "product_id", "quantity", "unit_price"),
    "products": ("product_id", "product_name"),
    "credit_notes": ("credit_note_id", "order_id", "customer_id", "credited_at", "amount"),
}
UNATTRIBUTED = "unattributed_lines"


class InputError(ValueError):
    """The input cannot be converted as it is; the message says what to change."""


@dataclass(frozen=True)
class Report:
    """What :func:`convert` did. The input lines are partitioned: input_lines =
    lines_without_customer + zero_quantity_lines + purchase_lines + credit_lines (the last three
    count lines with a customer). amount_without_customer is quantity x unit price summed over
    the lines without a customer that would otherwise be purchase lines."""

    input_path: Path
    input_lines: int
    lines_without_customer: int
    amount_without_customer: float
    zero_quantity_lines: int
    purchase_lines: int
    credit_lines: int
    orders: int
    customers: int
    products: int
    credit_notes_matched: int
    amount_matched: float
    credit_notes_unmatched: int
    amount_unmatched: float
    out_dir: Path
    outputs: tuple[Path, ...]


def read_input(path: Path, encoding: str = "utf-8") -> pd.DataFrame:
    """The export as read: CSV values stay text (delimiter sniffed), Parquet keeps its types."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"Input file {path} not found.")
    suffix = path.suffix.lower()
    if suffix in PARQUET_SUFFIXES:
        try:
            return pd.read_parquet(path)
        except (OSError, ValueError) as exc:
            raise InputError(f"Cannot read {path} as Parquet: {exc}") from exc
    if suffix not in CSV_SUFFIXES:
        supported = ", ".join(CSV_SUFFIXES + PARQUET_SUFFIXES)
        raise InputError(f"Unsupported input {path}: expected one of {supported}.")
    try:
        codec = codecs.lookup(encoding).name
    except LookupError as exc:
        raise InputError(f"Unknown encoding {encoding!r}.") from exc
    if codec == "utf-8":
        codec = "utf-8-sig"
    try:
        with path.open(encoding=codec, newline="") as handle:
            header = handle.readline()
        with warnings.catch_warnings():
            warnings.simplefilter("error", pd.errors.ParserWarning)
            return pd.read_csv(
                path,
                sep=sniff_delimiter(header),
                dtype=str,
                keep_default_na=False,
                index_col=False,
                encoding=codec,
            )
    except UnicodeDecodeError as exc:
        raise InputError(
            f"{path} is not valid {encoding} ({exc.reason} at byte {exc.start}); "
            "exports from spreadsheets are often Latin-1: try --encoding latin-1."
        ) from exc
    except (pd.errors.ParserError, pd.errors.ParserWarning, pd.errors.EmptyDataError) as exc:
        message = " ".join(str(exc).split())
        raise InputError(f"Cannot read {path} as CSV: {message}") from exc


def sniff_delimiter(header: str) -> str:
    """The candidate delimiter that splits the header line most often (comma when none does)."""
    counts = {delimiter: header.count(delimiter) for delimiter in DELIMITERS}
    best = max(DELIMITERS, key=lambda delimiter: counts[delimiter])
    return best if counts[best] else ","


def _column_key(name: object) -> str:
    return re.sub(r"[\s_]+", "", str(name)).lower()


def resolve_columns(
    frame: pd.DataFrame, overrides: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Role -> column of ``frame``: the overrides, else the first alias present (ignoring case,
    ``_`` and spaces). Raises InputError for an unknown role, a missing override column or a
    missing required role."""
    overrides = dict(overrides or {})
    unknown = sorted(set(overrides) - set(ROLE_ALIASES))
    if unknown:
        raise InputError(
            f"Unknown column role(s) {', '.join(unknown)}; roles: {', '.join(ROLE_ALIASES)}."
        )
    by_key: dict[str, list[str]] = {}
    for column in frame.columns:
        by_key.setdefault(_column_key(column), []).append(str(column))
    found = ", ".join(str(column) for column in frame.columns)
    roles: dict[str, str] = {}
    for role, aliases in ROLE_ALIASES.items():
        if role in overrides:
            name = overrides[role]
            if name in frame.columns:
                roles[role] = name
                continue
            candidates = by_key.get(_column_key(name), [])
            if not candidates:
                raise InputError(
                    f"Column {name!r} given for {role} is not in the input; found: {found}."
                )
        else:
            candidates = next(
                (by_key[key] for key in map(_column_key, aliases) if key in by_key), []
            )
            if not candidates:
                if role in REQUIRED_ROLES:
                    raise InputError(
                        f"No {role} column: tried {', '.join(aliases)} (ignoring case, '_' and "
                        f"spaces); found: {found}. Name it with --column {role}=NAME."
                    )
                continue
        if len(candidates) > 1:
            raise InputError(
                f"Columns {', '.join(candidates)} could all be the {role}; "
                f"choose one with --column {role}=NAME."
            )
        roles[role] = candidates[0]
    return roles


def _text(values: pd.Series) -> pd.Series:
    return values.astype("string").str.strip().replace("", pd.NA)


def _id_text(values: pd.Series) -> pd.Series:
    text = _text(values).str.replace(r"^(\d+)\.0+$", r"\1", regex=True)
    return text.mask(text.str.lower().isin(MISSING_IDS).astype(bool))


def _samples(values: pd.Series) -> str:
    unique = pd.unique(values.astype("string").fillna("").to_numpy(dtype=object))
    return ", ".join(repr(value) for value in unique[:SAMPLES])


def parse_numbers(values: pd.Series, role: str, column: str) -> np.ndarray:
    """Floats; InputError with samples when any value is missing or not a finite number."""
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        numbers = values.to_numpy(dtype=float, na_value=np.nan)
    else:
        parsed = pd.to_numeric(_text(values), errors="coerce")
        numbers = parsed.to_numpy(dtype=float, na_value=np.nan)
    bad = ~np.isfinite(numbers)
    if bad.any():
        raise InputError(
            f"{bad.sum():,} {role} value(s) in column {column!r} are not numbers "
            f"(samples: {_samples(values[bad])})."
        )
    return numbers


def _parse_slash_dates(text: pd.Series, *, dayfirst: bool) -> pd.Series:
    parsed = pd.Series(pd.NaT, index=text.index, dtype="datetime64[us]")
    for us_format in US_FORMATS:
        todo = parsed.isna() & text.notna()
        if not todo.any():
            break
        fmt = us_format.replace("%m/%d", "%d/%m") if dayfirst else us_format
        parsed[todo] = pd.to_datetime(text[todo], format=fmt, errors="coerce")
    return parsed


def parse_timestamps(values: pd.Series, column: str, *, dayfirst: bool = False) -> pd.Series:
    """Naive timestamps from ISO or slash dates (month first unless ``dayfirst``); a time zone is
    dropped, keeping the local time as written. InputError with samples when any value is
    missing or matches neither."""
    if pd.api.types.is_datetime64_any_dtype(values):
        parsed = values.dt.tz_localize(None) if values.dt.tz is not None else values
        parsed = parsed.astype("datetime64[us]")
    else:
        text = _text(values).str.replace(UTC_OFFSET, "", regex=True)
        parsed = pd.to_datetime(text, format="ISO8601", errors="coerce").astype("datetime64[us]")
        rest = parsed.isna() & text.notna()
        if rest.any():
            parsed[rest] = _parse_slash_dates(text[rest], dayfirst=dayfirst)
    bad = parsed.isna()
    if bad.any():
        message = (
            f"{bad.sum():,} timestamp value(s) in column {column!r} cannot be read "
            f"(samples: {_samples(values[bad])}). Accepted: ISO 'YYYY-MM-DD HH:MM:SS' and "
            f"{'D/M/YYYY' if dayfirst else 'M/D/YYYY'} H:MM"
        )
        if not pd.api.types.is_datetime64_any_dtype(values):
            other = _parse_slash_dates(_text(values[bad]), dayfirst=not dayfirst)
            if other.notna().all():
                message += (
                    "; they read as month-first dates: drop --dayfirst"
                    if dayfirst
                    else "; they read as day-first dates: try --dayfirst"
                )
        raise InputError(message + ".")
    return parsed


def normalise(
    frame: pd.DataFrame,
    roles: Mapping[str, str],
    *,
    dayfirst: bool = False,
    credit_prefix: str = "C",
) -> pd.DataFrame:
    """One typed row per input line (index = input position) with ``is_credit`` and its
    ``kind``: ``unattributed`` (no customer), ``zero`` (quantity 0), ``credit`` or ``purchase``."""
    frame = frame.reset_index(drop=True)
    invoice = _id_text(frame[roles["invoice"]])
    if invoice.isna().any():
        rows = np.flatnonzero(invoice.isna().to_numpy())[:SAMPLES] + 1
        raise InputError(
            f"{invoice.isna().sum():,} line(s) have no invoice number in column "
            f"{roles['invoice']!r} (data rows {', '.join(map(str, rows))}, ...)."
        )
    absent = pd.Series(pd.NA, index=frame.index, dtype="string")
    optional = {
        role: _text(frame[roles[role]]) if role in roles else absent
        for role in ("product", "description", "country")
    }
    quantity = parse_numbers(frame[roles["quantity"]], "quantity", roles["quantity"])
    unit_price = parse_numbers(frame[roles["unit_price"]], "unit_price", roles["unit_price"])
    timestamp = parse_timestamps(frame[roles["timestamp"]], roles["timestamp"], dayfirst=dayfirst)
    customer = _id_text(frame[roles["customer"]])
    is_credit = (quantity < 0) | (unit_price < 0)
    if credit_prefix:
        prefixed = invoice.str.upper().str.startswith(credit_prefix.upper())
        is_credit |= prefixed.to_numpy(dtype=bool)
    kind = np.select(
        [customer.isna().to_numpy(), quantity == 0, is_credit],
        ["unattributed", "zero", "credit"],
        "purchase",
    )
    return pd.DataFrame(
        {
            "invoice": invoice,
            "customer": customer,
            "product": optional["product"],
            "description": optional["description"],
            "country": optional["country"],
            "timestamp": timestamp,
            "quantity": quantity,
            "unit_price": unit_price,
            "is_credit": is_credit,
            "kind": kind,
        }
    )


def _allocate(events: pd.DataFrame) -> list[tuple[int, int, float]]:
    """(credit line, purchase line, quantity) allocations, most recent purchase first."""
    allocations: list[tuple[int, int, float]] = []
    stack: list[list[float]] = []
    previous: tuple[str, str] | None = None
    columns = ("customer", "product", "is_credit", "line", "quantity")
    for customer, product, is_credit, line, quantity in zip(
        *(events[column].tolist() for column in columns), strict=True
    ):
        if (customer, product) != previous:
            stack = []
            previous = (customer, product)
        if not is_credit:
            stack.append([line, quantity])
            continue
        need = abs(quantity)
        while need > EPSILON and stack:
            purchase = stack[-1]
            taken = min(need, purchase[1])
            allocations.append((line, int(purchase[0]), taken))
            need -= taken
            purchase[1] -= taken
            if purchase[1] <= EPSILON:
                stack.pop()
    return allocations


def match_credit_notes(lines: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """credit_notes rows from the credit lines of ``lines`` (see the module docstring), and the
    allocations (credit_line, purchase_line, quantity, amount) behind them."""
    credits = lines[lines["kind"] == "credit"]
    keyed = lines[lines["kind"].isin(["purchase", "credit"]) & lines["product"].notna()]
    is_credit = keyed["kind"] == "credit"
    with_credit = is_credit.groupby([keyed["customer"], keyed["product"]]).transform("any")
    events = (
        keyed[with_credit.astype(bool)]
        .assign(line=lambda frame: frame.index)
        .sort_values(["customer", "product", "timestamp", "is_credit", "line"], kind="stable")
    )
    allocated = pd.DataFrame(
        _allocate(events), columns=["credit_line", "purchase_line", "quantity"]
    ).astype({"credit_line": "int64", "purchase_line": "int64", "quantity": "float64"})
    allocated = allocated.sort_values("credit_line", kind="stable", ignore_index=True)
    price = credits["unit_price"].abs()
    allocated["amount"] = allocated["quantity"] * price.reindex(allocated["credit_line"]).to_numpy()

    invoice_position = credits.reset_index(names="line").groupby("invoice", sort=False)["line"]
    first_line = invoice_position.min()
    credited_at = credits.groupby("invoice", sort=False)["timestamp"].min()
    matched = (
        allocated.assign(
            credit_invoice=lines["invoice"].reindex(allocated["credit_line"]).to_numpy(),
            order_id=lines["invoice"].reindex(allocated["purchase_line"]).to_numpy(),
            customer_id=lines["customer"].reindex(allocated["credit_line"]).to_numpy(),
        )
        .groupby(["credit_invoice", "order_id"], sort=False)
        .agg(customer_id=("customer_id", "first"), amount=("amount", "sum"))
        .reset_index()
    )
    done = allocated.groupby("credit_line")["quantity"].sum()
    left = credits["quantity"].abs() - done.reindex(credits.index, fill_value=0.0)
    unmatched = (
        pd.DataFrame(
            {
                "credit_invoice": credits["invoice"],
                "customer_id": credits["customer"],
                "amount": left.clip(lower=0) * price,
            }
        )[left > EPSILON]
        .groupby("credit_invoice", sort=False)
        .agg(customer_id=("customer_id", "first"), amount=("amount", "sum"))
        .reset_index()
        .assign(order_id=pd.NA)
    )
    notes = pd.concat(
        [matched.assign(unmatched=False), unmatched.assign(unmatched=True)], ignore_index=True
    )
    notes["amount"] = notes["amount"].astype(float).round(2)
    notes = notes[notes["amount"] > 0]
    notes = notes.assign(
        position=first_line.reindex(notes["credit_invoice"]).to_numpy()
    ).sort_values(["position", "unmatched"], kind="stable")
    credit_notes = pd.DataFrame(
        {
            "credit_note_id": notes["credit_invoice"]
            + ":"
            + notes["order_id"].fillna("unmatched").astype("string"),
            "order_id": notes["order_id"].astype("string"),
            "customer_id": notes["customer_id"].astype("string"),
            "credited_at": credited_at.reindex(notes["credit_invoice"]).to_numpy(),
            "amount": notes["amount"],
        }
    ).reset_index(drop=True)
    return credit_notes, allocated


def _quantities(values: pd.Series) -> pd.Series:
    integral = bool(np.all(values.to_numpy() == np.round(values.to_numpy())))
    return values.astype("int64") if integral else values


def build_tables(
    lines: pd.DataFrame,
    original: pd.DataFrame,
    credit_notes: pd.DataFrame,
    *,
    with_products: bool = True,
) -> dict[str, pd.DataFrame]:
    """The output tables, name -> frame, from ``normalise``'s lines, the input as read and
    ``match_credit_notes``' rows."""
    attributed = lines[lines["kind"] != "unattributed"]
    purchases = lines[lines["kind"] == "purchase"]
    invoice_time = attributed.groupby("invoice", sort=False)["timestamp"].min()
    orders = (
        purchases.assign(amount=purchases["quantity"] * purchases["unit_price"])
        .groupby("invoice", sort=False)
        .agg(customer_id=("customer", "first"), order_total=("amount", "sum"))
    )
    by_customer = attributed.groupby("customer", sort=False)
    latest_country = (
        attributed[attributed["country"].notna()]
        .sort_values("timestamp", kind="stable")
        .groupby("customer")["country"]
        .last()
    )
    signup = by_customer["timestamp"].min()
    tables = {
        "customers": pd.DataFrame(
            {
                "customer_id": signup.index.astype("string"),
                "signup_date": signup.dt.strftime("%Y-%m-%d").to_numpy(),
                "country": latest_country.reindex(signup.index).to_numpy(),
            }
        ),
        "orders": pd.DataFrame(
            {
                "order_id": orders.index.astype("string"),
                "customer_id": orders["customer_id"].to_numpy(),
                "ordered_at": invoice_time.reindex(orders.index).to_numpy(),
                "status": "completed",
                "order_total": orders["order_total"].round(2).to_numpy(),
            }
        ),
        "order_items": pd.DataFrame(
            {
                "order_item_id": purchases["invoice"]
                + "-"
                + (purchases.groupby("invoice", sort=False).cumcount() + 1).astype("string"),
                "order_id": purchases["invoice"],
                "product_id": purchases["product"],
                "quantity": _quantities(purchases["quantity"]),
                "unit_price": purchases["unit_price"].round(2),
            }
        ).reset_index(drop=True),
        "credit_notes": credit_notes.loc[:, list(OUTPUT_COLUMNS["credit_notes"])],
        UNATTRIBUTED: original.reset_index(drop=True)[(lines["kind"] == "unattributed").to_numpy()],
    }
    if with_products:
        known = lines[lines["product"].notna()]
        described = known[known["description"].notna()]
        counts = (
            described.reset_index(names="line")
            .groupby(["product", "description"], sort=False)
            .agg(count=("line", "size"), first=("line", "min"))
            .reset_index()
            .sort_values(["count", "first"], ascending=[False, True], kind="stable")
            .drop_duplicates("product")
            .set_index("product")["description"]
        )
        product_ids = pd.Index(known["product"].unique(), dtype="string")
        tables["products"] = pd.DataFrame(
            {
                "product_id": product_ids,
                "product_name": counts.reindex(product_ids).to_numpy(),
            }
        )
    return tables


def write_tables(tables: Mapping[str, pd.DataFrame], out_dir: Path) -> tuple[Path, ...]:
    """``<name>.csv`` per table in ``out_dir``: UTF-8, ISO timestamps, money with 2 decimals;
    the unattributed lines exactly as read."""
    out_dir = Path(out_dir)
    twins = [
        out_dir / f"{name}.parquet"
        for name in tables
        if name in OUTPUT_COLUMNS and (out_dir / f"{name}.parquet").exists()
    ]
    if twins:
        raise InputError(
            f"{', '.join(map(str, twins))} would sit beside the new CSV file(s) and make the "
            "warehouse's raw files ambiguous; choose an empty --out directory."
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, table in tables.items():
        path = out_dir / f"{name}.csv"
        if name == UNATTRIBUTED:
            table.to_csv(path, index=False, encoding="utf-8", lineterminator="\n")
        else:
            table.to_csv(
                path,
                index=False,
                encoding="utf-8",
                lineterminator="\n",
                float_format="%.2f",
                date_format=TIMESTAMP_FORMAT,
            )
        paths.append(path)
    return tuple(paths)


def convert(
    input_path: Path,
    out_dir: Path,
    *,
    encoding: str = "utf-8",
    dayfirst: bool = False,
    credit_prefix: str = "C",
    columns: Mapping[str, str] | None = None,
) -> Report:
    """Read ``input_path``, write the raw files into ``out_dir`` and report what was done."""
    original = read_input(Path(input_path), encoding)
    roles = resolve_columns(original, columns)
    lines = normalise(original, roles, dayfirst=dayfirst, credit_prefix=credit_prefix)
    credit_notes, _ = match_credit_notes(lines)
    tables = build_tables(lines, original, credit_notes, with_products="product" in roles)
    outputs = write_tables(tables, Path(out_dir))
    kinds = lines["kind"].value_counts()
    unattributed = lines[(lines["kind"] == "unattributed") & ~lines["is_credit"]]
    unattributed_amount = unattributed["quantity"] * unattributed["unit_price"]
    matched = credit_notes["order_id"].notna()
    return Report(
        input_path=Path(input_path),
        input_lines=len(lines),
        lines_without_customer=int(kinds.get("unattributed", 0)),
        amount_without_customer=round(float(unattributed_amount.sum()), 2),
        zero_quantity_lines=int(kinds.get("zero", 0)),
        purchase_lines=int(kinds.get("purchase", 0)),
        credit_lines=int(kinds.get("credit", 0)),
        orders=len(tables["orders"]),
        customers=len(tables["customers"]),
        products=len(tables.get("products", ())),
        credit_notes_matched=int(matched.sum()),
        amount_matched=round(float(credit_notes.loc[matched, "amount"].sum()), 2),
        credit_notes_unmatched=int((~matched).sum()),
        amount_unmatched=round(float(credit_notes.loc[~matched, "amount"].sum()), 2),
        out_dir=Path(out_dir),
        outputs=outputs,
    )
