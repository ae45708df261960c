"""cvm.relations: Python finds a model's relation by its name, wherever dbt put it."""

from __future__ import annotations

import duckdb
import pytest

from cvm.relations import Relations


@pytest.fixture
def con():
    with duckdb.connect() as connection:
        connection.execute("create schema marts; create schema staging; create schema bi")
        connection.execute("create table marts.customer_value (customer_id varchar)")
        connection.execute("create view staging.stg_shop__orders as select 1 as order_id")
        connection.execute("create table bi.customer_value (x integer)")  # an export, no model
        yield connection


def test_tables_and_views_are_found_by_model_name(con):
    relations = Relations(con)
    assert relations["customer_value"] == "marts.customer_value"
    assert relations["stg_shop__orders"] == "staging.stg_shop__orders"
    assert "customer_value" in relations and "nowhere" not in relations


def test_a_model_moved_to_another_schema_is_found_there(con):
    con.execute("create schema intermediate")
    con.execute("drop table marts.customer_value")
    con.execute("create table intermediate.customer_value (customer_id varchar)")
    assert Relations(con)["customer_value"] == "intermediate.customer_value"


def test_a_missing_model_fails_with_its_name(con):
    with pytest.raises(KeyError, match="fct_orders is not in the warehouse"):
        Relations(con)["fct_orders"]


def test_another_attached_database_is_qualified_with_its_name(con, tmp_path):
    with duckdb.connect(str(tmp_path / "old.duckdb")) as old:
        old.execute("create schema marts; create table marts.customer_value (x integer)")
    con.execute(f"attach '{tmp_path / 'old.duckdb'}' as previous_build (read_only)")
    previous = Relations(con, "previous_build")
    assert previous["customer_value"] == "previous_build.marts.customer_value"
    assert "stg_shop__orders" not in previous
    assert con.execute(f"select count(*) from {previous['customer_value']}").fetchone() == (0,)
