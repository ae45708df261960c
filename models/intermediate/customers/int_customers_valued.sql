with

customers as (

    select * from {{ ref('int_customers_cohorted') }}

),

purchases as (

    select * from {{ ref('int_orders_aggregated_to_customers') }}

),

rfm as (

    select * from {{ ref('int_customers_scored_rfm') }}

),

breadth as (

    select * from {{ ref('int_order_items_aggregated_to_customers') }}

),

complaints as (

    select * from {{ ref('int_complaints_aggregated_to_customers') }}

),

surveys as (

    select * from {{ ref('int_surveys_aggregated_to_customers') }}

),

tenure as (

    select * from {{ ref('int_customers_tenured') }}

),

wallet as (

    select * from {{ ref('int_customers_wallet_estimated') }}

),

tier_bands as (

    select * from {{ ref('int_value_tier_bands') }}

),

value_basis as (

    select * from {{ ref('int_value_basis_chosen') }}

),

clv as (

    select * from {{ ref('int_customers_clv_scored') }}

),

lowest_tier as (

    select max(tier_rank) as tier_rank from tier_bands

),

joined as (

    select
        customers.customer_id,
        customers.country,
        customers.acquisition_channel,
        customers.cohort_month,
        customers.signup_date,
        tenure.as_of_date,
        tenure.days_since_signup,
        tenure.tenure_days,
        tenure.tenure_months,
        tenure.tenure_band,
        purchases.first_purchase_date,
        purchases.last_purchase_date,
        rfm.recency_days,
        rfm.recency_score,
        rfm.frequency_score,
        rfm.monetary_score,
        rfm.frequency_monetary_score,
        rfm.rfm_cell,
        rfm.rfm_segment,
        breadth.distinct_product_count,
        breadth.distinct_category_count,
        breadth.discount_share_of_spend,
        complaints.median_hours_to_resolve,
        complaints.last_complaint_at,
        complaints.last_complaint_category,
        surveys.latest_nps_score,
        surveys.avg_csat_score,
        surveys.latest_reported_share_of_wallet_pct,
        wallet.lookalike_group,
        wallet.wallet_modelled,
        wallet.share_of_wallet_modelled,
        wallet.wallet_headroom_modelled,
        wallet.wallet_reported,
        wallet.share_of_wallet_reported,
        wallet.wallet_headroom_reported,
        coalesce(purchases.orders_placed_count, 0) as orders_placed_count,
        coalesce(purchases.purchase_count_lifetime, 0) as purchase_count_lifetime,
        coalesce(purchases.net_revenue_lifetime, 0) as net_revenue_lifetime,
        coalesce(purchases.purchase_count_lookback, 0) as purchase_count_lookback,
        coalesce(purchases.net_revenue_lookback, 0) as net_revenue_lookback,
        coalesce(purchases.gross_sales_lookback, 0) as gross_sales_lookback,
        coalesce(purchases.discount_amount_lookback, 0) as discount_amount_lookback,
        coalesce(purchases.refund_amount_lookback, 0) as refund_amount_lookback,
        coalesce(purchases.cost_of_goods_lookback, 0) as cost_of_goods_lookback,
        coalesce(purchases.purchases_without_cost_lookback, 0) as purchases_without_cost_lookback,
        coalesce(complaints.complaint_count, 0) as complaint_count,
        coalesce(complaints.open_complaint_count, 0) as open_complaint_count,
        coalesce(complaints.complaint_compensation_lookback, 0) as complaint_compensation_lookback,
        coalesce(surveys.survey_response_count, 0) as survey_response_count
    from customers
    inner join tenure
        on customers.customer_id = tenure.customer_id
    inner join wallet
        on customers.customer_id = wallet.customer_id
    left join purchases
        on customers.customer_id = purchases.customer_id
    left join rfm
        on customers.customer_id = rfm.customer_id
    left join breadth
        on customers.customer_id = breadth.customer_id
    left join complaints
        on customers.customer_id = complaints.customer_id
    left join surveys
        on customers.customer_id = surveys.customer_id

),

margined as (

    select
        joined.*,
        value_basis.value_basis,
        {{ cvm_known_where_costed('joined.cost_of_goods_lookback', 'joined.purchases_without_cost_lookback') }}
            as known_cost_of_goods_lookback,
        {{ cvm_known_where_costed(
            'joined.net_revenue_lookback - joined.cost_of_goods_lookback - joined.complaint_compensation_lookback',
            'joined.purchases_without_cost_lookback'
        ) }} as gross_margin_lookback
    from joined
    cross join value_basis

),

valued as (

    select
        *,
        {{ cvm_value_on_basis(
            'value_basis', 'gross_margin_lookback', 'net_revenue_lookback', 'complaint_compensation_lookback'
        ) }} as value_lookback
    from margined

),

