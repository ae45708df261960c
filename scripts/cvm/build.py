"""`make build`: demo data when no raw data is given, the raw gate (Great Expectations on the
raw files), `dbt build` into a staging copy of the warehouse (staging first, then the rest
from the earliest date the source changed at), the semantic layer's saved-query
exports, the mart gate, an atomic publish, the report (charts, from the published warehouse)
and a short summary. Any failure before the publish leaves the published warehouse as it was; a
failed report fails the command, but the warehouse it could not chart stays published.

Environment (all optional; see the README): CVM_RAW_DIR, CVM_AS_OF_DATE, CVM_DUCKDB_PATH,
CVM_FULL_REFRESH (1: rebuild incremental models from scratch; snapshots keep their history),
CVM_UNIT_TESTS (1: run dbt's unit tests too; make test and CI run them),
CVM_REPROCESS_ORDERS_FROM (rebuild the order facts from this date; see incremental.py),
CVM_VARS (dbt vars as YAML, e.g. '{clv_margin: 0.35}'; `make build VARS=...` sets it),
CVM_REPORT_DIR (where the report goes; default build/report), CVM_DATA_DOCS_DIR (where the
gates' Data Docs go; default build/data_docs).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import yaml

from cvm import (
    DEMO_RAW_DIR,
    PROJECT_DIR,
    contract,
    incremental,
    publish,
    quality,
    semantic,
)
from cvm.clv.warehouse import MODEL_LABELS
from cvm.dbt_runs import DbtSteps
from cvm.quality.mart_gate import mart_batches, run_mart_gate
from cvm.quality.raw_gate import run_raw_gate
from cvm.relations import DBT_SCHEMAS, Relations
from cvm.report.page import DEFAULT_REPORT_DIR, report_dir, write_report

DEFAULT_WAREHOUSE = PROJECT_DIR / "warehouse" / "cvm.duckdb"
# The local Spark target's warehouse: Parquet tables and their Derby metastore (profiles.yml).
DEFAULT_SPARK_WAREHOUSE = PROJECT_DIR / "warehouse" / "spark"
ENGINES = ("duckdb", "spark")
# Great Expectations' Data Docs of the latest build (not committed).
DEFAULT_DATA_DOCS_DIR = PROJECT_DIR / "build" / "data_docs"
DEMO_CUSTOMERS = 50_000
SUMMARY_SCHEMAS = ("marts", "snapshots", "bi")


@dataclass(frozen=True)
class Settings:
    """Everything the build takes from its environment, read once (resolve_settings) and then
    passed as arguments: nothing below leaves os.environ changed (dbt, in this process, sees its
    variables for the length of its call only: dbt_runs.environment_set)."""

    raw_dir: Path
    warehouse: Path
    is_demo: bool
    dbt_vars: dict[str, Any] = field(default_factory=dict)
    full_refresh: bool = False
    # dbt's unit tests check the SQL on fixed inputs, the same in every build of the same code:
    # make test and CI run them (dbt's advice), a data build skips them unless asked.
    unit_tests: bool = False
    reprocess_orders_from: str | None = None  # a backfill date the user asked for
    as_of_date: str | None = None  # CVM_AS_OF_DATE as given: dbt parses it (or says why not)
    target_dir: Path = PROJECT_DIR / "target"
    report_dir: Path = DEFAULT_REPORT_DIR
    data_docs_dir: Path = DEFAULT_DATA_DOCS_DIR
    # DuckDB's resources for dbt (macro cvm_engine_resources): the memory limit defaults to a
    # share of RAM; threads and the spill directory to DuckDB's own defaults.
    duckdb_memory_limit: str = ""
    duckdb_threads: str | None = None
    duckdb_temp_directory: str | None = None
    # CVM_ENGINE: duckdb (default), or spark for the local Spark target (make build-spark).
    engine: str = "duckdb"
    spark_warehouse: Path = DEFAULT_SPARK_WAREHOUSE


class SettingsError(ValueError):
    """A setting the build cannot run with; the message says which and why."""


def resolve_settings(env: Mapping[str, str]) -> Settings:
    """The build's settings from the environment (README: settings). Absolute paths, so the
    raw views dbt registers work from any working directory."""
    raw = env.get("CVM_RAW_DIR", "").strip()
    warehouse = env.get("CVM_DUCKDB_PATH", "").strip()
    engine = env.get("CVM_ENGINE", "").strip().lower() or "duckdb"
    if engine not in ENGINES:
        raise SettingsError(f"CVM_ENGINE={engine!r}: use one of {', '.join(ENGINES)}")
    spark_warehouse = env.get("CVM_SPARK_WAREHOUSE", "").strip()
    return Settings(
        raw_dir=Path(raw).resolve() if raw else DEMO_RAW_DIR,
        warehouse=Path(warehouse).resolve() if warehouse else DEFAULT_WAREHOUSE,
        is_demo=not raw,
        dbt_vars=parse_dbt_vars(env.get("CVM_VARS", "")),
        full_refresh=is_set(env, "CVM_FULL_REFRESH"),
        unit_tests=is_set(env, "CVM_UNIT_TESTS"),
        reprocess_orders_from=env.get("CVM_REPROCESS_ORDERS_FROM", "").strip() or None,
        as_of_date=env.get("CVM_AS_OF_DATE", "").strip() or None,
        target_dir=Path(env.get("DBT_TARGET_PATH") or PROJECT_DIR / "target"),
        report_dir=report_dir(env),
        data_docs_dir=data_docs_dir(env.get("CVM_DATA_DOCS_DIR", "").strip()),
        duckdb_memory_limit=env.get("CVM_DUCKDB_MEMORY_LIMIT", "").strip()
        or default_memory_limit(),
        duckdb_threads=env.get("CVM_DUCKDB_THREADS", "").strip() or None,
        duckdb_temp_directory=env.get("CVM_DUCKDB_TEMP_DIRECTORY", "").strip() or None,
        engine=engine,
        spark_warehouse=Path(spark_warehouse).resolve()
        if spark_warehouse
        else DEFAULT_SPARK_WAREHOUSE,
    )


def is_set(env: Mapping[str, str], name: str) -> bool:
    """A yes/no setting: 1, true or yes (any case) turn it on."""
    return env.get(name, "").strip().lower() in {"1", "true", "yes"}


# What a Great Expectations Data Docs site holds (a partly written one holds some of it).
DATA_DOCS_ENTRIES = frozenset({"index.html", "static", "expectations", "validations"})


def data_docs_dir(configured: str) -> Path:
    """CVM_DATA_DOCS_DIR, else build/data_docs. Every build empties it, so a directory that
    holds anything but an earlier Data Docs site is refused, not wiped."""
    path = Path(configured).resolve() if configured else DEFAULT_DATA_DOCS_DIR
    if path.is_dir() and {entry.name for entry in path.iterdir()} - DATA_DOCS_ENTRIES:
        raise SettingsError(
            f"CVM_DATA_DOCS_DIR={path} holds files that are not Data Docs, and every build "
            "empties that directory: give a new or empty one"
        )
    return path


# DuckDB takes 80% of RAM by default; a build also holds the Python models' pandas frames and
# dbt itself beside it, so make build gives DuckDB this share unless told otherwise.
DUCKDB_MEMORY_SHARE = 0.6


def default_memory_limit(physical_bytes: int | None = None) -> str:
    """DUCKDB_MEMORY_SHARE of the machine's RAM, as DuckDB reads it (e.g. '14745MiB')."""
    if physical_bytes is None:
        physical_bytes = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return f"{int(DUCKDB_MEMORY_SHARE * physical_bytes / 2**20)}MiB"


