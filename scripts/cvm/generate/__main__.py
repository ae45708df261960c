"""Command line: ``python -m cvm.generate --customers N --out DIR [...]``.

Parses and checks the arguments (a bad value stops with argparse's message, before anything is
written) and calls :func:`cvm.generate.generate`. Separate so that importing the package never
builds a parser; ``--help`` lists the options.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable, Sequence
from datetime import date
from pathlib import Path
from typing import Any

from cvm.generate.parameters import MAX_YEARS
from cvm.generate.writing import FORMATS, MANIFEST_NAME, generate


def _bounded(kind: Callable[[str], Any], low: float, what: str) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a valid {what}") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"{text!r} is not a finite {what}")
        if value < low:
            raise argparse.ArgumentTypeError(f"must be >= {low}, got {text}")
        return value

    return parse


def _rate(text: str) -> float:
    value = _bounded(float, 0.0, "rate")(text)
    if value > 1:
        raise argparse.ArgumentTypeError(f"must be <= 1, got {text}")
    return value


def _iso_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from None


def _years(text: str) -> float:
    value = _bounded(float, 0.0, "number")(text)
    if not 0 < value <= MAX_YEARS:
        raise argparse.ArgumentTypeError(f"must be in (0, {MAX_YEARS}], got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m cvm.generate",
        description="Generate reproducible raw customer data (Parquet/CSV) for the warehouse, "
        f"with the true process parameters in <out>/{MANIFEST_NAME}.",
    )
    add = parser.add_argument
    add("--customers", type=_bounded(int, 1, "integer"), default=5000, help="default %(default)s")
    add("--out", type=Path, required=True, help="output directory (created if missing)")
    add("--seed", type=_bounded(int, 0, "integer"), default=42, help="default %(default)s")
    add("--format", choices=(*FORMATS, "both"), default="parquet", help="default %(default)s")
    add(
        "--chunk-size",
        type=_bounded(int, 1, "integer"),
        default=250_000,
        help="customers simulated and written at a time; bounds memory (default %(default)s)",
    )
    add(
        "--end-date",
        type=_iso_date,
        default=date(2026, 6, 30),
        help="last day of data, YYYY-MM-DD (default %(default)s)",
    )
    add("--years", type=_years, default=5.0, help="history length (default %(default)s)")
    add(
        "--inject-bad-rows",
        action="store_true",
        help="append rows with one defect each (counted in the manifest); dates become text",
    )
    add(
        "--bad-row-rate",
        type=_rate,
        default=0.001,
        help="bad rows per kind and file, as a share of its clean rows, at least 3 "
        "(default %(default)s)",
    )
    add("--quiet", action="store_true", help="no progress bar")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    manifest = generate(
        args.out,
        args.customers,
        seed=args.seed,
        fmt=args.format,
        chunk_size=args.chunk_size,
        end_date=args.end_date,
        years=args.years,
        inject_bad_rows=args.inject_bad_rows,
        bad_row_rate=args.bad_row_rate,
        quiet=args.quiet,
    )
    if not args.quiet:
        counts = ", ".join(f"{k}={v}" for k, v in manifest["row_counts"].items())
        print(f"wrote {args.out}: {counts}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
