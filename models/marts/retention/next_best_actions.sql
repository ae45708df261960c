-- One row per customer: the recommended action (int_customer_strategies_chosen), when and how
-- to contact (int_customers_contact_scheduled), and the reason in plain words.
with

scored as (

    select * from {{ ref('int_customer_strategies_chosen') }}

),

profiles as (

    select * from {{ ref('int_customers_profiled_for_playbook') }}

),

scheduled as (

    select * from {{ ref('int_customers_contact_scheduled') }}

),

contacts as (

    select * from {{ ref('int_contacts_aggregated_to_customers') }}

),

final as (

    select
        scored.customer_id,
        scored.as_of_date,
        scored.value_tier,
        scored.primary_strategy,
        scored.companion_strategy_1,
        scored.companion_strategy_2,
        scored.strategy_combination,
        concat_ws(
            ', ',
            case
                when scored.do_not_contact_reason = 'unprofitable'
                    then 'do not contact: unprofitable over the lookback'
                when scored.do_not_contact_reason = 'open_complaint'
                    then 'do not contact: open complaint being handled'
                when scored.do_not_contact_reason = 'contacted_recently'
                    then {{ dbt.concat([
                        "'do not contact: contacted in the last '",
                        "'" ~ (var('recently_contacted_days') | int) ~ " days'",
                    ]) }}
                when scored.primary_strategy = 'no_action' then 'no strategy applies'
            end,
            coalesce(scored.value_tier, 'no purchase yet'),
            case
                when scored.uses_peak_tier
                    then {{ dbt.concat(["'down from '", 'profiles.peak_value_tier']) }}
            end,
            case
                when scored.uses_p_alive
                    then {{ dbt.concat(["'P(alive) '", cvm_percent_text('profiles.p_alive'), "'%'"]) }}
            end,
            case
                when scored.uses_share_of_wallet
                    then {{ dbt.concat(["'share of wallet '", cvm_percent_text('profiles.share_of_wallet'), "'%'"]) }}
            end,
            case
                when scored.uses_categories
                    then {{ dbt.concat([
                        'cast(profiles.categories_never_bought as ' ~ dbt.type_string() ~ ')',
                        "' categories never bought'"
                    ]) }}
            end,
            case
                when scored.uses_frequency
                    then {{ dbt.concat([
                        "'frequency score '",
                        'cast(profiles.frequency_score as ' ~ dbt.type_string() ~ ')',
                        "' of 5'"
                    ]) }}
            end,
            case
                when scored.uses_high_potential
                    then {{ dbt.concat(["'predicted '", 'profiles.predicted_value_tier']) }}
            end,
            case
                when scored.uses_dissatisfaction
                    then {{ dbt.concat([
                        'cast(profiles.complaint_count as ' ~ dbt.type_string() ~ ')',
                        "' complaints'",
                        "case when profiles.latest_nps_class = 'detractor' then ', NPS detractor' else '' end",
                    ]) }}
            end,
            case
                when scored.uses_discount_share
                    then {{ dbt.concat([
                        "'discounts '", cvm_percent_text('profiles.discount_share_of_spend'), "'% of spend'"
                    ]) }}
            end,
            case when profiles.is_loyal_price_insensitive then 'loyal, price-insensitive' end
        ) as reason_text,
        scored.is_do_not_contact,
        scored.do_not_contact_reason,
        cast(scored.eligible_strategy_count as {{ dbt.type_int() }}) as eligible_strategy_count,
        profiles.is_loyal_price_insensitive,
        scored.p_alive,
        scored.clv,
        scored.clv_if_alive,
        scored.purchase_rate_uplift,
        scored.spend_uplift,
        scored.expected_clv_uplift,
        scored.expected_gain,
        scored.contact_cost,
        scored.priority_score,
        scored.expected_return_on_cost,
        scheduled.preferred_channel,
        scheduled.preferred_channel_source,
        scheduled.expected_next_purchase_date,
        scheduled.contact_window_start_date,
        scheduled.contact_window_end_date,
        contacts.last_contacted_at
    from scored
    inner join profiles
        on scored.customer_id = profiles.customer_id
    inner join scheduled
        on scored.customer_id = scheduled.customer_id
    left join contacts
        on scored.customer_id = contacts.customer_id

)

select * from final
