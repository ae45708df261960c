"""`make slim-ci` against a production build: it builds exactly a changed model and its children,
deferring the rest to production, and lints only the changed SQL files. Without production
state it builds and tests every model; with state it cannot use, it stops before building."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import duckdb
import pytest

from cvm import build
from cvm.generate import generate
from dbt_project import copy_project, query

pytestmark = pytest.mark.slow

CHANGED_MODEL = "model.customer_value_warehouse.stg_shop__surveys"
CHANGED_FILE = Path("models/staging/shop/stg_shop__surveys.sql")
FILTER = "    where quarantine_reason is null\n"


def git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=ci", "-c", "user.email=ci@example.invalid", *args],
        cwd=repo,
        check=True,
        capture_output=True,
    )


@pytest.fixture
def branch(tmp_path) -> Path:
    """A copy of the project as a git repository whose `main` is the production code."""
    project = copy_project(tmp_path / "project")
    (project / ".venv").symlink_to(build.PROJECT_DIR / ".venv")
    git(project, "init", "-q", "-b", "main")
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "production")
    return project


def change_filter(project: Path, new_filter: str) -> None:
    path = project / CHANGED_FILE
    sql = path.read_text()
    assert FILTER in sql
    path.write_text(sql.replace(FILTER, new_filter))


def make_slim_ci(
    project: Path, *variables: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`make slim-ci` in the copy; -o: the copy borrows the project's .venv, never reinstall it
    (a checkout newer than the venv's marker would otherwise trigger pip)."""
    base = {k: v for k, v in os.environ.items() if k not in {"STATE", "PROD_WAREHOUSE"}}
    return subprocess.run(
        ["make", "--no-print-directory", "-o", ".venv/.installed-from-lock", "slim-ci", *variables],
        cwd=project,
        env={**base, "DBT_USE_COLORS": "false", **(env or {})},
        capture_output=True,
        text=True,
        check=False,
    )


def slim_ci(project: Path, production) -> subprocess.CompletedProcess[str]:
    state = production.warehouse.parent / "target"
    variables = [f"STATE={state}", f"PROD_WAREHOUSE={production.warehouse}", "BASE_REF=main"]
    return make_slim_ci(project, *variables, env={"CVM_RAW_DIR": str(production.raw_dir)})


def production_manifest(production) -> dict:
    return json.loads((production.warehouse.parent / "target" / "manifest.json").read_text())


def descendants(manifest: dict, node: str) -> set[str]:
    """Models and snapshots downstream of node, from production's manifest."""
    found: set[str] = set()
    todo = [node]
    while todo:
        for child in manifest["child_map"][todo.pop()]:
            if child.split(".")[0] in {"model", "snapshot"} and child not in found:
                found.add(child)
                todo.append(child)
    return found


def test_a_changed_staging_model_builds_it_and_its_children_only(branch, parquet_build):
    assert parquet_build.result.returncode == 0, parquet_build.result.stdout[-3000:]
    # Logically the same rows (response_id is never null after staging), but a changed body.
    change_filter(branch, "    where quarantine_reason is null and response_id is not null\n")

    result = slim_ci(branch, parquet_build)
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-3000:]

    run = json.loads((branch / "target" / "run_results.json").read_text())
    built = {
        r["unique_id"]
        for r in run["results"]
        if r["unique_id"].split(".")[0] in {"model", "snapshot"}
    }
    expected = {CHANGED_MODEL} | descendants(production_manifest(parquet_build), CHANGED_MODEL)
    assert built == expected
    assert len(expected) > 1  # the change has children, and they were selected
    # dbt Core lists saved queries and exposures downstream of the change as no-ops.
    failed = [
        (r["unique_id"], r["status"], r["message"])
        for r in run["results"]
        if r["status"] not in {"success", "pass"}
        and not (
            r["status"] == "no-op" and r["unique_id"].startswith(("saved_query.", "exposure."))
        )
    ]
    assert not failed
    # Unmodified parents came from production: the scratch warehouse holds only what was built.
    with duckdb.connect(str(branch / "build" / "ci" / "ci.duckdb"), read_only=True) as con:
        tables = {
            name
            for (name,) in con.execute(
                "select table_name from information_schema.tables "
                "where table_catalog = 'ci' and table_schema <> 'raw'"
            ).fetchall()
        }
    assert tables == {node.split(".")[-1] for node in expected}


