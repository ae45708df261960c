"""dbt on the local Spark target: ``python -m cvm.spark_dbt <dbt arguments>`` is dbt's own
command line with two additions, so the whole warehouse builds on a local SparkSession.

* **Python models on the session.** dbt-spark 1.11 submits Python models only to Databricks
  (all-purpose or job clusters); it has no local method. This adds ``local_session``, the
  default when the profile's method is ``session``: the compiled model (the same file dbt
  would send to Databricks, with dbt's own write of the returned frame) runs in this process
  on dbt's SparkSession. Databricks targets keep their cluster methods; the model code is the
  same either way.
* **The raw inputs.** Spark SQL cannot list files, so the raw hook (macro
  ``spark__register_raw_sources``) is told where each table's file or directory is, found by
  :func:`cvm.contract.find_raw_input` in ``CVM_RAW_DIR`` (the rule the raw gate applies), in
  ``CVM_RAW_INPUTS``.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cvm import DEMO_RAW_DIR, contract

LOCAL_SESSION = "local_session"


class LocalSessionPythonJobHelper:
    """Runs a compiled Python model on the SparkSession of dbt's own ``session`` connection."""

    def __init__(self, parsed_model: dict[str, Any], credentials: Any) -> None:
        self.source_path = parsed_model.get("original_file_path", parsed_model.get("name", "model"))

    def submit(self, compiled_code: str) -> None:
        from pyspark.sql import SparkSession

        # dbt-spark's session connection made this session with its server_side_parameters.
        session = SparkSession.builder.getOrCreate()
        namespace = {"__name__": "__dbt_python_model__", "spark": session}
        exec(compile(compiled_code, self.source_path, "exec"), namespace)


def register_local_session() -> None:
    """Add ``local_session`` to dbt-spark's submission methods and make it the default of
    ``session`` connections (once per process)."""
    from dbt.adapters.spark.impl import SparkAdapter

    if getattr(SparkAdapter, "_cvm_local_session", False):
        return
    SparkAdapter._cvm_local_session = True  # type: ignore[attr-defined]

    helpers = SparkAdapter.python_submission_helpers.fget
    default = SparkAdapter.default_python_submission_method.fget

    def python_submission_helpers(self: Any) -> dict[str, Any]:
        return {**helpers(self), LOCAL_SESSION: LocalSessionPythonJobHelper}

    def default_python_submission_method(self: Any) -> str:
        method = getattr(self.config.credentials, "method", None)
        return LOCAL_SESSION if getattr(method, "value", method) == "session" else default(self)

    SparkAdapter.python_submission_helpers = property(python_submission_helpers)
    SparkAdapter.default_python_submission_method = property(default_python_submission_method)


def raw_inputs(raw_dir: Path) -> dict[str, dict[str, str]]:
    """Each contract table's raw input in ``raw_dir`` (tables without one are left out), as
    the source YAML's ``spark_readers`` take it: a directory (Spark's metastore wants a table's
    path to be one), the files in it to read, and whether to look at any depth."""
    found = {}
    for table in contract.load().tables:
        raw = contract.find_raw_input(raw_dir, table.name)
        if raw is None:
            continue
        location = raw.location.resolve()
        found[table.name] = {
            "name": raw.name,
            "file_format": raw.file_format,
            "directory": str(location if raw.is_directory else location.parent),
            "glob": f"*.{raw.file_format}" if raw.is_directory else location.name,
            "recursive": str(raw.is_directory).lower(),
        }
    return found


def environment(env: Mapping[str, str]) -> dict[str, str]:
    """``env`` with CVM_RAW_INPUTS for the raw directory it names (CVM_RAW_DIR, else the
    demo data's)."""
    raw_dir = Path(env.get("CVM_RAW_DIR", "").strip() or DEMO_RAW_DIR)
    return {**env, "CVM_RAW_INPUTS": json.dumps(raw_inputs(raw_dir))}


def main(argv: list[str] | None = None) -> None:
    os.environ.update(environment(os.environ))
    register_local_session()
    from dbt.cli.main import cli

    # dbt's command line, exit status included (it exits the process itself).
    cli(args=sys.argv[1:] if argv is None else argv, prog_name="dbt")


if __name__ == "__main__":
    main()
