"""The semantic layer: every saved query's export, as `make build` published it, equals the same
numbers computed directly from the marts in SQL; `mf` answers the same on the published file."""

from __future__ import annotations

import csv
import math
import shutil
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path

import pytest

from cvm import semantic
from dbt_project import copy_project, dbt_in, mf_in, query

pytestmark = pytest.mark.slow

# Per saved query: SQL over the marts returning the export's group-by columns, then its metrics,
# in the export's column order. Each metric is compared where either side has a value.
EXPECTED_SQL = {
    "revenue_and_margin_by_tier_month": """
        select
            orders.order_month, tiers.value_tier,
            sum(orders.revenue), sum(orders.net_revenue), sum(orders.gross_margin),
            sum(case when orders.is_completed then 1 else 0 end)
        from marts.fct_orders as orders
        left join marts.fct_customer_tier_months as tiers
            on orders.customer_id = tiers.customer_id and orders.order_month = tiers.period_month
        group by all
    """,
    "tier_migrations_by_month": """
        select to_period_month, from_tier, to_tier, count(*)
        from marts.fct_tier_migrations group by all
    """,
    "clv_and_p_alive_by_rfm_segment": """
        select rfm_segment, count(*), sum(clv), avg(clv), avg(p_alive)
        from marts.customer_value group by all
    """,
    "satisfaction_by_tier": """
        with
        answers as (
            select
                customers.value_tier,
                100.0 * (count(*) filter (where nps_class = 'promoter')
                    - count(*) filter (where nps_class = 'detractor'))
                    / nullif(count(nps_class), 0) as nps,
                count(nps_class) as nps_respondents,
                avg(csat_score) as average_csat
            from marts.fct_survey_responses
            left join marts.customer_value as customers using (customer_id)
            group by all
        ),
        complained as (
            select customers.value_tier, count(*) as complaints
            from marts.fct_complaints
            left join marts.customer_value as customers using (customer_id)
            group by all
        ),
        ordered as (
            select customers.value_tier, count(*) as orders_placed
            from marts.fct_orders
            left join marts.customer_value as customers using (customer_id)
            group by all
        )
        select
            coalesce(answers.value_tier, complained.value_tier, ordered.value_tier),
            answers.nps, answers.nps_respondents, answers.average_csat, complained.complaints,
            1000.0 * complained.complaints / ordered.orders_placed
        from answers
        full join complained on answers.value_tier is not distinct from complained.value_tier
        full join ordered
            on coalesce(answers.value_tier, complained.value_tier)
                is not distinct from ordered.value_tier
    """,
    "customer_base_by_month": """
        with
        as_of as (select as_of_date from staging.base_shop__as_of_date),
        months as (select distinct period_month as month from marts.fct_customer_tier_months),
        active as (
            select period_month as month, count(*) filter (where is_active) as active_customers
            from marts.fct_customer_tier_months group by all
        ),
        acquired as (
            select date_trunc('month', first_purchase_date) as month, count(*) as new_customers
            from marts.customer_value where first_purchase_date is not null group by all
        ),
        churn as (
            select
                to_period_month as month,
                count(*) filter (where is_churned) as churned_customers,
                count(*) filter (where is_churned)
                    / nullif(count(*) filter (where was_active), 0) as churn_rate
            from marts.fct_tier_migrations group by all
        ),
        revenue as (
            select order_month as month, sum(revenue) as revenue
            from marts.fct_orders group by all
        ),
        growth as (
            select
                this.month,
                (this.revenue - previous.revenue) / previous.revenue as revenue_mom_growth
            from revenue as this
            inner join revenue as previous on previous.month = this.month - interval 1 month
        ),
        trailing_year as (
            select
                months.month,
                (select sum(revenue) from marts.fct_orders
                 where order_date <= least(last_day(months.month), as_of.as_of_date)
                   and order_date > least(last_day(months.month), as_of.as_of_date)
                       - interval 12 month) as trailing_12_month_revenue
            from months cross join as_of
        )
        select
            months.month, active.active_customers, acquired.new_customers,
            churn.churned_customers, churn.churn_rate, revenue.revenue,
            growth.revenue_mom_growth, trailing_year.trailing_12_month_revenue
        from months
        left join active using (month)
        left join acquired using (month)
        left join churn using (month)
        left join revenue using (month)
        left join growth using (month)
        left join trailing_year using (month)
    """,
    "share_of_wallet_by_tier": """
        select
            value_tier, count(*), avg(share_of_wallet_modelled),
            sum(wallet_headroom_modelled),
            sum(wallet_modelled - wallet_headroom_modelled) / sum(wallet_modelled)
        from marts.customer_value group by all
    """,
    "cohort_retention_curve": """
        select
            months_since_first_purchase,
            sum(purchasing_customers) / sum(cohort_customers),
            sum(cohort_customers)
        from marts.cohort_retention group by all
    """,
    "playbook_by_strategy": """
        with
        recommended as (
            select primary_strategy, count(*) as recommended_customers
            from marts.next_best_actions group by all
        ),
        planned as (
            select
                actions.primary_strategy,
                count(*) as planned_contacts,
                sum(plan.contact_cost) as plan_contact_cost,
                sum(plan.expected_net_return) as plan_expected_return
            from marts.contact_plan as plan
            inner join marts.next_best_actions as actions using (customer_id)
            group by all
        )
        select
            coalesce(recommended.primary_strategy, planned.primary_strategy),
            recommended.recommended_customers, planned.planned_contacts,
            planned.plan_contact_cost, planned.plan_expected_return
        from recommended
        full join planned
            on recommended.primary_strategy is not distinct from planned.primary_strategy
    """,
    "contact_outcomes_by_strategy": """
        with rates as (
            select
                strategy,
                count(*) filter (where is_sent) as contacts_sent,
                count(*) filter (where is_sent and responded)
                    / nullif(count(*) filter (where is_sent), 0) as response_rate,
                count(*) filter (where is_sent and converted)
                    / nullif(count(*) filter (where is_sent), 0) as contacted_conversion_rate,
                count(*) filter (where is_holdout and converted)
                    / nullif(count(*) filter (where is_holdout), 0) as holdout_conversion_rate
            from marts.fct_contacts group by all
        )
        select *, contacted_conversion_rate - holdout_conversion_rate from rates
    """,
}
# Group-by columns of each export (the first columns of its SQL above).
KEYS = {
    "revenue_and_margin_by_tier_month": 2,
    "tier_migrations_by_month": 3,
    "clv_and_p_alive_by_rfm_segment": 1,
    "satisfaction_by_tier": 1,
    "customer_base_by_month": 1,
    "share_of_wallet_by_tier": 1,
    "cohort_retention_curve": 1,
    "playbook_by_strategy": 1,
    "contact_outcomes_by_strategy": 1,
}