def test_a_lint_error_in_a_changed_file_fails_before_building(branch, parquet_build):
    change_filter(branch, "    WHERE quarantine_reason is null\n")

    result = slim_ci(branch, parquet_build)
    assert result.returncode != 0
    assert str(CHANGED_FILE) in result.stdout
    assert "CP01" in result.stdout  # capitalisation.keywords
    assert "dbt build" not in result.stdout  # the lint gate stops the run first


def test_a_changed_public_view_reads_productions_table(branch, parquet_build):
    """fct_orders is a view of int_orders_costed (doc block public_views). Changed alone, it is
    built in the scratch file over production's table, which slim CI defers to: the view keeps
    production's database name there, and its contract and data tests run through it."""
    path = branch / "models" / "marts" / "core" / "fct_orders.sql"
    path.write_text(path.read_text() + "-- a changed body\n")

    result = slim_ci(branch, parquet_build)
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-3000:]
    run = json.loads((branch / "target" / "run_results.json").read_text())
    statuses = {r["unique_id"]: r["status"] for r in run["results"]}
    assert statuses["model.customer_value_warehouse.fct_orders"] == "success"
    assert "model.customer_value_warehouse.int_orders_costed" not in statuses
    tests = [k for k in statuses if k.startswith("test.") and "fct_orders" in k]
    assert tests and all(statuses[k] == "pass" for k in tests), statuses


def test_a_changed_tier_table_records_its_rules_in_the_scratch_file(branch, parquet_build):
    """fct_tier_migrations records its tier rules beside the tier bands (macro cvm_tier_rules);
    changed alone, it reads the bands from production's file and must record them in the
    scratch file, which slim CI writes, never in production's, which it attaches read-only."""
    path = branch / "models" / "marts" / "tiers" / "fct_tier_migrations.sql"
    path.write_text(path.read_text() + "-- a changed body\n")

    result = slim_ci(branch, parquet_build)
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-3000:]
    recorded = query(
        branch / "build" / "ci" / "ci.duckdb",
        "select tier_rules from intermediate.fct_tier_migrations__tier_rules",
    )
    assert recorded == query(
        parquet_build.warehouse,
        "select tier_rules from intermediate.fct_tier_migrations__tier_rules",
    )


def test_an_unchanged_branch_builds_and_lints_nothing(branch, parquet_build):
    result = slim_ci(branch, parquet_build)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "No SQL file changed since main." in result.stdout
    assert "Nothing to do" in result.stdout


# --------------------------------------------------------------------------------------------
# Without production state (no green main build to defer to)

NO_STATE = (
    "No production state (STATE unset): building and testing every model, not only the "
    "modified ones."
)


