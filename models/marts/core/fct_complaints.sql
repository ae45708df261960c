-- One row per accepted complaint: the grain for complaint counts and rates.
with

complaints as (

    select * from {{ ref('stg_shop__complaints') }}

),

final as (

    select
        complaint_id,
        customer_id,
        order_id,
        category,
        severity,
        compensation_amount,
        opened_at,
        resolved_at,
        cast(opened_at as date) as opened_date,
        resolved_at is not null as is_resolved
    from complaints

)

select * from final
