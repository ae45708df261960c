"""`make slim-ci` against a production build: it builds exactly a changed model and its children,
deferring the rest to production, and lints only the changed SQL files."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import duckdb
import pytest

from cvm import build
from dbt_project import copy_project

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


def slim_ci(project: Path, production) -> subprocess.CompletedProcess[str]:
    state = production.warehouse.parent / "target"
    env = {**os.environ, "CVM_RAW_DIR": str(production.raw_dir), "DBT_USE_COLORS": "false"}
    variables = [f"STATE={state}", f"PROD_WAREHOUSE={production.warehouse}", "BASE_REF=main"]
    return subprocess.run(
        ["make", "--no-print-directory", "slim-ci", *variables],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


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


def test_an_unchanged_branch_builds_and_lints_nothing(branch, parquet_build):
    result = slim_ci(branch, parquet_build)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "No SQL file changed since main." in result.stdout
    assert "Nothing to do" in result.stdout
