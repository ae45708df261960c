-- Response and conversion of sent contacts against the random holdout, by strategy, value tier
-- at contact and channel, with roll-ups ('all') per strategy and overall (doc block
-- contact_measurement).
with

contacts as (

    select * from {{ ref('fct_contacts') }}

),

cells as (

    select
        strategy,
        value_tier_at_contact,
        channel,
        sum(case when is_sent then 1 else 0 end) as sent_contacts,
        sum(case when responded then 1 else 0 end) as responses,
        sum(case when is_sent and converted then 1 else 0 end) as sent_conversions,
        sum(case when is_holdout then 1 else 0 end) as holdout_contacts,
        sum(case when is_holdout and converted then 1 else 0 end) as holdout_conversions
    from contacts
    group by strategy, value_tier_at_contact, channel

),

per_strategy as (

    select
        strategy,
        'all' as value_tier_at_contact,
        'all' as channel,
        sum(sent_contacts) as sent_contacts,
        sum(responses) as responses,
        sum(sent_conversions) as sent_conversions,
        sum(holdout_contacts) as holdout_contacts,
        sum(holdout_conversions) as holdout_conversions
    from cells
    group by strategy

),

overall as (

    select
        'all' as strategy,
        'all' as value_tier_at_contact,
        'all' as channel,
        sum(sent_contacts) as sent_contacts,
        sum(responses) as responses,
        sum(sent_conversions) as sent_conversions,
        sum(holdout_contacts) as holdout_contacts,
        sum(holdout_conversions) as holdout_conversions
    from cells
    having count(*) > 0

),

counted as (

    select * from cells
    union all
    select * from per_strategy
    union all
    select * from overall

),

final as (

    select
        strategy,
        value_tier_at_contact,
        channel,
        cast(sent_contacts as {{ dbt.type_bigint() }}) as sent_contacts,
        cast(responses as {{ dbt.type_bigint() }}) as responses,
        cast(responses as {{ cvm_type_double() }}) / nullif(sent_contacts, 0) as response_rate,
        cast(sent_conversions as {{ dbt.type_bigint() }}) as sent_conversions,
        cast(sent_conversions as {{ cvm_type_double() }}) / nullif(sent_contacts, 0) as sent_conversion_rate,
        cast(holdout_contacts as {{ dbt.type_bigint() }}) as holdout_contacts,
        cast(holdout_conversions as {{ dbt.type_bigint() }}) as holdout_conversions,
        cast(holdout_conversions as {{ cvm_type_double() }}) / nullif(holdout_contacts, 0)
            as holdout_conversion_rate,
        100 * (
            cast(sent_conversions as {{ cvm_type_double() }}) / nullif(sent_contacts, 0)
            - cast(holdout_conversions as {{ cvm_type_double() }}) / nullif(holdout_contacts, 0)
        ) as conversion_uplift_pp
    from counted

)

select * from final