def project_vars() -> dict[str, Any]:
    with (PROJECT_DIR / "dbt_project.yml").open() as handle:
        return yaml.safe_load(handle).get("vars", {})


def parse_dbt_vars(text: str) -> dict[str, Any]:
    """CVM_VARS (YAML, as dbt's --vars takes it) as a mapping of known vars: a misspelt name
    would otherwise be ignored by dbt without a word."""
    if not text.strip():
        return {}
    try:
        values = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise SettingsError(f"VARS / CVM_VARS is not valid YAML ({error}): {text!r}") from error
    if not isinstance(values, dict):
        raise SettingsError(
            f"VARS / CVM_VARS must be a mapping such as '{{clv_margin: 0.35}}', got {text!r}"
        )
    known = project_vars()
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise SettingsError(
            f"VARS / CVM_VARS names unknown var(s) {', '.join(map(str, unknown))}; the vars are: "
            f"{', '.join(sorted(known))} (dbt_project.yml)"
        )
    return values


def vars_arguments(dbt_vars: Mapping[str, Any]) -> list[str]:
    if not dbt_vars:
        return []
    return ["--vars", yaml.safe_dump(dict(dbt_vars), default_flow_style=True).strip()]


def has_raw_file(raw_dir: Path, name: str) -> bool:
    """Whether table ``name`` has raw data in ``raw_dir`` (a file or a directory of files)."""
    try:
        return contract.find_raw_input(raw_dir, name) is not None
    except contract.AmbiguousRawFile:
        return True  # there is data; the dbt hook stops the run with the message


