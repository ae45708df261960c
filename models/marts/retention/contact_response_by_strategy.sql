-- Response and conversion of sent contacts against the random holdout, by strategy, value tier
-- at contact and channel, with roll-ups ('all') per strategy and overall (doc block
-- contact_measurement).
with

contacts as (

    select * from {{ ref('fct_contacts') }}

),

counted as (

    select
        coalesce(strategy, 'all') as strategy,
        coalesce(value_tier_at_contact, 'all') as value_tier_at_contact,
        coalesce(channel, 'all') as channel,
        sum(case when is_sent then 1 else 0 end) as sent_contacts,
        sum(case when responded then 1 else 0 end) as responses,
        sum(case when is_sent and converted then 1 else 0 end) as sent_conversions,
        sum(case when is_holdout then 1 else 0 end) as holdout_contacts,
        sum(case when is_holdout and converted then 1 else 0 end) as holdout_conversions
    from contacts
    group by grouping sets (
        (strategy, value_tier_at_contact, channel),
        (strategy),
        ()
    )

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
