-- Per customer, over all completed purchases: how broadly they buy, and how much of their
-- spend came with a discount (price sensitivity).
with

order_items as (

    select * from {{ ref('int_order_items_costed') }}
    where order_status = 'completed'

),

final as (

    select
        customer_id,
        count(distinct product_id) as distinct_product_count,
        count(distinct product_category) as distinct_category_count,
        sum(gross_amount) as gross_item_sales,
        sum(discount_amount) as item_discount_amount,
        -- Share of list-price spend given away as discount, 0-1.
        cast(sum(discount_amount) as {{ cvm_type_double() }})
        / nullif(sum(gross_amount), 0) as discount_share_of_spend
    from order_items
    group by customer_id

)

select * from final
