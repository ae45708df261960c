"""`make build`'s Python side: demo data when none is given, dbt build, summary."""

from __future__ import annotations

import datetime as dt
import os
import re
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from cvm import build, dbt_runs, incremental
from dbt_project import SAVED_PARSE_WAREHOUSE, dbt_env, start_from_saved_parse

pytestmark = pytest.mark.slow


def test_build_generates_demo_data_builds_and_summarizes(tmp_path, monkeypatch, capsys):
    demo_dir = tmp_path / "demo"
    warehouse = tmp_path / "wh" / "cvm.duckdb"
    monkeypatch.setattr(build, "DEMO_RAW_DIR", demo_dir)
    monkeypatch.delenv("CVM_RAW_DIR", raising=False)
    monkeypatch.delenv("CVM_AS_OF_DATE", raising=False)
    monkeypatch.setenv("CVM_DUCKDB_PATH", str(warehouse))
    monkeypatch.setenv("DBT_TARGET_PATH", str(tmp_path / "target"))
    monkeypatch.setenv("DBT_LOG_PATH", str(tmp_path / "logs"))
    monkeypatch.setenv("CVM_REPORT_DIR", str(tmp_path / "report"))
    monkeypatch.setenv("CVM_DATA_DOCS_DIR", str(tmp_path / "data_docs"))

    environment = dict(os.environ)
    assert build.main(["--demo-customers", "1500"]) == 0
    # The build's settings are passed as arguments, never written to the environment (the
    # Great Expectations runner only switches off the library's analytics).
    environment.setdefault("GX_ANALYTICS_ENABLED", "False")
    assert dict(os.environ) == environment

    assert (demo_dir / "customers.parquet").is_file()
    out = capsys.readouterr().out
    assert "Warehouse built and published in" in out and str(warehouse) in out
    assert "marts.dim_customers" in out and "1,500 rows" in out
    assert "quarantined rows: none" in out
    assert re.search(r"scoring    .*\(chosen\) fitted on", out), out
    assert "chosen     " in out and "holdout    predicted repeat purchases" in out
    assert "value:     tiers and CLV on gross margin" in out
    assert f"report:      {(tmp_path / 'report' / 'index.html').as_uri()} (13 charts; " in out
    assert f"Data Docs:   {(tmp_path / 'data_docs' / 'index.html').as_uri()}" in out


def test_user_raw_dir_is_never_written_to(tmp_path):
    settings = build.resolve_settings({"CVM_RAW_DIR": str(tmp_path)})
    build.ensure_demo_data(settings, customers=1000)
    assert not settings.is_demo
    assert list(tmp_path.iterdir()) == []


def test_settings_are_read_once_from_the_environment(tmp_path):
    settings = build.resolve_settings(
        {
            "CVM_RAW_DIR": str(tmp_path),
            "CVM_FULL_REFRESH": "1",
            "CVM_UNIT_TESTS": "Yes",
            "CVM_REPROCESS_ORDERS_FROM": "2026-03-01",
            "CVM_AS_OF_DATE": "2026-05-31",
            "DBT_TARGET_PATH": str(tmp_path / "t"),
            "CVM_DATA_DOCS_DIR": str(tmp_path / "docs"),
        }
    )
    assert (settings.raw_dir, settings.is_demo, settings.full_refresh) == (tmp_path, False, True)
    assert settings.unit_tests
    assert (settings.reprocess_orders_from, settings.as_of_date) == ("2026-03-01", "2026-05-31")
    assert (settings.target_dir, settings.data_docs_dir) == (tmp_path / "t", tmp_path / "docs")
    defaults = build.resolve_settings({})
    assert (defaults.is_demo, defaults.full_refresh, defaults.as_of_date) == (True, False, None)
    assert not defaults.unit_tests
    assert defaults.data_docs_dir == build.PROJECT_DIR / "build" / "data_docs"


