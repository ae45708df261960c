"""Staging end to end: raw files in, accepted + quarantined rows out, nothing lost."""

from __future__ import annotations

import csv
import json
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from cvm import contract
from cvm.generate import TABLES
from cvm.quality import raw_gate
from dbt_project import copy_warehouse, dbt_build, dbt_test_on_tampered_copy, query

pytestmark = pytest.mark.slow

RAW_TABLES = TABLES  # every file of the raw contract, as the generator writes them


def write_csv(path: Path, header: list[str], rows: list[list[str]]) -> None:
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)


def assert_green(result) -> None:
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-2000:]


def raw_row_count(raw_dir: Path, table: str) -> int:
    parquet, csv_file = raw_dir / f"{table}.parquet", raw_dir / f"{table}.csv"
    reader = (
        f"read_parquet('{parquet}')"
        if parquet.exists()
        else f"read_csv('{csv_file}', header = true, all_varchar = true)"
    )
    return duckdb.sql(f"select count(*) from {reader}").fetchone()[0]


def test_build_with_bad_rows_stays_green(bad_rows_build):
    assert_green(bad_rows_build.result)


def test_dbt_build_runs_every_unit_test_and_each_passes(bad_rows_build):
    """`dbt build` runs the unit tests (make build leaves them to this and to CI)."""
    target = bad_rows_build.warehouse.parent / "target"
    unit_tests = set(json.loads((target / "manifest.json").read_text())["unit_tests"])
    results = json.loads((target / "run_results.json").read_text())["results"]
    passed = {result["unique_id"] for result in results if result["status"] == "pass"}
    assert len(unit_tests) >= 25
    assert unit_tests - passed == set()


def test_quarantine_counts_equal_what_the_generator_injected(bad_rows_build):
    warehouse, manifest = bad_rows_build.warehouse, bad_rows_build.manifest
    found = {
        (table, reason): n
        for table, reason, n in query(
            warehouse,
            "select source_table, quarantine_reason, count(*) "
            "from staging.stg_shop__quarantined_rows group by all",
        )
    }
    injected = {
        (table, reason): n
        for table, reasons in manifest["bad_rows"].items()
        for reason, n in reasons.items()
    }
    assert injected, "the generator recorded no bad rows"
    assert found == injected


def test_no_raw_row_is_lost(bad_rows_build):
    raw_dir, warehouse = bad_rows_build.raw_dir, bad_rows_build.warehouse
    for table in RAW_TABLES:
        [(accepted,)] = query(warehouse, f"select count(*) from staging.stg_shop__{table}")
        [(quarantined,)] = query(
            warehouse,
            "select count(*) from staging.stg_shop__quarantined_rows "
            f"where source_table = '{table}'",
        )
        assert accepted + quarantined == raw_row_count(raw_dir, table), table


def test_reconciliation_test_fails_when_a_row_is_lost(bad_rows_build, tmp_path):
    raw_dir, warehouse = bad_rows_build.raw_dir, bad_rows_build.warehouse
    lose_a_row = (
        "delete from staging.base_shop__orders where order_id = "
        "(select min(order_id) from staging.base_shop__orders where quarantine_reason is null)"
    )
    result = dbt_test_on_tampered_copy(
        raw_dir, warehouse, tmp_path, lose_a_row, "assert_raw_rows_reconcile"
    )
    assert result.returncode != 0
    assert "FAIL 1 assert_raw_rows_reconcile" in result.stdout


def raw_pii_values(raw_dir: Path) -> set[str]:
    """Every value of every column the raw contract marks `meta.pii` (emails, first names),
    read from the raw files themselves, quarantined rows included; lower case."""
    values: set[str] = set()
    for table in contract.load().tables:
        pii = [c.name for c in table.columns if c.pii]
        raw = contract.find_raw_input(raw_dir, table.name)
        if not pii or raw is None:
            continue
        columns = ", ".join(raw_gate.as_text(c) for c in pii)
        rows = duckdb.sql(f"select {columns} from {contract.reader_sql(raw)}").fetchall()
        values |= {v.strip().lower() for row in rows for v in row if v and v.strip()}
    return values


def pii_leaks(warehouse: Path, pii: set[str]) -> dict[str, int]:
    """Text columns outside staging (which alone may hold PII) with a value equal to a PII
    value, and quarantined raw records with a field equal to one or holding an "@":
    column -> rows."""
    leaks = {}
    with duckdb.connect(str(warehouse), read_only=True) as con:
        columns = con.execute(
            "select table_schema, table_name, column_name from information_schema.columns "
            "where table_schema not in ('staging', 'raw', 'information_schema', 'pg_catalog') "
            "and data_type = 'VARCHAR' order by all"
        ).fetchall()
        assert len(columns) > 50, columns  # the marts, bi and snapshots are there to scan
        for schema, table, column in columns:
            values = con.execute(
                f'select lower(trim("{column}")) from "{schema}"."{table}" '
                f'where "{column}" is not null'
            ).fetchall()
            hits = sum(value in pii for (value,) in values)
            if hits:
                leaks[f"{schema}.{table}.{column}"] = hits
        records = con.execute(
            "select raw_record from staging.stg_shop__quarantined_rows"
        ).fetchall()
    fields = (
        field.partition("=")[2].strip().lower()
        for (record,) in records
        for field in record.split("; ")
    )
    hits = sum(field in pii or "@" in field for field in fields)  # malformed emails too
    if hits:
        leaks["staging.stg_shop__quarantined_rows.raw_record"] = hits
    return leaks


