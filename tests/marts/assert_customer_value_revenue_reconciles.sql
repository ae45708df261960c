-- Net revenue in the customer value mart equals fct_orders, over the lifetime and over the
-- lookback window: no customer's revenue is lost or counted twice on the way.
with

orders as (

    select
        sum(net_revenue) as net_revenue_lifetime,
        sum(case when order_date >= {{ cvm_lookback_start_date() }} then net_revenue else 0 end)
            as net_revenue_lookback
    from {{ ref('fct_orders') }}

),

mart as (

    select
        sum(net_revenue_lifetime) as net_revenue_lifetime,
        sum(monetary_lookback) as net_revenue_lookback
    from {{ ref('customer_value') }}

),

final as (

    select
        orders.net_revenue_lifetime as orders_lifetime,
        mart.net_revenue_lifetime as mart_lifetime,
        orders.net_revenue_lookback as orders_lookback,
        mart.net_revenue_lookback as mart_lookback
    from orders
    cross join mart
    where
        coalesce(orders.net_revenue_lifetime, 0) != coalesce(mart.net_revenue_lifetime, 0)
        or coalesce(orders.net_revenue_lookback, 0) != coalesce(mart.net_revenue_lookback, 0)

)

select * from final
