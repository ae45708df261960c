-- Tier migration matrix per pair of consecutive months: how many customers moved from each
-- tier (New and Inactive included) to each tier, and the transition probability (each
-- from-tier's row sums to 1).
with

migrations as (

    select * from {{ ref('fct_tier_migrations') }}

),

counted as (

    select
        from_period_month,
        to_period_month,
        from_tier,
        to_tier,
        count(*) as customers
    from migrations
    group by from_period_month, to_period_month, from_tier, to_tier

),

final as (

    select
        from_period_month,
        to_period_month,
        from_tier,
        to_tier,
        customers,
        cast(customers as {{ cvm_type_double() }})
        / sum(customers) over (partition by from_period_month, from_tier) as transition_probability
    from counted

)

select * from final
