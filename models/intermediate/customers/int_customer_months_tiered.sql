{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='fail',
        pre_hook="{{ cvm_delete_reprocessed_tier_months() }}",
        post_hook="{{ cvm_record_tier_rules() }}",
    )
}}
-- One row per customer per month, from the month of the first purchase to the as-of month,
-- with the value tier the customer had at the month's end (the as-of date for its month).
-- Same rule (macro cvm_value_tier) and value basis as customer_value.value_tier, on a window
-- of whole calendar months.
{%- set window_months = var('tier_window_months') | int %}
{%- if window_months < 1 %}
    {{ exceptions.raise_compiler_error(
        "var tier_window_months must be a whole number of months, 1 or more; got "
        ~ var('tier_window_months')) }}
{%- endif %}
{#- Months the history can span (a hundred years): the length of the month spine below. #}
{%- set max_history_months = 1200 %}
{%- set spine_month = 'cast(' ~ dbt.dateadd('month', 'month_numbers.generated_number - 1', 'spine_start.first_month')
    | trim ~ ' as date)' %}
{#- A month as a count of months, for the window's range frame below. #}
{%- set month_number = '(extract(year from {0}) * 12 + extract(month from {0}))' %}

with

-- The first month this run outputs. An incremental run outputs the months after the last one
-- it kept (the pre-hook dropped the months it recomputes; macro doc), a full one every month.
first_output_month as (

    {% if is_incremental() %}
        select
            coalesce(
                cast({{ dbt.dateadd('month', 1, 'max(period_month)') }} as date), cast('0001-01-01' as date)
            ) as month_start
        from {{ this }}
    {% else %}
        select cast('0001-01-01' as date) as month_start
    {% endif %}

),

monthly as (

    select
        *,
        net_revenue - cost_of_goods - complaint_compensation as gross_margin
    from {{ ref('int_orders_aggregated_to_customer_months') }}
    {% if is_incremental() %}
    -- Only the window of the months this run outputs.
    where activity_month >= (
        select cast({{ dbt.dateadd('month', 1 - window_months, 'month_start') }} as date)
        from first_output_month
    )
    {% endif %}

),

-- Where each customer's output starts: the first purchase month, or the first month this run
-- outputs when that is later.
output_starts as (

    select
        customers.customer_id,
        customers.first_purchase_date,
        greatest(
            cast({{ dbt.date_trunc('month', 'customers.first_purchase_date') }} as date),
            first_output_month.month_start
        ) as output_start_month
    from {{ ref('int_orders_aggregated_to_customers') }} as customers
    cross join first_output_month
    where customers.purchase_count_lifetime > 0

),

as_of as (

    select
        as_of_date,
        cast({{ dbt.date_trunc('month', 'as_of_date') }} as date) as as_of_month
    from {{ ref('base_shop__as_of_date') }}

),

tier_bands as (

    select * from {{ ref('int_value_tier_bands') }}

),

value_basis as (

    select * from {{ ref('int_value_basis_chosen') }}

),

-- Every calendar month from the first output month to the as-of month, without gaps.
month_numbers as (

    {{ dbt.generate_series(max_history_months) }}

),

spine_start as (

    select min(output_start_month) as first_month from output_starts

),

months as (

    select {{ spine_month }} as period_month
    from month_numbers
    cross join spine_start
    cross join as_of
    where {{ spine_month }} <= as_of.as_of_month

),

-- The output: one row per customer and month from the output start to the as-of month.
grid as (

    select
        output_starts.customer_id,
        output_starts.first_purchase_date,
        output_starts.output_start_month,
        months.period_month
    from output_starts
    inner join months
        on output_starts.output_start_month <= months.period_month

),

filled as (

    select
        grid.*,
        coalesce(monthly.purchase_count, 0) as purchase_count,
        coalesce(monthly.net_revenue, 0) as net_revenue,
        coalesce(monthly.complaint_compensation, 0) as complaint_compensation,
        coalesce(monthly.gross_margin, 0) as gross_margin,
        coalesce(monthly.purchases_without_cost, 0) as purchases_without_cost
    from grid
    left join monthly
        on
            grid.customer_id = monthly.customer_id
            and grid.period_month = monthly.activity_month

    union all

    -- Months that only feed the trailing window of the output's first months: activity in
    -- the window_months - 1 months before the output start. Before the first purchase that is
    -- compensation for a complaint or a cancelled or returned order, which customer_value's
    -- lookback counts too; on an incremental run also the kept months. Months without activity
    -- add nothing, so only months with activity are read (a daily run does not window a year
    -- of every customer's months to output one or two).
    select
        output_starts.customer_id,
        output_starts.first_purchase_date,
        output_starts.output_start_month,
        monthly.activity_month as period_month,
        monthly.purchase_count,
        monthly.net_revenue,
        monthly.complaint_compensation,
        monthly.gross_margin,
        monthly.purchases_without_cost
    from monthly
    inner join output_starts
        on
            monthly.customer_id = output_starts.customer_id
            and monthly.activity_month < output_starts.output_start_month
            and monthly.activity_month >= cast(
                {{ dbt.dateadd('month', 1 - window_months, 'output_starts.output_start_month') }} as date
            )

),

-- Trailing sums over window_months months: one sliding frame per sum, all on one sort
-- (running sums minus their lag took two sorts and 26 % longer at 1M customers). The frame is
-- a range of month numbers, not of rows: the months that only feed it have gaps.
windowed as (

    select
        *,
        sum(purchase_count) over tier_window as purchase_count_window,
        sum(net_revenue) over tier_window as net_revenue_window,
        sum(complaint_compensation) over tier_window as complaint_compensation_window,
        sum(gross_margin) over tier_window as gross_margin_window,
        sum(purchases_without_cost) over tier_window as purchases_without_cost_window
    from filled
    window tier_window as (
        partition by customer_id
        order by {{ month_number.format('period_month') }}
        range between {{ window_months - 1 }} preceding and current row
    )

),

ended as (

    select
        windowed.*,
        case
            when windowed.period_month = as_of.as_of_month then as_of.as_of_date
            else cast({{ dbt.last_day('windowed.period_month', 'month') }} as date)
        end as period_end_date,
        value_basis.value_basis,
        {{ cvm_known_where_costed('windowed.gross_margin_window', 'windowed.purchases_without_cost_window') }}
            as known_gross_margin_window
    from windowed
    cross join as_of
    cross join value_basis

),

valued as (

    select
        *,
        {{ cvm_value_on_basis(
            'value_basis', 'known_gross_margin_window', 'net_revenue_window', 'complaint_compensation_window'
        ) }} as value_window
    from ended

),

final as (

    select
        valued.customer_id,
        valued.period_month,
        valued.period_end_date,
        cast(valued.purchase_count_window as {{ dbt.type_bigint() }}) as purchase_count_window,
        cast(valued.net_revenue_window as decimal(18, 2)) as net_revenue_window,
        -- The one definition of an active customer: a completed purchase in the trailing window.
        valued.purchase_count_window > 0 as is_active,
        cast(valued.known_gross_margin_window as decimal(18, 2)) as gross_margin_window,
        valued.value_basis,
        cast(valued.value_window as decimal(18, 2)) as value_window,
        {{ cvm_value_tier(
            'valued.first_purchase_date', 'valued.period_end_date', 'valued.purchase_count_window',
            'valued.value_window', 'tier_bands.value_tier'
        ) }} as value_tier
    from valued
    left join tier_bands
        on {{ cvm_in_tier_band('valued.value_window', 'tier_bands') }}
    where valued.period_month >= valued.output_start_month

)

select * from final
