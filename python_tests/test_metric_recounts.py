"""Every metric of the semantic layer recounted in plain SQL (issue 19).

Each metric is queried through MetricFlow on the published demo warehouse, sliced by a grouping
chosen to make the count non-trivial (months, quarters, tiers, strategies...), and compared
group by group with SQL written from what the metric means (its description and the marts'
raw columns: order totals, statuses, scores), never from MetricFlow's generated SQL. Where a
mart derives what a metric counts (activity and churn, cohorts, first purchases, lookback
spend, tier moves), the recount derives it again from the order facts or the tier history.
NPS, churn rate and repeat-purchase rate are also checked on a tiny shop counted by hand."""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest
from metricflow.engine.metricflow_engine import MetricFlowEngine, MetricFlowQueryRequest

from cvm import semantic
from dbt_project import dbt_build

pytestmark = pytest.mark.slow

EXPECTED_METRIC_COUNT = 53


@dataclass(frozen=True)
class Recount:
    """MetricFlow's group-by names, and SQL returning those columns in order, then the value."""

    group_by: tuple[str, ...]
    sql: str


# --------------------------------------------------------------------------------------------
# Building blocks shared by several recounts

AS_OF = """
    as_of as (
        select as_of_date, cast(date_trunc('month', as_of_date) as date) as as_of_month
        from staging.base_shop__as_of_date
    )"""

# Completed purchases by customer and calendar month: the base of activity, churn and cohorts.
PURCHASE_MONTHS = """
    purchase_months as (
        select distinct customer_id, cast(date_trunc('month', order_date) as date) as month
        from marts.fct_orders
        where status = 'completed'
    )"""

# Per customer and month from the first purchase month to the as-of month: active when a
# completed purchase falls in the 12 calendar months ending with that month.
ACTIVITY = f"""
    {AS_OF},
    {PURCHASE_MONTHS},
    first_months as (
        select customer_id, min(month) as first_month from purchase_months group by customer_id
    ),
    customer_months as (
        select
            first_months.customer_id,
            cast(unnest(generate_series(
                first_months.first_month, as_of.as_of_month, interval 1 month
            )) as date) as month
        from first_months cross join as_of
    ),
    activity as (
        select
            customer_months.customer_id,
            customer_months.month,
            count(purchase_months.month) > 0 as is_active
        from customer_months
        left join purchase_months
            on purchase_months.customer_id = customer_months.customer_id
            and purchase_months.month > customer_months.month - interval 12 month
            and purchase_months.month <= customer_months.month
        group by all
    ),
    -- Consecutive months of a customer: active at the previous month end, and now.
    activity_pairs as (
        select
            this.customer_id,
            this.month,
            previous.is_active as was_active,
            this.is_active
        from activity as this
        inner join activity as previous
            on previous.customer_id = this.customer_id
            and previous.month = this.month - interval 1 month
    )"""

# Consecutive months of the tier history, from the tier of each month end (not the migrations
# mart, which is what these recounts check).
TIER_PAIRS = """
    tier_ranks (value_tier, tier_rank) as (
        values ('Platinum', 1), ('Gold', 2), ('Silver', 3), ('Bronze', 4)
    ),
    tier_pairs as (
        select
            this.customer_id,
            this.period_month as month,
            previous.value_tier as from_tier,
            this.value_tier as to_tier,
            -- Down: into Inactive from anything else, or to a lower threshold tier.
            (this.value_tier = 'Inactive' and previous.value_tier <> 'Inactive')
                or coalesce(to_rank.tier_rank > from_rank.tier_rank, false) as is_down
        from marts.fct_customer_tier_months as this
        inner join marts.fct_customer_tier_months as previous
            on previous.customer_id = this.customer_id
            and previous.period_month = this.period_month - interval 1 month
        left join tier_ranks as from_rank on from_rank.value_tier = previous.value_tier
        left join tier_ranks as to_rank on to_rank.value_tier = this.value_tier
    )"""

# Completed purchases per customer, for every customer (0 without any).
PURCHASE_COUNTS = """
    purchase_counts as (
        select
            customers.customer_id,
            customers.value_tier,
            customers.country,
            customers.acquisition_channel,
            customers.rfm_segment,
            count(orders.order_id) as purchases
        from marts.customer_value as customers
        left join marts.fct_orders as orders
            on orders.customer_id = customers.customer_id and orders.status = 'completed'
        group by all
    )"""