def ensure_demo_data(settings: Settings, customers: int) -> None:
    """Generate the demo data set once; a user's CVM_RAW_DIR is never written to."""
    if not settings.is_demo or has_raw_file(settings.raw_dir, "customers"):
        return
    from cvm.generate import generate

    print(
        f"No raw data given (CVM_RAW_DIR unset): generating a demo set of {customers:,} customers"
    )
    generate(settings.raw_dir, customers=customers)


def build_warehouse(staging: Path | None, settings: Settings, spark: Any = None) -> bool:
    """`dbt build` of ``settings.raw_dir`` into ``staging`` (on Spark: into the Spark warehouse,
    in place, with dbt in this process on the SparkSession ``spark``). Over order facts an
    earlier build stored, in two steps: staging first; then, with the reprocess date found by
    comparing the new staging with them (doc block incremental_orders), everything else. A first
    build or a full refresh has nothing to compare and runs in one step. Incremental models
    stored by an earlier version with other columns are rebuilt in full (DuckDB; on Spark the
    incremental model stops with dbt's schema-change error). False when dbt failed."""
    refresh = ["--full-refresh"] if settings.full_refresh else []
    unit_tests = [] if settings.unit_tests else ["--exclude-resource-type", "unit_test"]
    # What dbt reads from the environment (profiles.yml, dbt_project.yml), set for its process
    # only; None unsets a variable the caller's shell may hold.
    env: dict[str, str | None] = {
        "CVM_RAW_DIR": str(settings.raw_dir),
        "CVM_AS_OF_DATE": settings.as_of_date,
        "CVM_REPROCESS_ORDERS_FROM": settings.reprocess_orders_from,
        "CVM_REPROCESS_TIER_MONTHS_FROM": None,
        "CVM_SOURCE_UNCHANGED_BEFORE_REPROCESS_DATE": None,
        "DBT_TARGET_PATH": str(settings.target_dir),
    }
    if settings.engine == "spark":
        env["CVM_SPARK_WAREHOUSE"] = str(settings.spark_warehouse)
    else:
        env |= {
            "CVM_DUCKDB_PATH": str(staging),
            "CVM_DUCKDB_MEMORY_LIMIT": settings.duckdb_memory_limit,
            "CVM_DUCKDB_THREADS": settings.duckdb_threads,
            "CVM_DUCKDB_TEMP_DIRECTORY": settings.duckdb_temp_directory,
        }
    engine = settings.engine
    if not settings.unit_tests:
        print("dbt's unit tests are left to make test and CI (CVM_UNIT_TESTS=1 runs them here).")

    # dbt in this process, parsing once for every step (cvm.dbt_runs).
    dbt = DbtSteps(engine, vars_arguments(settings.dbt_vars))

    if settings.full_refresh or not order_facts_stored(staging, spark):
        # Nothing stored to compare the new staging with (a first build) or to keep: the whole
        # project in one dbt run.
        return dbt.run(["build", *refresh, *unit_tests], env)
    if not dbt.run(["build", "--select", "staging", *unit_tests], env):
        return False
    if engine == "spark":
        from cvm.spark_warehouse import SparkConnection

        con = SparkConnection(spark)
        relations = Relations.from_names(con.relation_names())
        stale, changes = [], incremental.earliest_source_changes(con, relations)  # type: ignore[arg-type]
    else:
        manifest = json.loads((settings.target_dir / "manifest.json").read_text())
        with duckdb.connect(str(staging), read_only=True) as con:
            stale = incremental.stale_incremental_models(con, manifest)
            changes = None if stale else incremental.earliest_source_changes(con)
    if stale:
        print(
            f"{', '.join(stale)} stored with other columns than the project now defines "
            "(built by an earlier version): the incremental models are rebuilt in full."
        )
        refresh = ["--full-refresh"]
    elif changes is not None:
        # Nothing differs before the reprocess date set below: the order snapshot compares
        # only the orders from it (macros/snapshot_compared_window.sql).
        env["CVM_SOURCE_UNCHANGED_BEFORE_REPROCESS_DATE"] = "true"
    if changes:
        plan = incremental.reprocess_plan(changes, settings.reprocess_orders_from)
        print(plan.message)
        env["CVM_REPROCESS_ORDERS_FROM"] = plan.orders_from
        env["CVM_REPROCESS_TIER_MONTHS_FROM"] = plan.tier_months_from
    return dbt.run(["build", "--exclude", "staging", *refresh, *unit_tests], env)


