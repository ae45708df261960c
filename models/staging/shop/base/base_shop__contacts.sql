{%- set record_columns = ['contact_id', 'customer_id', 'sent_at', 'channel', 'strategy', 'is_holdout',
    'responded', 'converted'] -%}

with

source as (

    select * from {{ source('shop', 'contacts') }}

),

known_customers as (

    select customer_id
    from {{ ref('base_shop__customers') }}
    where quarantine_reason is null

),

parsed as (

    select
        {{ cvm_clean_text('contact_id') }} as contact_id,
        {{ cvm_clean_text('customer_id') }} as customer_id,
        {{ cvm_parse_timestamp('sent_at') }} as sent_at,
        lower({{ cvm_clean_text('channel') }}) as channel,
        lower({{ cvm_clean_text('strategy') }}) as strategy,
        {{ cvm_parse_boolean('is_holdout') }} as is_holdout,
        {{ cvm_parse_boolean('responded') }} as responded,
        {{ cvm_parse_boolean('converted') }} as converted,
        {{ cvm_keep_raw(record_columns) }}
    from source

),

checked as (

    select
        parsed.*,
        case
            when parsed.contact_id is null or parsed.customer_id is null then 'null_key'
            when {{ cvm_is_missing('parsed.sent_at', 'parsed.sent_at_raw') }} then 'missing_value'
            when {{ cvm_is_unparseable('parsed.sent_at', 'parsed.sent_at_raw') }} then 'unparseable_date'
            when
                {{ cvm_is_unparseable('parsed.is_holdout', 'parsed.is_holdout_raw') }}
                or {{ cvm_is_unparseable('parsed.responded', 'parsed.responded_raw') }}
                or {{ cvm_is_unparseable('parsed.converted', 'parsed.converted_raw') }}
                then 'invalid_flag'
            when parsed.sent_at >= {{ cvm_as_of_cutoff() }} then 'future_date'
            when known_customers.customer_id is null then 'unknown_customer'
        end as row_issue
    from parsed
    left join known_customers
        on parsed.customer_id = known_customers.customer_id

),

{{ cvm_quarantine_ctes('contact_id', 'sent_at, customer_id, channel, strategy', record_columns) }}

final as (

    select
        contact_id,
        customer_id,
        sent_at,
        channel,
        strategy,
        -- A missing holdout flag means the contact was sent.
        coalesce(is_holdout, false) as is_holdout,
        -- A holdout contact was never sent, so it cannot have been answered.
        case when not coalesce(is_holdout, false) then coalesce(responded, false) end as responded,
        coalesce(converted, false) as converted,
        quarantine_reason,
        {{ cvm_quarantine_record(record_columns) }} as raw_record
    from deduplicated

)

select * from final
