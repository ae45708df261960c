-- Per customer and fit, the inputs of BG/NBD and Gamma-Gamma with the Fader-Hardie-Lee
-- definitions (days; see the clv_inputs doc block), and for the holdout fit the actual repeat
-- purchases after its calibration end. Two fits:
--   scoring  calibrates on everything up to the as-of date (what customer_value reports);
--   holdout  calibrates up to var clv_holdout_days before it and is judged on the rest.
{#- The fits: scoring always, holdout when var clv_holdout_days is above 0. #}
{%- set fit_purposes = ['scoring'] + (['holdout'] if var('clv_holdout_days') | int > 0 else []) %}
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

first_purchases as (

    select
        customer_id,
        min(purchase_date) as first_purchase_date
    from purchase_days
    group by customer_id

),

calibration_ends as (

    select
        as_of_date as scoring_end_date,
        cast({{ dbt.dateadd('day', -(var('clv_holdout_days') | int), 'as_of_date') }} as date) as holdout_end_date
    from as_of

),

-- Both fits' sums in one pass over the purchase days, grouped by customer alone (a row per
-- fit and day, grouped by fit and customer, took twice the rows through the join and the
-- aggregation).
customer_sums as (

    select
        purchase_days.customer_id,
        {%- set is_repeat = 'purchase_days.purchase_date > first_purchases.first_purchase_date' %}
        {%- for purpose in fit_purposes %}
            {%- set in_calibration = 'purchase_days.purchase_date <= calibration_ends.' ~ purpose ~ '_end_date' %}
            max(calibration_ends.{{ purpose }}_end_date) as {{ purpose }}_end_date,
            sum(case when {{ in_calibration }} then 1 else 0 end) as {{ purpose }}_calibration_days,
            max(case when {{ in_calibration }} then purchase_days.purchase_date end) as {{ purpose }}_last_date,
            sum(case when {{ in_calibration }} and {{ is_repeat }} then purchase_days.day_spend end)
                as {{ purpose }}_repeat_spend,
            sum(case when {{ in_calibration }} and {{ is_repeat }} then 1 else 0 end) as {{ purpose }}_repeat_days,
        {%- endfor %}
        {%- if 'holdout' in fit_purposes %}
            {%- set after_holdout_end = 'purchase_days.purchase_date > calibration_ends.holdout_end_date' %}
            sum(case when {{ after_holdout_end }} then 1 else 0 end) as holdout_later_days,
            sum(case when {{ after_holdout_end }} then purchase_days.day_spend end) as holdout_later_spend,
        {%- endif %}
        first_purchases.first_purchase_date
    from purchase_days
    inner join first_purchases
        on purchase_days.customer_id = first_purchases.customer_id
    cross join calibration_ends
    group by purchase_days.customer_id, first_purchases.first_purchase_date

),

-- One row per fit for every customer who had purchased by its calibration end; the holdout
-- fit also counts what came after it.
final as (

    {%- for purpose in fit_purposes %}
        {%- if not loop.first %}
            union all
        {%- endif %}
        select
            '{{ purpose }}' as fit_purpose,
            customer_sums.customer_id,
            customer_sums.{{ purpose }}_end_date as calibration_end_date,
            customer_sums.first_purchase_date,
            coalesce(customer_covariates.covariates, '') as covariates,
            cast(customer_sums.{{ purpose }}_calibration_days - 1 as {{ dbt.type_bigint() }}) as repeat_purchase_days,
            {{ cvm_days_between('customer_sums.first_purchase_date', 'customer_sums.' ~ purpose ~ '_last_date') }}
                as recency_days,
            {{ cvm_days_between('customer_sums.first_purchase_date', 'customer_sums.' ~ purpose ~ '_end_date') }}
                as age_days,
            customer_sums.{{ purpose }}_repeat_spend
            / nullif(customer_sums.{{ purpose }}_repeat_days, 0) as avg_repeat_spend,
            {%- if purpose == 'holdout' %}
                cast(customer_sums.holdout_later_days as {{ dbt.type_bigint() }}) as holdout_purchase_days,
                coalesce(customer_sums.holdout_later_spend, 0) as holdout_spend
            {%- else %}
                -- The types of the holdout rows' columns (a sum of money is a decimal(38, 2)).
                cast(null as {{ dbt.type_bigint() }}) as holdout_purchase_days,
                cast(null as decimal(38, 2)) as holdout_spend
            {%- endif %}
        from customer_sums
        left join customer_covariates
            on customer_sums.customer_id = customer_covariates.customer_id
        where customer_sums.first_purchase_date <= customer_sums.{{ purpose }}_end_date
    {%- endfor %}

)

select * from final
