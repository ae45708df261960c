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

roll_up_levels as (

    select 'strategy' as roll_up_level
    union all
    select 'total' as roll_up_level

),

rolled_up as (

    -- One row per strategy (every tier and channel) and one for all contacts.
    select
        case when roll_up_levels.roll_up_level = 'strategy' then cells.strategy else 'all' end
            as strategy,
        'all' as value_tier_at_contact,
        'all' as channel,
        sum(cells.sent_contacts) as sent_contacts,
        sum(cells.responses) as responses,
        sum(cells.sent_conversions) as sent_conversions,
        sum(cells.holdout_contacts) as holdout_contacts,
        sum(cells.holdout_conversions) as holdout_conversions
    from cells
    cross join roll_up_levels
    group by case when roll_up_levels.roll_up_level = 'strategy' then cells.strategy else 'all' end

),

counted as (

    select * from cells
    union all
    select * from rolled_up

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