# Monthly acquisition cohorts from the first completed purchase, with every month from the
# cohort month to the as-of month and the cohort's customers who bought in it.
COHORT_MONTHS = f"""
    {AS_OF},
    {PURCHASE_MONTHS},
    cohorts as (
        select customer_id, min(month) as cohort_month from purchase_months group by customer_id
    ),
    cohort_sizes as (
        select cohort_month, count(*) as cohort_customers from cohorts group by cohort_month
    ),
    cohort_months as (
        select
            cohort_sizes.cohort_month,
            cohort_sizes.cohort_customers,
            cast(unnest(generate_series(
                cohort_sizes.cohort_month, as_of.as_of_month, interval 1 month
            )) as date) as month
        from cohort_sizes cross join as_of
    ),
    cohort_buyers as (
        select cohorts.cohort_month, purchase_months.month, count(*) as customers
        from purchase_months
        inner join cohorts using (customer_id)
        group by all
    ),
    cohort_activity as (
        select
            cohort_months.cohort_month,
            cohort_months.month,
            datediff('month', cohort_months.cohort_month, cohort_months.month) as months_since,
            cohort_months.cohort_customers,
            coalesce(cohort_buyers.customers, 0) as returning_customers
        from cohort_months
        left join cohort_buyers using (cohort_month, month)
    )"""

# Contacts with the customer's tier at the end of the month before the contact, recomputed
# from the tier history ('No tier' when the customer had none then).
CONTACTS_WITH_TIER = """
    contacts as (
        select
            contacts.*,
            coalesce(tiers.value_tier, 'No tier') as tier_at_contact
        from marts.fct_contacts as contacts
        left join marts.fct_customer_tier_months as tiers
            on tiers.customer_id = contacts.customer_id
            and tiers.period_month = date_trunc('month', contacts.sent_at) - interval 1 month
    )"""

# Revenue by month from order totals: what was paid for orders not cancelled.
MONTHLY_REVENUE = """
    monthly_revenue as (
        select
            cast(date_trunc('month', order_date) as date) as month,
            sum(case when status <> 'cancelled' then order_total else 0 end) as revenue
        from marts.fct_orders
        group by all
    )"""

# What an order kept, and its margin when the cost of every one of its lines is known.
ORDER_MARGINS = """
    line_costs as (
        select
            order_id,
            count(*) as lines,
            count(unit_cost) as costed_lines,
            sum(quantity * unit_cost) as cost_of_goods
        from marts.fct_order_items
        group by order_id
    ),
    order_margins as (
        select
            orders.order_id,
            orders.customer_id,
            orders.order_date,
            case
                when coalesce(line_costs.costed_lines, 0) = 0
                    or line_costs.costed_lines < line_costs.lines then null
                when orders.status = 'completed'
                    then orders.order_total - orders.credited_amount - line_costs.cost_of_goods
                else 0
            end as gross_margin
        from marts.fct_orders as orders
        left join line_costs using (order_id)
    )"""

# NPS classes from the raw 0-10 answer: promoter 9-10, passive 7-8, detractor 0-6.
NPS_ANSWERS = """
    answers as (
        select
            responses.*,
            customers.value_tier,
            customers.country,
            customers.acquisition_channel,
            responses.nps_score >= 9 as is_promoter,
            responses.nps_score <= 6 as is_detractor
        from marts.fct_survey_responses as responses
        left join marts.customer_value as customers using (customer_id)
    )"""

LOOKBACK_SPEND = f"""
    {AS_OF},
    -- Net revenue of the 365 days up to and including the as-of date: our spend in the wallet.
    own_spend as (
        select
            customers.customer_id,
            coalesce(sum(orders.order_total - orders.credited_amount), 0) as own_spend
        from marts.customer_value as customers
        cross join as_of
        left join marts.fct_orders as orders
            on orders.customer_id = customers.customer_id
            and orders.status = 'completed'
            and orders.order_date > as_of.as_of_date - interval 365 day
            and orders.order_date <= as_of.as_of_date
        group by all
    ),
    wallets as (
        select customers.*, own_spend.own_spend
        from marts.customer_value as customers
        inner join own_spend using (customer_id)
    )"""