def test_no_pii_outside_staging(bad_rows_build):
    """No email or first name (of accepted or quarantined customers) in any mart, export,
    snapshot or intermediate table, nor in a quarantined row's record."""
    pii = raw_pii_values(bad_rows_build.raw_dir)
    assert any("@" in v for v in pii) and any("@" not in v for v in pii)  # both kinds read
    assert pii_leaks(bad_rows_build.warehouse, pii) == {}


def test_the_pii_scan_finds_a_planted_first_name(parquet_build, tmp_path):
    warehouse = copy_warehouse(parquet_build.warehouse, tmp_path)
    with duckdb.connect(str(warehouse)) as con:
        con.execute(
            "update intermediate.int_customers_valued set acquisition_channel = "
            "(select min(first_name) from staging.stg_shop__customers) "
            "where customer_id = (select min(customer_id) from marts.customer_value)"
        )
    leaks = pii_leaks(warehouse, raw_pii_values(parquet_build.raw_dir))
    # The mart is a view of the intermediate table: the leak shows in both.
    assert leaks == {
        "intermediate.int_customers_valued.acquisition_channel": 1,
        "marts.customer_value.acquisition_channel": 1,
    }


@pytest.fixture(scope="module")
def minimal_raw_dir(tmp_path_factory) -> Path:
    """Only the two required files, with only the required columns."""
    raw_dir = tmp_path_factory.mktemp("minimal")
    write_csv(
        raw_dir / "customers.csv",
        ["customer_id", "signup_date"],
        [["c1", "2024-01-05"], ["c2", "2024-02-10"], ["c3", "2024-03-01"]],
    )
    write_csv(
        raw_dir / "orders.csv",
        ["order_id", "customer_id", "ordered_at", "status", "order_total"],
        [
            ["o1", "c1", "2024-01-06 10:00:00", "completed", "19.90"],
            ["o2", "c1", "2024-02-01", "returned", "5"],
            ["o3", "c2", "2024-03-02 08:30:00", "cancelled", "12.50"],
            ["o4", "c2", "2024-04-01 12:00:00", "completed", "30.00"],
        ],
    )
    return raw_dir


def test_only_required_files_and_columns_build_green(minimal_raw_dir, tmp_path):
    warehouse = tmp_path / "cvm.duckdb"
    assert_green(dbt_build(minimal_raw_dir, warehouse, tmp_path))
    assert query(warehouse, "select count(*) from marts.dim_customers") == [(3,)]
    assert query(
        warehouse, "select sum(net_revenue), sum(refund_amount) from marts.fct_orders"
    ) == [(Decimal("49.90"), Decimal("5.00"))]
    assert query(warehouse, "select count(*) from marts.fct_order_items") == [(0,)]
    # Without line data, cost is unknown rather than zero.
    assert query(
        warehouse,
        "select count(*) from marts.fct_orders where is_completed and cost_of_goods is null",
    ) == [(2,)]
    assert query(warehouse, "select as_of_date::varchar from staging.base_shop__as_of_date") == [
        ("2024-04-01",)
    ]


def test_as_of_date_quarantines_later_rows(minimal_raw_dir, tmp_path):
    warehouse = tmp_path / "cvm.duckdb"
    assert_green(dbt_build(minimal_raw_dir, warehouse, tmp_path, as_of="2024-02-15"))
    assert query(
        warehouse,
        "select source_table, record_key from staging.stg_shop__quarantined_rows order by 2",
    ) == [("customers", "c3"), ("orders", "o3"), ("orders", "o4")]


def test_malformed_as_of_date_fails_clearly(minimal_raw_dir, tmp_path):
    result = dbt_build(minimal_raw_dir, tmp_path / "cvm.duckdb", tmp_path, as_of="15/02/2024")
    assert result.returncode != 0
    assert "must be a date written YYYY-MM-DD" in result.stdout


def test_missing_required_file_fails_clearly(minimal_raw_dir, tmp_path):
    raw_dir = tmp_path / "raw"
    raw_dir.mkdir()
    (raw_dir / "customers.csv").write_bytes((minimal_raw_dir / "customers.csv").read_bytes())
    result = dbt_build(raw_dir, tmp_path / "cvm.duckdb", tmp_path)
    assert result.returncode != 0
    assert (
        "Required raw file 'orders.parquet' or 'orders.csv' (or a directory 'orders/' of such "
        "files) not found" in result.stdout
    )


def test_missing_required_column_fails_clearly(tmp_path):
    raw_dir = tmp_path / "raw"
    raw_dir.mkdir()
    write_csv(raw_dir / "customers.csv", ["customer_id", "signup_date"], [["c1", "2024-01-01"]])
    write_csv(
        raw_dir / "orders.csv",
        ["order_id", "customer_id", "order_date", "status", "order_total"],
        [["o1", "c1", "2024-01-02", "completed", "1"]],
    )
    result = dbt_build(raw_dir, tmp_path / "cvm.duckdb", tmp_path)
    assert result.returncode != 0
    assert "lacks required column(s) ordered_at" in result.stdout
