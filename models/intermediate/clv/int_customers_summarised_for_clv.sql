-- Per customer and fit, the inputs of BG/NBD and Gamma-Gamma with the Fader-Hardie-Lee
-- definitions (days; see the clv_inputs doc block), and for the holdout fit the actual repeat
-- purchases after its calibration end. Two fits:
--   scoring  calibrates on everything up to the as-of date (what customer_value reports);
--   holdout  calibrates up to var clv_holdout_days before it and is judged on the rest.
{%- set recency = cvm_days_between(
    'first_purchase_date', 'max(case when is_calibration then purchase_date end)'
) | trim %}
{%- set age = cvm_days_between('first_purchase_date', 'calibration_end_date') | trim %}
{%- set purchase_statuses = "'" ~ (var('clv_purchase_statuses') | join("', '")) ~ "'" %}
{#- The customer's covariates (var clv_covariates) as one key, "col=value|col=value" ('' without
    covariates): the compressed inputs group by it, and Pareto/NBD with covariates reads it. #}
{%- set covariate_parts = [] %}
{%- for column in var('clv_covariates') %}
    {%- if not loop.first %}{% do covariate_parts.append("'|'") %}{% endif %}
    {%- do covariate_parts.append("'" ~ column ~ "='") %}
    {%- do covariate_parts.append(
        "coalesce(cast(" ~ column ~ " as " ~ dbt.type_string() ~ "), '(missing)')"
    ) %}
{%- endfor %}

with

orders as (

    select * from {{ ref('int_orders_costed') }}

),

customer_covariates as (

    select
        customer_id,
        {{ dbt.concat(covariate_parts) if covariate_parts else "''" }} as covariates
    from {{ ref('stg_shop__customers') }}

),

as_of as (

    select as_of_date from {{ ref('base_shop__as_of_date') }}

),

-- A purchase day is a day with at least one purchase; same-day orders are one transaction.
-- Spend is what the customer kept paying: the order total net of credit notes.
purchase_days as (

    select
        customer_id,
        order_date as purchase_date,
        sum(order_total - credited_amount) as day_spend
    from orders
    where status in ({{ purchase_statuses }})
    group by customer_id, order_date

),

fits as (

    select
        'scoring' as fit_purpose,
        as_of_date as calibration_end_date
    from as_of
    {%- if var('clv_holdout_days') | int > 0 %}
        union all
        select
            'holdout' as fit_purpose,
            cast({{ dbt.dateadd('day', -(var('clv_holdout_days') | int), 'as_of_date') }} as date)
                as calibration_end_date
        from as_of
    {%- endif %}

),

first_purchases as (

    select
        customer_id,
        min(purchase_date) as first_purchase_date
    from purchase_days
    group by customer_id

),

fit_days as (

    select
        fits.fit_purpose,
        fits.calibration_end_date,
        purchase_days.customer_id,
        purchase_days.purchase_date,
        purchase_days.day_spend,
        first_purchases.first_purchase_date,
        coalesce(customer_covariates.covariates, '') as covariates,
        purchase_days.purchase_date <= fits.calibration_end_date as is_calibration
    from purchase_days
    inner join first_purchases
        on purchase_days.customer_id = first_purchases.customer_id
    left join customer_covariates
        on purchase_days.customer_id = customer_covariates.customer_id
    inner join fits
        on first_purchases.first_purchase_date <= fits.calibration_end_date

),

final as (

    select
        fit_purpose,
        customer_id,
        calibration_end_date,
        first_purchase_date,
        covariates,
        cast(sum(case when is_calibration then 1 else 0 end) - 1 as {{ dbt.type_bigint() }})
            as repeat_purchase_days,
        cast({{ recency }} as {{ dbt.type_bigint() }}) as recency_days,
        cast({{ age }} as {{ dbt.type_bigint() }}) as age_days,
        sum(case when is_calibration and purchase_date > first_purchase_date then day_spend end)
        / nullif(sum(case when is_calibration and purchase_date > first_purchase_date then 1 else 0 end), 0)
            as avg_repeat_spend,
        case
            when fit_purpose = 'holdout' then
                cast(sum(case when not is_calibration then 1 else 0 end) as {{ dbt.type_bigint() }})
        end as holdout_purchase_days,
        case
            when fit_purpose = 'holdout' then
                coalesce(sum(case when not is_calibration then day_spend end), 0)
        end as holdout_spend
    from fit_days
    group by fit_purpose, customer_id, calibration_end_date, first_purchase_date, covariates

)

select * from final
