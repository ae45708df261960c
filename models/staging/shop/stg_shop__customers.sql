with

checked as (

    select * from {{ ref('base_shop__customers') }}

),

final as (

    select
        customer_id,
        signup_date,
        email,
        first_name,
        country,
        acquisition_channel
    from checked
    where quarantine_reason is null

)

select * from final
