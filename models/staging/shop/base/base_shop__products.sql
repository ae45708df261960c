{%- set record_columns = ['product_id', 'product_name', 'category', 'list_price', 'unit_cost'] -%}

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
        {{ cvm_keep_raw(record_columns) }}
    from source

),

checked as (

    select
        *,
        case
            when product_id is null then 'null_key'
            when
                {{ cvm_is_unparseable('list_price', 'list_price_raw') }}
                or {{ cvm_is_unparseable('unit_cost', 'unit_cost_raw') }}
                then 'unparseable_number'
            when list_price < 0 or unit_cost < 0 then 'negative_amount'
        end as row_issue
    from parsed

),

{{ cvm_quarantine_ctes('product_id', 'product_name, category, list_price, unit_cost', record_columns) }}

final as (

    select
        product_id,
        product_name,
        category,
        list_price,
        unit_cost,
        quarantine_reason,
        {{ cvm_quarantine_record(record_columns) }} as raw_record
    from deduplicated

)

select * from final
