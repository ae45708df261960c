"""The contact plan: which candidates (int_customer_strategies_chosen) to contact within budget.

Thin on purpose: the work is cvm.playbook.contact_plan (exact 0/1 knapsack with HiGHS). dbt
reads the refs and config keys from this file, so they are spelled out here.
"""

from cvm.playbook import contact_plan


def model(dbt, session):
    dbt.config(materialized="table")
    return contact_plan(
        session,
        dbt.ref("int_customer_strategies_chosen"),
        budget=dbt.config.get("contact_budget"),
        time_limit=dbt.config.get("contact_plan_time_limit_seconds"),
    )