def order_facts_stored(staging: Path | None, spark: Any = None) -> bool:
    """Whether the warehouse being built (DuckDB's staging copy, or Spark's) holds order facts
    from an earlier build."""
    if spark is not None:
        from cvm.spark_warehouse import SparkConnection

        relations = Relations.from_names(SparkConnection(spark).relation_names())
        return incremental.facts_stored(relations)
    if staging is None or not staging.exists():
        return False
    with duckdb.connect(str(staging), read_only=True) as con:
        return incremental.facts_stored(Relations(con))


def _lifetime_value_lines(
    con: duckdb.DuckDBPyConnection, relations: Relations
) -> tuple[list[str], list[str]]:
    """Lines per CLV fit (each model fitted on how many customers, or its status; the chosen
    purchase model and why), the chosen model's holdout error, and warnings in plain words for
    every chosen model not fitted and the customers left without CLV (a candidate auto did not
    choose may fail: that is what the choice is for)."""
    parameters, holdout_report = relations["clv_model_parameters"], relations["clv_holdout_report"]
    fits = con.execute(
        "select fit_purpose, model, max(customer_count), max(fit_status), max(fit_message), "
        "max(case when chosen then 1 else 0 end), max(choice_reason) "
        f"from {parameters} group by 1, 2 "
        "order by 1 desc, model = 'gamma_gamma', max(case when chosen then 1 else 0 end) desc, 2"
    ).fetchall()
    holdout = con.execute(
        f"select holdout_days, relative_error from {holdout_report} "
        "where calibration_repeat_purchase_days = 'total' and chosen"
    ).fetchall()
    without_clv = con.execute(
        f"select clv_status, count(*) from {relations['customer_value']} "
        "where clv_status not in ('scored', 'no_purchase') group by 1 order by 1"
    ).fetchall()
    lines = [f"  lifetime value ({parameters}):"]
    failed: dict[tuple[str, str, str], list[str]] = {}  # models per (fit, status, message)
    for purpose in dict.fromkeys(purpose for purpose, *_ in fits):
        parts = []
        reason = None
        for _, model, customers, status, message, chosen, why in (
            f for f in fits if f[0] == purpose
        ):
            name = MODEL_LABELS.get(model, model)
            mark = " (chosen)" if chosen and model != "gamma_gamma" else ""
            if chosen and model != "gamma_gamma" and purpose == "scoring":
                reason = f"    chosen     {name}: {why}"
            if status == "fitted":
                whom = "repeat customers" if model == "gamma_gamma" else "customers"
                parts.append(f"{name}{mark} fitted on {customers:,} {whom}")
            else:
                parts.append(f"{name}{mark} {status.replace('_', ' ')}")
                if chosen:
                    failed.setdefault((purpose, status, message), []).append(name)
        lines.append(f"    {purpose:<10} {'; '.join(parts)}")
        if reason:
            lines.append(reason)
    warnings = [
        f"{purpose} fit ({' and '.join(names)}) {status.replace('_', ' ')}: {message}"
        for (purpose, status, message), names in failed.items()
    ]
    for days, error in holdout:
        if error is not None:
            lines.append(
                f"    holdout    predicted repeat purchases in {days} days off by {error:+.1%} "
                f"({holdout_report})"
            )
    for status, customers in without_clv:
        warnings.append(
            f"{customers:,} customers have no CLV ({status}): see "
            f"{relations['customer_value']}.clv_status_reason"
        )
    return lines, warnings


