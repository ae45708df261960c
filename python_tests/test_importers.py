"""cvm.importers.invoice_lines: invoice-line exports to the raw file contract, on small
hand-checked exports, and a revenue identity on a random one."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cvm.importers.invoice_lines import (
    InputError,
    convert,
    match_credit_notes,
    normalise,
    read_input,
    resolve_columns,
)

HEADER = "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country"
PLAIN = [
    "536365,85123A,WHITE HANGING HEART T-LIGHT HOLDER,6,12/1/2010 8:26,2.55,17850,United Kingdom",
    "536365,71053,WHITE METAL LANTERN,6,12/1/2010 8:26,3.39,17850,United Kingdom",
    "536365,84406B,CREAM CUPID HEARTS COAT HANGER,8,12/1/2010 8:26,2.75,17850,United Kingdom",
    "536366,22633,HAND WARMER UNION JACK,6,12/1/2010 8:28,1.85,17850,United Kingdom",
    "536367,84879,ASSORTED COLOUR BIRD ORNAMENT,32,12/1/2010 8:34,1.69,13047,United Kingdom",
    "536367,85123A,HANGING HEART HOLDER,4,12/1/2010 8:34,2.55,13047,United Kingdom",
    "536368,85123A,WHITE HANGING HEART T-LIGHT HOLDER,2,12/5/2010 10:00,2.95,13047,EIRE",
    "536369,71053,WHITE METAL LANTERN,1,12/6/2010 9:15,3.75,17850,France",
    "536369,84406B,CREAM CUPID HEART HANGER,2,12/6/2010 9:15,2.75,17850,France",
]
CREDITS = [
    "1001,P1,Mug,5,2010-01-01 10:00:00,2.00,100,UK",
    "1004,P3,Plate,1,2010-01-02 10:00:00,5.00,200,UK",
    "C2005,P4,Bowl,-2,2010-01-03 12:00:00,3.00,300,UK",
    "1005,P4,Bowl,2,2010-01-03 12:00:00,3.00,300,UK",
    "1006,P5,Cup,4,2010-01-04 10:00:00,1.50,400,UK",
    "1002,P1,Mug,3,2010-01-05 10:00:00,2.00,100,UK",
    "1007,P5,Cup,-1,2010-01-06 10:00:00,1.50,400,UK",
    "1007,P6,Spoon,1,2010-01-06 10:00:00,1.00,400,UK",
    "1008,P5,Cup,1,2010-01-06 11:00:00,-1.50,400,UK",
    "1009,P5,Cup,0,2010-01-06 12:00:00,1.50,400,UK",
    "C2001,P1,Mug,-2,2010-01-07 10:00:00,2.00,100,UK",
    "C2002,P1,Mug,-4,2010-01-08 10:00:00,2.00,100,UK",
    "C2003,P2,Jug,-1,2010-01-08 10:00:00,9.99,100,UK",
    "C2004,P3,Plate,-1,2010-01-09 10:00:00,5.00,100,UK",
    "1003,P1,Mug,2,2010-01-10 10:00:00,2.50,100,UK",
]
CONTRACT_FILES = ("customers", "orders", "order_items", "products", "credit_notes")


def export(tmp_path: Path, rows: list[str], header: str = HEADER, name: str = "in.csv") -> Path:
    path = tmp_path / name
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


def read_tables(out_dir: Path) -> dict[str, list[tuple[str, ...]]]:
    """Every CSV written, as rows of text (header excluded)."""
    return {
        path.stem: [
            tuple(row)
            for row in pd.read_csv(path, dtype=str, keep_default_na=False).itertuples(index=False)
        ]
        for path in sorted(out_dir.glob("*.csv"))
    }


def run(path: Path, out_dir: Path, **options):
    report = convert(path, out_dir, **options)
    return report, read_tables(out_dir)


def test_plain_export(tmp_path):
    report, tables = run(export(tmp_path, PLAIN), tmp_path / "out")

    assert tables["orders"] == [
        ("536365", "17850", "2010-12-01 08:26:00", "completed", "57.64"),
        ("536366", "17850", "2010-12-01 08:28:00", "completed", "11.10"),
        ("536367", "13047", "2010-12-01 08:34:00", "completed", "64.28"),
        ("536368", "13047", "2010-12-05 10:00:00", "completed", "5.90"),
        ("536369", "17850", "2010-12-06 09:15:00", "completed", "9.25"),
    ]
    assert tables["order_items"] == [
        ("536365-1", "536365", "85123A", "6", "2.55"),
        ("536365-2", "536365", "71053", "6", "3.39"),
        ("536365-3", "536365", "84406B", "8", "2.75"),
        ("536366-1", "536366", "22633", "6", "1.85"),
        ("536367-1", "536367", "84879", "32", "1.69"),
        ("536367-2", "536367", "85123A", "4", "2.55"),
        ("536368-1", "536368", "85123A", "2", "2.95"),
        ("536369-1", "536369", "71053", "1", "3.75"),
        ("536369-2", "536369", "84406B", "2", "2.75"),
    ]
    assert tables["customers"] == [
        ("17850", "2010-12-01", "France"),
        ("13047", "2010-12-01", "EIRE"),
    ]
    assert tables["products"] == [
        ("85123A", "WHITE HANGING HEART T-LIGHT HOLDER"),
        ("71053", "WHITE METAL LANTERN"),
        ("84406B", "CREAM CUPID HEARTS COAT HANGER"),
        ("22633", "HAND WARMER UNION JACK"),
        ("84879", "ASSORTED COLOUR BIRD ORNAMENT"),
    ]
    assert tables["credit_notes"] == []
    assert tables["unattributed_lines"] == []
    assert (report.input_lines, report.purchase_lines, report.credit_lines) == (9, 9, 0)
    assert (report.orders, report.customers, report.products) == (5, 2, 5)
    assert {path.name for path in report.outputs} == {
        *(f"{name}.csv" for name in CONTRACT_FILES),
        "unattributed_lines.csv",
    }


def test_written_text(tmp_path):
    out = tmp_path / "out"
    convert(export(tmp_path, PLAIN[:2] + PLAIN[7:8]), out)

    assert (out / "orders.csv").read_bytes().decode("utf-8") == (
        "order_id,customer_id,ordered_at,status,order_total\n"
        "536365,17850,2010-12-01 08:26:00,completed,35.64\n"
        "536369,17850,2010-12-06 09:15:00,completed,3.75\n"
    )
    assert (out / "order_items.csv").read_text() == (
        "order_item_id,order_id,product_id,quantity,unit_price\n"
        "536365-1,536365,85123A,6,2.55\n"
        "536365-2,536365,71053,6,3.39\n"
        "536369-1,536369,71053,1,3.75\n"
    )
    assert (out / "customers.csv").read_text() == (
        "customer_id,signup_date,country\n17850,2010-12-01,France\n"
    )
    assert (out / "credit_notes.csv").read_text() == (
        "credit_note_id,order_id,customer_id,credited_at,amount\n"
    )


def test_credit_notes(tmp_path):
    report, tables = run(export(tmp_path, CREDITS), tmp_path / "out")

    assert tables["credit_notes"] == [
        ("C2005:1005", "1005", "300", "2010-01-03 12:00:00", "6.00"),
        ("1007:1006", "1006", "400", "2010-01-06 10:00:00", "1.50"),
        ("1008:1006", "1006", "400", "2010-01-06 11:00:00", "1.50"),
        ("C2001:1002", "1002", "100", "2010-01-07 10:00:00", "4.00"),
        ("C2002:1002", "1002", "100", "2010-01-08 10:00:00", "2.00"),
        ("C2002:1001", "1001", "100", "2010-01-08 10:00:00", "6.00"),
        ("C2003:unmatched", "", "100", "2010-01-08 10:00:00", "9.99"),
        ("C2004:unmatched", "", "100", "2010-01-09 10:00:00", "5.00"),
    ]
    assert tables["orders"] == [
        ("1001", "100", "2010-01-01 10:00:00", "completed", "10.00"),
        ("1004", "200", "2010-01-02 10:00:00", "completed", "5.00"),
        ("1005", "300", "2010-01-03 12:00:00", "completed", "6.00"),
        ("1006", "400", "2010-01-04 10:00:00", "completed", "6.00"),
        ("1002", "100", "2010-01-05 10:00:00", "completed", "6.00"),
        ("1007", "400", "2010-01-06 10:00:00", "completed", "1.00"),
        ("1003", "100", "2010-01-10 10:00:00", "completed", "5.00"),
    ]
    assert ("1007-1", "1007", "P6", "1", "1.00") in tables["order_items"]
    assert len(tables["order_items"]) == 7
    assert report.input_lines == 15
    assert report.lines_without_customer == 0
    assert report.zero_quantity_lines == 1
    assert (report.purchase_lines, report.credit_lines) == (7, 7)
    assert (report.credit_notes_matched, report.amount_matched) == (6, 21.00)
    assert (report.credit_notes_unmatched, report.amount_unmatched) == (2, 14.99)


def test_credit_prefix_is_case_insensitive_and_can_be_disabled(tmp_path):
    rows = [
        "1001,P1,Mug,2,2010-01-01 10:00:00,2.00,100,UK",
        "c1002,P1,Mug,1,2010-01-02 10:00:00,2.00,100,UK",
    ]
    report, tables = run(export(tmp_path, rows), tmp_path / "default")
    assert tables["credit_notes"] == [("c1002:1001", "1001", "100", "2010-01-02 10:00:00", "2.00")]
    assert report.orders == 1

    report, tables = run(export(tmp_path, rows), tmp_path / "none", credit_prefix="")
    assert tables["credit_notes"] == []
    assert [row[0] for row in tables["orders"]] == ["1001", "c1002"]

    report, tables = run(export(tmp_path, rows), tmp_path / "other", credit_prefix="X")
    assert report.credit_lines == 0


def test_lines_without_customer_are_set_aside(tmp_path):
    rows = [
        "536365,85123A,WHITE HANGING HEART,6,12/1/2010 8:26,2.55,17850.0,UK",
        "536366,22633,HAND WARMER, 4 ,12/1/2010 8:28,1.85,,UK",
        '536366,22632,"HAND WARMER, RED",2,12/1/2010 8:28,2.10,   ,UK',
        "C536367,22633,HAND WARMER,-1,12/2/2010 9:00,1.85,,UK",
        "536368,22633,HAND WARMER,1,12/3/2010 9:00,1.85,nan,UK",
    ]
    report, tables = run(export(tmp_path, rows), tmp_path / "out")

    assert tables["unattributed_lines"] == [
        ("536366", "22633", "HAND WARMER", " 4 ", "12/1/2010 8:28", "1.85", "", "UK"),
        ("536366", "22632", "HAND WARMER, RED", "2", "12/1/2010 8:28", "2.10", "   ", "UK"),
        ("C536367", "22633", "HAND WARMER", "-1", "12/2/2010 9:00", "1.85", "", "UK"),
        ("536368", "22633", "HAND WARMER", "1", "12/3/2010 9:00", "1.85", "nan", "UK"),
    ]
    header = (tmp_path / "out" / "unattributed_lines.csv").read_text().splitlines()[0]
    assert header == HEADER
    assert report.lines_without_customer == 4
    assert report.amount_without_customer == 13.45
    assert tables["orders"] == [("536365", "17850", "2010-12-01 08:26:00", "completed", "15.30")]
    assert tables["customers"] == [("17850", "2010-12-01", "UK")]
    assert tables["credit_notes"] == []
    assert [row[0] for row in tables["products"]] == ["85123A", "22633", "22632"]


def test_float_looking_customer_ids(tmp_path):
    rows = [
        "1,P1,Mug,1,2010-01-01 10:00:00,1.00,17850.0,UK",
        "2,P1,Mug,1,2010-01-02 10:00:00,1.00, 17850 ,UK",
        "3,P1,Mug,1,2010-01-03 10:00:00,1.00,A17.0,UK",
    ]
    _, tables = run(export(tmp_path, rows), tmp_path / "out")
    assert [row[:2] for row in tables["orders"]] == [("1", "17850"), ("2", "17850"), ("3", "A17.0")]
    assert [row[0] for row in tables["customers"]] == ["17850", "A17.0"]


@pytest.mark.parametrize(
    ("stamp", "dayfirst", "expected"),
    [
        ("12/1/2010 8:26", False, "2010-12-01 08:26:00"),
        ("1/12/2010 8:26", True, "2010-12-01 08:26:00"),
        ("1/12/2010 8:26", False, "2010-01-12 08:26:00"),
        ("12/13/2010 18:05:09", False, "2010-12-13 18:05:09"),
        ("2010-12-01 08:26:00", False, "2010-12-01 08:26:00"),
        ("2010-12-01 08:26:00", True, "2010-12-01 08:26:00"),
        ("2010-12-01T08:26", False, "2010-12-01 08:26:00"),
        ("2010-12-01", False, "2010-12-01 00:00:00"),
    ],
)
def test_timestamps(tmp_path, stamp, dayfirst, expected):
    rows = [f"1,P1,Mug,1,{stamp},1.00,7,UK"]
    _, tables = run(export(tmp_path, rows), tmp_path / "out", dayfirst=dayfirst)
    assert tables["orders"][0][2] == expected
    assert tables["customers"][0][1] == expected[:10]


def test_iso_and_us_timestamps_in_one_file(tmp_path):
    rows = [
        "1,P1,Mug,1,2010-12-01 08:26:00,1.00,7,UK",
        "2,P1,Mug,1,12/2/2010 9:30,1.00,7,UK",
    ]
    _, tables = run(export(tmp_path, rows), tmp_path / "out")
    assert [row[2] for row in tables["orders"]] == ["2010-12-01 08:26:00", "2010-12-02 09:30:00"]


def test_unparseable_timestamps_stop_with_samples(tmp_path):
    rows = [
        "1,P1,Mug,1,12/1/2010 8:26,1.00,7,UK",
        "2,P1,Mug,1,yesterday,1.00,7,UK",
        "3,P1,Mug,1,13/13/2010 8:26,1.00,7,UK",
        "4,P1,Mug,1,,1.00,7,UK",
    ]
    with pytest.raises(InputError) as error:
        convert(export(tmp_path, rows), tmp_path / "out")
    message = str(error.value)
    assert "3 timestamp value(s)" in message
    assert "InvoiceDate" in message
    assert "'yesterday', '13/13/2010 8:26', ''" in message
    assert not (tmp_path / "out").exists()


def test_day_first_dates_suggest_dayfirst(tmp_path):
    rows = ["1,P1,Mug,1,13/1/2010 8:26,1.00,7,UK"]
    with pytest.raises(InputError, match="--dayfirst"):
        convert(export(tmp_path, rows), tmp_path / "out")


def test_unparseable_numbers_stop_with_samples(tmp_path):
    rows = [
        "1,P1,Mug,six,2010-01-01 10:00:00,1.00,7,UK",
        "2,P1,Mug,1.5.1,2010-01-01 10:00:00,1.00,7,UK",
        "3,P1,Mug,2,2010-01-01 10:00:00,1.00,7,UK",
    ]
    with pytest.raises(InputError) as error:
        convert(export(tmp_path, rows), tmp_path / "out")
    assert "2 quantity value(s) in column 'Quantity'" in str(error.value)
    assert "'six', '1.5.1'" in str(error.value)

    rows = ["1,P1,Mug,1,2010-01-01 10:00:00,£1.00,7,UK"]
    with pytest.raises(InputError, match=r"1 unit_price value\(s\).*'£1\.00'"):
        convert(export(tmp_path, rows), tmp_path / "out")


def test_zero_and_negative_lines(tmp_path):
    rows = [
        "1,P1,Mug,3,2010-01-01 10:00:00,2.00,7,UK",
        "2,P1,Mug,0,2010-01-02 10:00:00,2.00,7,UK",
        "3,P1,Mug,-1,2010-01-03 10:00:00,2.00,7,UK",
        "4,P1,Mug,1,2010-01-04 10:00:00,-2.00,7,UK",
    ]
    report, tables = run(export(tmp_path, rows), tmp_path / "out")
    assert [row[0] for row in tables["orders"]] == ["1"]
    assert tables["credit_notes"] == [
        ("3:1", "1", "7", "2010-01-03 10:00:00", "2.00"),
        ("4:1", "1", "7", "2010-01-04 10:00:00", "2.00"),
    ]
    assert (report.zero_quantity_lines, report.purchase_lines, report.credit_lines) == (1, 1, 2)
    assert tables["customers"] == [("7", "2010-01-01", "UK")]


def test_column_aliases_of_the_2009_2011_variant(tmp_path):
    header = "Invoice,StockCode,Description,Quantity,InvoiceDate,Price,Customer ID,Country"
    _, expected = run(export(tmp_path, PLAIN), tmp_path / "plain")
    _, tables = run(export(tmp_path, PLAIN, header, "variant.csv"), tmp_path / "variant")
    assert {name: tables[name] for name in CONTRACT_FILES} == {
        name: expected[name] for name in CONTRACT_FILES
    }


def test_snake_case_aliases(tmp_path):
    header = "invoice_id,sku,product_name,QUANTITY,invoice_date,unit_price,customer_id,country"
    _, expected = run(export(tmp_path, PLAIN), tmp_path / "plain")
    _, tables = run(export(tmp_path, PLAIN, header, "snake.csv"), tmp_path / "snake")
    assert tables["orders"] == expected["orders"]
    assert tables["products"] == expected["products"]


def test_column_overrides(tmp_path):
    header = "Beleg,Artikel,Text,Menge,Datum,Preis,Kunde,Land"
    path = export(tmp_path, PLAIN, header, "german.csv")
    overrides = {
        "invoice": "Beleg",
        "product": "artikel",
        "description": "Text",
        "quantity": "Menge",
        "timestamp": "Datum",
        "unit_price": "Preis",
        "customer": "Kunde",
        "country": "Land",
    }
    _, expected = run(export(tmp_path, PLAIN), tmp_path / "plain")
    _, tables = run(path, tmp_path / "out", columns=overrides)
    assert {name: tables[name] for name in CONTRACT_FILES} == {
        name: expected[name] for name in CONTRACT_FILES
    }


def test_override_wins_over_alias(tmp_path):
    header = "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Account"
    rows = ["1,P1,Mug,1,2010-01-01 10:00:00,1.00,7,A9"]
    path = export(tmp_path, rows, header)
    _, tables = run(path, tmp_path / "out", columns={"customer": "Account"})
    assert tables["orders"][0][1] == "A9"


def test_without_optional_columns(tmp_path):
    header = "InvoiceNo,Quantity,InvoiceDate,UnitPrice,CustomerID"
    rows = ["1,2,2010-01-01 10:00:00,1.25,7", "C2,-1,2010-01-02 10:00:00,1.25,7"]
    report, tables = run(export(tmp_path, rows, header), tmp_path / "out")
    assert "products" not in tables
    assert tables["order_items"] == [("1-1", "1", "", "2", "1.25")]
    assert tables["customers"] == [("7", "2010-01-01", "")]
    assert tables["credit_notes"] == [("C2:unmatched", "", "7", "2010-01-02 10:00:00", "1.25")]
    assert report.products == 0


def test_missing_required_column(tmp_path):
    header = "InvoiceNo,StockCode,Quantity,InvoiceDate,UnitPrice,Country"
    path = export(tmp_path, ["1,P1,1,2010-01-01 10:00:00,1.00,UK"], header)
    with pytest.raises(InputError) as error:
        convert(path, tmp_path / "out")
    message = str(error.value)
    assert "customer" in message
    assert "CustomerID, Customer ID, customer_id" in message
    assert "found: InvoiceNo, StockCode, Quantity, InvoiceDate, UnitPrice, Country" in message


def test_bad_overrides(tmp_path):
    frame = pd.DataFrame(columns=HEADER.split(","))
    with pytest.raises(InputError, match="Column 'Kunde' given for customer"):
        resolve_columns(frame, {"customer": "Kunde"})
    with pytest.raises(InputError, match="Unknown column role"):
        resolve_columns(frame, {"client": "CustomerID"})
    with pytest.raises(InputError, match="could all be the customer"):
        resolve_columns(pd.DataFrame(columns=[*HEADER.split(","), "customer_id"]))


@pytest.mark.parametrize("delimiter", [";", "\t", "|"])
def test_other_delimiters_give_the_same_tables(tmp_path, delimiter):
    rows = [*PLAIN, '536370,22632,"HAND WARMER; RED, DOTS",2,12/7/2010 9:00,2.10,,France']
    _, expected = run(export(tmp_path, rows), tmp_path / "comma")
    frame = pd.read_csv(tmp_path / "in.csv", dtype=str, keep_default_na=False)
    frame.to_csv(tmp_path / "other.csv", sep=delimiter, index=False)
    _, tables = run(tmp_path / "other.csv", tmp_path / "other")
    assert tables == expected


def test_parquet_gives_the_same_tables(tmp_path):
    _, expected = run(export(tmp_path, PLAIN), tmp_path / "csv")
    frame = pd.read_csv(tmp_path / "in.csv", dtype={"InvoiceNo": str, "StockCode": str})
    frame["InvoiceDate"] = pd.to_datetime(frame["InvoiceDate"], format="%m/%d/%Y %H:%M")
    frame["CustomerID"] = frame["CustomerID"].astype(float)
    frame.to_parquet(tmp_path / "in.parquet")
    _, tables = run(tmp_path / "in.parquet", tmp_path / "parquet")
    assert tables == expected


def test_encoding(tmp_path):
    path = tmp_path / "latin.csv"
    row = "1,P1,Crème brûlée set £,1,2010-01-01 10:00:00,1.00,7,España"
    path.write_bytes(f"{HEADER}\n{row}\n".encode("latin-1"))
    with pytest.raises(InputError, match="--encoding latin-1"):
        convert(path, tmp_path / "out")
    _, tables = run(path, tmp_path / "out", encoding="latin-1")
    assert tables["products"] == [("P1", "Crème brûlée set £")]
    assert tables["customers"] == [("7", "2010-01-01", "España")]


def test_utf8_byte_order_mark(tmp_path):
    path = tmp_path / "bom.csv"
    path.write_text(f"\ufeff{HEADER}\n{PLAIN[0]}\n", encoding="utf-8")
    assert read_input(path).columns[0] == "InvoiceNo"


def test_a_line_with_extra_fields_stops(tmp_path):
    rows = ["536365,85123A,WHITE HANGING HEART, LARGE,6,12/1/2010 8:26,2.55,17850,UK"]
    with pytest.raises(InputError, match=r"Cannot read .* as CSV"):
        convert(export(tmp_path, rows), tmp_path / "out")


def test_missing_input(tmp_path):
    with pytest.raises(InputError, match="not found"):
        convert(tmp_path / "nothing.csv", tmp_path / "out")


def test_credit_matching_invariants_and_revenue_identity(tmp_path):
    rng = np.random.default_rng(20240501)
    n, invoices = 5_000, 700
    invoice = np.sort(rng.integers(0, invoices, n))
    customer_of = rng.integers(0, 60, invoices).astype(str)
    customer = np.where(rng.random(n) < 0.08, "", customer_of[invoice])
    credit_invoice = rng.random(invoices) < 0.15
    invoice_no = np.where(credit_invoice, "C", "")[invoice] + (500_000 + invoice).astype(str)
    start = np.datetime64("2010-12-01T08:00")
    stamp = start + (invoice * 173 + rng.integers(0, 2, n)).astype("timedelta64[m]")
    quantity = rng.integers(1, 13, n)
    quantity = np.where(credit_invoice[invoice], -quantity, quantity)
    quantity = np.where(rng.random(n) < 0.01, -quantity, quantity)
    quantity = np.where(rng.random(n) < 0.01, 0, quantity)
    price = np.round(rng.gamma(2.0, 2.0, n), 2) + np.where(rng.random(n) < 0.1, 0.005, 0)
    price = np.where(rng.random(n) < 0.005, -price, price)
    frame = pd.DataFrame(
        {
            "InvoiceNo": invoice_no,
            "StockCode": rng.integers(0, 40, n).astype(str),
            "Description": "item",
            "Quantity": quantity,
            "InvoiceDate": pd.Series(stamp).dt.strftime("%Y-%m-%d %H:%M:%S"),
            "UnitPrice": price,
            "CustomerID": customer,
            "Country": "UK",
        }
    )
    path = tmp_path / "random.csv"
    frame.to_csv(path, index=False)
    report = convert(path, tmp_path / "out")
    orders = pd.read_csv(tmp_path / "out" / "orders.csv")
    notes = pd.read_csv(tmp_path / "out" / "credit_notes.csv", dtype={"order_id": str})

    attributed = frame["CustomerID"] != ""
    is_credit = (
        frame["InvoiceNo"].str.startswith("C") | (frame["Quantity"] < 0) | (frame["UnitPrice"] < 0)
    )
    amount = frame["Quantity"] * frame["UnitPrice"]
    purchases = attributed & ~is_credit & (frame["Quantity"] > 0)
    credits = attributed & is_credit & (frame["Quantity"] != 0)
    assert purchases.sum() > 3_000
    assert credits.sum() > 500
    assert report.purchase_lines == purchases.sum()
    assert report.credit_lines == credits.sum()
    assert abs(orders["order_total"].sum() - amount[purchases].sum()) <= 0.005 * len(orders) + 1e-6
    assert abs(notes["amount"].sum() - amount[credits].abs().sum()) <= 0.005 * len(notes) + 1e-6
    assert report.credit_notes_matched > 50
    assert report.credit_notes_unmatched > 20
    assert notes["credit_note_id"].is_unique

    lines = normalise(frame, resolve_columns(frame))
    _, allocations = match_credit_notes(lines)
    credit = lines.loc[allocations["credit_line"]].reset_index(drop=True)
    purchase = lines.loc[allocations["purchase_line"]].reset_index(drop=True)
    assert (credit["kind"] == "credit").all()
    assert (purchase["kind"] == "purchase").all()
    assert (credit["customer"] == purchase["customer"]).all()
    assert (credit["product"] == purchase["product"]).all()
    assert (purchase["timestamp"] <= credit["timestamp"]).all()
    absorbed = allocations.groupby("purchase_line")["quantity"].sum()
    assert (absorbed <= lines.loc[absorbed.index, "quantity"] + 1e-9).all()
    credited = allocations.groupby("credit_line")["quantity"].sum()
    assert (credited <= lines.loc[credited.index, "quantity"].abs() + 1e-9).all()


def test_existing_parquet_twin_is_refused(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "orders.parquet").write_bytes(b"")
    with pytest.raises(InputError, match=r"orders\.parquet"):
        convert(export(tmp_path, PLAIN), out)


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # the installed package
    return subprocess.run(
        [sys.executable, "-m", "cvm.importers", "invoice-lines", *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )


def test_cli(tmp_path):
    out = tmp_path / "raw"
    result = cli(str(export(tmp_path, CREDITS)), "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert {path.name for path in out.iterdir()} == {
        *(f"{name}.csv" for name in CONTRACT_FILES),
        "unattributed_lines.csv",
    }
    lines = result.stdout.splitlines()
    assert any(line.split() == ["orders", "7"] for line in lines)
    assert any(line.split()[:4] == ["credit", "notes", "matched", "6"] for line in lines)
    assert "amount 21.00" in result.stdout
    assert lines[-1] == f"Next: CVM_RAW_DIR={out} make build"


def test_cli_input_error(tmp_path):
    header = "InvoiceNo,StockCode,Quantity,InvoiceDate,UnitPrice"
    path = export(tmp_path, ["1,P1,1,2010-01-01 10:00:00,1.00"], header)
    result = cli(str(path), "--out", str(tmp_path / "raw"))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "customer" in result.stderr
    assert "found: InvoiceNo, StockCode, Quantity, InvoiceDate, UnitPrice" in result.stderr


def test_cli_column_option(tmp_path):
    header = "InvoiceNo,StockCode,Quantity,InvoiceDate,UnitPrice,Kunde"
    path = export(tmp_path, ["1,P1,1,1/12/2010 8:00,1.00,7"], header)
    out = tmp_path / "raw"
    result = cli(str(path), "--out", str(out), "--column", "customer=Kunde", "--dayfirst")
    assert result.returncode == 0, result.stderr
    assert (out / "orders.csv").read_text().splitlines()[1] == (
        "1,7,2010-12-01 08:00:00,completed,1.00"
    )
