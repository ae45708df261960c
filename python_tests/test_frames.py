"""Tests of cvm.frames on both engines: an in-memory DuckDB and a local SparkSession.

The same rows go into each engine with the engine's own types (DuckDB DECIMAL(18,2), Spark
DecimalType(18,2), ...), and what comes out is compared with a pandas frame written out by hand
with the dtype policy documented in cvm.frames. The SparkSession is conftest's (one per run).
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date, datetime
from decimal import Decimal

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from pyspark.sql import DataFrame as SparkDataFrame
from pyspark.sql import SparkSession

from cvm import frames
from cvm.frames import to_engine, to_pandas

# pyspark 4.3 warns on every pandas conversion that it does not "fully support" pandas 3.
pytestmark = pytest.mark.filterwarnings(
    "ignore:PySpark does not yet fully support pandas:FutureWarning"
)

DUCKDB_TYPES = (
    "i INTEGER, b BIGINT, d DECIMAL(18,2), f DOUBLE, s VARCHAR, dt DATE, flag BOOLEAN, ts TIMESTAMP"
)
SPARK_TYPES = (
    "i int, b bigint, d decimal(18,2), f double, s string, dt date, flag boolean, ts timestamp_ntz"
)
ROWS = [
    (1, 2**40, Decimal("12.34"), 1.5, "a", date(2024, 1, 2), True, datetime(2024, 1, 2, 3, 4, 5)),
    (2, -5, Decimal("-0.05"), -2.25, "ü", date(1999, 12, 31), False, datetime(1999, 12, 31)),
    (3, None, None, None, None, None, None, None),
]
# What to_pandas must give for ROWS, whichever engine they come from.
EXPECTED = pd.DataFrame(
    {
        "i": pd.array([1, 2, 3], dtype="Int32"),
        "b": pd.array([2**40, -5, None], dtype="Int64"),
        "d": np.array([12.34, -0.05, np.nan]),
        "f": np.array([1.5, -2.25, np.nan]),
        "s": pd.Series(["a", "ü", None], dtype="str"),
        "dt": pd.Series([date(2024, 1, 2), date(1999, 12, 31), None], dtype=object),
        "flag": pd.array([True, False, None], dtype="boolean"),
        "ts": pd.Series(
            [datetime(2024, 1, 2, 3, 4, 5), datetime(1999, 12, 31), None],
            dtype="datetime64[us]",
        ),
    }
)


@pytest.fixture
def con():
    connection = duckdb.connect()
    yield connection
    connection.close()


def duckdb_relation(con: duckdb.DuckDBPyConnection, rows=ROWS, types=DUCKDB_TYPES):
    con.execute(f"CREATE TABLE t ({types})")
    con.executemany(f"INSERT INTO t VALUES ({', '.join('?' * len(rows[0]))})", rows)
    return con.sql("SELECT * FROM t ORDER BY 1")


def spark_frame(spark: SparkSession, rows=ROWS, types=SPARK_TYPES) -> SparkDataFrame:
    return spark.createDataFrame(rows, schema=types)


def read_back_from_duckdb(con: duckdb.DuckDBPyConnection, model_result) -> pd.DataFrame:
    """What dbt-duckdb does with a model's return value: a table from it, then read it again."""
    con.register("model_result", model_result)
    con.execute("CREATE TABLE materialised AS SELECT * FROM model_result")
    return to_pandas(con.sql("SELECT * FROM materialised"))


# ----------------------------------------------------------------------------------------------
# DuckDB


def test_duckdb_relation_to_pandas(con):
    rel = duckdb_relation(con)
    assert type(rel).__name__ == "DuckDBPyRelation"
    df = to_pandas(rel)
    assert df["d"].dtype == np.float64  # DECIMAL arrives as decimal128 through Arrow
    pd.testing.assert_frame_equal(df, EXPECTED, check_exact=True)


