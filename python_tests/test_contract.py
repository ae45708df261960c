"""The raw contract is defined once (models/staging/shop/_shop__sources.yml): the dbt hook, the
raw gate, the build and the generator agree because they read it, and the gate judges values
with staging's own parsing SQL."""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
import pytest
import yaml

from cvm import build, contract
from cvm import generate as gen
from cvm.quality import GxRunner, load_thresholds
from cvm.quality.raw_gate import file_problem, run_raw_gate
from dbt_project import MODEL_RELATIONS_ONLY, SAVED_PARSE_WAREHOUSE, run_dbt

CONTRACT = contract.load()
BASE_MODELS = contract.PROJECT_DIR / "models/staging/shop/base"


def test_the_generator_writes_the_contract_tables_with_their_keys_and_columns():
    assert set(gen.TABLES) == set(CONTRACT.table_names) - {"credit_notes"}
    for name in gen.TABLES:
        assert gen.SCHEMAS[name].names == list(CONTRACT.table(name).column_names), name
    from cvm.generate.bad_rows import KEY_COLUMNS as generator_keys

    assert generator_keys == {name: CONTRACT.table(name).key for name in gen.TABLES}


def test_the_thresholds_name_no_keys_or_column_types():
    tables = yaml.safe_load((contract.PROJECT_DIR / "gx/thresholds.yml").read_text())["raw"]
    assert set(tables["tables"]) <= set(CONTRACT.table_names)
    for name, config in tables["tables"].items():
        assert not {"key", "timestamps", "numbers"} & set(config), name


PARSER_CALLS = {  # parse_as -> the staging macro call that parses into it
    "timestamp": "cvm_parse_timestamp('{c}')",
    "date": "cvm_parse_date('{c}')",
    "boolean": "cvm_parse_boolean('{c}')",
    "decimal(18, 2)": "cvm_parse_money('{c}')",
    "bigint": "cvm_parse_integer('{c}')",
}


@pytest.mark.parametrize("name", CONTRACT.table_names)
def test_staging_parses_each_column_into_the_contract_type(name):
    base_model = (BASE_MODELS / f"base_shop__{name}.sql").read_text()
    for column in CONTRACT.table(name).columns:
        if column.parse_as:
            default = f"cvm_parse_number('{{c}}', '{column.parse_as}')"
            call = PARSER_CALLS.get(column.parse_as, default).format(c=column.name)
            assert call in base_model, (name, column.name)
    # Its key literal (dbt unit tests have no `graph` to look it up in) is the contract's.
    assert re.search(rf"cvm_quarantine_ctes\(\s*'{CONTRACT.table(name).key}'", base_model), name


@pytest.mark.parametrize(
    ("parse_as", "value", "unparseable"),
    [
        ("timestamp", "2024-05-01", False),
        ("timestamp", " 2024-05-01 13:45:00 ", False),
        ("timestamp", "2024-02-30", True),  # no such day: staging quarantines it
        ("timestamp", "31/12/2024", True),
        ("timestamp", "  ", False),  # blank is missing, not unparseable
        ("timestamp", None, False),
        ("date", "2024-05-01 13:45:00", False),
        ("decimal(18, 2)", " 12.50 ", False),
        ("decimal(18, 2)", "1,234.50", True),
        ("bigint", "7", False),
        ("bigint", "seven", True),
        ("decimal(5, 2)", "1000", True),  # does not fit staging's type
    ],
)
def test_the_gate_judges_values_with_staging_parsing(parse_as, value, unparseable):
    sql = contract.unparseable_sql("value", parse_as)
    found = duckdb.execute(f"select {sql} from (select ?::varchar as value)", [value]).fetchone()
    assert found == (unparseable,)


def test_sniffed_csv_dialect_finds_a_truncated_semicolon_file(tmp_path):
    path = tmp_path / "orders.csv"
    path.write_text('order_id;customer_id;status\n1;2;"a;b"\n3;4\n')
    assert "last line has 2 of the header's 3 fields" in file_problem(path)
    path.write_text('order_id;customer_id;status\n1;2;"a;b"\n3;4;completed\n')
    assert file_problem(path) is None


