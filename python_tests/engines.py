"""Builds on two engines compared: the marts of a DuckDB warehouse and of a local Spark
warehouse in one representation, and the differences between them (python_tests/
test_spark_build.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from cvm import build
from dbt_project import MODEL_RELATIONS_ONLY

# Relative tolerance of numbers; the CLV fits' parameters are an optimiser's answer, equal to
# its tolerance, and everything scored from them follows them.
RELATIVE = 1e-9
CLV_RELATIVE = 1e-6
CLV_MARTS = {
    "clv_model_parameters",
    "clv_holdout_report",
    "customer_value",
    "next_best_actions",
    "contact_plan",
    "contact_plan_summary",
}

# A step on local Spark, then the tables it wrote exported, in one process: a Spark start and
# the metastore's opening cost about 15 s each. The step is `make build-spark` or dbt's
# arguments on the `spark` target.
SPARK_STEP_THEN_EXPORT = """
# pyspark.sql.connect (imported by Great Expectations) takes a __main__ without a file for a
# doctest run and exits: give it one.
__file__ = "spark_step_then_export"
import sys
from pathlib import Path
import pyarrow.parquet as pq
from cvm import build
from cvm.dbt_runs import DbtSteps
from cvm.spark_warehouse import SparkConnection, local_session
out, schemas, step = Path(sys.argv[1]), sys.argv[2].split(","), sys.argv[3:]
ok = build.main([]) == 0 if step == ["make", "build-spark"] else DbtSteps("spark").run(step, {})
if ok:
    session = local_session()
    for schema, name in SparkConnection(session).relation_names(schemas):
        (out / schema).mkdir(parents=True, exist_ok=True)
        table = session.table(f"{schema}.{name}").toArrow()
        pq.write_table(table, out / schema / f"{name}.parquet")
    session.stop()
sys.exit(0 if ok else 1)
"""


def normalised(table: pa.Table) -> pd.DataFrame:
    """One representation for both engines: decimals as floats, time zones dropped (Spark
    reads timestamps in the session's zone, UTC), integers as nullable Int64."""
    columns = {}
    for name, column in zip(table.column_names, table.columns, strict=True):
        kind = column.type
        if pa.types.is_decimal(kind) or pa.types.is_floating(kind):
            columns[name] = column.cast(pa.float64()).to_pandas()
        elif pa.types.is_integer(kind):
            columns[name] = column.cast(pa.int64()).to_pandas(types_mapper=pd.ArrowDtype)
        elif pa.types.is_timestamp(kind):
            columns[name] = column.cast(pa.timestamp("us")).to_pandas()
        else:
            columns[name] = column.to_pandas()
    return pd.DataFrame(columns)


def differences(expected: pd.DataFrame, actual: pd.DataFrame, relative: float) -> list[str]:
    """How ``actual`` differs from ``expected``: columns, row count, and per column the rows
    whose value differs (numbers beyond ``relative`` of the value or of the column's largest
    value), rows matched after sorting both by every column (numbers rounded, so a last-digit
    difference does not reorder them)."""
    # Columns that time a step (fit_seconds, solve_seconds) differ from run to run.
    timed = [c for c in expected.columns if c.endswith("_seconds")]
    expected, actual = expected.drop(columns=timed), actual.drop(columns=timed, errors="ignore")
    if list(expected.columns) != list(actual.columns):
        return [f"columns {list(expected.columns)} != {list(actual.columns)}"]
    if len(expected) != len(actual):
        return [f"{len(expected)} rows != {len(actual)} rows"]
    numbers = [c for c in expected.columns if pd.api.types.is_float_dtype(expected[c])]

    def sort_key(column: pd.Series) -> np.ndarray:
        if column.name in numbers:
            return column.astype("float64").round(6).to_numpy()
        # As text, missing first; sorted codes of the texts, which lexsort orders fast.
        return pd.factorize(np.where(column.isna(), "", column.astype(str)), sort=True)[0]

    def sorted_rows(frame: pd.DataFrame) -> pd.DataFrame:
        keys = [sort_key(frame[c]) for c in reversed(frame.columns)]
        return frame.iloc[np.lexsort(keys)].reset_index(drop=True)

    expected, actual = sorted_rows(expected), sorted_rows(actual)
    found = []
    for column in expected.columns:
        want, got = expected[column], actual[column]
        if column in numbers:
            want, got = want.astype("float64"), got.astype("float64")
            # Relative to the value, or to the column's largest value: a difference of two
            # near-equal numbers (a gain net of its cost) keeps its inputs' absolute error.
            scale = np.nanmax(np.abs(want)) if want.notna().any() else 0.0
            same = np.isclose(got, want, rtol=relative, atol=relative * scale, equal_nan=True)
        else:
            same = (want.isna() & got.isna()) | (want.astype(str) == got.astype(str))
        if not np.all(same):
            row = int(np.flatnonzero(~np.asarray(same))[0])
            found.append(
                f"{column}: {int((~np.asarray(same)).sum())} rows differ, e.g. {want[row]!r} "
                f"!= {got[row]!r}"
            )
    return found


def duckdb_marts(warehouse: Path, schema: str = "marts") -> dict[str, pd.DataFrame]:
    """Every table and view of ``schema`` in a DuckDB warehouse, normalised."""
    with duckdb.connect(str(warehouse), read_only=True) as con:
        names = [
            row[0]
            for row in con.execute(
                "select table_name from information_schema.tables "
                f"where table_schema = ? and {MODEL_RELATIONS_ONLY}",
                [schema],
            ).fetchall()
        ]
        return {
            name: normalised(con.execute(f"select * from {schema}.{name}").arrow().read_all())
            for name in names
        }


def run_on_spark(
    step: list[str], env: dict[str, str], out: Path, *schemas: str
) -> tuple[subprocess.CompletedProcess[str], dict[str, dict[str, pd.DataFrame]]]:
    """``step`` (``["make", "build-spark"]``, or dbt's arguments on the `spark` target), ``env``
    over this process's environment, then every table and view of ``schemas`` (default marts) in
    the Spark warehouse it wrote, per schema, normalised (none when the step failed)."""
    schemas = schemas or ("marts",)
    result = subprocess.run(
        [sys.executable, "-c", SPARK_STEP_THEN_EXPORT, str(out), ",".join(schemas), *step],
        cwd=build.PROJECT_DIR,
        env=os.environ | env | {"CVM_ENGINE": "spark", "DBT_PROFILES_DIR": str(build.PROJECT_DIR)},
        capture_output=True,
        text=True,
        check=False,
    )
    exported = {
        schema: {
            path.stem: normalised(pq.read_table(path)) for path in (out / schema).glob("*.parquet")
        }
        for schema in schemas
        if result.returncode == 0
    }
    return result, exported
