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
        {{ dbt.safe_cast(cvm_clean_text('share_of_wallet_pct'), 'decimal(5, 2)') }} as share_of_wallet_pct,
        {{ cvm_clean_text('responded_at') }} is null as is_value_missing,
        {{ cvm_is_unparseable('responded_at', cvm_parse_timestamp('responded_at')) }} as is_date_unparseable,
        {{ cvm_is_unparseable('nps_score', cvm_parse_integer('nps_score')) }}
        or {{ cvm_is_unparseable('csat_score', cvm_parse_integer('csat_score')) }}
        or {{ cvm_is_unparseable('share_of_wallet_pct',
            dbt.safe_cast(cvm_clean_text('share_of_wallet_pct'), 'decimal(5, 2)')) }} as is_number_unparseable,
        {{ cvm_raw_record(['response_id', 'customer_id', 'responded_at', 'nps_score', 'csat_score',
            'share_of_wallet_pct']) }} as raw_record
    from source

),

checked as (

    select
        parsed.*,
        case
            when parsed.response_id is null or parsed.customer_id is null then 'null_key'
            when parsed.is_value_missing then 'missing_value'
            when parsed.is_date_unparseable then 'unparseable_date'
            when parsed.is_number_unparseable then 'unparseable_number'
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

deduplicated as (

    select
        *,
        {{ cvm_quarantine_reason('response_id', 'responded_at, customer_id, nps_score, csat_score') }}
            as quarantine_reason
    from checked

),

final as (

    select
        response_id,
        customer_id,
        responded_at,
        nps_score,
        csat_score,
        share_of_wallet_pct,
        quarantine_reason,
        case when quarantine_reason is not null then raw_record end as raw_record
    from deduplicated

)

select * from final
