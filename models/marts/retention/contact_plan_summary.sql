-- The contact plan in one row: budget, spend, expected return and retained value, and how the
-- selection was solved (doc block contact_plan).
with

plan as (

    select * from {{ ref('int_contact_plan_optimised') }}

),

contacts as (

    select * from {{ ref('contact_plan') }}

),

candidates as (

    select
        count(*) as candidate_count,
        sum(contact_cost) as candidate_contact_cost,
        max(plan_method) as plan_method,
        max(plan_upper_bound) as plan_upper_bound,
        max(optimality_gap) as optimality_gap,
        max(solve_seconds) as solve_seconds
    from plan

),

selected as (

    select
        count(*) as contact_count,
        sum(contact_cost) as total_contact_cost,
        sum(expected_gain) as expected_gain,
        sum(expected_net_return) as expected_net_return,
        sum(clv) as clv_contacted,
        sum(expected_retained_value) as expected_retained_value
    from contacts

),

final as (

    select
        cast({{ var('contact_budget') }} as decimal(18, 2)) as contact_budget,
        cast(candidates.candidate_count as {{ dbt.type_bigint() }}) as candidate_count,
        cast(coalesce(candidates.candidate_contact_cost, 0) as decimal(18, 2)) as candidate_contact_cost,
        cast(selected.contact_count as {{ dbt.type_bigint() }}) as contact_count,
        cast(coalesce(selected.total_contact_cost, 0) as decimal(18, 2)) as total_contact_cost,
        coalesce(selected.expected_gain, 0) as expected_gain,
        coalesce(selected.expected_net_return, 0) as expected_net_return,
        coalesce(selected.expected_gain, 0) / nullif(selected.total_contact_cost, 0)
            as expected_return_on_cost,
        coalesce(selected.clv_contacted, 0) as clv_contacted,
        coalesce(selected.expected_retained_value, 0) as expected_retained_value,
        coalesce(candidates.plan_method, 'nothing_to_do') as plan_method,
        coalesce(candidates.plan_upper_bound, 0) as plan_upper_bound,
        coalesce(candidates.optimality_gap, 0) as optimality_gap,
        candidates.solve_seconds
    from candidates
    cross join selected

)

select * from final
