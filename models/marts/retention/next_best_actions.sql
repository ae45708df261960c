{%- set chosen = ['primary_row', 'companion_1_row', 'companion_2_row'] -%}

with

customers as (

    select * from {{ ref('customer_value') }}

),

profiles as (

    select * from {{ ref('int_customers_profiled_for_playbook') }}

),

evaluated as (

    select * from {{ ref('int_customer_strategies_evaluated') }}

),

contacts as (

    select * from {{ ref('int_contacts_aggregated_to_customers') }}

),

playbook as (

    select * from {{ ref('strategy_playbook') }}

),

eligible as (

    select * from evaluated
    where is_eligible

),

primaries as (

    -- The eligible strategy worth most on its own (net of its contact cost).
    select
        eligible.customer_id,
        eligible.strategy,
        playbook.allowed_companions,
        count(*) over (partition by eligible.customer_id) as eligible_strategy_count,
        row_number() over (
            partition by eligible.customer_id order by eligible.priority_score desc, eligible.priority_rank asc
        ) as strategy_rank
    from eligible
    inner join playbook
        on eligible.strategy = playbook.strategy

),

primary_strategies as (

    select * from primaries
    where strategy_rank = 1

),

companions as (

    -- Other eligible strategies the primary allows in the same contact, by what they add.
    select
        eligible.customer_id,
        eligible.strategy,
        row_number() over (
            partition by eligible.customer_id
            order by eligible.expected_gain desc, eligible.priority_rank asc
        ) as companion_rank
    from eligible
    inner join primary_strategies
        on
            eligible.customer_id = primary_strategies.customer_id
            and eligible.strategy != primary_strategies.strategy
            and {{ dbt.concat(["'|'", 'primary_strategies.allowed_companions', "'|'"]) }}
            like {{ dbt.concat(["'%|'", 'eligible.strategy', "'|%'"]) }}

),

do_not_contact as (

    select
        customers.customer_id,
        case
            when customers.is_unprofitable_lookback then 'unprofitable'
            when customers.open_complaint_count > 0 then 'open_complaint'
            when
                cast(contacts.last_contacted_at as date)
                > {{ dbt.dateadd('day', -(var('recently_contacted_days') | int), 'customers.as_of_date') }}
                then 'contacted_recently'
        end as do_not_contact_reason
    from customers
    left join contacts
        on customers.customer_id = contacts.customer_id

),

chosen as (

    -- no_action when the customer is not to be contacted or nothing applies.
    select
        customers.customer_id,
        do_not_contact.do_not_contact_reason,
        coalesce(primary_strategies.eligible_strategy_count, 0) as eligible_strategy_count,
        case
            when do_not_contact.do_not_contact_reason is null
                then coalesce(primary_strategies.strategy, 'no_action')
            else 'no_action'
        end as primary_strategy,
        case when do_not_contact.do_not_contact_reason is null then companion_1.strategy end
            as companion_strategy_1,
        case when do_not_contact.do_not_contact_reason is null then companion_2.strategy end
            as companion_strategy_2
    from customers
    inner join do_not_contact
        on customers.customer_id = do_not_contact.customer_id
    left join primary_strategies
        on customers.customer_id = primary_strategies.customer_id
    left join companions as companion_1
        on customers.customer_id = companion_1.customer_id and companion_1.companion_rank = 1
    left join companions as companion_2
        on customers.customer_id = companion_2.customer_id and companion_2.companion_rank = 2

),

valued as (

    -- The playbook_priority doc block: uplifts of the chosen strategies compound; the
    -- primary pays the contact.
    select
        chosen.*,
        coalesce(primary_row.cost_per_contact, 0) as contact_cost,
        (1 + coalesce(primary_row.purchase_rate_uplift, 0))
        * (1 + coalesce(companion_1_row.purchase_rate_uplift, 0))
        * (1 + coalesce(companion_2_row.purchase_rate_uplift, 0)) - 1 as purchase_rate_uplift,
        (1 + coalesce(primary_row.spend_uplift, 0))
        * (1 + coalesce(companion_1_row.spend_uplift, 0))
        * (1 + coalesce(companion_2_row.spend_uplift, 0)) - 1 as spend_uplift,
        {{ cvm_any_uses('max_tier_rank', chosen) }} as uses_tier,
        {{ cvm_any_uses('max_peak_tier_rank', chosen) }} as uses_peak_tier,
        {{ cvm_any_uses('min_p_alive', chosen) }} or {{ cvm_any_uses('max_p_alive', chosen) }}
            as uses_p_alive,
        {{ cvm_any_uses('max_share_of_wallet', chosen) }} as uses_share_of_wallet,
        {{ cvm_any_uses('min_categories_never_bought', chosen) }} as uses_categories,
        {{ cvm_any_uses('max_frequency_score', chosen) }} as uses_frequency,
        coalesce(
            primary_row.requires_high_potential
            or companion_1_row.requires_high_potential
            or companion_2_row.requires_high_potential,
            false
        ) as uses_high_potential,
        {{ cvm_any_uses('min_dissatisfaction_signals', chosen) }} as uses_dissatisfaction,
        {{ cvm_any_uses('min_discount_share', chosen) }} as uses_discount_share
    from chosen
    left join playbook as primary_row
        on chosen.primary_strategy = primary_row.strategy
    left join playbook as companion_1_row
        on chosen.companion_strategy_1 = companion_1_row.strategy
    left join playbook as companion_2_row
        on chosen.companion_strategy_2 = companion_2_row.strategy

),