@pytest.mark.parametrize(
    ("changes", "requested", "orders_from", "tier_months_from", "says"),
    [
        # A late complaint rebuilds the tier history from its month, the order facts from the
        # earliest order change only.
        (
            {"orders": "2026-06-30", "complaints": "2026-06-01"},
            None,
            "2026-06-30",
            "2026-06-01",
            "the order facts are rebuilt from 2026-06-30 (reprocess_orders_from), the tier "
            "history from 2026-06-01 (reprocess_tier_months_from).",
        ),
        (
            {"complaints": "2025-02-01"},
            None,
            None,
            "2025-02-01",
            "the tier history is rebuilt from 2025-02-01 (reprocess_tier_months_from), the "
            "order facts over the lookback only.",
        ),
        # An order change as early as the complaint's month covers the tier history too.
        (
            {"order lines": "2025-01-20", "products": "2025-03-02", "complaints": "2025-02-01"},
            None,
            "2025-01-20",
            None,
            "the order facts and the tier history are rebuilt from 2025-01-20",
        ),
        # A backfill date the user asked for wins when earlier.
        (
            {"orders": "2026-06-30", "complaints": "2026-06-01"},
            "2026-03-01",
            "2026-03-01",
            None,
            "(orders from 2026-06-30, complaints from 2026-06-01): the order facts and the "
            "tier history are rebuilt from 2026-03-01 (reprocess_orders_from).",
        ),
    ],
)
def test_a_source_change_sets_the_reprocess_dates_it_needs(
    changes, requested, orders_from, tier_months_from, says
):
    dated = {kind: dt.date.fromisoformat(day) for kind, day in changes.items()}
    plan = incremental.reprocess_plan(dated, requested)
    assert (plan.orders_from, plan.tier_months_from) == (orders_from, tier_months_from)
    assert says in plan.message
    assert plan.message.startswith("The source changed since the last build (")


