{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='fail',
        pre_hook="{{ cvm_delete_reprocessed_tier_months('to_period_month') }}",
        post_hook="{{ cvm_record_tier_rules() }}",
    )
}}
-- depends_on: {{ ref('base_shop__as_of_date') }}
-- depends_on: {{ ref('int_value_basis_chosen') }}
-- One row per customer per pair of consecutive months of the tier history: where the
-- customer was, where they went, and in which direction. Incremental like the tier history
-- (doc block incremental_orders): the pre-hook drops the pairs into the months it rebuilt.
with

history as (

    select * from {{ ref('fct_customer_tier_months') }}
    {% if is_incremental() %}
    -- The pairs after the last month kept; that month is their first from-month (a customer's
    -- months have no gaps).
    where period_month >= (
        select coalesce(max(to_period_month), cast('0001-01-01' as date)) from {{ this }}
    )
    {% endif %}

),

tier_bands as (

    select * from {{ ref('int_value_tier_bands') }}

),

paired as (

    select
        customer_id,
        value_basis,
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
        paired.value_basis,
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
