-- Per customer: what they bought over their lifetime and over the lookback window.
-- Only completed orders are purchases; cancelled and returned orders count as placed orders.
with

orders as (

    select * from {{ ref('int_orders_costed') }}

),

windowed as (

    select
        *,
        order_date >= {{ cvm_lookback_start_date() }} as is_in_lookback
    from orders

),

final as (

    select
        customer_id,
        count(*) as orders_placed_count,
        cast(sum(case when is_completed then 1 else 0 end) as {{ dbt.type_bigint() }}) as purchase_count_lifetime,
        sum(net_revenue) as net_revenue_lifetime,
        min(case when is_completed then order_date end) as first_purchase_date,
        max(case when is_completed then order_date end) as last_purchase_date,
        cast(sum(case when is_completed and is_in_lookback then 1 else 0 end) as {{ dbt.type_bigint() }})
            as purchase_count_lookback,
        sum(case when is_in_lookback then net_revenue else 0 end) as net_revenue_lookback,
        sum(case when is_in_lookback and is_completed then gross_amount else 0 end) as gross_sales_lookback,
        sum(case when is_in_lookback and is_completed then discount_amount else 0 end) as discount_amount_lookback,
        sum(case when is_in_lookback then refund_amount else 0 end) as refund_amount_lookback,
        sum(case when is_in_lookback then cost_of_goods else 0 end) as cost_of_goods_lookback,
        -- Unknown cost on any lookback purchase makes the margin unknown, not overstated.
        cast(
            sum(case when is_in_lookback and is_completed and cost_of_goods is null then 1 else 0 end)
            as {{ dbt.type_bigint() }}
        ) as purchases_without_cost_lookback
    from windowed
    group by customer_id

)

select * from final
