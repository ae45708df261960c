with

source as (

    select * from {{ source('shop', 'customers') }}

),

parsed as (

    select
        {{ cvm_clean_text('customer_id') }} as customer_id,
        {{ cvm_parse_date('signup_date') }} as signup_date,
        lower({{ cvm_clean_text('email') }}) as email,
        {{ cvm_clean_text('first_name') }} as first_name,
        upper({{ cvm_clean_text('country') }}) as country,
        lower({{ cvm_clean_text('acquisition_channel') }}) as acquisition_channel,
        {{ cvm_is_unparseable('signup_date', cvm_parse_date('signup_date')) }} as is_signup_date_unparseable,
        {{ cvm_clean_text('signup_date') }} is null as is_signup_date_missing,
        -- PII (email, first_name) stays out of the quarantine's raw record.
        {{ cvm_raw_record(['customer_id', 'signup_date', 'country', 'acquisition_channel']) }} as raw_record
    from source

),

checked as (

    select
        *,
        case
            when customer_id is null then 'null_key'
            when is_signup_date_missing then 'missing_value'
            when is_signup_date_unparseable then 'unparseable_date'
            when signup_date > {{ cvm_as_of_date() }} then 'future_date'
        end as row_issue
    from parsed

),

deduplicated as (

    select
        *,
        {{ cvm_quarantine_reason('customer_id', 'signup_date, country, acquisition_channel, email') }}
            as quarantine_reason
    from checked

),

final as (

    select
        customer_id,
        signup_date,
        email,
        first_name,
        country,
        acquisition_channel,
        quarantine_reason,
        case when quarantine_reason is not null then raw_record end as raw_record
    from deduplicated

)

select * from final
