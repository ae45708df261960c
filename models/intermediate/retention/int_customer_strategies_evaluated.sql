-- One row per customer and playbook strategy (no_action aside): whether the customer is
-- eligible (every threshold filled in on the strategy's row holds; discount-led strategies never
-- for loyal price-insensitive customers) and what the strategy alone would be worth.
with

customers as (

    select * from {{ ref('int_customers_profiled_for_playbook') }}

),

playbook as (

    select * from {{ ref('strategy_playbook') }}

),

paired as (

    select
        customers.customer_id,
        playbook.strategy,
        playbook.priority_rank,
        playbook.purchase_rate_uplift,
        playbook.spend_uplift,
        playbook.cost_per_contact,
        playbook.is_discount_led,
        customers.clv,
        customers.p_alive,
        customers.is_loyal_price_insensitive,
        -- Each threshold holds or is not set; an unknown signal (null) never qualifies.
        coalesce(
            customers.p_alive is not null
            and (playbook.min_p_alive is null or customers.p_alive >= playbook.min_p_alive)
            and (playbook.max_p_alive is null or customers.p_alive < playbook.max_p_alive)
            and (
                playbook.max_share_of_wallet is null
                or customers.share_of_wallet <= playbook.max_share_of_wallet
            )
            and (
                playbook.min_categories_never_bought is null
                or customers.categories_never_bought >= playbook.min_categories_never_bought
            )
            and (
                playbook.max_frequency_score is null
                or customers.frequency_score <= playbook.max_frequency_score
            )
            and (playbook.max_tier_rank is null or customers.tier_rank <= playbook.max_tier_rank)
            and (
                playbook.max_peak_tier_rank is null
                or customers.peak_tier_rank <= playbook.max_peak_tier_rank
            )
            and (
                playbook.min_tiers_dropped is null
                or customers.tiers_dropped >= playbook.min_tiers_dropped
            )
            and (not coalesce(playbook.requires_high_potential, false) or customers.is_high_potential)
            and (
                playbook.min_dissatisfaction_signals is null
                or customers.dissatisfaction_signals >= playbook.min_dissatisfaction_signals
            )
            and (
                playbook.min_discount_share is null
                or customers.discount_share_of_spend >= playbook.min_discount_share
            ),
            false
        ) as meets_thresholds
    from customers
    cross join playbook
    where playbook.strategy != 'no_action'

),

final as (

    select
        customer_id,
        strategy,
        priority_rank,
        meets_thresholds,
        purchase_rate_uplift,
        spend_uplift,
        cost_per_contact,
        meets_thresholds and is_discount_led and is_loyal_price_insensitive as is_withheld_as_discount,
        meets_thresholds and not (is_discount_led and is_loyal_price_insensitive) as is_eligible,
        -- This strategy alone: see the playbook_priority doc block.
        coalesce(clv * ((1 + purchase_rate_uplift) * (1 + spend_uplift) - 1), 0) as expected_gain,
        coalesce(clv * ((1 + purchase_rate_uplift) * (1 + spend_uplift) - 1), 0) - cost_per_contact
            as priority_score
    from paired

)

select * from final
