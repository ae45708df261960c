-- One row per retention contact (sent or held out), with the customer's value tier at the end
-- of the month before the contact: what measurement compares (doc block contact_measurement).
with

contacts as (

    select * from {{ ref('stg_shop__contacts') }}

),

tier_months as (

    select * from {{ ref('fct_customer_tier_months') }}

),

dated as (

    select
        *,
        cast(sent_at as date) as sent_date,
        cast({{ dbt.dateadd('month', -1, dbt.date_trunc('month', 'sent_at')) }} as date) as tier_month
    from contacts

),

final as (

    select
        dated.contact_id,
        dated.customer_id,
        dated.sent_at,
        dated.sent_date,
        dated.is_holdout,
        dated.responded,
        dated.converted,
        coalesce(dated.channel, 'unknown') as channel,
        coalesce(dated.strategy, 'unknown') as strategy,
        coalesce(tier_months.value_tier, 'No tier') as value_tier_at_contact,
        not dated.is_holdout as is_sent
    from dated
    left join tier_months
        on
            dated.customer_id = tier_months.customer_id
            and dated.tier_month = tier_months.period_month

)

select * from final