def _value_basis_line(con: duckdb.DuckDBPyConnection, relations: Relations) -> str:
    basis, reason, coverage = con.execute(
        "select value_basis, value_basis_reason, cost_coverage_lookback "
        f"from {relations['int_value_basis_chosen']}"
    ).fetchone()
    known = (
        f"; cost known for {coverage:.0%} of the purchases in the lookback"
        if coverage is not None
        else ""
    )
    measured = "gross margin" if basis == "gross_margin" else "net revenue"
    return f"  value:     tiers and CLV on {measured} (value_basis {basis}: {reason}{known})"


def gate_lines(gates: Sequence[quality.GateResult]) -> list[str]:
    """One line per data-quality gate, its warnings, and where the Data Docs are."""
    lines = []
    for gate in gates:
        lines.append(
            f"  {gate.gate + ' gate:':<13}passed {gate.expectations_run} expectations, "
            f"{len(gate.warnings)} warnings"
        )
        lines += [f"    {finding.line()}" for finding in gate.warnings]
    docs = next((gate.docs_index for gate in gates if gate.docs_index), None)
    if docs is not None:
        lines.append(f"  Data Docs:   {docs.as_uri()}")
    return lines


def summarize(
    warehouse: Path,
    raw_dir: Path,
    seconds: float,
    gates: Sequence[quality.GateResult] = (),
    report_line: str | None = None,
) -> str:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        tables = con.execute(
            "select table_schema, table_name from information_schema.tables "
            "where table_type in ('BASE TABLE', 'VIEW') and table_schema in "
            f"({', '.join('?' for _ in SUMMARY_SCHEMAS)}) order by 1, 2",
            list(SUMMARY_SCHEMAS),
        ).fetchall()
        return summary(
            con,
            Relations(con),
            tables,
            f"Warehouse built and published in {seconds:.0f} s: {warehouse}",
            raw_dir,
            gates,
            report_line,
        )


def summary(
    con: Any,
    relations: Relations,
    tables: Sequence[tuple[str, str]],
    headline: str,
    raw_dir: Path,
    gates: Sequence[quality.GateResult] = (),
    report_line: str | None = None,
) -> str:
    """The build's summary from a connection to the warehouse (DuckDB's, or
    cvm.spark_warehouse's, which answers the same calls): ``tables`` are counted."""
    quarantine = relations["stg_shop__quarantined_rows"]
    as_of, as_of_source = con.execute(
        f"select as_of_date, as_of_date_source from {relations['base_shop__as_of_date']}"
    ).fetchone()
    counts = [
        (f"{schema}.{name}", con.execute(f"select count(*) from {schema}.{name}").fetchone()[0])
        for schema, name in tables
    ]
    quarantined = con.execute(
        "select source_table, quarantine_reason, count(*) "
        f"from {quarantine} group by all order by 1, 2"
    ).fetchall()
    value_basis = _value_basis_line(con, relations)
    lifetime_value, warnings = _lifetime_value_lines(con, relations)
    lines = [
        headline,
        f"  raw data:  {raw_dir}",
        f"  as of:     {as_of} ({as_of_source})",
        value_basis,
        "  tables:",
        *(f"    {name:<40} {rows:>14,} rows" for name, rows in counts),
    ]
    lines += lifetime_value
    lines += gate_lines(gates)
    if report_line:
        lines.append(report_line)
    if quarantined:
        lines.append(f"  quarantined rows ({quarantine}):")
        lines += [f"    {table:<14} {reason:<24} {n:>10,}" for table, reason, n in quarantined]
    else:
        lines.append("  quarantined rows: none")
    if warnings:
        lines.append("  warnings (the warehouse is published; these parts are empty):")
        lines += [f"    - {warning}" for warning in warnings]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--demo-customers",
        type=int,
        default=DEMO_CUSTOMERS,
        help="size of the generated demo data set when CVM_RAW_DIR is unset (default %(default)s)",
    )
    args = parser.parse_args(argv)

    try:
        settings = resolve_settings(os.environ)
    except SettingsError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    try:
        if settings.engine == "spark":
            with publish.build_lock(settings.spark_warehouse):
                return build_on_spark(settings, args.demo_customers)
        with publish.build_lock(settings.warehouse):
            return build_and_publish(settings, args.demo_customers)
    except publish.BuildInProgressError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1


