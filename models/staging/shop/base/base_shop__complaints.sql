{%- set record_columns = ['complaint_id', 'customer_id', 'order_id', 'opened_at', 'resolved_at',
    'category', 'severity', 'compensation_amount'] -%}

with

source as (

    select * from {{ source('shop', 'complaints') }}

),

known_customers as (

    select customer_id
    from {{ ref('base_shop__customers') }}
    where quarantine_reason is null

),

parsed as (

    select
        {{ cvm_clean_text('complaint_id') }} as complaint_id,
        {{ cvm_clean_text('customer_id') }} as customer_id,
        {{ cvm_clean_text('order_id') }} as order_id,
        {{ cvm_parse_timestamp('opened_at') }} as opened_at,
        {{ cvm_parse_timestamp('resolved_at') }} as resolved_at,
        lower({{ cvm_clean_text('category') }}) as category,
        lower({{ cvm_clean_text('severity') }}) as severity,
        {{ cvm_parse_money('compensation_amount') }} as compensation_amount,
        {{ cvm_keep_raw(record_columns) }}
    from source

),

checked as (

    select
        parsed.*,
        case
            when parsed.complaint_id is null or parsed.customer_id is null then 'null_key'
            when {{ cvm_is_missing('parsed.opened_at', 'parsed.opened_at_raw') }} then 'missing_value'
            when
                {{ cvm_is_unparseable('parsed.opened_at', 'parsed.opened_at_raw') }}
                or {{ cvm_is_unparseable('parsed.resolved_at', 'parsed.resolved_at_raw') }}
                then 'unparseable_date'
            when
                {{ cvm_is_unparseable('parsed.compensation_amount', 'parsed.compensation_amount_raw') }}
                then 'unparseable_number'
            when parsed.opened_at >= {{ cvm_as_of_cutoff() }} then 'future_date'
            when parsed.compensation_amount < 0 then 'negative_amount'
            when known_customers.customer_id is null then 'unknown_customer'
        end as row_issue
    from parsed
    left join known_customers
        on parsed.customer_id = known_customers.customer_id

),

{{ cvm_quarantine_ctes('complaint_id', 'opened_at, customer_id, resolved_at, category', record_columns) }}

final as (

    select
        complaint_id,
        customer_id,
        order_id,
        opened_at,
        -- Resolution reported after the as-of date had not happened yet "today".
        case when resolved_at < {{ cvm_as_of_cutoff() }} then resolved_at end as resolved_at,
        category,
        severity,
        -- A missing compensation is none.
        coalesce(compensation_amount, 0) as compensation_amount,
        quarantine_reason,
        {{ cvm_quarantine_record(record_columns) }} as raw_record
    from deduplicated

)

select * from final
