{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='fail',
        pre_hook="{{ cvm_delete_reprocessed_orders() }}",
    )
}}
-- depends_on: {{ ref('base_shop__as_of_date') }}
with

orders as (

    select
        *,
        cast(ordered_at as date) as order_date
    from {{ ref('int_orders_netted_of_credit_notes') }}
    -- An incremental run rebuilds the orders after the last day it kept (macro doc).
    where {{ cvm_after_kept_rows('cast(ordered_at as date)') }}

),

order_items as (

    select * from {{ ref('int_order_items_costed') }}
    where {{ cvm_after_kept_rows() }}

),

{% if is_incremental() %}
-- Orders each customer has before the rebuilt days, so that order numbers carry on.
kept_order_counts as (

    select
        customer_id,
        count(*) as kept_orders
    from {{ this }}
    where customer_id in (select orders.customer_id from orders)
    group by customer_id

),
{% endif %}

order_lines as (

    select
        order_id,
        count(*) as line_count,
        cast(sum(quantity) as {{ dbt.type_bigint() }}) as item_quantity,
        cast(sum(gross_amount) as decimal(18, 2)) as gross_amount,
        cast(sum(discount_amount) as decimal(18, 2)) as discount_amount,
        -- Unknown when any line's product has no cost: a partial sum would overstate margin.
        cast(case when count(*) = count(cost_of_goods) then sum(cost_of_goods) end as decimal(18, 2))
            as cost_of_goods
    from order_items
    group by order_id

),

final as (

    select
        orders.order_id,
        orders.customer_id,
        orders.ordered_at,
        orders.order_date,
        cast({{ dbt.date_trunc('month', 'orders.ordered_at') }} as date) as order_month,
        orders.status,
        orders.exported_status,
        orders.status = 'completed' as is_completed,
        -- bigint on every engine and run (Spark's row_number is an int, a count a bigint).
        cast(
            {% if is_incremental() %}coalesce(kept_order_counts.kept_orders, 0) + {% endif -%}
            row_number() over (
                partition by orders.customer_id
                order by orders.ordered_at, orders.order_id
            ) as {{ dbt.type_bigint() }}
        ) as customer_order_number,
        coalesce(order_lines.line_count, 0) as line_count,
        coalesce(order_lines.item_quantity, 0) as item_quantity,
        order_lines.gross_amount,
        coalesce(order_lines.discount_amount, 0) as discount_amount,
        orders.order_total,
        orders.credited_amount,
        cast(case when orders.status in ('completed', 'returned') then orders.order_total else 0 end as decimal(18, 2))
            as revenue,
        -- Credit notes refund part of a completed order (all of it: the order is returned).
        cast(
            case when orders.status = 'completed' then orders.order_total - orders.credited_amount else 0 end
            as decimal(18, 2)
        ) as net_revenue,
        cast(
            case
                when orders.status = 'returned' then orders.order_total
                when orders.status = 'completed' then orders.credited_amount
                else 0
            end as decimal(18, 2)
        ) as refund_amount,
        -- Goods of cancelled and returned orders are not sold, so they cost nothing; unknown
        -- cost (no lines, or a product without a unit cost) stays unknown, whatever the status.
        cast(
            case
                when orders.status = 'completed' then order_lines.cost_of_goods
                when order_lines.cost_of_goods is not null then 0
            end as decimal(18, 2)
        ) as cost_of_goods,
        cast(
            case
                when orders.status = 'completed'
                    then orders.order_total - orders.credited_amount - order_lines.cost_of_goods
                when order_lines.cost_of_goods is not null then 0
            end as decimal(18, 2)
        ) as gross_margin
    from orders
    left join order_lines
        on orders.order_id = order_lines.order_id
    {% if is_incremental() %}
        left join kept_order_counts
            on orders.customer_id = kept_order_counts.customer_id
    {% endif %}

)

select * from final
