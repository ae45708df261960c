with

checked as (

    select * from {{ ref('base_shop__surveys') }}

),

final as (

    select
        response_id,
        customer_id,
        responded_at,
        nps_score,
        csat_score,
        share_of_wallet_pct
    from checked
    where quarantine_reason is null

)

select * from final