def gate_raw_files(
    settings: Settings,
) -> tuple[dict[str, Any], quality.GxRunner, quality.GateResult]:
    """The raw gate on settings.raw_dir, its report printed: the thresholds and the runner
    (a fresh Data Docs site) for the gates after it, and its result."""
    thresholds = quality.load_thresholds()
    runner = quality.GxRunner(fresh_directory(settings.data_docs_dir))
    print("Raw gate: Great Expectations on the raw files (thresholds: gx/thresholds.yml)")
    raw_gate = run_raw_gate(
        settings.raw_dir, as_of_setting(settings.as_of_date), thresholds, runner
    )
    print(raw_gate.report())
    return thresholds, runner, raw_gate


def build_and_publish(settings: Settings, demo_customers: int) -> int:
    """The build, under the warehouse's lock: demo data when none is given, the raw gate, dbt
    into a staging copy, the saved-query exports, the mart gate, then publish, the report and
    the summary."""
    ensure_demo_data(settings, demo_customers)
    target_dir = settings.target_dir

    started = time.perf_counter()
    thresholds, runner, raw_gate = gate_raw_files(settings)
    if not raw_gate.passed:
        return not_published("The raw gate failed (critical findings above)", settings.warehouse)
    staging = publish.staging_copy(settings.warehouse)
    print(f"Building into {staging}; {settings.warehouse} stays readable meanwhile.")
    if not build_warehouse(staging, settings):
        return not_published(
            "Build failed: see the dbt output above",
            settings.warehouse,
            staging,
            details=failed_nodes(target_dir),
        )
    print("Exporting the semantic layer's saved queries:")
    try:
        semantic.export_saved_queries(staging, target_dir / "semantic_manifest.json")
    except Exception as error:  # MetricFlow's errors have no common base class
        return not_published(
            f"Exporting the saved queries failed: {error}", settings.warehouse, staging
        )
    print("Mart gate: Great Expectations on the marts, against the last published build")
    mart_gate = run_mart_gate(staging, thresholds, runner, previous=settings.warehouse)
    print(mart_gate.report())
    if not mart_gate.passed:
        return not_published(
            "The mart gate failed (critical findings above)", settings.warehouse, staging
        )
    publish.publish(staging, settings.warehouse)
    seconds = time.perf_counter() - started
    report_line, report_error = write_build_report(settings.warehouse, settings.report_dir)
    gates = [raw_gate, mart_gate]
    print("\n" + summarize(settings.warehouse, settings.raw_dir, seconds, gates, report_line))
    if report_error:
        print(
            f"\nThe report failed: {report_error}. The warehouse {settings.warehouse} is "
            "published all the same; `make report` writes the report again.",
            file=sys.stderr,
        )
        return 1
    return 0


