with

checked as (

    select * from {{ ref('base_shop__contacts') }}

),

final as (

    select
        contact_id,
        customer_id,
        sent_at,
        channel,
        strategy,
        is_holdout,
        responded,
        converted
    from checked
    where quarantine_reason is null

)

select * from final
