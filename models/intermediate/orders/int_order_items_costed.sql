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

order_items as (

    select * from {{ ref('stg_shop__order_items') }}

),

orders as (

    select
        *,
        cast(ordered_at as date) as order_date
    from {{ ref('int_orders_netted_of_credit_notes') }}
    -- An incremental run rebuilds the orders after the last day it kept (macro doc).
    where {{ cvm_after_kept_rows('cast(ordered_at as date)') }}

),

products as (

    select * from {{ ref('stg_shop__products') }}

),

final as (

    select
        order_items.order_item_id,
        order_items.order_id,
        orders.customer_id,
        order_items.product_id,
        products.category as product_category,
        orders.status as order_status,
        orders.ordered_at,
        orders.order_date,
        order_items.quantity,
        order_items.unit_price,
        products.list_price,
        products.unit_cost,
        cast(order_items.quantity * order_items.unit_price as decimal(18, 2)) as gross_amount,
        order_items.discount_amount,
        cast(order_items.quantity * order_items.unit_price - order_items.discount_amount as decimal(18, 2))
            as net_amount,
        cast(order_items.quantity * products.unit_cost as decimal(18, 2)) as cost_of_goods
    from order_items
    -- Staging guarantees every accepted line has an accepted order.
    inner join orders
        on order_items.order_id = orders.order_id
    left join products
        on order_items.product_id = products.product_id

)

select * from final
