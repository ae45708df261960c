"""The data tests that once passed whatever the code did now fail on a planted defect: NULL
counts as a failure in our generic tests, and checks that restated a model's SELECT became
recounts from other tables. One tampered copy of a real build carries every defect, each in
rows of its own, and one `dbt test` run checks that each test fails on exactly those rows."""

from __future__ import annotations

import re

import pytest

from dbt_project import copy_project, dbt_in, dbt_test_on_tampered_copy

pytestmark = pytest.mark.slow

COMPLETED_COSTED_ORDER = (
    "(select min(order_id) from marts.fct_orders where is_completed and cost_of_goods is not null)"
)
BUYER = "(select {} (customer_id) from marts.customer_value where purchase_count_lifetime > 0)"
# Per data test: the defect planted for it and how many rows it must report.
PLANTED = {
    # The row issue 19 names: a margin of 999 on an order with net revenue and a known cost.
    "fct_orders_gross_margin_is_net_revenue_minus_cost": (
        "update intermediate.int_orders_costed set gross_margin = 999 "
        f"where order_id = {COMPLETED_COSTED_ORDER}",
        1,
    ),
    # A refund that is not what the returned order paid (gross margin is not read there).
    "assert_order_money_recounts_from_staging": (
        "update intermediate.int_orders_costed set refund_amount = refund_amount - 1 "
        "where order_id = "
        "(select min(order_id) from marts.fct_orders where status = 'returned' "
        "and order_total > 1)",
        1,
    ),
    # 10.00 moved between two buyers: the grand total is unchanged.
    "assert_customer_value_revenue_reconciles": (
        "update intermediate.int_customers_valued "
        "set net_revenue_lifetime = net_revenue_lifetime + 10 "
        f"where customer_id = {BUYER.format('min')}; "
        "update intermediate.int_customers_valued "
        "set net_revenue_lifetime = net_revenue_lifetime - 10 "
        f"where customer_id = {BUYER.format('max')}",
        2,
    ),
    # NULL, not a wrong number: passed before NULL counted as a failure.
    "customer_value_scored_clv_within_its_interval": (
        "update intermediate.int_customers_valued set p_alive = null where customer_id = "
        "(select min(customer_id) from marts.customer_value where clv_status = 'scored')",
        1,
    ),
    "next_best_actions_contact_window_follows_the_next_purchase": (
        "update marts.next_best_actions set contact_window_start_date = null where customer_id = "
        "(select min(customer_id) from marts.next_best_actions "
        "where expected_next_purchase_date is not null)",
        1,
    ),
    # A key with a hole: passed before a null key column counted as a failure.
    "int_customer_strategies_evaluated_one_row_per_customer_and_strategy": (
        "update intermediate.int_customer_strategies_evaluated set strategy = null "
        "where customer_id = (select min(customer_id) "
        "from intermediate.int_customer_strategies_evaluated) and strategy = 'cross_sell'",
        1,
    ),
    # A resolved complaint reopened for a customer who may be contacted: the recount says
    # open_complaint, next_best_actions (built before) does not.
    "assert_do_not_contact_recounts_from_the_facts": (
        "update marts.fct_complaints set resolved_at = null where complaint_id = "
        "(select min(complaints.complaint_id) from marts.fct_complaints as complaints "
        "inner join marts.next_best_actions as actions using (customer_id) "
        "where complaints.resolved_at is not null and actions.do_not_contact_reason is null)",
        1,
    ),
}


@pytest.fixture(scope="module")
def planted_run(parquet_build, tmp_path_factory) -> str:
    result = dbt_test_on_tampered_copy(
        parquet_build.raw_dir,
        parquet_build.warehouse,
        tmp_path_factory.mktemp("planted"),
        "; ".join(tamper for tamper, _ in PLANTED.values()),
        *PLANTED,
    )
    assert result.returncode != 0
    return result.stdout


@pytest.mark.parametrize("test_name", sorted(PLANTED))
def test_a_planted_defect_fails_its_data_test(planted_run, test_name):
    _, rows = PLANTED[test_name]
    reported = re.findall(rf"\bFAIL (\d+) {re.escape(test_name)}\b", planted_run)
    assert reported and int(reported[0]) == rows, planted_run[-3000:]


def test_the_same_tests_pass_on_the_untampered_build(parquet_build, tmp_path):
    """So the failures above are the defects', not the tests' own."""
    result = dbt_test_on_tampered_copy(
        parquet_build.raw_dir, parquet_build.warehouse, tmp_path, "select 1", *PLANTED
    )
    assert result.returncode == 0, result.stdout[-3000:]
    passed = set(re.findall(r"of \d+ PASS (\w+) ", result.stdout))
    assert passed == PLANTED.keys(), result.stdout[-3000:]


def test_allow_null_needs_a_column(tmp_path):
    """allow_null on a model-level expression would hide the NULL case it must spell out."""
    project = copy_project(tmp_path / "project")
    yml = project / "models" / "marts" / "core" / "fct_orders.yml"
    test_name = "fct_orders_gross_margin_is_net_revenue_minus_cost"
    yml.write_text(
        yml.read_text().replace(
            'arguments: {expression: "(gross_margin is null)',
            'arguments: {allow_null: true, expression: "(gross_margin is null)',
        )
    )
    result = dbt_in(project, "compile", "--target", "lint", "--select", test_name)
    assert result.returncode != 0
    assert "allow_null needs a column" in result.stdout
