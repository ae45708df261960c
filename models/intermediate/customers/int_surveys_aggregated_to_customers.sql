-- Per customer: the latest answer to each survey question, and the average satisfaction.
with

surveys as (

    select * from {{ ref('stg_shop__surveys') }}

),

final as (

    select
        customer_id,
        count(*) as survey_response_count,
        max_by(nps_score, case when nps_score is not null then responded_at end) as latest_nps_score,
        avg(csat_score) as avg_csat_score,
        max_by(share_of_wallet_pct, case when share_of_wallet_pct is not null then responded_at end)
            as latest_reported_share_of_wallet_pct,
        max(responded_at) as last_responded_at
    from surveys
    group by customer_id

)

select * from final
