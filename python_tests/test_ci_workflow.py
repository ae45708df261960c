"""The GitHub Actions workflow is valid (check-jsonschema's vendored schema, offline) and calls
the Makefile targets that .ci/run and a developer use."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from cvm.build import PROJECT_DIR

WORKFLOW = PROJECT_DIR / ".github" / "workflows" / "ci.yml"
CHECK_JSONSCHEMA = Path(sys.executable).with_name("check-jsonschema")


def validate(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CHECK_JSONSCHEMA), "--builtin-schema", "vendor.github-workflows", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )


def steps(workflow: dict, job: str) -> list[dict]:
    return workflow["jobs"][job]["steps"]


@pytest.fixture(scope="module")
def workflow() -> dict:
    return yaml.safe_load(WORKFLOW.read_text())


def test_the_workflow_matches_github_actions_schema():
    result = validate(WORKFLOW)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_schema_check_rejects_a_broken_workflow(tmp_path):
    broken = tmp_path / "ci.yml"
    # A job without runs-on, and a step that both runs and uses.
    broken.write_text(
        "on: pull_request\njobs:\n  test:\n    steps:\n"
        "      - run: make test\n        uses: actions/checkout@v4\n"
    )
    assert validate(broken).returncode != 0


def test_runs_on_pull_requests_and_main(workflow):
    # PyYAML reads the key `on` as True (YAML 1.1).
    triggers = workflow.get("on", workflow.get(True))
    assert "pull_request" in triggers
    assert triggers["push"]["branches"] == ["main"]


def test_uses_the_makefile_targets_that_exist(workflow):
    runs = [s.get("run", "") for job in workflow["jobs"] for s in steps(workflow, job)]
    called = {m for run in runs for m in re.findall(r"\bmake ([\w-]+)", run)}
    assert {"build", "test", "slim-ci"} <= called
    makefile = (PROJECT_DIR / "Makefile").read_text()
    assert all(re.search(rf"^{target}:", makefile, re.M) for target in called), called
    ci_run = (PROJECT_DIR / ".ci" / "run").read_text()
    assert "make build" in ci_run and "make test" in ci_run


def test_pinned_python_java_and_a_venv_cached_on_the_lock(workflow):
    for job in ("test", "slim-ci"):
        by_action = {s["uses"].split("@")[0]: s for s in steps(workflow, job) if "uses" in s}
        assert by_action["actions/setup-python"]["with"]["python-version"] == "3.11"
        cache = by_action["actions/cache"]["with"]
        assert cache["path"] == ".venv"
        assert "hashFiles('requirements.lock')" in cache["key"]
    java = next(
        s for s in steps(workflow, "test") if s.get("uses", "").startswith("actions/setup-java")
    )
    assert java["with"]["java-version"] == "17"


def test_main_keeps_the_state_that_slim_ci_downloads(workflow):
    upload = next(s for s in steps(workflow, "test") if "upload-artifact" in s.get("uses", ""))
    download = next(s for s in steps(workflow, "slim-ci") if s.get("id") == "state")
    assert upload["with"]["name"] in download["run"]
    assert "target/manifest.json" in upload["with"]["path"]
    assert "warehouse/cvm.duckdb" in upload["with"]["path"]