def grouped(group_by: str, sql: str) -> Recount:
    """A recount by the comma-separated group-by names ``group_by``."""
    return Recount(tuple(name.strip() for name in group_by.split(",")), sql)


MONTH, QUARTER, YEAR = "metric_time__month", "metric_time__quarter", "metric_time__year"

RECOUNTS: dict[str, Recount] = {
    # Orders ----------------------------------------------------------------------------------
    "revenue": grouped(
        f"{MONTH}, order__status",
        """
        select
            date_trunc('month', order_date), status,
            sum(case when status <> 'cancelled' then order_total else 0 end)
        from marts.fct_orders group by all
        """,
    ),
    "net_revenue": grouped(
        f"{MONTH}, customer__country",
        """
        select
            date_trunc('month', orders.order_date), customers.country,
            sum(case when orders.status = 'completed'
                then orders.order_total - orders.credited_amount else 0 end)
        from marts.fct_orders as orders
        left join marts.customer_value as customers using (customer_id)
        group by all
        """,
    ),
    "gross_margin": grouped(
        f"{QUARTER}, customer__value_tier",
        f"""
        with {ORDER_MARGINS}
        select date_trunc('quarter', order_margins.order_date), customers.value_tier,
            sum(order_margins.gross_margin)
        from order_margins
        left join marts.customer_value as customers using (customer_id)
        group by all
        """,
    ),
    "orders": grouped(
        f"{MONTH}, customer__acquisition_channel",
        """
        select
            date_trunc('month', orders.order_date), customers.acquisition_channel,
            count(*) filter (where orders.status = 'completed')
        from marts.fct_orders as orders
        left join marts.customer_value as customers using (customer_id)
        group by all
        """,
    ),
    "orders_placed": grouped(
        f"{QUARTER}, order__status",
        """
        select date_trunc('quarter', order_date), status, count(*)
        from marts.fct_orders group by all
        """,
    ),
    "average_order_value": grouped(
        f"{QUARTER}, customer__tenure_band",
        """
        select
            date_trunc('quarter', orders.order_date), customers.tenure_band,
            sum(case when orders.status = 'completed'
                then orders.order_total - orders.credited_amount else 0 end)
            / nullif(count(*) filter (where orders.status = 'completed'), 0)
        from marts.fct_orders as orders
        left join marts.customer_value as customers using (customer_id)
        group by all
        """,
    ),
    "revenue_mom_growth": grouped(
        MONTH,
        f"""
        with {MONTHLY_REVENUE}
        select this.month, (this.revenue - previous.revenue) / previous.revenue
        from monthly_revenue as this
        left join monthly_revenue as previous on previous.month = this.month - interval 1 month
        """,
    ),
    # The quarter's value is that of its last day (the as-of date for the current quarter):
    # revenue of the orders placed in the 12 months up to and including that day.
    "trailing_12_month_revenue": grouped(
        QUARTER,
        f"""
        with {AS_OF},
        quarters as (
            select distinct
                cast(date_trunc('quarter', order_date) as date) as quarter,
                least(last_day(date_trunc('quarter', order_date) + interval 2 month),
                    as_of.as_of_date) as last_day
            from marts.fct_orders cross join as_of
        )
        select
            quarters.quarter,
            sum(case when orders.status <> 'cancelled' then orders.order_total else 0 end)
        from quarters
        inner join marts.fct_orders as orders
            on orders.order_date <= quarters.last_day
            and orders.order_date > quarters.last_day - interval 12 month
        group by all
        """,
    ),
    "units_sold": grouped(
        f"{MONTH}, order_line__product_category",
        """
        select date_trunc('month', orders.ordered_at), products.category, sum(items.quantity)
        from staging.stg_shop__order_items as items
        inner join staging.stg_shop__orders as orders using (order_id)
        left join staging.stg_shop__products as products using (product_id)
        group by all
        """,
    ),
    # Customers as of the as-of date --------------------------------------------------------
    "customers": grouped(
        "customer__value_tier, customer__country",
        """
        select customers.value_tier, registered.country, count(*)
        from staging.stg_shop__customers as registered
        inner join marts.customer_value as customers using (customer_id)
        group by all
        """,
    ),
    "new_customers": grouped(
        f"{MONTH}, customer__acquisition_channel",
        """
        with first_purchases as (
            select customer_id, min(order_date) as first_purchased_on
            from marts.fct_orders where status = 'completed' group by customer_id
        )
        select date_trunc('month', first_purchased_on), customers.acquisition_channel, count(*)
        from first_purchases
        inner join marts.customer_value as customers using (customer_id)
        group by all
        """,
    ),
    "repeat_purchase_rate": grouped(
        "customer__country, customer__acquisition_channel",
        f"""
        with {PURCHASE_COUNTS}
        select country, acquisition_channel,
            count(*) filter (where purchases >= 2)
            / nullif(count(*) filter (where purchases >= 1), 0)
        from purchase_counts group by all
        """,
    ),
    "purchasing_customers": grouped(
        "customer__value_tier",
        f"""
        with {PURCHASE_COUNTS}
        select value_tier, count(*) filter (where purchases >= 1) from purchase_counts group by all
        """,
    ),
    "repeat_customers": grouped(
        "customer__rfm_segment",
        f"""
        with {PURCHASE_COUNTS}
        select rfm_segment, count(*) filter (where purchases >= 2) from purchase_counts group by all
        """,
    ),
    "total_clv": grouped(
        "customer__value_tier, customer__clv_status",
        "select value_tier, clv_status, sum(clv) from marts.customer_value group by all",
    ),
    "average_clv": grouped(
        "customer__value_tier",
        "select value_tier, avg(clv) from marts.customer_value group by all",
    ),
    "average_p_alive": grouped(
        "customer__country",
        "select country, avg(p_alive) from marts.customer_value group by all",
    ),
    "average_share_of_wallet": grouped(
        "customer__acquisition_channel",
        "select acquisition_channel, avg(share_of_wallet_modelled) "
        "from marts.customer_value group by all",
    ),
    "revenue_weighted_share_of_wallet": grouped(
        "customer__value_tier, customer__country",
        f"""
        with {LOOKBACK_SPEND}
        select value_tier, country, sum(own_spend) / nullif(sum(wallet_modelled), 0)
        from wallets group by all
        """,
    ),
    "wallet": grouped(
        "customer__tenure_band",
        "select tenure_band, sum(wallet_modelled) from marts.customer_value group by all",
    ),
    "wallet_own_spend": grouped(
        "customer__value_tier",
        f"with {LOOKBACK_SPEND} select value_tier, sum(own_spend) from wallets group by all",
    ),
    "wallet_headroom": grouped(
        "customer__country",
        f"""
        with {LOOKBACK_SPEND}
        select country, sum(wallet_modelled - own_spend) from wallets group by all
        """,
    ),
    # Cohorts ----------------------------------------------------------------------------------
    "cohort_retention_rate": grouped(
        "cohort_month_activity__months_since_first_purchase",
        f"""
        with {COHORT_MONTHS}
        select months_since, sum(returning_customers) / sum(cohort_customers)
        from cohort_activity group by all
        """,
    ),
    "cohort_returning_customers": grouped(
        f"{YEAR}, cohort_month_activity__months_since_first_purchase",
        f"""
        with {COHORT_MONTHS}
        select date_trunc('year', month), months_since, sum(returning_customers)
        from cohort_activity group by all
        """,
    ),
    "cohort_customers": grouped(
        MONTH,
        f"""
        with {COHORT_MONTHS}
        select month, sum(cohort_customers) from cohort_activity group by all
        """,
    ),
    # The retention playbook -------------------------------------------------------------------
    "recommended_customers": grouped(
        "next_best_action__primary_strategy, next_best_action__is_do_not_contact",
        """
        select primary_strategy, do_not_contact_reason is not null, count(*)
        from marts.next_best_actions group by all
        """,
    ),
    "planned_contacts": grouped(
        f"{MONTH}, planned_contact__preferred_channel",
        """
        select date_trunc('month', contact_window_start_date), preferred_channel, count(*)
        from marts.contact_plan group by all
        """,
    ),
    "plan_contact_cost": grouped(
        "customer__value_tier",
        """
        select customers.value_tier, sum(plan.contact_cost)
        from marts.contact_plan as plan
        left join marts.customer_value as customers using (customer_id)
        group by all
        """,
    ),
    "plan_expected_return": grouped(
        "customer__acquisition_channel",
        """
        select customers.acquisition_channel, sum(plan.expected_gain - plan.contact_cost)
        from marts.contact_plan as plan
        left join marts.customer_value as customers using (customer_id)
        group by all
        """,
    ),
    "plan_expected_retained_value": grouped(
        "planned_contact__primary_strategy",
        """
        select plan.primary_strategy, sum(customers.clv + plan.expected_gain)
        from marts.contact_plan as plan
        inner join marts.customer_value as customers using (customer_id)
        group by all
        """,
    ),
    "contacts_sent": grouped(
        f"{MONTH}, contact__channel",
        """
        select date_trunc('month', sent_at), channel, count(*) filter (where not is_holdout)
        from marts.fct_contacts group by all
        """,
    ),
    "contact_responses": grouped(
        "contact__strategy, contact__value_tier_at_contact",
        f"""
        with {CONTACTS_WITH_TIER}
        select strategy, tier_at_contact, count(*) filter (where not is_holdout and responded)
        from contacts group by all
        """,
    ),
    "response_rate": grouped(
        "contact__channel",
        """
        select channel,
            count(*) filter (where not is_holdout and responded)
            / nullif(count(*) filter (where not is_holdout), 0)
        from marts.fct_contacts group by all
        """,
    ),
    "contacted_conversion_rate": grouped(
        "contact__value_tier_at_contact",
        f"""
        with {CONTACTS_WITH_TIER}
        select tier_at_contact,
            count(*) filter (where not is_holdout and converted)
            / nullif(count(*) filter (where not is_holdout), 0)
        from contacts group by all
        """,
    ),
    "sent_conversions": grouped(
        f"{QUARTER}, contact__strategy",
        """
        select date_trunc('quarter', sent_at), strategy,
            count(*) filter (where not is_holdout and converted)
        from marts.fct_contacts group by all
        """,
    ),
    # Counts holdout contacts (a customer held out twice counts twice): the base of the
    # holdout conversion rate, as contacts_sent is of the contacted one.
    "holdout_customers": grouped(
        "contact__strategy",
        "select strategy, count(*) filter (where is_holdout) from marts.fct_contacts group by all",
    ),
    "holdout_conversions": grouped(
        MONTH,
        """
        select date_trunc('month', sent_at), count(*) filter (where is_holdout and converted)
        from marts.fct_contacts group by all
        """,
    ),
    "holdout_conversion_rate": grouped(
        "contact__channel",
        """
        select channel,
            count(*) filter (where is_holdout and converted)
            / nullif(count(*) filter (where is_holdout), 0)
        from marts.fct_contacts group by all
        """,
    ),
    "conversion_uplift": grouped(
        QUARTER,
        """
        select date_trunc('quarter', sent_at),
            count(*) filter (where not is_holdout and converted)
                / nullif(count(*) filter (where not is_holdout), 0)
            - count(*) filter (where is_holdout and converted)
                / nullif(count(*) filter (where is_holdout), 0)
        from marts.fct_contacts group by all
        """,
    ),
    # Satisfaction ----------------------------------------------------------------------------
    "complaints": grouped(
        f"{MONTH}, complaint__category",
        """
        select date_trunc('month', opened_at), category, count(*)
        from staging.stg_shop__complaints group by all
        """,
    ),
    # A month with orders and no complaint has 0 complaints per 1,000 orders.
    "complaints_per_1000_orders": grouped(
        MONTH,
        """
        with
        complained as (
            select date_trunc('month', opened_date) as month, count(*) as complaints
            from marts.fct_complaints group by all
        ),
        ordered as (
            select date_trunc('month', order_date) as month, count(*) as orders_placed
            from marts.fct_orders group by all
        )
        select
            coalesce(ordered.month, complained.month),
            1000.0 * coalesce(complained.complaints, 0) / ordered.orders_placed
        from ordered full join complained using (month)
        """,
    ),
    "nps_respondents": grouped(
        QUARTER,
        """
        select date_trunc('quarter', response_date), count(nps_score)
        from marts.fct_survey_responses group by all
        """,
    ),
    "promoters": grouped(
        "customer__value_tier",
        f"""
        with {NPS_ANSWERS}
        select value_tier, count(*) filter (where is_promoter) from answers group by all
        """,
    ),
    "detractors": grouped(
        "customer__country",
        f"""
        with {NPS_ANSWERS}
        select country, count(*) filter (where is_detractor) from answers group by all
        """,
    ),
    # A group without an answer to the recommend question has no NPS (null).
    "nps": grouped(
        f"{MONTH}, customer__country",
        f"""
        with {NPS_ANSWERS}
        select date_trunc('month', response_date), country,
            100.0 * (count(*) filter (where is_promoter) - count(*) filter (where is_detractor))
            / nullif(count(nps_score), 0)
        from answers group by all
        """,
    ),
    "average_csat": grouped(
        f"{QUARTER}, customer__latest_nps_class",
        """
        select date_trunc('quarter', responses.response_date), customers.latest_nps_class,
            avg(responses.csat_score)
        from marts.fct_survey_responses as responses
        left join marts.customer_value as customers using (customer_id)
        group by all
        """,
    ),
    # The tier history and churn ---------------------------------------------------------------
    # Customer counts over a quarter are taken at its last month (the as-of month for the
    # current quarter).
    "active_customers": grouped(
        f"{QUARTER}, customer__country",
        f"""
        with {ACTIVITY}
        select date_trunc('quarter', activity.month), customers.country,
            count(*) filter (where activity.is_active)
        from activity
        cross join as_of
        inner join marts.customer_value as customers using (customer_id)
        where activity.month = least(date_trunc('quarter', activity.month) + interval 2 month,
            as_of.as_of_month)
        group by all
        """,
    ),
    "tiered_customers": grouped(
        f"{YEAR}, customer_month__value_tier",
        f"""
        with {AS_OF}
        select date_trunc('year', tiers.period_month), tiers.value_tier, count(*)
        from marts.fct_customer_tier_months as tiers
        cross join as_of
        where tiers.period_month = least(date_trunc('year', tiers.period_month) + interval 11 month,
            as_of.as_of_month)
        group by all
        """,
    ),
    "churned_customers": grouped(
        f"{MONTH}, customer__country",
        f"""
        with {ACTIVITY}
        select activity_pairs.month, customers.country,
            count(*) filter (where activity_pairs.was_active and not activity_pairs.is_active)
        from activity_pairs
        inner join marts.customer_value as customers using (customer_id)
        group by all
        """,
    ),
    "previously_active_customers": grouped(
        f"{MONTH}, customer__tenure_band",
        f"""
        with {ACTIVITY}
        select activity_pairs.month, customers.tenure_band,
            count(*) filter (where activity_pairs.was_active)
        from activity_pairs
        inner join marts.customer_value as customers using (customer_id)
        group by all
        """,
    ),
    "churn_rate": grouped(
        f"{MONTH}, customer__acquisition_channel",
        f"""
        with {ACTIVITY}
        select activity_pairs.month, customers.acquisition_channel,
            count(*) filter (where activity_pairs.was_active and not activity_pairs.is_active)
            / nullif(count(*) filter (where activity_pairs.was_active), 0)
        from activity_pairs
        inner join marts.customer_value as customers using (customer_id)
        group by all
        """,
    ),
    "tier_migrations": grouped(
        f"{YEAR}, tier_migration__from_tier, tier_migration__to_tier",
        f"""
        with {TIER_PAIRS}
        select date_trunc('year', month), from_tier, to_tier, count(*) from tier_pairs group by all
        """,
    ),
    "downward_migrations": grouped(
        f"{MONTH}, tier_migration__from_tier",
        f"""
        with {TIER_PAIRS}
        select month, from_tier, count(*) from tier_pairs where is_down group by all
        """,
    ),
}


