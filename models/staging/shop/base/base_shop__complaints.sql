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
        coalesce({{ cvm_parse_money('compensation_amount') }}, 0) as compensation_amount,
        {{ cvm_clean_text('opened_at') }} is null as is_value_missing,
        {{ cvm_is_unparseable('opened_at', cvm_parse_timestamp('opened_at')) }}
        or {{ cvm_is_unparseable('resolved_at', cvm_parse_timestamp('resolved_at')) }} as is_date_unparseable,
        {{ cvm_is_unparseable('compensation_amount', cvm_parse_money('compensation_amount')) }}
            as is_number_unparseable,
        {{ cvm_raw_record(['complaint_id', 'customer_id', 'order_id', 'opened_at', 'resolved_at',
            'category', 'severity', 'compensation_amount']) }} as raw_record
    from source

),

checked as (

    select
        parsed.*,
        case
            when parsed.complaint_id is null or parsed.customer_id is null then 'null_key'
            when parsed.is_value_missing then 'missing_value'
            when parsed.is_date_unparseable then 'unparseable_date'
            when parsed.is_number_unparseable then 'unparseable_number'
            when parsed.opened_at >= {{ cvm_as_of_cutoff() }} then 'future_date'
            when parsed.compensation_amount < 0 then 'negative_amount'
            when known_customers.customer_id is null then 'unknown_customer'
        end as row_issue
    from parsed
    left join known_customers
        on parsed.customer_id = known_customers.customer_id

),

deduplicated as (

    select
        *,
        {{ cvm_quarantine_reason('complaint_id', 'opened_at, customer_id, resolved_at, category') }}
            as quarantine_reason
    from checked

),

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
        compensation_amount,
        quarantine_reason,
        case when quarantine_reason is not null then raw_record end as raw_record
    from deduplicated

)

select * from final
