"""`make report`: the customer value report of the published warehouse.

    python -m cvm.report [--warehouse FILE] [--out DIR]

The warehouse defaults to CVM_DUCKDB_PATH, else warehouse/cvm.duckdb; the directory to
CVM_REPORT_DIR, else build/report. The warehouse is opened read-only, so BI readers and a
running build are not disturbed.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import duckdb

from cvm.report.page import PROJECT_DIR, report_dir, write_report


def default_warehouse() -> Path:
    configured = os.environ.get("CVM_DUCKDB_PATH", "").strip()
    return Path(configured) if configured else PROJECT_DIR / "warehouse" / "cvm.duckdb"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warehouse", type=Path, default=None, help="the published DuckDB file")
    parser.add_argument("--out", type=Path, default=None, help="directory to write the report to")
    args = parser.parse_args(argv)
    warehouse = (args.warehouse or default_warehouse()).resolve()
    try:
        report = write_report(warehouse, (args.out or report_dir(os.environ)).resolve())
    except (OSError, ValueError, duckdb.Error) as error:
        print(f"error: the report could not be written: {error}", file=sys.stderr)
        return 1
    print(report.summary_line().strip())
    for name, reason in report.missing.items():
        print(f"  not drawn: {name}: {reason}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