def test_to_engine_duckdb_returns_the_pandas_frame_and_types_survive(con):
    assert to_engine(EXPECTED, con) is EXPECTED
    assert to_engine(EXPECTED, None) is EXPECTED
    con.register("model_result", EXPECTED)
    assert con.sql("SELECT * FROM model_result").types == [
        "INTEGER", "BIGINT", "DOUBLE", "DOUBLE", "VARCHAR", "DATE", "BOOLEAN", "TIMESTAMP"
    ]  # fmt: skip
    pd.testing.assert_frame_equal(read_back_from_duckdb(con, EXPECTED), EXPECTED, check_exact=True)


def test_pyarrow_table_and_pandas_inputs(con):
    table = duckdb_relation(con).to_arrow_table()
    assert pa.types.is_decimal(table.schema.field("d").type)
    pd.testing.assert_frame_equal(to_pandas(table), EXPECTED, check_exact=True)
    assert to_pandas(EXPECTED) is EXPECTED


# ----------------------------------------------------------------------------------------------
# Spark


def test_spark_dataframe_to_pandas_equals_the_duckdb_path(spark, con):
    sdf = spark_frame(spark)
    assert dict(sdf.dtypes)["d"] == "decimal(18,2)"
    from_spark = to_pandas(sdf)
    pd.testing.assert_frame_equal(from_spark, EXPECTED, check_exact=True)
    pd.testing.assert_frame_equal(from_spark, to_pandas(duckdb_relation(con)), check_exact=True)


@pytest.mark.filterwarnings("ignore:The copy keyword is deprecated")  # pyspark's, on pandas 3
def test_spark_without_to_arrow_same_policy(spark):
    """pyspark < 4 has no DataFrame.toArrow(): toPandas() gives Decimal objects, ints as floats."""
    sdf = spark_frame(spark)
    raw = sdf.toPandas()
    assert isinstance(raw["d"].iloc[0], Decimal)
    assert raw["b"].dtype == np.float64
    pd.testing.assert_frame_equal(frames._spark_via_pandas(sdf), EXPECTED, check_exact=True)


def test_to_engine_spark_returns_a_spark_dataframe_with_the_rows(spark):
    out = to_engine(EXPECTED, spark)
    assert isinstance(out, SparkDataFrame)
    assert dict(out.dtypes) == {
        "i": "int",
        "b": "bigint",
        "d": "double",
        "f": "double",
        "s": "string",
        "dt": "date",
        "flag": "boolean",
        "ts": "timestamp",  # naive datetime64 -> Spark TIMESTAMP (session time zone)
    }
    expected_rows = [tuple(float(v) if isinstance(v, Decimal) else v for v in row) for row in ROWS]
    assert [tuple(row) for row in out.collect()] == expected_rows


def test_to_engine_spark_does_not_depend_on_the_arrow_setting(spark):
    key = "spark.sql.execution.arrow.pyspark.enabled"
    before = spark.conf.get(key)
    try:
        spark.conf.set(key, "false")  # createDataFrame(pandas) then fails on Int64 with <NA>
        rows = to_engine(EXPECTED, spark).collect()
    finally:
        spark.conf.set(key, before)
    assert rows[2].b is None
    assert rows[0].b == 2**40


# ----------------------------------------------------------------------------------------------
# A pandas model body run through each engine

ORDER_DUCKDB_TYPES = "order_id BIGINT, customer_id BIGINT, amount DECIMAL(18,2), order_date DATE"
ORDER_SPARK_TYPES = "order_id bigint, customer_id bigint, amount decimal(18,2), order_date date"
ORDERS = [
    (1, 10, Decimal("19.99"), date(2024, 1, 5)),
    (2, 10, Decimal("5.01"), date(2024, 3, 1)),
    (3, 20, Decimal("100.00"), date(2023, 12, 31)),
    (4, 20, None, date(2024, 2, 29)),
    (5, 30, Decimal("0.10"), date(2024, 1, 1)),
]
SUMMARY = pd.DataFrame(
    {
        "customer_id": pd.array([10, 20, 30], dtype="Int64"),
        "orders": pd.array([2, 2, 1], dtype="Int64"),
        "revenue": [19.99 + 5.01, 100.0, 0.1],
        "last_order": pd.Series(
            [date(2024, 3, 1), date(2024, 2, 29), date(2024, 1, 1)], dtype=object
        ),
    }
)


