{{ config(
    materialized=('incremental' if target.type == 'duckdb' else 'table'),
    incremental_strategy='append',
    on_schema_change='sync_all_columns',
    pre_hook="{{ cvm_stage_new_raw_files('order_items',
        parents=[{'column': 'order_id', 'model': 'base_shop__orders', 'reason': 'unknown_order'}]) }}",
    post_hook="{{ cvm_drop_rows_to_stage('order_items') }}"
) }}

{%- set record_columns = ['order_item_id', 'order_id', 'product_id', 'quantity', 'unit_price', 'discount_amount'] -%}

with

source as (

    -- Staged by file: on a daily build only the new files (macros/staging_by_file.sql).
    select * from {{ cvm_raw_rows_to_stage(source('shop', 'order_items')) }}

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
        {{ cvm_parse_money('discount_amount') }} as discount_amount,
        {{ cvm_keep_raw(record_columns) }}
    from source

),

checked as (

    select
        parsed.*,
        case
            when parsed.order_item_id is null or parsed.order_id is null then 'null_key'
            when
                {{ cvm_is_missing('parsed.quantity', 'parsed.quantity_raw') }}
                or {{ cvm_is_missing('parsed.unit_price', 'parsed.unit_price_raw') }}
                then 'missing_value'
            when
                {{ cvm_is_unparseable('parsed.quantity', 'parsed.quantity_raw') }}
                or {{ cvm_is_unparseable('parsed.unit_price', 'parsed.unit_price_raw') }}
                or {{ cvm_is_unparseable('parsed.discount_amount', 'parsed.discount_amount_raw') }}
                then 'unparseable_number'
            when parsed.quantity < 0 or parsed.unit_price < 0 or parsed.discount_amount < 0 then 'negative_amount'
            when known_orders.order_id is null then 'unknown_order'
        end as row_issue
    from parsed
    left join known_orders
        on parsed.order_id = known_orders.order_id

),

{{ cvm_quarantine_ctes(
    'order_item_id', 'order_id, product_id, quantity, unit_price, discount_amount', record_columns
) }}

final as (

    select
        order_item_id,
        order_id,
        product_id,
        quantity,
        unit_price,
        -- A missing discount is no discount.
        coalesce(discount_amount, 0) as discount_amount,
        quarantine_reason,
        {{ cvm_quarantine_record(record_columns) }} as raw_record
    from deduplicated

)

select * from final