# --------------------------------------------------------------------------------------------
# Comparing MetricFlow's answer with the recount


def normalise(value: object) -> object:
    """Dates and timestamps compare as dates, numbers as floats."""
    if isinstance(value, Decimal | int) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, dt.datetime):
        return value.date()
    return value


def keyed(rows: Sequence[tuple], n_keys: int) -> dict[tuple, object]:
    table: dict[tuple, object] = {}
    for row in rows:
        key = tuple(normalise(v) for v in row[:n_keys])
        assert key not in table, f"duplicate group {key}"
        table[key] = normalise(row[n_keys])
    return table


def same_number(got: object, want: object) -> bool:
    if got is None or want is None:
        return got is want
    return math.isclose(got, want, rel_tol=1e-9, abs_tol=1e-12)


def metricflow_values(
    mf: MetricFlowEngine,
    connection: duckdb.DuckDBPyConnection,
    metric: str,
    group_by: Sequence[str] = (),
) -> dict[tuple, object]:
    """MetricFlow's value of ``metric`` per group: its SQL, run on ``connection``."""
    request = MetricFlowQueryRequest.create(metric_names=[metric], group_by_names=list(group_by))
    sql = mf.explain(mf_request=request).sql_statement.without_descriptions.sql
    cursor = connection.execute(sql)
    columns = [column[0] for column in cursor.description]
    order = [columns.index(name) for name in (*group_by, metric)]
    return keyed([tuple(row[i] for i in order) for row in cursor.fetchall()], len(group_by))