def build_on_spark(settings: Settings, demo_customers: int) -> int:
    """`make build-spark`: demo data when none is given, the raw gate, `dbt build` of the whole
    project (seeds, snapshots, models, Python models, tests) on the local Spark target into
    settings.spark_warehouse, then the mart gate and the summary, both read through Spark. dbt
    writes the Spark tables in place (no staging copy to publish), and the saved-query exports
    and the report are DuckDB's steps (README, "Spark and Databricks")."""
    ensure_demo_data(settings, demo_customers)
    started = time.perf_counter()
    thresholds, runner, raw_gate = gate_raw_files(settings)
    if not raw_gate.passed:
        print("\nThe raw gate failed (critical findings above): nothing built.", file=sys.stderr)
        return 1
    print(f"Building on local Spark into {settings.spark_warehouse}")
    from cvm.spark_warehouse import SparkConnection, local_session

    # One SparkSession for every step, dbt's included (Spark's embedded metastore admits one
    # process at a time, and each start costs about 15 s).
    session = local_session({**os.environ, "CVM_SPARK_WAREHOUSE": str(settings.spark_warehouse)})
    try:
        if not build_warehouse(None, settings, session):
            print("\nBuild failed: see the dbt output above.", file=sys.stderr)
            details = failed_nodes(settings.target_dir)
            if details:
                print("What failed:" + "".join(f"\n  {line}" for line in details), file=sys.stderr)
            return 1
        con = SparkConnection(session)
        names = sorted(con.relation_names(list(dict.fromkeys([*DBT_SCHEMAS, *SUMMARY_SCHEMAS]))))
        relations = Relations.from_names(names)
        print("Mart gate: Great Expectations on the marts (read through Spark)")
        mart_gate = runner.validate(
            "marts", mart_batches(con, relations, thresholds), quality.GateResult("marts")
        )
        print(mart_gate.report())
        if not mart_gate.passed:
            print(
                f"\nThe mart gate failed (critical findings above). dbt wrote the tables of "
                f"{settings.spark_warehouse} in place: do not hand them to BI before the cause is "
                "fixed and a build passes.",
                file=sys.stderr,
            )
            return 1
        tables = [(schema, name) for schema, name in names if schema in SUMMARY_SCHEMAS]
        seconds = time.perf_counter() - started
        headline = f"Warehouse built on local Spark in {seconds:.0f} s: {settings.spark_warehouse}"
        text = summary(con, relations, tables, headline, settings.raw_dir, [raw_gate, mart_gate])
    finally:
        session.stop()
    print("\n" + text)
    return 0


def write_build_report(warehouse: Path, directory: Path) -> tuple[str, str | None]:
    """The report of the warehouse just published, and its line in the summary; an error is
    returned, not raised, since the warehouse stays published whatever happens to its report."""
    try:
        report = write_report(warehouse, directory)
    except Exception as error:  # a chart can fail in pandas, DuckDB, Altair or vl-convert
        reason = f"{type(error).__name__}: {error}"
        return f"  report:      FAILED ({reason})", reason
    return report.summary_line(), None


def failed_nodes(target_dir: Path) -> list[str]:
    """Each node that errored or failed in dbt's last run, with the last line of its message
    that names an error (a Python model's traceback ends with the exception)."""
    try:
        results = json.loads((target_dir / "run_results.json").read_text())["results"]
    except (OSError, ValueError, KeyError):
        return []
    lines = []
    for result in results:
        if result.get("status") not in {"error", "fail"}:
            continue
        message = [line.strip() for line in (result.get("message") or "").splitlines()]
        errors = [line for line in message if "Error:" in line] or [m for m in message if m]
        lines.append(f"{result['unique_id']}: {errors[-1] if errors else result['status']}")
    return lines


def not_published(
    reason: str, warehouse: Path, staging: Path | None = None, details: Sequence[str] = ()
) -> int:
    kept = f"; the build stays at {staging}" if staging else ""
    print(f"\n{reason}. The published warehouse {warehouse} is unchanged{kept}.", file=sys.stderr)
    if details:
        print("What failed:" + "".join(f"\n  {line}" for line in details), file=sys.stderr)
    return 1


def as_of_setting(value: str | None) -> dt.date | None:
    """CVM_AS_OF_DATE as a date (dbt reports a malformed one), or None when unset."""
    try:
        return dt.date.fromisoformat(value) if value else None
    except ValueError:
        return None


def fresh_directory(path: Path) -> Path:
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


if __name__ == "__main__":
    sys.exit(main())
