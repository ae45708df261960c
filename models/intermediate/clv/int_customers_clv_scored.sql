-- Per customer in the scoring fit, the lifetime-value scores: the combination's scores for
-- everything that depends on (x, t_x, T) only, and the customer's own expected spend from
-- the Gamma-Gamma parameters and m. CLV is linear in the expected spend, so the customer's
-- CLV (and interval) is the combination's scaled by own / combination expected spend, times
-- the margin: var clv_margin; else, on the gross_margin value basis, the observed gross margin
-- share (net revenue minus cost of goods, over net revenue) of completed orders with known cost
-- in the lookback; else (revenue basis) 1, so CLV is expected net revenue. A customer whose
-- fit failed or was skipped keeps a row, without CLV, with the reason (clv_status).
{%- set horizon_days = var('clv_horizon_days') | int %}
{%- set clv_margin = var('clv_margin') %}

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
    where fit_purpose = 'scoring'

),

tier_bands as (

    select * from {{ ref('int_value_tier_bands') }}

),

value_basis as (

    select * from {{ ref('int_value_basis_chosen') }}

),

orders as (

    select * from {{ ref('int_orders_costed') }}

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
        value_basis.value_basis,
        {% if clv_margin is none -%}
            case when value_basis.value_basis = 'gross_margin' then observed_margin.margin else 1.0 end
                as margin,
            value_basis.value_basis as clv_basis
        {%- else -%}
            cast({{ clv_margin }} as {{ cvm_type_double() }}) as margin,
            'gross_margin' as clv_basis
        {%- endif %}
    from value_basis
    cross join observed_margin

),

gamma_gamma as (

    select
        max(case when parameter = 'p' then value end) as p,
        max(case when parameter = 'q' then value end) as q,
        max(case when parameter = 'v' then value end) as v
    from parameters
    where model = 'gamma_gamma' and fit_status = 'fitted'

),

-- The chosen purchase model (var clv_model, or the candidate auto chose) and Gamma-Gamma.
fits as (

    select
        coalesce(max(case when model != 'gamma_gamma' and chosen then fit_status end), 'skipped')
            as purchase_status,
        max(case when model != 'gamma_gamma' and chosen then fit_message end) as purchase_message,
        max(
            case
                when model = 'gamma_gamma' or not chosen then null
                when model = 'bg_nbd' then 'BG/NBD'
                when model = 'pareto_nbd' then 'Pareto/NBD'
                else 'MBG/NBD'
            end
        ) as purchase_model,
        coalesce(max(case when model = 'gamma_gamma' then fit_status end), 'skipped') as gamma_gamma_status,
        max(case when model = 'gamma_gamma' then fit_message end) as gamma_gamma_message
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
        scores.discounted_expected_spend,
        scores.discounted_expected_spend_lower,
        scores.discounted_expected_spend_upper,
        {{ cvm_gamma_gamma_expected_spend(
            'customers.repeat_purchase_days', 'customers.avg_repeat_spend',
            'gamma_gamma.p', 'gamma_gamma.q', 'gamma_gamma.v'
        ) }} as expected_avg_spend
    from customers
    left join scores
        on
            customers.repeat_purchase_days = scores.repeat_purchase_days
            and customers.recency_days = scores.recency_days
            and customers.age_days = scores.age_days
            and customers.covariates = scores.covariates
    cross join gamma_gamma

),

scaled as (

    select
        customer_id,
        p_alive,
        expected_purchases_30d,
        expected_purchases_90d,
        expected_purchases_365d,
        expected_avg_spend,
        discounted_expected_spend * expected_avg_spend / combination_expected_avg_spend as spend,
        discounted_expected_spend_lower * expected_avg_spend / combination_expected_avg_spend as spend_lower,
        discounted_expected_spend_upper * expected_avg_spend / combination_expected_avg_spend as spend_upper
    from spent

),

valued as (

    select
        scaled.*,
        margin.margin * scaled.spend as clv,
        margin.margin * scaled.spend_lower as clv_lower,
        margin.margin * scaled.spend_upper as clv_upper,
        case when scaled.spend is not null then margin.clv_basis end as clv_basis,
        -- What the tiers are measured on, per 365 days of horizon: the CLV on the gross-margin
        -- basis, the expected net revenue on the revenue basis.
        case when margin.value_basis = 'gross_margin' then margin.margin * scaled.spend else scaled.spend end
        * 365.0 / {{ horizon_days }} as predicted_value_per_year,
        case
            when fits.purchase_status != 'fitted'
                then {{ dbt.concat(["'fit_'", 'fits.purchase_status']) }}
            when fits.gamma_gamma_status != 'fitted'
                then {{ dbt.concat(["'fit_'", 'fits.gamma_gamma_status']) }}
            when margin.margin is null then 'margin_unknown'
            else 'scored'
        end as clv_status,
        case
            when fits.purchase_status != 'fitted'
                then {{ dbt.concat(['fits.purchase_model', "' purchase model: '", 'fits.purchase_message']) }}
            when fits.gamma_gamma_status != 'fitted'
                then {{ dbt.concat(["'Gamma-Gamma spend model: '", 'fits.gamma_gamma_message']) }}
            when margin.margin is null
                then 'no completed purchase in the lookback has a known cost of goods: set var clv_margin'
        end as clv_status_reason
    from scaled
    cross join margin
    cross join fits

),

final as (

    select
        valued.customer_id,
        valued.p_alive,
        valued.expected_purchases_30d,
        valued.expected_purchases_90d,
        valued.expected_purchases_365d,
        valued.expected_avg_spend,
        valued.clv,
        valued.clv_lower,
        valued.clv_upper,
        valued.clv_basis,
        valued.clv_status,
        valued.clv_status_reason,
        -- The tier that value would earn: tiers are set on 12 months of value.
        tier_bands.value_tier as predicted_value_tier,
        tier_bands.tier_rank as predicted_tier_rank
    from valued
    left join tier_bands
        on {{ cvm_in_tier_band('valued.predicted_value_per_year', 'tier_bands') }}

)

select * from final
