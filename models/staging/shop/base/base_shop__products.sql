with

source as (

    select * from {{ source('shop', 'products') }}

),

parsed as (

    select
        {{ cvm_clean_text('product_id') }} as product_id,
        {{ cvm_clean_text('product_name') }} as product_name,
        lower({{ cvm_clean_text('category') }}) as category,
        {{ cvm_parse_money('list_price') }} as list_price,
        {{ cvm_parse_money('unit_cost') }} as unit_cost,
        {{ cvm_is_unparseable('list_price', cvm_parse_money('list_price')) }}
        or {{ cvm_is_unparseable('unit_cost', cvm_parse_money('unit_cost')) }} as is_number_unparseable,
        {{ cvm_raw_record(['product_id', 'product_name', 'category', 'list_price', 'unit_cost']) }} as raw_record
    from source

),

checked as (

    select
        *,
        case
            when product_id is null then 'null_key'
            when is_number_unparseable then 'unparseable_number'
            when list_price < 0 or unit_cost < 0 then 'negative_amount'
        end as row_issue
    from parsed

),

deduplicated as (

    select
        *,
        {{ cvm_quarantine_reason('product_id', 'product_name, category, list_price, unit_cost') }}
            as quarantine_reason
    from checked

),

final as (

    select
        product_id,
        product_name,
        category,
        list_price,
        unit_cost,
        quarantine_reason,
        case when quarantine_reason is not null then raw_record end as raw_record
    from deduplicated

)

select * from final
