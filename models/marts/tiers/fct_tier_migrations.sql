-- One row per customer per pair of consecutive months of the tier history: where the
-- customer was, where they went, and in which direction.
with

history as (

    select * from {{ ref('fct_customer_tier_months') }}

),

tier_bands as (

    select * from {{ ref('int_value_tier_bands') }}

),

paired as (

    select
        customer_id,
        period_month as to_period_month,
        value_tier as to_tier,
        is_active as is_active_after,
        lag(period_month) over by_month as from_period_month,
        lag(value_tier) over by_month as from_tier,
        lag(is_active) over by_month as is_active_before
    from history
    window by_month as (partition by customer_id order by period_month)

),

final as (

    select
        paired.customer_id,
        paired.from_period_month,
        paired.to_period_month,
        paired.from_tier,
        paired.to_tier,
        from_rank.tier_rank as from_tier_rank,
        to_rank.tier_rank as to_tier_rank,
        paired.is_active_before as was_active,
        -- Between threshold tiers by rank; into Inactive is down, out of it up; moves that
        -- involve New or Unrated have no value order and are 'other'.
        case
            when paired.from_tier = paired.to_tier then 'same'
            when paired.to_tier = 'Inactive' then 'down'
            when paired.from_tier = 'Inactive' then 'up'
            when to_rank.tier_rank > from_rank.tier_rank then 'down'
            when to_rank.tier_rank < from_rank.tier_rank then 'up'
            else 'other'
        end as direction,
        -- Churn: active at the earlier month end, no longer at the next (see active_customer).
        paired.is_active_before and not paired.is_active_after as is_churned
    from paired
    left join tier_bands as from_rank
        on paired.from_tier = from_rank.value_tier
    left join tier_bands as to_rank
        on paired.to_tier = to_rank.value_tier
    where paired.from_period_month is not null

)

select * from final
