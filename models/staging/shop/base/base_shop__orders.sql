{{ config(
    materialized=('incremental' if target.type == 'duckdb' else 'table'),
    incremental_strategy='append',
    on_schema_change='sync_all_columns',
    pre_hook="{{ cvm_stage_new_raw_files('orders',
        dated_by='ordered_at',
        parents=[{'column': 'customer_id', 'model': 'base_shop__customers', 'reason': 'unknown_customer'}]) }}",
    post_hook="{{ cvm_drop_rows_to_stage('orders') }}"
) }}

{%- set record_columns = ['order_id', 'customer_id', 'ordered_at', 'status', 'order_total'] -%}

with

source as (

    -- Staged by file: on a daily build only the new files (macros/staging_by_file.sql).
    select * from {{ cvm_raw_rows_to_stage(source('shop', 'orders')) }}

),

known_customers as (

    select customer_id
    from {{ ref('base_shop__customers') }}
    where quarantine_reason is null

),

parsed as (

    select
        {{ cvm_clean_text('order_id') }} as order_id,
        {{ cvm_clean_text('customer_id') }} as customer_id,
        {{ cvm_parse_timestamp('ordered_at') }} as ordered_at,
        -- 'canceled' is the US spelling of the same status.
        replace(lower({{ cvm_clean_text('status') }}), 'canceled', 'cancelled') as status,
        {{ cvm_parse_money('order_total') }} as order_total,
        {{ cvm_keep_raw(record_columns) }}
    from source

),

checked as (

    select
        parsed.*,
        case
            when parsed.order_id is null or parsed.customer_id is null then 'null_key'
            when
                {{ cvm_is_missing('parsed.ordered_at', 'parsed.ordered_at_raw') }}
                or parsed.status is null
                or {{ cvm_is_missing('parsed.order_total', 'parsed.order_total_raw') }}
                then 'missing_value'
            when {{ cvm_is_unparseable('parsed.ordered_at', 'parsed.ordered_at_raw') }} then 'unparseable_date'
            when {{ cvm_is_unparseable('parsed.order_total', 'parsed.order_total_raw') }} then 'unparseable_number'
            when parsed.ordered_at >= {{ cvm_as_of_cutoff() }} then 'future_date'
            when parsed.status not in ('completed', 'cancelled', 'returned') then 'invalid_status'
            when parsed.order_total < 0 then 'negative_amount'
            when known_customers.customer_id is null then 'unknown_customer'
        end as row_issue
    from parsed
    left join known_customers
        on parsed.customer_id = known_customers.customer_id

),

{{ cvm_quarantine_ctes('order_id', 'ordered_at desc, status, order_total, customer_id', record_columns) }}

final as (

    select
        order_id,
        customer_id,
        ordered_at,
        status,
        order_total,
        quarantine_reason,
        {{ cvm_quarantine_record(record_columns) }} as raw_record
    from deduplicated

)

select * from final