def write_raw_dir(raw: Path) -> None:
    """Two required files: customers as a CSV with `;`, orders as Parquet."""
    raw.mkdir()
    (raw / "customers.csv").write_text(
        "customer_id;signup_date;country\n1;2024-01-05;NL\n2;2024-02-06;DE\n"
    )
    duckdb.execute(
        "copy (select '10' as order_id, '1' as customer_id, '2024-03-01' as ordered_at, "
        f"'completed' as status, '9.50' as order_total) to '{raw / 'orders.parquet'}'"
    )


def hook_views(raw: Path, tmp_path: Path) -> tuple[str, dict[str, str]]:
    """Run the on-run-start hook (with one small seed); the SQL of each raw view it made."""
    warehouse = tmp_path / SAVED_PARSE_WAREHOUSE
    result = run_dbt("seed", raw, warehouse, tmp_path, "--select", "tenure_bands")
    if not warehouse.exists():
        return result.stdout, {}
    with duckdb.connect(str(warehouse), read_only=True) as con:
        views = con.execute(
            "select view_name, sql from duckdb_views() where schema_name = 'raw'"
        ).fetchall()
    return result.stdout, dict(views)


@pytest.mark.slow
def test_the_hook_the_gate_and_the_build_find_and_read_the_same_files(tmp_path):
    raw = tmp_path / "raw"
    write_raw_dir(raw)
    stdout, views = hook_views(raw, tmp_path / "first")
    assert views, stdout[-2000:]
    for name in CONTRACT.table_names:
        found = contract.find_raw_input(raw, name)
        assert build.has_raw_file(raw, name) == (found is not None), name
        if found is None:
            assert " from " not in views[name].lower(), (name, views[name])  # an empty view
        else:
            assert re.search(re.escape(found.pattern), views[name]), (name, views[name])
    # The gate reads the `;` file into the contract's columns, as the hook does.
    reader = contract.reader_sql(contract.find_raw_input(raw, "customers"))
    customers = duckdb.sql(f"select customer_id, signup_date, country from {reader}").fetchall()
    assert customers == [("1", "2024-01-05", "NL"), ("2", "2024-02-06", "DE")]
    gate = run_raw_gate(raw, None, load_thresholds(), GxRunner(None))
    assert not [f for f in gate.findings if f.expectation == "readable_file"], gate.findings

    # Both a CSV and a Parquet file of one table: all three see a file, and two name the clash.
    duckdb.execute(f"copy (select '5' as product_id) to '{raw / 'products.parquet'}'")
    (raw / "products.csv").write_text("product_id\n5\n")
    stdout, _ = hook_views(raw, tmp_path / "second")
    assert "keep one so it is clear which to load" in stdout, stdout[-2000:]
    assert build.has_raw_file(raw, "products")
    with pytest.raises(contract.AmbiguousRawFile):
        contract.find_raw_input(raw, "products")
    gate = run_raw_gate(raw, None, load_thresholds(), GxRunner(None))
    assert any("keep one" in (f.detail or "") for f in gate.findings), gate.findings


# Raw data that arrives by day: a directory per table


def arriving_by_day(single: Path, out: Path) -> None:
    """The raw files of ``single`` as a shop sending them day by day would: orders as
    hive-style Parquet partitions by month of ``ordered_at``, customers as two dated CSV files
    with their columns in different orders and a column only in the earlier one; the other
    tables as they are."""
    out.mkdir()
    for path in single.iterdir():
        if path.stem not in {"orders", "customers"}:
            (out / path.name).write_bytes(path.read_bytes())
    orders = contract.reader_sql(contract.find_raw_input(single, "orders"))
    duckdb.execute(
        f"copy (select *, coalesce(substr(ordered_at, 1, 7), 'none') as ordered_month "
        f"from {orders}) to '{out / 'orders'}' (format parquet, partition_by (ordered_month))"
    )
    customers = contract.reader_sql(contract.find_raw_input(single, "customers"))
    rows = duckdb.sql(f"select * from {customers}").df()
    (out / "customers").mkdir()
    half = len(rows) // 2
    # A column the contract ignores, which the later export no longer has.
    earlier = rows.iloc[:half].assign(legacy_segment="b2c")
    earlier.to_csv(out / "customers" / "2026-06-29.csv", index=False)
    rows.iloc[half:, ::-1].to_csv(out / "customers" / "2026-06-30.csv", index=False)


