-- Net revenue in the customer value mart equals fct_orders for every customer, over the
-- lifetime and over the lookback window: no revenue is lost, counted twice or moved to another
-- customer on the way (grand totals would hide a move). Every customer is in the mart, buyer or
-- not, so a customer on one side only is a failure too.
with

orders as (

    select
        customer_id,
        sum(net_revenue) as net_revenue_lifetime,
        sum(case when order_date >= {{ cvm_lookback_start_date() }} then net_revenue else 0 end)
            as net_revenue_lookback
    from {{ ref('fct_orders') }}
    group by customer_id

),

mart as (

    select
        customer_id,
        net_revenue_lifetime,
        monetary_lookback as net_revenue_lookback
    from {{ ref('customer_value') }}

),

final as (

    select
        orders.customer_id as customer_id_in_orders,
        mart.customer_id as customer_id_in_mart,
        orders.net_revenue_lifetime as orders_lifetime,
        mart.net_revenue_lifetime as mart_lifetime,
        orders.net_revenue_lookback as orders_lookback,
        mart.net_revenue_lookback as mart_lookback
    from orders
    full outer join mart
        on orders.customer_id = mart.customer_id
    where
        mart.customer_id is null
        -- A customer without orders has 0 revenue in the mart, not null.
        or coalesce(orders.net_revenue_lifetime, 0) is distinct from mart.net_revenue_lifetime
        or coalesce(orders.net_revenue_lookback, 0) is distinct from mart.net_revenue_lookback

)

select * from final
