{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='fail',
        pre_hook="{{ cvm_delete_customers_of_rewritten_rows(ref('int_order_items_costed'), 'last_line_order_date') }}",
    )
}}
-- Per customer, over all completed purchases: how broadly they buy, and how much of their
-- spend came with a discount (price sensitivity). Incremental: a run aggregates again the
-- customers the pre-hook dropped (those whose order lines the order facts' run touched) and
-- new ones, from all their lines; the rest are kept (nothing here depends on the as-of date).
with

order_items as (

    select * from {{ ref('int_order_items_costed') }}
    where order_status = 'completed'
    {% if is_incremental() %}
        and customer_id not in (select kept.customer_id from {{ this }} as kept)
    {% endif %}

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
        / nullif(sum(gross_amount), 0) as discount_share_of_spend,
        max(order_date) as last_line_order_date
    from order_items
    group by customer_id

)

select * from final