def normalise(value: object) -> object:
    """Dates and timestamps compare as dates, numbers as floats."""
    if isinstance(value, Decimal | int) and not isinstance(value, bool):
        return float(value)
    if hasattr(value, "date") and callable(value.date):
        return value.date()
    return value


def by_key(rows: Sequence[tuple], n_keys: int) -> dict[tuple, tuple]:
    table = {}
    for row in rows:
        key = tuple(normalise(v) for v in row[:n_keys])
        assert key not in table, f"duplicate group {key}"
        table[key] = tuple(normalise(v) for v in row[n_keys:])
    return table


def assert_same_numbers(actual: dict, expected: dict, metrics: Sequence[str]) -> None:
    for i, metric in enumerate(metrics):
        got = {k: v[i] for k, v in actual.items() if v[i] is not None}
        want = {k: v[i] for k, v in expected.items() if k in expected and v[i] is not None}
        assert got.keys() == want.keys(), f"{metric}: groups differ {got.keys() ^ want.keys()}"
        for key, value in want.items():
            assert math.isclose(got[key], value, rel_tol=1e-9, abs_tol=1e-9), (metric, key)


def export_columns(warehouse: Path, table: str) -> list[str]:
    return [row[0] for row in query(warehouse, f"describe bi.{table}")]


