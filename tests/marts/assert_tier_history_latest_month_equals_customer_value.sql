-- The tier history's as-of month gives every customer the tier customer_value gives (one rule,
-- macro cvm_value_tier, on two windows): compared when the two windows are the same days, i.e.
-- the as-of date ends its month and var lookback_days spans exactly the var tier_window_months
-- calendar months up to it (the defaults at a month end: 365 days, 12 months; any other as-of
-- date makes the windows differ by design, and the test compares nothing).
{%- set window_months = var('tier_window_months') | int %}
with

windows as (

    select
        as_of_date,
        as_of_date = cast({{ dbt.last_day('as_of_date', 'month') }} as date)
        and {{ cvm_lookback_start_date() }} = cast(
            {{ dbt.dateadd('month', 1 - window_months, dbt.date_trunc('month', 'as_of_date')) }} as date
        ) as windows_coincide
    from {{ ref('base_shop__as_of_date') }}

),

latest_month as (

    select
        history.customer_id,
        history.value_tier
    from {{ ref('fct_customer_tier_months') }} as history
    cross join windows
    where history.period_month = cast({{ dbt.date_trunc('month', 'windows.as_of_date') }} as date)

),

final as (

    select
        customers.customer_id as customer_id_in_mart,
        latest_month.customer_id as customer_id_in_history,
        customers.value_tier as tier_in_mart,
        latest_month.value_tier as tier_in_history
    from {{ ref('customer_value') }} as customers
    full outer join latest_month
        on customers.customer_id = latest_month.customer_id
    cross join windows
    where
        windows.windows_coincide
        and customers.value_tier is distinct from latest_month.value_tier

)

select * from final