def staging_tables(warehouse: Path) -> dict[str, list[tuple]]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        names = [
            name
            for (name,) in con.execute(
                "select table_name from information_schema.tables "
                f"where table_schema = 'staging' and {MODEL_RELATIONS_ONLY}"
            ).fetchall()
        ]
        return {n: con.execute(f"select * from staging.{n} order by all").fetchall() for n in names}


@pytest.mark.slow
def test_a_directory_of_dated_files_or_partitions_reads_as_the_single_file(tmp_path):
    single = tmp_path / "single"
    gen.generate(single, customers=300, seed=4, fmt="csv", inject_bad_rows=True, bad_row_rate=0.02)
    by_day = tmp_path / "by_day"
    arriving_by_day(single, by_day)
    found = contract.find_raw_input(by_day, "orders")
    assert found.is_directory and found.file_format == "parquet" and len(found.files) > 12
    assert build.has_raw_file(by_day, "customers")

    # The gate finds the same problems in both (bad rows planted by the generator).
    def judged(raw: Path) -> list[tuple[str, str, str | None, str]]:
        # With Data Docs, as make build runs it: GX keeps each batch's name as a path.
        docs = GxRunner(tmp_path / f"docs_{raw.name}")
        findings = run_raw_gate(raw, None, load_thresholds(), docs).findings
        return sorted((f.subject.split(".")[0].split("/")[0], f.expectation, f.column, f.severity)
                      for f in findings)  # fmt: skip

    assert judged(by_day) == judged(single) != []

    # Staging (typing, quarantine with its reasons, deduplication) is the same, row for row.
    tables = {}
    for raw in (single, by_day):
        warehouse = tmp_path / f"{raw.name}_staged" / SAVED_PARSE_WAREHOUSE
        result = run_dbt("run", raw, warehouse, warehouse.parent, "--select", "staging")
        assert result.returncode == 0, result.stdout[-3000:]
        tables[raw.name] = staging_tables(warehouse)
    assert tables["by_day"].keys() == tables["single"].keys()
    assert tables["by_day"]["stg_shop__quarantined_rows"]  # bad rows were planted
    for name, rows in tables["single"].items():
        assert tables["by_day"][name] == rows, name


def test_a_table_directory_of_mixed_or_no_files_is_an_error(tmp_path):
    raw = tmp_path / "raw"
    (raw / "orders" / "2026-06-30").mkdir(parents=True)
    with pytest.raises(
        contract.AmbiguousRawFile, match=re.escape("holds no .parquet or .csv files")
    ):
        contract.find_raw_input(raw, "orders")
    (raw / "orders" / "2026-06-30" / "part-0.csv").write_text("order_id\n1\n")
    assert contract.find_raw_input(raw, "orders").files == (
        raw / "orders" / "2026-06-30" / "part-0.csv",
    )
    (raw / "orders" / "2026-07-01.parquet").write_bytes(b"")
    with pytest.raises(
        contract.AmbiguousRawFile, match=re.escape("holds both .parquet and .csv files")
    ):
        contract.find_raw_input(raw, "orders")
    (raw / "orders" / "2026-07-01.parquet").unlink()
    (raw / "orders.csv").write_text("order_id\n1\n")
    with pytest.raises(contract.AmbiguousRawFile, match="keep one"):
        contract.find_raw_input(raw, "orders")
    # The gate names the file of a directory that is cut off.
    (raw / "orders.csv").unlink()
    (raw / "orders" / "2026-06-30" / "part-0.csv").write_text("order_id,customer_id\n1,")
    findings = run_raw_gate(raw, None, load_thresholds(), GxRunner(None)).findings
    assert any(
        f.subject == "orders/2026-06-30/part-0.csv" and "truncated" in f.detail for f in findings
    ), findings
