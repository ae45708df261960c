-- The value_tiers seed's thresholds of the chosen value basis as non-overlapping bands
-- [lower, upper): a customer's value falls in exactly one, so tiers are assigned with one
-- range join (macro cvm_in_tier_band) and no aggregation.
with

value_tiers as (

    select * from {{ ref('value_tiers') }}

),

value_basis as (

    select * from {{ ref('int_value_basis_chosen') }}

),

final as (

    select
        value_tiers.value_basis,
        value_tiers.value_tier,
        value_tiers.tier_rank,
        value_tiers.min_value_lookback as lower_value,
        lead(value_tiers.min_value_lookback) over (order by value_tiers.min_value_lookback) as upper_value
    from value_tiers
    inner join value_basis
        on value_tiers.value_basis = value_basis.value_basis

)

select * from final
