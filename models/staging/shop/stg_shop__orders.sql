with

checked as (

    select * from {{ ref('base_shop__orders') }}

),

final as (

    select
        order_id,
        customer_id,
        ordered_at,
        status,
        order_total
    from checked
    where quarantine_reason is null

)

select * from final
