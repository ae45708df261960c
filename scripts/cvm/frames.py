"""Engine-neutral frames for dbt Python models: pandas in, the adapter's own frame out.

What ``dbt.ref()`` returns, and what a Python model must return, depends on the adapter:
dbt-duckdb hands over a ``duckdb.DuckDBPyRelation`` and accepts a pandas DataFrame back;
Databricks/Spark hands over a ``pyspark.sql.DataFrame`` and wants one back. The model code
works on pandas, so a model reads with :func:`to_pandas` and returns :func:`to_engine`::

    def model(dbt, session):
        orders = to_pandas(dbt.ref("fct_orders"))
        return to_engine(summarise(orders), session)

Engines are recognised by duck typing and module name, so importing this module imports
neither duckdb nor pyspark.

Dtype policy of :func:`to_pandas` (the same whatever the engine, and independent of whether a
column happens to hold NULLs, so a model's output schema does not change from run to run):

* DECIMAL / NUMERIC -> ``float64`` (DuckDB's HUGEINT, e.g. ``sum(bigint)``, arrives as a
  decimal and so as ``float64`` too);
* integers -> pandas nullable ``Int8``/``Int16``/``Int32``/``Int64`` (width kept), NULL as
  ``pd.NA``, always: never ``float64``, so they go back to the engine as integers;
* BOOLEAN -> nullable ``boolean``, always;
* float/double -> ``float32``/``float64``, NULL as NaN;
* strings -> pandas' default string dtype (``str`` in pandas 3), NULL as NaN;
* DATE -> ``object`` column of ``datetime.date`` (NULL as None), so it goes back as a DATE;
  use ``pd.to_datetime`` for ``.dt`` arithmetic;
* TIMESTAMP -> ``datetime64[us]`` (``datetime64[us, tz]`` with a time zone).

On Spark, naive ``datetime64`` columns come back from :func:`to_engine` as ``TimestampType``
(Spark's default, read in the session time zone), not ``TimestampNTZType``.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

ACCEPTED = "pandas.DataFrame, pyarrow.Table, duckdb.DuckDBPyRelation or pyspark.sql.DataFrame"

_NULLABLE: dict[pa.DataType, Any] = {
    pa.int8(): pd.Int8Dtype(),
    pa.int16(): pd.Int16Dtype(),
    pa.int32(): pd.Int32Dtype(),
    pa.int64(): pd.Int64Dtype(),
    pa.uint8(): pd.UInt8Dtype(),
    pa.uint16(): pd.UInt16Dtype(),
    pa.uint32(): pd.UInt32Dtype(),
    pa.uint64(): pd.UInt64Dtype(),
    pa.bool_(): pd.BooleanDtype(),
}
# The same policy for a pandas frame from Spark's toPandas() (pyspark < 4 has no toArrow()).
_SPARK_DTYPES = {
    "byte": "Int8",
    "short": "Int16",
    "integer": "Int32",
    "long": "Int64",
    "boolean": "boolean",
    "decimal": "float64",
}


def _package(obj: Any) -> str:
    """Top-level package of obj's type: 'duckdb' for '_duckdb.DuckDBPyRelation', etc."""
    return type(obj).__module__.split(".")[0].lstrip("_")


def _is_dbt_duckdb(session: Any) -> bool:
    return type(session).__module__.startswith("dbt.adapters.duckdb")


def _arrow_to_pandas(table: pa.Table) -> pd.DataFrame:
    for i, field in enumerate(table.schema):
        if pa.types.is_decimal(field.type):
            table = table.set_column(i, field.name, pc.cast(table.column(i), pa.float64()))
    return table.to_pandas(types_mapper=_NULLABLE.get)


def _spark_via_pandas(frame: Any) -> pd.DataFrame:
    """pyspark < 4: toPandas() (enable spark.sql.execution.arrow.pyspark.enabled for speed)."""
    df = frame.toPandas()
    for i, field in enumerate(frame.schema.fields):
        dtype = _SPARK_DTYPES.get(field.dataType.typeName())
        if dtype is not None:
            df.isetitem(i, df.iloc[:, i].astype(dtype))
    return df


def in_engine(frame: Any, columns: Sequence[str] | None, where: str) -> Any:
    """``frame`` cut to ``columns`` (None: all) and to the rows meeting the SQL condition
    ``where`` by the engine itself (a DuckDB relation or a Spark DataFrame; both take a SQL
    string), so that only those rows and columns ever reach pandas. Frames already in memory
    (pandas, pyarrow) come back unchanged: the caller applies its own filter to them as it
    would anyway."""
    package = _package(frame)
    if package == "duckdb" and type(frame).__name__ == "DuckDBPyRelation":
        rows = frame.filter(where)
        return rows if columns is None else rows.project(", ".join(columns))
    if package == "pyspark" and hasattr(frame, "toPandas"):
        rows = frame.filter(where)
        return rows if columns is None else rows.select(*columns)
    return frame


def to_pandas(frame: Any) -> pd.DataFrame:
    """Returns frame (what ``dbt.ref()`` gave) as a pandas DataFrame, dtypes as documented above.

    Raises TypeError for any type but pandas, pyarrow, DuckDB and Spark frames.
    """
    if isinstance(frame, pd.DataFrame):
        return frame
    if isinstance(frame, pa.Table):
        return _arrow_to_pandas(frame)
    package = _package(frame)
    if package == "duckdb" and type(frame).__name__ == "DuckDBPyRelation":
        # to_arrow_table() in current duckdb; fetch_arrow_table() in older ones (deprecated in 1.5).
        fetch = getattr(frame, "to_arrow_table", None) or frame.fetch_arrow_table
        return _arrow_to_pandas(fetch())
    if package == "pyspark" and hasattr(frame, "toPandas"):
        if hasattr(frame, "toArrow"):
            return _arrow_to_pandas(frame.toArrow())
        return _spark_via_pandas(frame)
    raise TypeError(
        f"to_pandas() got {type(frame).__module__}.{type(frame).__qualname__}; "
        f"it accepts {ACCEPTED}"
    )


def to_engine(frame: pd.DataFrame, session: Any) -> Any:
    """Returns frame as the dbt Python model's return value for the engine of session.

    DuckDB (session a ``DuckDBPyConnection``, or None): frame itself. Spark (a ``SparkSession``,
    classic or Connect): a Spark DataFrame, built from Arrow so that nullable integer/boolean
    columns keep their types whatever ``spark.sql.execution.arrow.pyspark.enabled`` says
    (pyspark < 4 cannot take an Arrow table: there it is built from pandas, which needs that
    setting on for nullable columns).
    """
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(
            f"to_engine() takes a pandas.DataFrame, got {type(frame).__module__}."
            f"{type(frame).__qualname__}"
        )
    # dbt-duckdb hands Python models a cursor wrapper of its own, not the DuckDB connection.
    if session is None or _package(session) == "duckdb" or _is_dbt_duckdb(session):
        return frame
    if _package(session) == "pyspark" and hasattr(session, "createDataFrame"):
        pyspark_major = int(sys.modules["pyspark"].__version__.split(".")[0])
        if pyspark_major >= 4:
            return session.createDataFrame(pa.Table.from_pandas(frame, preserve_index=False))
        return session.createDataFrame(frame)
    raise TypeError(
        f"to_engine() got a session of type {type(session).__module__}."
        f"{type(session).__qualname__}; it accepts a duckdb.DuckDBPyConnection, None or a "
        "pyspark.sql.SparkSession"
    )
