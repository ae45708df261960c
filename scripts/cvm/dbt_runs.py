"""How dbt runs on this project: in a process of its own (:func:`run_dbt`: tests, benchmarks,
anything that wants dbt's exit status and output), or, for the steps of one build, in the
build's own process sharing one parse (:class:`DbtSteps`).

A build over stored order facts runs dbt twice (staging; then the rest, once the change check
has set the reprocess dates: cvm.build.build_warehouse). A dbt in a process of its own paid its
start-up (about 1.3 s) and read its saved parse again (about 3.5 s) for each step. DbtSteps
parses once (`dbt parse`, which writes target/ as a build does) and gives every step that
manifest (``dbtRunner(manifest=...)``), which dbt then neither reads nor parses again.

Reusing the manifest is safe because what changes between the steps of a build is read when
dbt runs, not when it parses: the CVM_REPROCESS_* variables reach the models through
dbt_project.yml's vars, which dbt renders afresh at each invocation, and only macros read
those vars. dbt keeps global state between invocations (its flags, the adapter, its loggers);
dbt-duckdb can keep the warehouse file open after a run, so each step closes it
(:func:`release_duckdb_warehouse`) before the build opens the file itself. On the local Spark
target dbt has always run in the build's process: dbt-spark takes the SparkSession it started
(cvm.spark_dbt).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from cvm import DEMO_RAW_DIR, PROJECT_DIR, spark_dbt

DBT = Path(sys.executable).with_name("dbt")


def overridden(base: Mapping[str, str], overrides: Mapping[str, str | None]) -> dict[str, str]:
    """``base`` (an environment) with ``overrides`` applied: a value replaces, None unsets."""
    applied = dict(base)
    for name, value in overrides.items():
        if value is None:
            applied.pop(name, None)
        else:
            applied[name] = value
    return applied


def dbt_environment(env: Mapping[str, str | None], engine: str) -> tuple[Path, dict[str, str]]:
    """Where dbt runs on ``engine``, and its whole environment: this process's with ``env``
    applied (None unsets) and the profiles found in the project."""
    full_env = overridden({**os.environ, "DBT_PROFILES_DIR": str(PROJECT_DIR)}, env)
    working_dir, full_env = dbt_working_directory(full_env, engine)
    working_dir.mkdir(parents=True, exist_ok=True)  # DuckDB makes the file, not its directory
    return working_dir, full_env


def run_dbt(
    args: Sequence[str],
    *,
    env: Mapping[str, str | None] | None = None,
    work_dir: Path | None = None,
    capture: bool = False,
    engine: str = "duckdb",
) -> subprocess.CompletedProcess[str]:
    """dbt on this project in its own process: dbt keeps global state, and the process
    releases the warehouse file when it exits. ``env`` overrides the environment (None unsets
    a variable); ``work_dir`` receives dbt's target/ and logs/. On ``engine`` spark, dbt runs
    on the `spark` target through cvm.spark_dbt (Python models on the local session)."""
    dbt = [str(DBT)] if engine == "duckdb" else [sys.executable, "-m", "cvm.spark_dbt"]
    command = [*dbt, *args, *project_arguments(engine)]
    if work_dir is not None:
        command += ["--target-path", str(work_dir / "target"), "--log-path", str(work_dir / "logs")]
    working_dir, full_env = dbt_environment(env or {}, engine)
    return subprocess.run(
        command, cwd=working_dir, env=full_env, capture_output=capture, text=True, check=False
    )


def project_arguments(engine: str) -> list[str]:
    target = ["--target", "spark"] if engine == "spark" else []
    return ["--project-dir", str(PROJECT_DIR), *target]


@contextmanager
def environment_set(env: Mapping[str, str], working_dir: Path) -> Iterator[None]:
    """os.environ replaced by ``env`` and the working directory moved to ``working_dir``,
    both restored afterwards: dbt reads its settings and env_var() from the process
    environment, and DuckDB resolves the profile's relative path against the working
    directory."""
    saved, saved_dir = dict(os.environ), Path.cwd()
    os.environ.clear()
    os.environ.update(env)
    try:
        os.chdir(working_dir)
        yield
    finally:
        os.chdir(saved_dir)
        os.environ.clear()
        os.environ.update(saved)


class DbtSteps:
    """dbt commands on this project in this process, on ``engine`` (duckdb, or spark for the
    local Spark target) with ``parse_arguments`` (what changes the parse, e.g. --vars; the
    same for every step): the first step parses, the later ones reuse its manifest. Between
    steps the environment may change only in what dbt reads when it runs (the vars that
    dbt_project.yml renders from it); what the parse read (the as-of date, the raw directory,
    the profile's settings) must stay as it was."""

    def __init__(self, engine: str = "duckdb", parse_arguments: Sequence[str] = ()) -> None:
        self.engine = engine
        self.parse_arguments = [*parse_arguments, *project_arguments(engine)]
        self.manifest: Any = None  # dbt's Manifest, from the first step's parse

    def run(self, args: Sequence[str], env: Mapping[str, str | None]) -> bool:
        """`dbt <args>` with ``env`` over this process's environment (None unsets); True when
        it succeeded. dbt prints its output, and writes target/ and logs/, as its command
        line does."""
        from dbt.cli.main import dbtRunner

        working_dir, full_env = dbt_environment(env, self.engine)
        if self.engine == "spark":  # what `python -m cvm.spark_dbt` adds in its own process
            spark_dbt.register_local_session()
            full_env = spark_dbt.environment(full_env)
        with environment_set(full_env, working_dir):
            if self.manifest is None:
                parsed = dbtRunner().invoke(["parse", *self.parse_arguments])
                if not parsed.success:
                    return False
                self.manifest = parsed.result
            try:
                result = dbtRunner(manifest=self.manifest).invoke([*args, *self.parse_arguments])
            finally:
                if self.engine == "duckdb":
                    release_duckdb_warehouse()
        return bool(result.success)


def release_duckdb_warehouse() -> None:
    """Close the DuckDB database dbt-duckdb opened in this process. After a run its
    environment (a class attribute) can keep the database open with no connection left, and
    DuckDB then refuses this process any other connection to that file ("a different
    configuration than existing connections")."""
    from dbt.adapters.duckdb.connections import DuckDBConnectionManager

    with DuckDBConnectionManager._LOCK:
        environment = DuckDBConnectionManager._ENV
        if environment is not None:
            environment.close()
        DuckDBConnectionManager.close_all_connections()


# Paths read from the environment that dbt or DuckDB resolve against the working directory:
# relative ones meant the project directory, where dbt used to run.
WORKING_DIRECTORY_PATHS = (
    "CVM_RAW_DIR",
    "CVM_DUCKDB_TEMP_DIRECTORY",
    "CVM_PROD_WAREHOUSE",
    "DBT_TARGET_PATH",
    "DBT_LOG_PATH",
)


def dbt_working_directory(env: Mapping[str, str], engine: str) -> tuple[Path, dict[str, str]]:
    """Where dbt runs, and its environment. dbt reuses its saved parse (partial parsing) only
    while the profile is unchanged, and the DuckDB profile holds the warehouse's path: dbt runs
    in the warehouse's directory and is given the file's name, so warehouses of one name in
    different directories (each test's own, a benchmark's) share a parse instead of dbt parsing
    the whole project again (about 5 s). Spark's profile has no such path."""
    warehouse = env.get("CVM_DUCKDB_PATH", "").strip()
    if engine != "duckdb" or not warehouse:
        return PROJECT_DIR, dict(env)
    moved = {**env, "CVM_RAW_DIR": env.get("CVM_RAW_DIR") or str(DEMO_RAW_DIR)}
    for name in WORKING_DIRECTORY_PATHS:
        if moved.get(name, "").strip():
            moved[name] = str(PROJECT_DIR / moved[name].strip())  # an absolute path stays
    path = PROJECT_DIR / warehouse
    moved["CVM_DUCKDB_PATH"] = path.name
    return path.parent, moved
