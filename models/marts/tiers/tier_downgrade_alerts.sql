-- High-value customers (from-tier in var downgrade_alert_tiers) who moved down a tier in the
-- latest month of the history, with what changed between the two month ends: recency,
-- purchases, revenue, margin and the value the tier is assigned on (value basis) in the tier
-- window, complaints in the window, latest NPS.
{%- set window_months = var('tier_window_months') | int %}
{%- set alert_tiers = "'" ~ (var('downgrade_alert_tiers') | join("', '")) ~ "'" %}

with

all_migrations as (

    select * from {{ ref('fct_tier_migrations') }}

),

all_history as (

    select * from {{ ref('fct_customer_tier_months') }}

),

orders as (

    select * from {{ ref('int_orders_costed') }}

),

complaints as (

    select * from {{ ref('stg_shop__complaints') }}

),

surveys as (

    select * from {{ ref('stg_shop__surveys') }}

),

-- Only the latest month's migrations and the two month ends they connect are read on. The
-- latest month comes from the ref itself, not all_history: a CTE read twice is materialised.
latest_month as (

    select max(period_month) as to_period_month from {{ ref('fct_customer_tier_months') }}

),

migrations as (

    select all_migrations.*
    from all_migrations
    inner join latest_month
        on all_migrations.to_period_month = latest_month.to_period_month

),

history as (

    select all_history.*
    from all_history
    inner join latest_month
        on
            all_history.period_month <= latest_month.to_period_month
            and all_history.period_month >= cast({{ dbt.dateadd('month', -1, 'latest_month.to_period_month') }} as date)

),

alerts as (

    select
        migrations.customer_id,
        migrations.from_period_month,
        migrations.to_period_month,
        migrations.from_tier,
        migrations.to_tier,
        from_history.period_end_date as from_period_end_date,
        to_history.period_end_date as to_period_end_date,
        from_history.purchase_count_window as purchase_count_before,
        to_history.purchase_count_window as purchase_count_after,
        from_history.net_revenue_window as net_revenue_before,
        to_history.net_revenue_window as net_revenue_after,
        from_history.gross_margin_window as gross_margin_before,
        to_history.gross_margin_window as gross_margin_after,
        to_history.value_basis,
        from_history.value_window as value_before,
        to_history.value_window as value_after
    from migrations
    inner join history as from_history
        on
            migrations.customer_id = from_history.customer_id
            and migrations.from_period_month = from_history.period_month
    inner join history as to_history
        on
            migrations.customer_id = to_history.customer_id
            and migrations.to_period_month = to_history.period_month
    where
        migrations.direction = 'down'
        and migrations.from_tier in ({{ alert_tiers }})

),

-- The two month ends of every alert, to measure each customer at both.
period_ends as (

    select
        customer_id,
        'before' as side,
        from_period_month as period_month,
        from_period_end_date as period_end_date
    from alerts
    union all
    select
        customer_id,
        'after' as side,
        to_period_month as period_month,
        to_period_end_date as period_end_date
    from alerts

),

last_purchases as (

    select
        period_ends.customer_id,
        period_ends.side,
        max(orders.order_date) as last_purchase_date
    from period_ends
    inner join orders
        on
            period_ends.customer_id = orders.customer_id
            and orders.is_completed
            and period_ends.period_end_date >= orders.order_date
    group by period_ends.customer_id, period_ends.side

),

window_complaints as (

    select
        period_ends.customer_id,
        period_ends.side,
        count(*) as complaint_count_window
    from period_ends
    inner join complaints
        on
            period_ends.customer_id = complaints.customer_id
            and cast(complaints.opened_at as date) <= period_ends.period_end_date
            and cast(complaints.opened_at as date)
            >= cast({{ dbt.dateadd('month', 1 - window_months, 'period_ends.period_month') }} as date)
    group by period_ends.customer_id, period_ends.side

),

nps_answers as (

    select
        period_ends.customer_id,
        period_ends.side,
        surveys.nps_score,
        row_number() over (
            partition by period_ends.customer_id, period_ends.side
            order by surveys.responded_at desc, surveys.response_id desc
        ) as recency_rank
    from period_ends
    inner join surveys
        on
            period_ends.customer_id = surveys.customer_id
            and surveys.nps_score is not null
            and cast(surveys.responded_at as date) <= period_ends.period_end_date

),

measured as (

    select
        period_ends.customer_id,
        period_ends.side,
        {{ cvm_days_between('last_purchases.last_purchase_date', 'period_ends.period_end_date') }}
            as recency_days,
        coalesce(window_complaints.complaint_count_window, 0) as complaint_count_window,
        nps_answers.nps_score
    from period_ends
    left join last_purchases
        on period_ends.customer_id = last_purchases.customer_id and period_ends.side = last_purchases.side
    left join window_complaints
        on period_ends.customer_id = window_complaints.customer_id and period_ends.side = window_complaints.side
    left join nps_answers
        on
            period_ends.customer_id = nps_answers.customer_id
            and period_ends.side = nps_answers.side
            and nps_answers.recency_rank = 1

),

final as (

    select
        alerts.customer_id,
        alerts.from_period_month,
        alerts.to_period_month,
        alerts.from_tier,
        alerts.to_tier,
        cast(measured_before.recency_days as {{ dbt.type_bigint() }}) as recency_days_before,
        cast(measured_after.recency_days as {{ dbt.type_bigint() }}) as recency_days_after,
        alerts.purchase_count_before,
        alerts.purchase_count_after,
        alerts.net_revenue_before,
        alerts.net_revenue_after,
        alerts.gross_margin_before,
        alerts.gross_margin_after,
        alerts.value_basis,
        alerts.value_before,
        alerts.value_after,
        cast(measured_before.complaint_count_window as {{ dbt.type_bigint() }}) as complaint_count_before,
        cast(measured_after.complaint_count_window as {{ dbt.type_bigint() }}) as complaint_count_after,
        cast(measured_before.nps_score as integer) as nps_score_before,
        cast(measured_after.nps_score as integer) as nps_score_after,
        {{ cvm_nps_class('measured_after.nps_score') }} as nps_class_after
    from alerts
    inner join measured as measured_before
        on alerts.customer_id = measured_before.customer_id and measured_before.side = 'before'
    inner join measured as measured_after
        on alerts.customer_id = measured_after.customer_id and measured_after.side = 'after'

)

select * from final
