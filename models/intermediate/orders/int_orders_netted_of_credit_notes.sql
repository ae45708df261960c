{{ config(materialized='view') }}
-- Accepted orders net of their accepted credit notes (doc block credit_notes): the amount
-- credited, and the status after them. The one place of this rule: both order facts read it.
-- A view, so that an incremental run's date filter reaches the orders it reads.
with

orders as (

    select * from {{ ref('stg_shop__orders') }}

),

credit_notes as (

    select * from {{ ref('stg_shop__credit_notes') }}

),

credited as (

    select
        order_id,
        sum(amount) as credited_amount
    from credit_notes
    group by order_id

),

final as (

    select
        orders.order_id,
        orders.customer_id,
        orders.ordered_at,
        orders.status as exported_status,
        orders.order_total,
        cast(coalesce(credited.credited_amount, 0) as decimal(18, 2)) as credited_amount,
        -- Refunded in full by credit notes: a return, like a status change would say.
        case
            when
                orders.status = 'completed'
                and orders.order_total > 0
                and credited.credited_amount >= orders.order_total
                then 'returned'
            else orders.status
        end as status
    from orders
    left join credited
        on orders.order_id = credited.order_id

)

select * from final
