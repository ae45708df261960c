{%- set chosen = ['primary_row', 'companion_1_row', 'companion_2_row'] -%}
-- One row per customer: the primary strategy and up to two companions the customer gets, or
-- no_action and why not; what they are expected to return and cost (doc block
-- playbook_priority), and which playbook signals they rest on (for next_best_actions' reason).
with

customers as (

    select * from {{ ref('int_customers_valued') }}

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

final as (

    select
        *,
        concat_ws(' + ', primary_strategy, companion_strategy_1, companion_strategy_2) as strategy_combination,
        do_not_contact_reason is not null as is_do_not_contact,
        expected_gain - contact_cost as priority_score,
        expected_gain / nullif(contact_cost, 0) as expected_return_on_cost
    from scored

)

select * from final
