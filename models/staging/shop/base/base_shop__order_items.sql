with

source as (

    select * from {{ source('shop', 'order_items') }}

),

known_orders as (

    select order_id
    from {{ ref('base_shop__orders') }}
    where quarantine_reason is null

),

parsed as (

    select
        {{ cvm_clean_text('order_item_id') }} as order_item_id,
        {{ cvm_clean_text('order_id') }} as order_id,
        {{ cvm_clean_text('product_id') }} as product_id,
        {{ cvm_parse_integer('quantity') }} as quantity,
        {{ cvm_parse_money('unit_price') }} as unit_price,
        coalesce({{ cvm_parse_money('discount_amount') }}, 0) as discount_amount,
        {{ cvm_clean_text('quantity') }} is null
        or {{ cvm_clean_text('unit_price') }} is null as is_value_missing,
        {{ cvm_is_unparseable('quantity', cvm_parse_integer('quantity')) }}
        or {{ cvm_is_unparseable('unit_price', cvm_parse_money('unit_price')) }}
        or {{ cvm_is_unparseable('discount_amount', cvm_parse_money('discount_amount')) }}
            as is_number_unparseable,
        {{ cvm_raw_record(['order_item_id', 'order_id', 'product_id', 'quantity', 'unit_price', 'discount_amount']) }}
            as raw_record
    from source

),

checked as (

    select
        parsed.*,
        case
            when parsed.order_item_id is null or parsed.order_id is null then 'null_key'
            when parsed.is_value_missing then 'missing_value'
            when parsed.is_number_unparseable then 'unparseable_number'
            when parsed.quantity < 0 or parsed.unit_price < 0 or parsed.discount_amount < 0 then 'negative_amount'
            when known_orders.order_id is null then 'unknown_order'
        end as row_issue
    from parsed
    left join known_orders
        on parsed.order_id = known_orders.order_id

),

deduplicated as (

    select
        *,
        {{ cvm_quarantine_reason('order_item_id', 'order_id, product_id, quantity, unit_price, discount_amount') }}
            as quarantine_reason
    from checked

),

final as (

    select
        order_item_id,
        order_id,
        product_id,
        quantity,
        unit_price,
        discount_amount,
        quarantine_reason,
        case when quarantine_reason is not null then raw_record end as raw_record
    from deduplicated

)

select * from final
