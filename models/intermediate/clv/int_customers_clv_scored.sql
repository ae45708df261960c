-- Per customer, the lifetime-value scores of the scoring fit: the combination's scores for
-- everything that depends on (x, t_x, T) only, and the customer's own expected spend from
-- the Gamma-Gamma parameters and m. CLV is linear in the expected spend, so the customer's
-- CLV (and interval) is the combination's scaled by own / combination expected spend, times
-- the margin: var clv_margin, or when it is null the observed gross margin share (net revenue
-- minus cost of goods, over net revenue) of completed orders with known cost in the lookback.
{%- set horizon_days = var('clv_horizon_days') | int %}

with

customers as (

    select * from {{ ref('int_customers_summarised_for_clv') }}
    where fit_purpose = 'scoring'

),

scores as (

    select * from {{ ref('int_clv_combinations_scored') }}
    where fit_purpose = 'scoring'

),

parameters as (

    select * from {{ ref('int_clv_models_fitted') }}
    where fit_purpose = 'scoring' and model = 'gamma_gamma'

),

tier_bands as (

    select * from {{ ref('int_value_tier_bands') }}

),

orders as (

    select * from {{ ref('fct_orders') }}

),

as_of as (

    select max(calibration_end_date) as as_of_date from customers

),

observed_margin as (

    select sum(orders.net_revenue - orders.cost_of_goods) / sum(orders.net_revenue) as margin
    from orders
    cross join as_of
    where
        orders.is_completed
        and orders.cost_of_goods is not null
        and orders.order_date > {{ dbt.dateadd('day', -(var('lookback_days') | int), 'as_of.as_of_date') }}

),

margin as (

    select
        coalesce(
            cast({{ 'null' if var('clv_margin') is none else var('clv_margin') }} as {{ cvm_type_double() }}),
            margin
        ) as margin
    from observed_margin

),

gamma_gamma as (

    select
        max(case when parameter = 'p' then value end) as p,
        max(case when parameter = 'q' then value end) as q,
        max(case when parameter = 'v' then value end) as v
    from parameters

),

spent as (

    select
        customers.customer_id,
        scores.p_alive,
        scores.expected_purchases_30d,
        scores.expected_purchases_90d,
        scores.expected_purchases_365d,
        scores.expected_avg_spend as combination_expected_avg_spend,
        margin.margin * scores.discounted_expected_spend as clv,
        margin.margin * scores.discounted_expected_spend_lower as clv_lower,
        margin.margin * scores.discounted_expected_spend_upper as clv_upper,
        {{ cvm_gamma_gamma_expected_spend(
            'customers.repeat_purchase_days', 'customers.avg_repeat_spend',
            'gamma_gamma.p', 'gamma_gamma.q', 'gamma_gamma.v'
        ) }} as expected_avg_spend
    from customers
    inner join scores
        on
            customers.repeat_purchase_days = scores.repeat_purchase_days
            and customers.recency_days = scores.recency_days
            and customers.age_days = scores.age_days
    cross join gamma_gamma
    cross join margin

),

scaled as (

    select
        customer_id,
        p_alive,
        expected_purchases_30d,
        expected_purchases_90d,
        expected_purchases_365d,
        expected_avg_spend,
        clv * expected_avg_spend / combination_expected_avg_spend as clv,
        clv_lower * expected_avg_spend / combination_expected_avg_spend as clv_lower,
        clv_upper * expected_avg_spend / combination_expected_avg_spend as clv_upper
    from spent

),

final as (

    select
        scaled.customer_id,
        scaled.p_alive,
        scaled.expected_purchases_30d,
        scaled.expected_purchases_90d,
        scaled.expected_purchases_365d,
        scaled.expected_avg_spend,
        scaled.clv,
        scaled.clv_lower,
        scaled.clv_upper,
        -- The tier the CLV would earn: tiers are set on 12 months of margin, so compare the
        -- CLV per 365 days of horizon.
        tier_bands.value_tier as predicted_value_tier,
        tier_bands.tier_rank as predicted_tier_rank
    from scaled
    left join tier_bands
        on
            scaled.clv * 365.0 / {{ horizon_days }} >= tier_bands.lower_gross_margin
            and (
                scaled.clv * 365.0 / {{ horizon_days }} < tier_bands.upper_gross_margin
                or tier_bands.upper_gross_margin is null
            )

)

select * from final
