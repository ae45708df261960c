{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='fail',
        pre_hook="{{ cvm_delete_reprocessed_months('activity_month') }}",
    )
}}
-- depends_on: {{ ref('base_shop__as_of_date') }}
-- Per customer and calendar month: purchases, margin ingredients and complaint compensation,
-- the monthly building blocks of the tier history. Incremental like it (doc block
-- incremental_orders): a run rebuilds the months the pre-hook dropped and any month after.
with

orders as (

    select * from {{ ref('int_orders_costed') }}
    where {{ cvm_after_kept_rows('order_month', 'activity_month') }}

),

complaints as (

    select * from {{ ref('stg_shop__complaints') }}
    where {{ cvm_after_kept_rows(
        'cast(' ~ dbt.date_trunc('month', 'opened_at') ~ ' as date)', 'activity_month'
    ) }}

),

order_months as (

    select
        customer_id,
        order_month as activity_month,
        sum(case when is_completed then 1 else 0 end) as purchase_count,
        sum(net_revenue) as net_revenue,
        sum(cost_of_goods) as cost_of_goods,
        sum(case when is_completed and cost_of_goods is null then 1 else 0 end) as purchases_without_cost
    from orders
    group by customer_id, order_month

),

complaint_months as (

    select
        customer_id,
        cast({{ dbt.date_trunc('month', 'opened_at') }} as date) as activity_month,
        sum(compensation_amount) as complaint_compensation
    from complaints
    group by customer_id, cast({{ dbt.date_trunc('month', 'opened_at') }} as date)

),

final as (

    select
        coalesce(order_months.customer_id, complaint_months.customer_id) as customer_id,
        coalesce(order_months.activity_month, complaint_months.activity_month) as activity_month,
        cast(coalesce(order_months.purchase_count, 0) as {{ dbt.type_bigint() }}) as purchase_count,
        coalesce(order_months.net_revenue, 0) as net_revenue,
        coalesce(order_months.cost_of_goods, 0) as cost_of_goods,
        cast(coalesce(order_months.purchases_without_cost, 0) as {{ dbt.type_bigint() }}) as purchases_without_cost,
        coalesce(complaint_months.complaint_compensation, 0) as complaint_compensation
    from order_months
    full outer join complaint_months
        on
            order_months.customer_id = complaint_months.customer_id
            and order_months.activity_month = complaint_months.activity_month

)

select * from final
