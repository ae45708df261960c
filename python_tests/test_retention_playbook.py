"""The retention playbook's marts on a real build: one recommendation per customer,
business-rule tests that fail when the marts break the rules, and the churn-reduction analysis
against a recount (that the contact plan is optimal: test_contact_plan_exact.py)."""

from __future__ import annotations

import duckdb
import pytest

from dbt_project import copy_warehouse, dbt_test_on_tampered_copy, query, run_dbt

pytestmark = pytest.mark.slow


def test_every_customer_gets_one_recommendation(parquet_build):
    assert query(
        parquet_build.warehouse,
        "select count(*), count(distinct customer_id) from marts.next_best_actions",
    ) == query(parquet_build.warehouse, "select count(*), count(*) from marts.dim_customers")
    strategies = {
        s
        for (s,) in query(
            parquet_build.warehouse, "select primary_strategy from marts.next_best_actions"
        )
    }
    # The demo data has customers for most strategies, and some for no action.
    assert "no_action" in strategies
    assert len(strategies) >= 5


@pytest.mark.parametrize(
    ("tamper", "test_name"),
    [
        (
            # A loyal, price-insensitive customer offered a discount-led strategy.
            "update marts.next_best_actions set companion_strategy_1 = 'usage_stimulation' "
            "where customer_id = (select min(customer_id) from marts.next_best_actions "
            "where is_loyal_price_insensitive)",
            "assert_no_discount_led_strategy_for_loyal_customers",
        ),
        (
            # A customer with an open complaint in the contact plan.
            "insert into marts.contact_plan (customer_id, contact_rank, primary_strategy) "
            "select customer_id, 0, 'cross_sell' from marts.next_best_actions "
            "where is_do_not_contact limit 1",
            "assert_contact_plan_contacts_only_contactable_customers",
        ),
    ],
)
def test_business_rule_tests_fail_when_the_marts_break_them(
    parquet_build, tmp_path, tamper, test_name
):
    result = dbt_test_on_tampered_copy(
        parquet_build.raw_dir, parquet_build.warehouse, tmp_path, tamper, test_name
    )
    assert result.returncode != 0
    assert f"FAIL 1 {test_name}" in result.stdout


def test_contact_measurement_reconciles_with_the_contacts(parquet_build):
    [(sent, held_out, responses)] = query(
        parquet_build.warehouse,
        "select count(*) filter (where not is_holdout), count(*) filter (where is_holdout), "
        "count(*) filter (where responded) from staging.stg_shop__contacts",
    )
    assert sent > 0 and held_out > 0
    assert query(
        parquet_build.warehouse,
        "select sent_contacts, holdout_contacts, responses from marts.contact_response_by_strategy "
        "where strategy = 'all'",
    ) == [(sent, held_out, responses)]
    [(cells,)] = query(
        parquet_build.warehouse,
        "select sum(sent_contacts) from marts.contact_response_by_strategy "
        "where strategy != 'all' and channel != 'all'",
    )
    assert cells == sent


def test_churn_reduction_analysis_matches_a_recount(parquet_build, tmp_path):
    # dbt opens its warehouse for writing, even to compile: a copy, so that the tests reading
    # the shared build meanwhile (other pytest-xdist workers) are not locked out.
    warehouse = copy_warehouse(parquet_build.warehouse, tmp_path)
    result = run_dbt(
        "compile",
        parquet_build.raw_dir,
        warehouse,
        tmp_path,
        "--select",
        "churn_reduction_profit_effect",
    )
    assert result.returncode == 0, result.stdout[-3000:]
    compiled = next((tmp_path / "target" / "compiled").rglob("churn_reduction_profit_effect.sql"))
    with duckdb.connect(str(warehouse), read_only=True) as con:
        [row] = con.execute(compiled.read_text()).fetchall()
        names = [d[0] for d in con.description]
        analysis = dict(zip(names, row, strict=True))
        # Recount retention with dates instead of the analysis's flags.
        [(prior, retained)] = con.execute(
            "with b as (select customer_id, min(order_date) filter (where order_date > "
            "(select max(as_of_date) from marts.customer_value) - 365) as last_year, "
            "min(order_date) filter (where order_date <= (select max(as_of_date) "
            "from marts.customer_value) - 365 and order_date > (select max(as_of_date) "
            "from marts.customer_value) - 730) as prior_year from marts.fct_orders "
            "where is_completed group by 1) "
            "select count(prior_year), count(prior_year) filter (where last_year is not null) "
            "from b"
        ).fetchall()
    assert (analysis["prior_year_customers"], analysis["retained_customers"]) == (prior, retained)
    r, d = retained / prior, float(analysis["discount_rate"])
    r2 = min(r + 0.05, 1)
    assert analysis["annual_retention_rate"] == pytest.approx(r)
    assert analysis["next_year_profit_effect_pct"] == pytest.approx(100 * 0.05 / r)
    expected = 100 * ((r2 / (1 + d - r2)) / (r / (1 + d - r)) - 1)
    assert analysis["lifetime_profit_effect_pct"] == pytest.approx(expected)
    assert 0 < analysis["lifetime_profit_effect_pct"] < 200