def test_every_saved_query_is_exported_and_tested(published_build):
    manifest = semantic.load_semantic_manifest(
        Path(published_build.env["DBT_TARGET_PATH"]) / "semantic_manifest.json"
    )
    exports = {e.table for e in semantic.saved_query_exports(manifest)}
    assert exports == EXPECTED_SQL.keys()
    tables = {
        row[0]
        for row in query(
            published_build.warehouse,
            "select table_name from information_schema.tables where table_schema = 'bi'",
        )
    }
    assert tables == exports


@pytest.mark.parametrize("saved_query", sorted(EXPECTED_SQL))
def test_saved_query_export_equals_the_marts(published_build, saved_query):
    warehouse, n_keys = published_build.warehouse, KEYS[saved_query]
    columns = export_columns(warehouse, saved_query)
    actual = by_key(query(warehouse, f"select * from bi.{saved_query}"), n_keys)
    expected = by_key(query(warehouse, EXPECTED_SQL[saved_query]), n_keys)
    assert len(actual) > 1
    assert_same_numbers(actual, expected, columns[n_keys:])


def test_headline_numbers_are_plausible(published_build):
    """Guards the comparison above against two equal wrong answers: hand-picked facts."""
    warehouse = published_build.warehouse
    (nps,) = query(
        warehouse, "select nps from bi.satisfaction_by_tier where customer__value_tier = 'Gold'"
    )[0:1][0]
    assert -100 <= nps <= 100
    rates = query(
        warehouse, "select churn_rate from bi.customer_base_by_month where churn_rate is not null"
    )
    assert all(0 <= rate <= 1 for (rate,) in rates) and any(rate > 0 for (rate,) in rates)
    ((total,),) = query(warehouse, "select sum(revenue) from bi.revenue_and_margin_by_tier_month")
    ((orders_total,),) = query(
        warehouse, "select sum(order_total) from marts.fct_orders where status <> 'cancelled'"
    )
    assert total == orders_total


def test_mf_cli_reads_the_published_warehouse_read_only(published_build, tmp_path):
    """`mf query` on the `published` target while another reader holds the file open."""
    import duckdb

    project = copy_project(tmp_path / "project")
    env = {
        "CVM_DUCKDB_PATH": str(published_build.warehouse),
        "CVM_RAW_DIR": published_build.env["CVM_RAW_DIR"],
        "CVM_TARGET": "published",
    }
    assert dbt_in(project, "parse", env=env).returncode == 0
    out = tmp_path / "segments.csv"
    with duckdb.connect(str(published_build.warehouse), read_only=True):
        result = mf_in(
            project,
            "query",
            "--saved-query",
            "clv_and_p_alive_by_rfm_segment",
            "--csv",
            str(out),
            env=env,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        explain = mf_in(
            project,
            "query",
            "--metrics",
            "nps",
            "--group-by",
            "customer__rfm_segment",
            "--explain",
            env=env,
        )
    assert explain.returncode == 0 and "fct_survey_responses" in explain.stdout
    with out.open() as handle:
        cli_rows = by_key([tuple(r.values()) for r in csv.DictReader(handle)], 1)
    exported = by_key(
        query(published_build.warehouse, "select * from bi.clv_and_p_alive_by_rfm_segment"), 1
    )
    assert {k[0] or None for k in cli_rows} == {k[0] for k in exported}
    for (segment,), values in cli_rows.items():
        expected = exported[(segment or None,)]
        for got, want in zip(values, expected, strict=True):
            assert (got == "" and want is None) or math.isclose(float(got), want, rel_tol=1e-6)


def test_exports_refuse_a_warehouse_of_another_database_name(published_build, tmp_path):
    """MetricFlow's SQL names the database dbt parsed with; a renamed copy gets a clear error."""
    renamed = tmp_path / "other.duckdb"
    shutil.copyfile(published_build.warehouse, renamed)
    manifest = Path(published_build.env["DBT_TARGET_PATH"]) / "semantic_manifest.json"
    with pytest.raises(ValueError, match=r"names database \['cvm'\] but .* is 'other'"):
        semantic.export_saved_queries(renamed, manifest, progress=lambda _: None)