def assert_same_values(metric: str, got: dict, want: dict) -> None:
    only_mf, only_recount = got.keys() - want.keys(), want.keys() - got.keys()
    assert not only_mf and not only_recount, (
        f"{metric}: groups only in MetricFlow {sorted(only_mf, key=str)[:5]}, "
        f"only in the recount {sorted(only_recount, key=str)[:5]}"
    )
    differ = {k: (got[k], want[k]) for k in want if not same_number(got[k], want[k])}
    assert not differ, (
        f"{metric}: {len(differ)} of {len(want)} groups differ (MetricFlow, recount), e.g. "
        + ", ".join(f"{k}: {v}" for k, v in sorted(differ.items(), key=str)[:5])
    )


def manifest_metric_names(target_dir: Path) -> set[str]:
    """The metrics dbt wrote to the semantic manifest (before MetricFlow adds hidden ones)."""
    manifest = json.loads((target_dir / "semantic_manifest.json").read_text())
    return {metric["name"] for metric in manifest["metrics"]}


@pytest.fixture(scope="module")
def published_metricflow(
    published_build,
) -> Iterator[tuple[MetricFlowEngine, duckdb.DuckDBPyConnection]]:
    manifest = semantic.load_semantic_manifest(
        Path(published_build.env["DBT_TARGET_PATH"]) / "semantic_manifest.json"
    )
    with duckdb.connect(str(published_build.warehouse), read_only=True) as connection:
        yield semantic.engine(manifest, connection), connection


