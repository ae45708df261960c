with

checked as (

    select * from {{ ref('base_shop__complaints') }}

),

final as (

    select
        complaint_id,
        customer_id,
        order_id,
        opened_at,
        resolved_at,
        category,
        severity,
        compensation_amount
    from checked
    where quarantine_reason is null

)

select * from final