def test_a_data_docs_directory_holding_other_files_is_refused_not_emptied(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(build.SettingsError, match="holds files that are not Data Docs"):
        build.resolve_settings({"CVM_DATA_DOCS_DIR": str(tmp_path)})
    assert (tmp_path / "notes.txt").read_text() == "mine"
    docs = tmp_path / "docs"
    (docs / "static").mkdir(parents=True)  # an earlier build's Data Docs, partly written
    (docs / "index.html").write_text("<html></html>")
    assert build.resolve_settings({"CVM_DATA_DOCS_DIR": str(docs)}).data_docs_dir == docs


def test_duckdb_gets_a_share_of_the_machine_unless_told_otherwise():
    assert build.default_memory_limit(24 * 2**30) == "14745MiB"  # 60 % of 24 GiB
    assert build.resolve_settings({}).duckdb_memory_limit == build.default_memory_limit()
    given = build.resolve_settings(
        {
            "CVM_DUCKDB_MEMORY_LIMIT": "3GiB",
            "CVM_DUCKDB_THREADS": "1",
            "CVM_DUCKDB_TEMP_DIRECTORY": "/x",
        }
    )
    assert (given.duckdb_memory_limit, given.duckdb_threads, given.duckdb_temp_directory) == (
        "3GiB",
        "1",
        "/x",
    )


def test_a_build_reports_the_memory_limit_duckdb_runs_with(published_build):
    """The default reaches DuckDB through dbt's on-run-start hook (macro cvm_engine_resources),
    which reads the setting back and logs it: the log shows what DuckDB took, not what was asked."""
    with duckdb.connect() as con:
        con.execute(f"set memory_limit = '{build.default_memory_limit()}'")
        [(shown,)] = con.execute("select current_setting('memory_limit')").fetchall()
    assert f"DuckDB resources: memory_limit {shown}," in published_build.stdout


def test_dbt_runs_in_the_warehouse_directory_and_keeps_relative_paths_to_the_project():
    working_dir, env = dbt_runs.dbt_working_directory(
        {
            "CVM_DUCKDB_PATH": "build/ci/ci.duckdb",
            "CVM_RAW_DIR": "data/shop",
            "CVM_DUCKDB_TEMP_DIRECTORY": "/scratch/spill",
            "DBT_TARGET_PATH": "target",
            "CVM_AS_OF_DATE": "2026-06-30",
        },
        "duckdb",
    )
    assert working_dir == build.PROJECT_DIR / "build" / "ci"
    assert env == {
        "CVM_DUCKDB_PATH": "ci.duckdb",
        "CVM_RAW_DIR": str(build.PROJECT_DIR / "data" / "shop"),
        "CVM_DUCKDB_TEMP_DIRECTORY": "/scratch/spill",
        "DBT_TARGET_PATH": str(build.PROJECT_DIR / "target"),
        "CVM_AS_OF_DATE": "2026-06-30",
    }
    # dbt_project.yml's default raw directory is relative to the project too.
    assert dbt_runs.dbt_working_directory({"CVM_DUCKDB_PATH": "/w/cvm.duckdb"}, "duckdb") == (
        Path("/w"),
        {"CVM_DUCKDB_PATH": "cvm.duckdb", "CVM_RAW_DIR": str(build.DEMO_RAW_DIR)},
    )
    spark_env = {"CVM_SPARK_WAREHOUSE": "warehouse/spark", "CVM_RAW_DIR": "data/shop"}
    assert dbt_runs.dbt_working_directory(spark_env, "spark") == (build.PROJECT_DIR, spark_env)


def test_dbt_makes_the_directory_of_a_new_warehouse(tmp_path):
    warehouse = tmp_path / "not" / "yet" / "cvm.duckdb"
    # dbt debug connects (DuckDB opens the file) without parsing the project.
    env = {"CVM_DUCKDB_PATH": str(warehouse), "DBT_LOG_PATH": str(tmp_path / "logs")}
    result = dbt_runs.run_dbt(["debug"], env=env, capture=True)
    assert warehouse.is_file(), result.stdout[-3000:]


def test_the_steps_of_a_build_share_one_parse_read_their_own_variables_and_free_the_file(
    tmp_path, capfd
):
    """What makes sharing the parse between a build's dbt steps safe (cvm.dbt_runs): the
    variables the change check sets for the second step reach its SQL, and dbt leaves the
    warehouse file to the build between steps."""
    warehouse = tmp_path / SAVED_PARSE_WAREHOUSE
    start_from_saved_parse(tmp_path / "target")
    env = dbt_env(tmp_path, warehouse, as_of=None)
    env |= {"DBT_TARGET_PATH": str(tmp_path / "target"), "DBT_LOG_PATH": str(tmp_path / "logs")}
    steps = dbt_runs.DbtSteps()
    shown = "select '{{ var(\"reprocess_orders_from\") }}' as reprocess_from"
    for reprocess_from in ("2026-05-01", "2026-06-02"):
        step_env = {**env, "CVM_REPROCESS_ORDERS_FROM": reprocess_from}
        assert steps.run(["show", "--inline", shown, "--output", "json"], step_env)
        assert f'"reprocess_from": "{reprocess_from}"' in capfd.readouterr().out
        with duckdb.connect(str(warehouse), read_only=True) as con:  # dbt has let it go
            assert con.execute("select 1").fetchone() == (1,)
    log = (tmp_path / "logs" / "dbt.log").read_text()
    assert log.count("Command `cli parse` succeeded") == 1
    assert log.count("Command `cli show` succeeded") == 2


def test_a_build_of_a_new_warehouse_reuses_a_parse_of_a_warehouse_of_its_name(published_build):
    """The test run's one `dbt parse` (dbt_project.SAVED_PARSE) was of a warehouse named alike in
    another directory, with another raw directory: `make build` parsed only what differs."""
    log = (Path(published_build.env["DBT_LOG_PATH"]) / "dbt.log").read_text()
    assert "Unable to do partial parsing" not in log
    assert "Partial parsing enabled: 0 files deleted, 0 files added, 1 files changed." in log
    assert "Partial parsing: updated file: customer_value_warehouse://models/staging/" in log


def test_vars_are_checked_against_the_project(tmp_path):
    settings = build.resolve_settings({"CVM_VARS": "{clv_margin: 0.35, lookback_days: 180}"})
    assert settings.dbt_vars == {"clv_margin": 0.35, "lookback_days": 180}
    assert build.vars_arguments(settings.dbt_vars) == [
        "--vars",
        "{clv_margin: 0.35, lookback_days: 180}",
    ]
    with pytest.raises(build.SettingsError, match=r"unknown var.*lookbak_days.*lookback_days"):
        build.resolve_settings({"CVM_VARS": "{lookbak_days: 180}"})
    with pytest.raises(build.SettingsError, match="must be a mapping"):
        build.resolve_settings({"CVM_VARS": "clv_margin"})
    with pytest.raises(build.SettingsError, match="not valid YAML"):
        build.resolve_settings({"CVM_VARS": "{clv_margin: [0.35}"})


def test_a_clean_demo_build_has_no_warnings(published_build):
    """Generated data without bad rows warns nowhere: dbt's tests (one invocation, since a first
    build has no stored facts to compare staging with) and the quality gates. A warning on clean
    data would be one nobody reads."""
    dbt_runs = re.findall(
        r"Done\. PASS=\d+ WARN=(\d+) ERROR=(\d+) SKIP=(\d+)", published_build.stdout
    )
    assert dbt_runs == [("0", "0", "0")], published_build.stdout[-3000:]
    # A data build leaves dbt's unit tests to make test and CI (test_staging.py checks them).
    assert "dbt's unit tests are left to make test and CI" in published_build.stdout
    assert " unit_test " not in published_build.stdout
    gates = re.findall(
        r"(raw|marts) gate: +passed \d+ expectations, (\d+) warnings", published_build.stdout
    )
    assert gates == [("raw", "0"), ("marts", "0")], published_build.stdout[-3000:]


def test_the_package_imports_without_pythonpath(tmp_path):
    """`make` installs scripts/cvm into .venv (editable): any directory, no PYTHONPATH."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run(
        [sys.executable, "-c", "import cvm.build, cvm.clv; print(cvm.build.__file__)"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert Path(result.stdout.strip()) == build.PROJECT_DIR / "scripts" / "cvm" / "build.py"