uplifted as (

    select
        valued.*,
        customers.as_of_date,
        customers.value_tier,
        customers.p_alive,
        customers.clv,
        customers.clv / nullif(customers.p_alive, 0) as clv_if_alive,
        coalesce(
            customers.clv / nullif(customers.p_alive, 0)
            * ((1 + valued.purchase_rate_uplift) * (1 + valued.spend_uplift) - 1),
            0
        ) as expected_clv_uplift
    from valued
    inner join customers
        on valued.customer_id = customers.customer_id

),

scored as (

    select
        *,
        coalesce(expected_clv_uplift * p_alive, 0) as expected_gain
    from uplifted

),

timed as (

    -- The contact_timing doc block: the customer's own rhythm, else the BG/NBD rate if alive.
    select
        customers.customer_id,
        case
            when customers.avg_days_between_purchases is not null
                then cast({{ dbt.dateadd(
                    'day',
                    'cast(round(least(customers.avg_days_between_purchases, 730)) as ' ~ dbt.type_int() ~ ')',
                    'customers.last_purchase_date'
                ) }} as date)
            when customers.expected_purchases_365d > 0 and customers.p_alive > 0
                then cast({{ dbt.dateadd(
                    'day',
                    'cast(round(least(365 * customers.p_alive / customers.expected_purchases_365d, 730)) as '
                        ~ dbt.type_int() ~ ')',
                    'customers.as_of_date'
                ) }} as date)
        end as expected_next_purchase_date
    from customers

),

windowed as (

    select
        timed.customer_id,
        timed.expected_next_purchase_date,
        case
            when timed.expected_next_purchase_date is not null
                then greatest(
                    cast({{ dbt.dateadd('day', 1, 'customers.as_of_date') }} as date),
                    cast({{ dbt.dateadd(
                        'day', -(var('contact_lead_days') | int), 'timed.expected_next_purchase_date'
                    ) }} as date)
                )
        end as contact_window_start_date
    from timed
    inner join customers
        on timed.customer_id = customers.customer_id

),

final as (

    select
        scored.customer_id,
        scored.as_of_date,
        scored.value_tier,
        scored.primary_strategy,
        scored.companion_strategy_1,
        scored.companion_strategy_2,
        concat_ws(
            ' + ', scored.primary_strategy, scored.companion_strategy_1, scored.companion_strategy_2
        ) as strategy_combination,
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
        scored.do_not_contact_reason is not null as is_do_not_contact,
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
        scored.expected_gain - scored.contact_cost as priority_score,
        scored.expected_gain / nullif(scored.contact_cost, 0) as expected_return_on_cost,
        coalesce(contacts.preferred_contact_channel, customers.acquisition_channel) as preferred_channel,
        case
            when contacts.preferred_contact_channel is not null then 'contact_history'
            when customers.acquisition_channel is not null then 'acquisition_channel'
        end as preferred_channel_source,
        windowed.expected_next_purchase_date,
        windowed.contact_window_start_date,
        cast({{ dbt.dateadd('day', var('contact_lead_days') | int, 'windowed.contact_window_start_date') }} as date)
            as contact_window_end_date,
        contacts.last_contacted_at
    from scored
    inner join customers
        on scored.customer_id = customers.customer_id
    inner join profiles
        on scored.customer_id = profiles.customer_id
    inner join windowed
        on scored.customer_id = windowed.customer_id
    left join contacts
        on scored.customer_id = contacts.customer_id

)

select * from final