def test_every_metric_has_a_recount(published_build):
    names = manifest_metric_names(Path(published_build.env["DBT_TARGET_PATH"]))
    assert len(names) == EXPECTED_METRIC_COUNT
    assert names == RECOUNTS.keys(), (
        f"without a recount: {sorted(names - RECOUNTS.keys())}; "
        f"recounted but no such metric: {sorted(RECOUNTS.keys() - names)}"
    )


@pytest.mark.parametrize("metric", sorted(RECOUNTS))
def test_metric_equals_its_recount(published_metricflow, metric):
    mf, connection = published_metricflow
    recount = RECOUNTS[metric]
    want = keyed(connection.execute(recount.sql).fetchall(), len(recount.group_by))
    # The grouping must split the metric, and the metric must count something.
    assert len(want) > 1 and any(v not in (None, 0.0) for v in want.values())
    got = metricflow_values(mf, connection, metric, recount.group_by)
    assert_same_values(metric, got, want)


# --------------------------------------------------------------------------------------------
# A shop small enough to count by hand, analysed as of 2025-06-30

HAND_COUNTED_AS_OF = "2025-06-30"
SHOP_CUSTOMERS = """customer_id,signup_date,country,acquisition_channel
c1,2024-01-02,NL,search
c2,2024-06-01,NL,social
c3,2024-06-01,DE,search
c4,2024-02-01,DE,email
c5,2024-03-01,NL,email
c6,2024-04-01,DE,social
c7,2024-06-01,NL,search
"""
# Purchases are completed orders only: cancelled and returned orders are placed, not bought.
SHOP_ORDERS = """order_id,customer_id,ordered_at,status,order_total
o1,c1,2024-01-10 10:00:00,completed,120.00
o2,c1,2024-06-15 10:00:00,completed,80.00
o3,c2,2024-06-20 10:00:00,completed,45.00
o4,c3,2024-06-05 10:00:00,completed,60.00
o5,c3,2025-03-01 10:00:00,completed,70.00
o6,c4,2024-02-10 10:00:00,completed,200.00
o7,c4,2025-01-15 10:00:00,cancelled,90.00
o8,c5,2024-03-03 10:00:00,cancelled,30.00
o9,c7,2024-06-10 10:00:00,completed,55.00
o10,c7,2025-02-01 10:00:00,returned,65.00
"""
# Eight answers to the recommend question (9 and 10 promote, 7 and 8 are passive, 0-6 detract)
# and one answer with a CSAT score only.
SHOP_SURVEYS = """response_id,customer_id,responded_at,nps_score,csat_score
r1,c1,2024-07-01 09:00:00,10,5
r2,c2,2024-08-01 09:00:00,9,4
r3,c3,2024-09-01 09:00:00,9,4
r4,c4,2024-10-01 09:00:00,10,5
r5,c5,2024-11-01 09:00:00,8,3
r6,c6,2024-12-01 09:00:00,7,3
r7,c7,2025-01-01 09:00:00,6,2
r8,c1,2025-02-01 09:00:00,3,1
r9,c2,2025-03-01 09:00:00,,4
"""


