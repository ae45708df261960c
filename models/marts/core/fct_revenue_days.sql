-- One row per day with orders: the order facts summed by day. Small enough for MetricFlow's
-- cumulative metrics, which join every day of the time spine to every row in their window
-- (over fct_orders that is orders x 365 rows for a trailing year).
with

orders as (

    select * from {{ ref('int_orders_costed') }}

),

final as (

    select
        order_date,
        cast(count(*) as {{ dbt.type_bigint() }}) as order_count,
        cast(sum(case when is_completed then 1 else 0 end) as {{ dbt.type_bigint() }}) as completed_order_count,
        cast(sum(revenue) as decimal(18, 2)) as revenue,
        cast(sum(net_revenue) as decimal(18, 2)) as net_revenue
    from orders
    group by order_date

)

select * from final
