{#- PII (email, first_name) stays out of the quarantine's raw record. -#}
{%- set record_columns = ['customer_id', 'signup_date', 'country', 'acquisition_channel'] -%}

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
        {{ cvm_keep_raw(record_columns) }}
    from source

),

checked as (

    select
        *,
        case
            when customer_id is null then 'null_key'
            when {{ cvm_is_missing('signup_date', 'signup_date_raw') }} then 'missing_value'
            when {{ cvm_is_unparseable('signup_date', 'signup_date_raw') }} then 'unparseable_date'
            when signup_date > {{ cvm_as_of_date() }} then 'future_date'
        end as row_issue
    from parsed

),

{{ cvm_quarantine_ctes('customer_id', 'signup_date, country, acquisition_channel, email', record_columns) }}

final as (

    select
        customer_id,
        signup_date,
        email,
        first_name,
        country,
        acquisition_channel,
        quarantine_reason,
        {{ cvm_quarantine_record(record_columns) }} as raw_record
    from deduplicated

)

select * from final