@pytest.fixture(scope="module")
def hand_counted_shop(
    tmp_path_factory,
) -> Iterator[tuple[MetricFlowEngine, duckdb.DuckDBPyConnection]]:
    """The shop above built by dbt, with MetricFlow over its warehouse."""
    work = tmp_path_factory.mktemp("hand_counted")
    raw = work / "raw"
    raw.mkdir()
    (raw / "customers.csv").write_text(SHOP_CUSTOMERS)
    (raw / "orders.csv").write_text(SHOP_ORDERS)
    (raw / "surveys.csv").write_text(SHOP_SURVEYS)
    warehouse = work / "cvm.duckdb"
    result = dbt_build(raw, warehouse, work, as_of=HAND_COUNTED_AS_OF)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    manifest = semantic.load_semantic_manifest(work / "target" / "semantic_manifest.json")
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        yield semantic.engine(manifest, connection), connection


def test_nps_of_the_hand_counted_shop(hand_counted_shop):
    # 8 answers to the recommend question (r9 has none): promoters 10, 9, 9, 10 (4), passives
    # 8, 7 (2), detractors 6, 3 (2). NPS = 100 * (4 - 2) / 8 = 25. (Passives left out of the
    # base would give 33.3; the CSAT-only answer counted, 22.2; 9 passive, 0; 6 passive, 37.5.)
    assert metricflow_values(*hand_counted_shop, "nps") == {(): pytest.approx(25.0)}


