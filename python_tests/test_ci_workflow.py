"""The GitHub Actions workflow is valid (check-jsonschema's vendored schema, offline) and calls
the Makefile targets that .ci/run and a developer use; a pull request's slim-ci job always runs
`make slim-ci`, against main's production state when there is one, without it otherwise."""

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


def test_ci_keeps_the_report_and_installs_the_browser_its_test_drives(workflow):
    job = steps(workflow, "test")
    keep = next(s for s in job if s.get("with", {}).get("name") == "report")
    assert keep["if"] == "always()"  # the screenshots matter most when a test failed
    assert {"build/report/", "build/report-screenshots/"} <= set(keep["with"]["path"].split())
    runs = [s.get("run", "") for s in job]
    assert job.index(keep) > runs.index("make test")
    browser = next(s for s in job if "CVM_CHROMEDRIVER" in s.get("run", ""))
    assert job.index(browser) < runs.index("make test")
    ci_run = (PROJECT_DIR / ".ci" / "run").read_text()
    install = ci_run.index("chromium chromium-driver")
    assert "command -v chromium" in ci_run and install < ci_run.index("make test")


# --------------------------------------------------------------------------------------------
# The slim-ci job on a pull request: its shell steps run with `gh` and `make` stubbed, once for
# each way the production state can turn out.

# The contexts the slim-ci job's steps read; another expression fails the test until added here.
CONTEXTS = {"github.token": "token", "github.base_ref": "main"}
GH_STUB = """#!/bin/bash
# gh run list --jq prints an empty line when there is no run (gh prints null as "").
case "$1 $2" in
  "run list") echo "$STUB_RUN_ID" ;;
  "run download") [ "$STUB_ARTEFACT" = kept ] ;;
  *) echo "unexpected gh call: $*" >&2; exit 2 ;;
esac
"""
MAKE_STUB = """#!/bin/bash
printf '%s\\n' "$@" "CVM_RAW_DIR=${CVM_RAW_DIR-<unset>}" "" >> "$STUB_CALLS"
"""


def expand(text: str, contexts: dict[str, str]) -> str:
    """GitHub's ${{ ... }} expressions, for the plain context names the job uses."""
    return re.sub(r"\$\{\{\s*([\w.]+)\s*\}\}", lambda m: contexts[m.group(1)], text)


def run_step(step: dict, contexts: dict[str, str], env: dict[str, str], tmp: Path) -> str:
    """The step's script as GitHub runs it (bash -e); returns what it wrote to GITHUB_OUTPUT."""
    # A condition would need GitHub's evaluator; the job has none (see the test below).
    assert "if" not in step, step
    script, output = tmp / "step.sh", tmp / "github_output"
    script.write_text(expand(step["run"], contexts))
    output.write_text("")
    step_env = {name: expand(str(value), contexts) for name, value in step.get("env", {}).items()}
    subprocess.run(
        ["bash", "-e", str(script)],
        cwd=tmp,
        env={**env, **step_env, "GITHUB_OUTPUT": str(output)},
        check=True,
        capture_output=True,
        text=True,
    )
    return output.read_text()


def slim_ci_job_make_calls(
    workflow: dict, tmp: Path, run_id: str, artefact: str
) -> list[tuple[list[str], dict[str, str]]]:
    """The make calls of the slim-ci job's steps, stubs standing in for gh and make: each as
    its targets and its variables (command line, and CVM_RAW_DIR from the environment)."""
    bin_dir = tmp / "bin"
    bin_dir.mkdir()
    for name, stub in (("gh", GH_STUB), ("make", MAKE_STUB)):
        (bin_dir / name).write_text(stub)
        (bin_dir / name).chmod(0o755)
    calls = tmp / "calls"
    calls.write_text("")
    env = {
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "STUB_RUN_ID": run_id,
        "STUB_ARTEFACT": artefact,
        "STUB_CALLS": str(calls),
    }
    contexts = dict(CONTEXTS)
    for step in steps(workflow, "slim-ci"):
        if "run" not in step:
            continue
        output = run_step(step, contexts, env, tmp)
        for line in output.splitlines():
            name, _, value = line.partition("=")
            contexts[f"steps.{step['id']}.outputs.{name}"] = value
    made = []
    for call in calls.read_text().split("\n\n")[:-1]:
        args = call.split("\n")
        variables = dict(arg.split("=", 1) for arg in args if "=" in arg)
        made.append(([arg for arg in args if "=" not in arg], variables))
    return made


def test_no_slim_ci_step_can_be_skipped_or_fail_softly(workflow):
    job_steps = steps(workflow, "slim-ci")
    assert [s for s in job_steps if "make slim-ci" in s.get("run", "")]
    for step in job_steps:
        assert "if" not in step, step
        assert not step.get("continue-on-error"), step


FULL_BUILD = {"BASE_REF": "origin/main", "CVM_RAW_DIR": "<unset>"}
SLIM_BUILD = {
    "BASE_REF": "origin/main",
    "STATE": "prod-state/target",
    "PROD_WAREHOUSE": "prod-state/warehouse/cvm.duckdb",
    "CVM_RAW_DIR": "prod-state/data/demo",
}


@pytest.mark.parametrize(
    ("run_id", "artefact", "variables"),
    [
        pytest.param("4242", "kept", SLIM_BUILD, id="state found: slim CI against it"),
        pytest.param("", "kept", FULL_BUILD, id="no green main build: full build"),
        pytest.param("4242", "expired", FULL_BUILD, id="artefact expired: full build"),
    ],
)
def test_slim_ci_job_runs_make_slim_ci_with_or_without_state(
    workflow, tmp_path, run_id, artefact, variables
):
    made = slim_ci_job_make_calls(workflow, tmp_path, run_id, artefact)
    assert made == [(["slim-ci"], variables)]
