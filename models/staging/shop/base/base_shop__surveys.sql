{%- set record_columns = ['response_id', 'customer_id', 'responded_at', 'nps_score', 'csat_score',
    'share_of_wallet_pct'] -%}

with

source as (

    select * from {{ source('shop', 'surveys') }}

),

known_customers as (

    select customer_id
    from {{ ref('base_shop__customers') }}
    where quarantine_reason is null

),

parsed as (

    select
        {{ cvm_clean_text('response_id') }} as response_id,
        {{ cvm_clean_text('customer_id') }} as customer_id,
        {{ cvm_parse_timestamp('responded_at') }} as responded_at,
        {{ cvm_parse_integer('nps_score') }} as nps_score,
        {{ cvm_parse_integer('csat_score') }} as csat_score,
        {{ cvm_parse_number('share_of_wallet_pct', 'decimal(5, 2)') }} as share_of_wallet_pct,
        {{ cvm_keep_raw(record_columns) }}
    from source

),

checked as (

    select
        parsed.*,
        case
            when parsed.response_id is null or parsed.customer_id is null then 'null_key'
            when {{ cvm_is_missing('parsed.responded_at', 'parsed.responded_at_raw') }} then 'missing_value'
            when {{ cvm_is_unparseable('parsed.responded_at', 'parsed.responded_at_raw') }} then 'unparseable_date'
            when
                {{ cvm_is_unparseable('parsed.nps_score', 'parsed.nps_score_raw') }}
                or {{ cvm_is_unparseable('parsed.csat_score', 'parsed.csat_score_raw') }}
                or {{ cvm_is_unparseable('parsed.share_of_wallet_pct', 'parsed.share_of_wallet_pct_raw') }}
                then 'unparseable_number'
            when parsed.responded_at >= {{ cvm_as_of_cutoff() }} then 'future_date'
            when
                parsed.nps_score not between 0 and 10
                or parsed.csat_score not between 1 and 5
                or parsed.share_of_wallet_pct not between 0 and 100
                then 'out_of_range'
            when known_customers.customer_id is null then 'unknown_customer'
        end as row_issue
    from parsed
    left join known_customers
        on parsed.customer_id = known_customers.customer_id

),

{{ cvm_quarantine_ctes('response_id', 'responded_at, customer_id, nps_score, csat_score', record_columns) }}

final as (

    select
        response_id,
        customer_id,
        responded_at,
        nps_score,
        csat_score,
        share_of_wallet_pct,
        quarantine_reason,
        {{ cvm_quarantine_record(record_columns) }} as raw_record
    from deduplicated

)

select * from final