def test_repeat_purchase_rate_of_the_hand_counted_shop(hand_counted_shop):
    # Customers with a completed purchase: c1 (2), c2 (1), c3 (2), c4 (1; o7 cancelled), c7 (1;
    # o10 returned) = 5; c5 (a cancelled order only) and c6 (none) have none. Two or more: c1,
    # c3. Rate = 2 / 5 = 0.4. (Orders placed instead of purchases would give 4 / 6.)
    assert metricflow_values(*hand_counted_shop, "repeat_purchase_rate") == {(): pytest.approx(0.4)}


def test_churn_rate_of_the_hand_counted_shop(hand_counted_shop):
    # Active at a month end: a completed purchase in the 12 months up to it. Last purchases:
    # c1 2024-06, c2 2024-06, c3 2025-03, c4 2024-02 (o7 is cancelled), c7 2024-06 (o10 is
    # returned). February 2025: active at the end of January c1, c2, c3, c4, c7 (5); c4's
    # purchase of February 2024 leaves the window: 1 / 5 = 0.2. June 2025: active at the end of
    # May c1, c2, c3, c7 (4); c1, c2 and c7 drop out: 3 / 4 = 0.75. In every other month from
    # February 2024 (the first with a previous month) someone was active and nobody left: 0.
    # (Counting o10 as a purchase would give 0.5 in June; o7, 0 in February; a base of all
    # customers in the history instead of the active ones, 3 / 5 in June.)
    months = [dt.date(2024 + (1 + n) // 12, (1 + n) % 12 + 1, 1) for n in range(17)]
    expected = {(month,): 0.0 for month in months}
    expected[(dt.date(2025, 2, 1),)] = 0.2
    expected[(dt.date(2025, 6, 1),)] = 0.75
    got = metricflow_values(*hand_counted_shop, "churn_rate", ["metric_time__month"])
    assert got == pytest.approx(expected)
