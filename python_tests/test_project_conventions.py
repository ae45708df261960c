"""House rules checked on a real build: documentation, keys, contracts, no PII in marts.

dbt_project_evaluator would check some of these, but the package hub is out of reach here.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from cvm import conventions
from cvm.manifest import public_view
from dbt_project import query

pytestmark = pytest.mark.slow

# Base tables hold every raw row, duplicates included: their keys are tested on the stg_ views.
# The one list of such exceptions, with reasons, is conventions_exceptions.yml (`make conventions`).
NO_PRIMARY_KEY_BY_DESIGN = {
    model
    for model, rule in conventions.load_exceptions(conventions.DEFAULT_EXCEPTIONS)
    if rule == "primary_key_test"
}
# Tests that assert a primary key: one column, or the combination of a multi-column grain.
KEY_TESTS = {"unique", "unique_combination_of_columns"}
EMAIL_SHAPED = r"[^@\s]+@[^@\s]+\.[A-Za-z]{2,}"


@pytest.fixture(scope="module")
def manifest(parquet_build) -> dict[str, Any]:
    assert parquet_build.result.returncode == 0, parquet_build.result.stdout[-3000:]
    path = parquet_build.warehouse.parent / "target" / "manifest.json"
    return json.loads(path.read_text())


def models(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    """Models and snapshots: both are relations users read, held to the same rules."""
    return [n for n in manifest["nodes"].values() if n["resource_type"] in {"model", "snapshot"}]


def test_every_model_and_column_is_documented_and_docs_match_the_relation(manifest, parquet_build):
    for model in models(manifest):
        assert model["description"].strip(), model["name"]
        # An intermediate table behind a public view is documented there (doc block public_views).
        documenting = public_view(model, manifest) or model
        documented = {
            name for name, c in documenting["columns"].items() if c["description"].strip()
        }
        actual = {
            name
            for (name,) in query(
                parquet_build.warehouse,
                "select column_name from information_schema.columns "
                f"where table_schema = '{model['schema']}' and table_name = '{model['name']}'",
            )
        }
        assert actual, f"{model['name']} was not built"
        assert documented == actual, model["name"]


def test_every_model_has_a_primary_key_test(manifest):
    key_tested = {
        manifest["nodes"][node]["name"]
        for test in manifest["nodes"].values()
        if test["resource_type"] == "test"
        and test.get("test_metadata", {}).get("name") in KEY_TESTS
        for node in test["depends_on"]["nodes"]
    }
    # An intermediate table behind a public view is key-tested there (doc block public_views).
    missing = {
        m["name"]
        for m in models(manifest)
        if m["name"] not in key_tested
        and (public_view(m, manifest) or {}).get("name") not in key_tested
    } - NO_PRIMARY_KEY_BY_DESIGN
    assert not missing


def test_public_marts_enforce_contracts(manifest):
    marts = [m for m in models(manifest) if m["fqn"][1] == "marts"]
    assert marts
    assert all(m["config"]["contract"]["enforced"] for m in marts)


def test_no_email_shaped_value_in_any_mart_column(parquet_build):
    columns = query(
        parquet_build.warehouse,
        "select table_name, column_name from information_schema.columns "
        "where table_schema = 'marts' and data_type = 'VARCHAR'",
    )
    assert columns
    for table, column in columns:
        [(n,)] = query(
            parquet_build.warehouse,
            f"select count(*) from marts.{table} where regexp_matches({column}, '{EMAIL_SHAPED}')",
        )
        assert n == 0, f"marts.{table}.{column}"


def test_the_generated_data_does_hold_emails(parquet_build):
    """The PII scan above can fail: staging holds email-shaped values."""
    [(n,)] = query(
        parquet_build.warehouse,
        "select count(*) from staging.stg_shop__customers "
        f"where regexp_matches(email, '{EMAIL_SHAPED}')",
    )
    assert n > 0
