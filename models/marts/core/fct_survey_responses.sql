-- One row per accepted survey response, with the NPS class of its answer.
with

responses as (

    select * from {{ ref('stg_shop__surveys') }}

),

final as (

    select
        response_id,
        customer_id,
        nps_score,
        {{ cvm_nps_class('nps_score') }} as nps_class,
        csat_score,
        share_of_wallet_pct,
        responded_at,
        cast(responded_at as date) as response_date
    from responses

)

select * from final
