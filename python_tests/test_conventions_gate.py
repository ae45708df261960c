"""`make conventions` bites: the project passes, and a copy with a bad model fails, naming it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from cvm import conventions
from dbt_project import copy_project, dbt_in

THROWAWAY_SQL = "select 1 as throwaway_id\n"


def run_gate(project: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    """`make conventions` on a copy: dbt parse (in-memory target), then the gate."""
    parsed = dbt_in(project, "parse", "--target", "lint")
    assert parsed.returncode == 0, parsed.stdout[-3000:]
    manifest = project / "target" / "manifest.json"
    exceptions = project / "conventions_exceptions.yml"
    gate = ["-m", "cvm.conventions", "--manifest", str(manifest), "--exceptions", str(exceptions)]
    return subprocess.run(
        [sys.executable, *gate, *extra],  # a later --exceptions wins
        env={**os.environ, "PYTHONPATH": str(project / "scripts")},
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    return copy_project(tmp_path_factory.mktemp("conventions") / "project")


@pytest.mark.slow
def test_the_project_passes_with_marts_at_full_coverage(project):
    result = run_gate(project)
    assert result.returncode == 0, result.stderr
    marts = next(line for line in result.stdout.splitlines() if line.startswith("marts"))
    # models, doc %, column doc %, key test %, tested %
    assert marts.split()[2:] == ["100.0"] * 4, marts


@pytest.mark.slow
def test_a_mart_without_docs_key_test_contract_or_a_fit_name_fails_naming_each_rule(tmp_path):
    project = copy_project(tmp_path / "project")
    # An int_ name under models/marts/: a reader would take the mart for an intermediate model.
    (project / "models" / "marts" / "core" / "int_throwaway.sql").write_text(THROWAWAY_SQL)
    result = run_gate(project)
    assert result.returncode == 1
    for rule in ("description", "primary_key_test", "contract", "naming"):
        assert f"int_throwaway: {rule}:" in result.stderr, result.stderr
    # Only the throwaway model is reported.
    reported = [line for line in result.stderr.splitlines() if line.startswith("  ")]
    assert all(line.strip().startswith("int_throwaway:") for line in reported), reported


@pytest.mark.slow
def test_a_model_that_reads_a_layer_above_its_own_fails(tmp_path):
    """Layers read downwards only: an int_ model on a mart, a staging model on an int_ one."""
    project = copy_project(tmp_path / "project")
    models = project / "models"
    (models / "intermediate" / "customers" / "int_customers_read_from_a_mart.sql").write_text(
        "select customer_id from {{ ref('customer_value') }}\n"
    )
    (models / "staging" / "shop" / "stg_shop__read_from_intermediate.sql").write_text(
        "select value_basis from {{ ref('int_value_basis_chosen') }}\n"
    )
    result = run_gate(project)
    assert result.returncode == 1
    assert (
        "int_customers_read_from_a_mart: layers: intermediate reads a layer above: "
        "marts customer_value" in result.stderr
    ), result.stderr
    assert (
        "stg_shop__read_from_intermediate: layers: staging reads a layer above: "
        "intermediate int_value_basis_chosen" in result.stderr
    )


@pytest.mark.slow
def test_a_table_behind_a_public_view_is_key_tested_on_the_view(tmp_path):
    """int_orders_costed has no key test of its own; the one on its view fct_orders counts for
    it. Without that one, both are reported."""
    project = copy_project(tmp_path / "project")
    yml = project / "models" / "marts" / "core" / "fct_orders.yml"
    key_test = (
        "      - unique_combination_of_columns:\n"
        "          name: fct_orders_order_id_is_unique\n"
        "          arguments:\n"
        "            columns: [order_id]\n"
        "            written_after: {table: int_orders_costed, column: order_date}\n"
    )
    assert key_test in yml.read_text()
    yml.write_text(yml.read_text().replace(key_test, ""))
    result = run_gate(project)
    assert result.returncode == 1
    assert "fct_orders: primary_key_test" in result.stderr, result.stderr
    assert "int_orders_costed: primary_key_test" in result.stderr, result.stderr


@pytest.mark.slow
def test_a_stale_exception_fails(project, tmp_path):
    exceptions = tmp_path / "exceptions.yml"
    exceptions.write_text(
        "exceptions:\n  - {model: fct_orders, rule: naming, reason: no longer needed}\n"
    )
    result = run_gate(project, "--exceptions", str(exceptions))
    assert result.returncode == 1
    assert "fct_orders: naming" in result.stderr
    # Without the file's other entries the base tables are reported too; report marts with
    # plain names (customer_value) need no exception.
    assert "base_shop__orders: primary_key_test" in result.stderr
    assert "customer_value:" not in result.stderr


def test_an_exception_needs_a_known_rule_and_a_reason(tmp_path):
    path = tmp_path / "exceptions.yml"
    path.write_text("exceptions:\n  - {model: fct_orders, rule: naming}\n")
    with pytest.raises(ValueError, match="reason"):
        conventions.load_exceptions(path)
    path.write_text("exceptions:\n  - {model: fct_orders, rule: speling, reason: why}\n")
    with pytest.raises(ValueError, match="rule"):
        conventions.load_exceptions(path)


@pytest.mark.parametrize(
    ("name", "node_layer", "fits"),
    [
        ("customer_value", "marts", True),  # a wide report mart, named for what it holds
        ("fct_orders", "marts", True),
        ("dim_customers", "marts", True),
        ("int_something", "marts", False),
        ("stg_x", "marts", False),
        ("base_shop__orders", "marts", False),
        ("stg_shop__orders", "staging", True),
        ("shop_orders", "staging", False),
        ("int_customers_profiled", "intermediate", True),
        ("fct_orders", "intermediate", False),
    ],
)
def test_a_name_says_its_layer(name, node_layer, fits):
    assert (conventions.naming_problem(name, node_layer) is None) is fits


def _node(**columns: list[str]) -> dict:
    return {
        "unique_id": "model.p.m",
        "columns": {name: {"constraints": [{"type": t} for t in c]} for name, c in columns.items()},
    }


def _test(name: str, column: str | None = None) -> dict:
    return {"attached_node": "model.p.m", "column_name": column, "test_metadata": {"name": name}}


@pytest.mark.parametrize(
    ("node", "tests", "expected"),
    [
        (_node(), [_test("unique", "id"), _test("not_null", "id")], True),
        (_node(), [_test("unique", "id")], False),
        (_node(), [_test("unique", "id"), _test("not_null", "other_id")], False),
        (_node(id=["not_null"]), [_test("unique", "id")], True),
        (_node(id=["primary_key"]), [], True),
        (_node(), [_test("unique_combination_of_columns")], True),
        (_node(), [_test("accepted_values", "id"), _test("not_null", "id")], False),
    ],
)
def test_what_counts_as_a_primary_key_test(node, tests, expected):
    assert conventions.has_primary_key_test(node, tests) is expected
