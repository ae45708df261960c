-- The value_tiers seed as non-overlapping margin bands [lower, upper): a customer's margin
-- falls in exactly one, so tiers are assigned with one range join and no aggregation.
with

value_tiers as (

    select * from {{ ref('value_tiers') }}

),

final as (

    select
        value_tier,
        tier_rank,
        min_gross_margin_lookback as lower_gross_margin,
        lead(min_gross_margin_lookback) over (order by min_gross_margin_lookback) as upper_gross_margin
    from value_tiers

)

select * from final
