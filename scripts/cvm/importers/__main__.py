"""Command line of the importers: ``python -m cvm.importers <importer> INPUT --out DIR``.

One subcommand per export shape; each writes the raw files that ``make build`` reads from
CVM_RAW_DIR and prints what it did. Input problems exit with status 2 and a one-line message.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

from cvm.importers import invoice_lines
from cvm.importers.invoice_lines import InputError, Report


def _column_override(text: str) -> tuple[str, str]:
    role, separator, name = text.partition("=")
    role = role.strip()
    if not separator or not name or role not in invoice_lines.ROLE_ALIASES:
        roles = ", ".join(invoice_lines.ROLE_ALIASES)
        raise argparse.ArgumentTypeError(f"expected ROLE=NAME with ROLE one of {roles}")
    return role, name


def _roles_help() -> str:
    return "; ".join(
        f"{role}: {' | '.join(aliases)}"
        + ("" if role in invoice_lines.REQUIRED_ROLES else " (optional)")
        for role, aliases in invoice_lines.ROLE_ALIASES.items()
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m cvm.importers",
        description="Convert exports of other shapes into the warehouse's raw files (CSV).",
    )
    importers = parser.add_subparsers(dest="importer", required=True, metavar="IMPORTER")
    lines = importers.add_parser(
        "invoice-lines",
        help="one row per invoice line (e.g. the 'Online Retail' data sets)",
        description="Convert an invoice-line export (CSV with , ; tab or | as delimiter, or "
        "Parquet) into customers.csv, orders.csv, order_items.csv, products.csv and "
        "credit_notes.csv, and set the lines without a customer aside in "
        "unattributed_lines.csv. Column roles and the names tried (ignoring case, '_' and "
        f"spaces): {_roles_help()}.",
        epilog="Credit lines (credit prefix, negative quantity or negative unit price) are "
        "matched to the same customer's purchases of the same product at or before them, most "
        "recent first; what finds no purchase becomes a '<credit invoice>:unmatched' credit "
        "note without order_id. See the docstring of cvm/importers/invoice_lines.py.",
    )
    lines.add_argument("input", type=Path, metavar="INPUT", help="the export: .csv or .parquet")
    lines.add_argument(
        "--out",
        type=Path,
        required=True,
        metavar="DIR",
        help="directory to write the CSV files into (created if missing); use it as CVM_RAW_DIR",
    )
    lines.add_argument(
        "--encoding",
        default="utf-8",
        metavar="NAME",
        help="text encoding of a CSV input (default: utf-8; spreadsheet exports are often latin-1)",
    )
    lines.add_argument(
        "--dayfirst",
        action="store_true",
        help="read slash dates as day/month/year (1/12/2010 8:26 is 1 December); the default "
        "is month first (12/1/2010 8:26). ISO dates are read either way",
    )
    lines.add_argument(
        "--credit-prefix",
        default="C",
        metavar="PREFIX",
        help="invoice numbers starting with PREFIX (case-insensitive) are credit lines, as are "
        "lines with a negative quantity or unit price (default: C; '' disables the prefix)",
    )
    lines.add_argument(
        "--column",
        type=_column_override,
        action="append",
        default=[],
        metavar="ROLE=NAME",
        help="use column NAME for ROLE (repeatable), e.g. --column customer=Kundennummer",
    )
    lines.set_defaults(run=_run_invoice_lines)
    return parser


def format_report(report: Report) -> str:
    """The report as aligned lines, ending with the next step."""

    def row(label: str, count: int, amount: float | None = None, note: str = "") -> str:
        text = f"  {label:<24}{count:>12,}"
        if amount is not None:
            text += f"  amount {amount:,.2f}"
        return text + (f"  {note}" if note else "")

    return "\n".join(
        [
            f"Read {report.input_path}",
            row("input lines", report.input_lines),
            row(
                "lines without customer",
                report.lines_without_customer,
                report.amount_without_customer,
                "-> unattributed_lines.csv",
            ),
            row("zero-quantity lines", report.zero_quantity_lines, note="(ignored)"),
            row("purchase lines", report.purchase_lines),
            row("credit lines", report.credit_lines),
            f"Wrote {len(report.outputs)} files into {report.out_dir}",
            row("customers", report.customers),
            row("orders", report.orders),
            row("order items", report.purchase_lines),
            row("products", report.products),
            row("credit notes matched", report.credit_notes_matched, report.amount_matched),
            row(
                "credit notes unmatched",
                report.credit_notes_unmatched,
                report.amount_unmatched,
                "(quarantined by staging)",
            ),
            f"Next: CVM_RAW_DIR={shlex.quote(str(report.out_dir))} make build",
        ]
    )


def _run_invoice_lines(args: argparse.Namespace) -> str:
    report = invoice_lines.convert(
        args.input,
        args.out,
        encoding=args.encoding,
        dayfirst=args.dayfirst,
        credit_prefix=args.credit_prefix,
        columns=dict(args.column),
    )
    return format_report(report)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        print(args.run(args))
    except InputError as exc:
        print(f"error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