tiered as (

    select
        valued.*,
        {{ cvm_value_tier(
            'valued.first_purchase_date', 'valued.as_of_date', 'valued.purchase_count_lookback',
            'valued.value_lookback', 'tier_bands.value_tier'
        ) }} as value_tier
    from valued
    left join tier_bands
        on {{ cvm_in_tier_band('valued.value_lookback', 'tier_bands') }}

),

final as (

    select
        tiered.customer_id,
        tiered.country,
        tiered.acquisition_channel,
        tiered.cohort_month,
        tiered.as_of_date,
        tiered.signup_date,
        tiered.first_purchase_date,
        tiered.last_purchase_date,
        tiered.days_since_signup,
        tiered.tenure_days,
        tiered.tenure_months,
        tiered.tenure_band,
        tiered.orders_placed_count,
        tiered.purchase_count_lifetime,
        cast(tiered.net_revenue_lifetime as decimal(18, 2)) as net_revenue_lifetime,
        {{ cvm_money_per('tiered.net_revenue_lifetime', 'tiered.purchase_count_lifetime') }} as avg_order_value,
        cast(
            {{ cvm_days_between('tiered.first_purchase_date', 'tiered.last_purchase_date') }}
            / nullif(tiered.purchase_count_lifetime - 1, 0) as {{ cvm_type_double() }}
        ) as avg_days_between_purchases,
        {{ var('lookback_days') | int }} as lookback_days,
        tiered.recency_days,
        tiered.purchase_count_lookback as frequency_lookback,
        cast(tiered.net_revenue_lookback as decimal(18, 2)) as monetary_lookback,
        tiered.recency_score,
        tiered.frequency_score,
        tiered.monetary_score,
        tiered.frequency_monetary_score,
        tiered.rfm_cell,
        tiered.rfm_segment,
        cast(tiered.gross_sales_lookback as decimal(18, 2)) as gross_sales_lookback,
        cast(tiered.discount_amount_lookback as decimal(18, 2)) as discount_amount_lookback,
        cast(tiered.refund_amount_lookback as decimal(18, 2)) as refund_amount_lookback,
        cast(tiered.complaint_compensation_lookback as decimal(18, 2)) as complaint_compensation_lookback,
        cast(tiered.known_cost_of_goods_lookback as decimal(18, 2)) as cost_of_goods_lookback,
        cast(tiered.gross_margin_lookback as decimal(18, 2)) as gross_margin_lookback,
        tiered.gross_margin_lookback < 0 as is_unprofitable_lookback,
        tiered.value_basis,
        cast(tiered.value_lookback as decimal(18, 2)) as value_lookback,
        tiered.value_tier,
        clv.p_alive,
        clv.expected_purchases_30d,
        clv.expected_purchases_90d,
        clv.expected_purchases_365d,
        clv.expected_avg_spend,
        {{ var('clv_horizon_days') | int }} as clv_horizon_days,
        clv.clv,
        clv.clv_lower,
        clv.clv_upper,
        clv.clv_basis,
        coalesce(clv.clv_status, 'no_purchase') as clv_status,
        case
            when clv.customer_id is null
                then 'no purchase (an order with a status in var clv_purchase_statuses) by the as-of date'
            else clv.clv_status_reason
        end as clv_status_reason,
        clv.predicted_value_tier,
        -- Predicted above today's tier; New, Inactive and Unrated count as the lowest tier.
        coalesce(
            clv.predicted_tier_rank < coalesce(current_tier.tier_rank, lowest_tier.tier_rank), false
        ) as is_high_potential,
        tiered.distinct_product_count,
        tiered.distinct_category_count,
        tiered.discount_share_of_spend,
        tiered.complaint_count,
        tiered.open_complaint_count,
        tiered.median_hours_to_resolve,
        tiered.last_complaint_at,
        tiered.last_complaint_category,
        tiered.survey_response_count,
        tiered.latest_nps_score,
        {{ cvm_nps_class('tiered.latest_nps_score') }} as latest_nps_class,
        tiered.avg_csat_score,
        tiered.latest_reported_share_of_wallet_pct,
        tiered.lookalike_group,
        tiered.wallet_modelled,
        tiered.share_of_wallet_modelled,
        tiered.wallet_headroom_modelled,
        tiered.wallet_reported,
        tiered.share_of_wallet_reported,
        tiered.wallet_headroom_reported
    from tiered
    cross join lowest_tier
    left join clv
        on tiered.customer_id = clv.customer_id
    left join tier_bands as current_tier
        on tiered.value_tier = current_tier.value_tier

)

select * from final