def test_without_state_it_builds_and_tests_every_model(branch, tmp_path):
    raw_dir = tmp_path / "raw"
    generate(raw_dir, customers=300, seed=19, quiet=True)
    ci_warehouse = tmp_path / "ci" / "ci.duckdb"

    result = make_slim_ci(
        branch, "BASE_REF=main", f"CI_WAREHOUSE={ci_warehouse}", env={"CVM_RAW_DIR": str(raw_dir)}
    )
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-3000:]
    assert NO_STATE in result.stdout.splitlines()
    assert "No SQL file changed since main." in result.stdout  # the lint step still ran
    # The path of `make build`: both gates and the saved-query exports, then the summary.
    assert "Raw gate:" in result.stdout and "Mart gate:" in result.stdout
    assert "exported saved query" in result.stdout
    assert "Warehouse built and published in" in result.stdout

    # Every model that makes a relation is in the CI warehouse, the marts with rows.
    manifest = json.loads((branch / "build" / "ci" / "target" / "manifest.json").read_text())
    expected = {
        node["alias"]
        for node in manifest["nodes"].values()
        if node["resource_type"] in {"model", "snapshot"}
        and node["config"]["materialized"] != "ephemeral"
    }
    tables = query(ci_warehouse, "select table_name from information_schema.tables")
    [(customers,)] = query(ci_warehouse, "select count(*) from marts.customer_value")
    assert expected - {name for (name,) in tables} == set()
    assert customers > 0
    # dbt's data tests ran (build.py's last dbt call), none failed or errored.
    run = json.loads((branch / "build" / "ci" / "target" / "run_results.json").read_text())
    statuses = {r["status"] for r in run["results"] if r["unique_id"].startswith("test.")}
    assert statuses and statuses <= {"pass", "warn"}
    # CI runs dbt's unit tests too (a data build leaves them out): those of the last call.
    unit_tests = {r["unique_id"] for r in run["results"] if r["unique_id"].startswith("unit_test.")}
    assert unit_tests and unit_tests <= set(manifest["unit_tests"])
    # dbt's target/ and logs/ of the project, and its report, stay as the last build left them.
    assert not (branch / "target").exists() and not (branch / "logs").exists()
    assert (branch / "build" / "ci" / "report" / "index.html").is_file()
    assert not (branch / "build" / "report").exists()


def test_without_state_a_lint_error_still_fails_before_building(branch, tmp_path):
    change_filter(branch, "    WHERE quarantine_reason is null\n")
    ci_warehouse = tmp_path / "ci" / "ci.duckdb"

    result = make_slim_ci(branch, "BASE_REF=main", f"CI_WAREHOUSE={ci_warehouse}")
    assert result.returncode != 0
    assert NO_STATE in result.stdout.splitlines()
    assert "CP01" in result.stdout
    assert "Raw gate:" not in result.stdout
    assert not ci_warehouse.exists()


@pytest.mark.parametrize(
    ("state", "prod_warehouse", "message"),
    [
        pytest.param("empty", None, "error: no manifest.json in STATE={state}", id="empty STATE"),
        pytest.param(
            "manifest", None, "error: PROD_WAREHOUSE='' is not a file", id="no PROD_WAREHOUSE"
        ),
        pytest.param(
            "manifest",
            "missing",
            "error: PROD_WAREHOUSE='{prod_warehouse}' is not a file",
            id="PROD_WAREHOUSE not a file",
        ),
        pytest.param(
            None,
            "missing",
            "error: PROD_WAREHOUSE is set but STATE is not",
            id="PROD_WAREHOUSE without STATE",
        ),
    ],
)
def test_state_it_cannot_use_fails_clearly_and_builds_nothing(
    branch, tmp_path, state, prod_warehouse, message
):
    state_dir = tmp_path / "state"
    state_dir.mkdir()
    if state == "manifest":
        (state_dir / "manifest.json").write_text("{}")
    warehouse = tmp_path / "prod" / "cvm.duckdb"  # never created
    ci_warehouse = tmp_path / "ci" / "ci.duckdb"
    variables = ["BASE_REF=main", f"CI_WAREHOUSE={ci_warehouse}"]
    if state is not None:
        variables.append(f"STATE={state_dir}")
    if prod_warehouse is not None:
        variables.append(f"PROD_WAREHOUSE={warehouse}")

    result = make_slim_ci(branch, *variables)
    assert result.returncode != 0
    assert message.format(state=state_dir, prod_warehouse=warehouse) in result.stderr
    assert result.stdout == ""  # neither the lint nor a build started
    assert not ci_warehouse.parent.exists()