def summarise(orders: pd.DataFrame) -> pd.DataFrame:
    """A model body: plain pandas, engine-agnostic."""
    return (
        orders.groupby("customer_id", as_index=False)
        .agg(
            orders=("order_id", "count"),
            revenue=("amount", "sum"),
            last_order=("order_date", "max"),
        )
        .sort_values("customer_id", ignore_index=True)
    )


def test_model_round_trip_gives_the_same_result_on_both_engines(spark, con):
    duck_result = to_engine(
        summarise(to_pandas(duckdb_relation(con, ORDERS, ORDER_DUCKDB_TYPES))), con
    )
    spark_result = to_engine(
        summarise(to_pandas(spark_frame(spark, ORDERS, ORDER_SPARK_TYPES))), spark
    )

    assert isinstance(duck_result, pd.DataFrame)
    assert isinstance(spark_result, SparkDataFrame)
    assert dict(spark_result.dtypes) == {
        "customer_id": "bigint",
        "orders": "bigint",
        "revenue": "double",
        "last_order": "date",
    }
    from_duckdb = read_back_from_duckdb(con, duck_result)
    from_spark = to_pandas(spark_result)
    pd.testing.assert_frame_equal(from_duckdb, SUMMARY, check_exact=True)
    pd.testing.assert_frame_equal(from_spark, from_duckdb, check_exact=True)


# ----------------------------------------------------------------------------------------------
# Errors and imports


@pytest.mark.parametrize("value", [{"a": [1]}, [1, 2], pd.Series([1]), None])
def test_to_pandas_rejects_other_types(value):
    with pytest.raises(TypeError, match=r"to_pandas\(\) got .*; it accepts pandas\.DataFrame.*"):
        to_pandas(value)


def test_to_pandas_names_the_type(con):
    with pytest.raises(TypeError, match=r"builtins\.dict.*duckdb\.DuckDBPyRelation"):
        to_pandas({"a": [1]})
    with pytest.raises(TypeError, match=r"DuckDBPyConnection"):
        to_pandas(con)  # the connection, not a relation


def test_to_engine_rejects_non_pandas_frames_and_unknown_sessions(spark, con):
    with pytest.raises(TypeError, match=r"takes a pandas\.DataFrame, got .*DataFrame"):
        to_engine(spark_frame(spark), spark)
    with pytest.raises(TypeError, match=r"takes a pandas\.DataFrame, got pyarrow"):
        to_engine(pa.table({"a": [1]}), con)
    with pytest.raises(TypeError, match=r"session of type builtins\.object"):
        to_engine(EXPECTED, object())


def test_importing_frames_imports_neither_engine():
    code = "import sys, cvm.frames; print(sorted({'duckdb', 'pyspark'} & set(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},  # installed package
    )
    assert out.stdout.strip() == "[]"


def test_dbt_duckdbs_session_wrapper_counts_as_duckdb():
    """dbt-duckdb passes Python models a cursor wrapper from its own package, not a DuckDB
    connection; to_engine must return the pandas frame for it too."""
    wrapper = type("DuckDBCursorWrapper", (), {"__module__": "dbt.adapters.duckdb.environments"})
    assert to_engine(EXPECTED, wrapper()) is EXPECTED


def test_in_engine_cuts_rows_and_columns_in_the_engine_or_leaves_frames_in_memory(spark, con):
    relation = con.sql("select * from (values (1, 'a', 2.0), (2, 'b', 3.0)) t(k, purpose, v)")
    spark_frame = spark.createDataFrame(relation.df())
    for frame in (relation, spark_frame):
        every_column = to_pandas(frames.in_engine(frame, None, "purpose = 'b'"))
        assert every_column.to_dict("list") == {"k": [2], "purpose": ["b"], "v": [3.0]}
        two = to_pandas(frames.in_engine(frame, ["k", "v"], "purpose = 'a'"))
        assert two.to_dict("list") == {"k": [1], "v": [2.0]}
    in_memory = relation.df()
    assert frames.in_engine(in_memory, None, "purpose = 'b'") is in_memory
