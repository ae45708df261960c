-- One row per customer with what the playbook's eligibility thresholds read (see the
-- strategy_playbook seed): the customer value mart's signals plus breadth against the
-- catalogue, the best tier of the recent tier history, dissatisfaction and loyalty.
with

customers as (

    select * from {{ ref('int_customers_valued') }}

),

products as (

    select * from {{ ref('stg_shop__products') }}

),

tier_months as (

    select * from {{ ref('int_customer_months_tiered') }}

),

tier_bands as (

    select * from {{ ref('int_value_tier_bands') }}

),

catalogue as (

    select count(distinct category) as category_count
    from products

),

lowest_tier as (

    select max(tier_rank) as tier_rank
    from tier_bands

),

recent_tier_months as (

    -- The tier_window_months latest months of the history, up to the as-of month.
    select
        tier_months.customer_id,
        tier_bands.tier_rank
    from tier_months
    inner join tier_bands
        on tier_months.value_tier = tier_bands.value_tier
    where
        tier_months.period_month > {{ dbt.dateadd(
            'month', -(var('tier_window_months') | int), dbt.date_trunc('month', cvm_as_of_date())
        ) }}

),

peak_tiers as (

    select
        customer_id,
        min(tier_rank) as peak_tier_rank
    from recent_tier_months
    group by customer_id

),

final as (

    select
        customers.customer_id,
        customers.as_of_date,
        customers.value_tier,
        current_tier.tier_rank,
        peak_tiers.peak_tier_rank,
        peak_tier.value_tier as peak_value_tier,
        -- New, Inactive and Unrated count as one rank below the lowest tier.
        coalesce(current_tier.tier_rank, lowest_tier.tier_rank + 1) - peak_tiers.peak_tier_rank
            as tiers_dropped,
        customers.p_alive,
        customers.clv,
        customers.expected_purchases_365d,
        -- The playbook's share-of-wallet rules read the modelled estimate (doc block share_of_wallet).
        customers.share_of_wallet_modelled as share_of_wallet,
        customers.frequency_score,
        customers.is_high_potential,
        customers.predicted_value_tier,
        customers.distinct_category_count,
        greatest(catalogue.category_count - coalesce(customers.distinct_category_count, 0), 0)
            as categories_never_bought,
        customers.complaint_count,
        customers.latest_nps_class,
        customers.avg_csat_score,
        customers.complaint_count
        + case when customers.latest_nps_class = 'detractor' then 1 else 0 end
        + case when customers.avg_csat_score <= 2 then 1 else 0 end as dissatisfaction_signals,
        customers.discount_share_of_spend,
        -- See the loyal_price_insensitive doc block; no line data = no sign of price sensitivity.
        coalesce(
            customers.value_tier in ({{ "'" ~ var('loyal_tiers') | join("', '") ~ "'" }})
            and customers.frequency_score >= {{ var('loyal_min_frequency_score') | int }}
            and coalesce(customers.discount_share_of_spend, 0)
            <= {{ var('price_insensitive_max_discount_share') | float }},
            false
        ) as is_loyal_price_insensitive
    from customers
    cross join catalogue
    cross join lowest_tier
    left join tier_bands as current_tier
        on customers.value_tier = current_tier.value_tier
    left join peak_tiers
        on customers.customer_id = peak_tiers.customer_id
    left join tier_bands as peak_tier
        on peak_tiers.peak_tier_rank = peak_tier.tier_rank

)

select * from final
