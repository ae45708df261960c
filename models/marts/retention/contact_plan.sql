-- The customers the contact plan contacts, in priority order, with what each contact costs and
-- is expected to return (doc block contact_plan).
with

plan as (

    select * from {{ ref('int_contact_plan_optimised') }}

),

actions as (

    select * from {{ ref('next_best_actions') }}

),

selected as (

    select
        actions.customer_id,
        actions.primary_strategy,
        actions.strategy_combination,
        actions.reason_text,
        actions.value_tier,
        actions.preferred_channel,
        actions.contact_window_start_date,
        actions.contact_window_end_date,
        actions.clv,
        actions.expected_gain,
        actions.contact_cost,
        actions.priority_score,
        actions.expected_return_on_cost
    from plan
    inner join actions
        on cast(plan.customer_id as {{ dbt.type_string() }}) = actions.customer_id
    where plan.is_selected

),

final as (

    select
        customer_id,
        cast(
            row_number() over (order by priority_score desc, customer_id asc) as {{ dbt.type_int() }}
        ) as contact_rank,
        primary_strategy,
        strategy_combination,
        reason_text,
        value_tier,
        preferred_channel,
        contact_window_start_date,
        contact_window_end_date,
        contact_cost,
        cast(
            sum(contact_cost) over (
                order by priority_score desc, customer_id asc rows between unbounded preceding and current row
            ) as decimal(18, 2)
        ) as cumulative_contact_cost,
        expected_gain,
        priority_score as expected_net_return,
        expected_return_on_cost,
        clv,
        clv + expected_gain as expected_retained_value
    from selected

)

select * from final
