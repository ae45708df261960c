-- Both value bases name the same tiers with the same ranks, so that the playbook, the downgrade
-- alerts (var downgrade_alert_tiers) and the tier history read the same on either basis:
-- returns every (tier, rank) that one basis has and the other lacks.
with

value_tiers as (

    select * from {{ ref('value_tiers') }}

),

tiers as (

    select distinct
        value_tier,
        tier_rank
    from value_tiers

),

bases as (

    select distinct value_basis from value_tiers

),

expected as (

    select
        bases.value_basis,
        tiers.value_tier,
        tiers.tier_rank
    from bases
    cross join tiers

),

final as (

    select
        expected.value_basis,
        expected.value_tier,
        expected.tier_rank
    from expected
    left join value_tiers
        on
            expected.value_basis = value_tiers.value_basis
            and expected.value_tier = value_tiers.value_tier
            and expected.tier_rank = value_tiers.tier_rank
    where value_tiers.value_tier is null

)

select * from final
