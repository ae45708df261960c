with

checked as (

    select * from {{ ref('base_shop__order_items') }}

),

final as (

    select
        order_item_id,
        order_id,
        product_id,
        quantity,
        unit_price,
        discount_amount
    from checked
    where quarantine_reason is null

)

select * from final
