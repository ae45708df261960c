with

checked as (

    select * from {{ ref('base_shop__credit_notes') }}

),

final as (

    select
        credit_note_id,
        order_id,
        customer_id,
        credited_at,
        amount
    from checked
    where quarantine_reason is null

)

select * from final
