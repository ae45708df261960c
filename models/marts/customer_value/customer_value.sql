with

customers as (

    select * from {{ ref('dim_customers') }}

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

tenure_bands as (

    select * from {{ ref('tenure_bands') }}

),

joined as (

    select
        customers.customer_id,
        customers.country,
        customers.acquisition_channel,
        customers.cohort_month,
        customers.signup_date,
        {{ cvm_as_of_date() }} as as_of_date,
        purchases.first_purchase_date,
        purchases.last_purchase_date,
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
        coalesce(complaints.complaint_count, 0) as complaint_count,
        coalesce(complaints.open_complaint_count, 0) as open_complaint_count,
        complaints.median_hours_to_resolve,
        complaints.last_complaint_at,
        complaints.last_complaint_category,
        coalesce(complaints.complaint_compensation_lookback, 0) as complaint_compensation_lookback,
        coalesce(surveys.survey_response_count, 0) as survey_response_count,
        surveys.latest_nps_score,
        surveys.avg_csat_score,
        surveys.latest_reported_share_of_wallet_pct
    from customers
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

tenured as (

    select
        *,
        {{ dbt.datediff('first_purchase_date', 'as_of_date', 'day') | trim }} as tenure_days,
        {{ dbt.datediff('signup_date', 'as_of_date', 'day') | trim }} as days_since_signup,
        -- Whole months: a month counts once its day-of-month is reached again (31 Jan -> 28 Feb is 0).
        {{ dbt.datediff('first_purchase_date', 'as_of_date', 'month') | trim }}
        - case
            when extract(day from as_of_date) < extract(day from first_purchase_date) then 1 else 0
        end as tenure_months
    from joined

),

final as (

    select
        tenured.customer_id,
        tenured.country,
        tenured.acquisition_channel,
        tenured.cohort_month,
        tenured.as_of_date,
        tenured.signup_date,
        tenured.first_purchase_date,
        tenured.last_purchase_date,
        tenured.days_since_signup,
        tenured.tenure_days,
        cast(tenured.tenure_months as integer) as tenure_months,
        tenure_bands.tenure_band,
        tenured.orders_placed_count,
        tenured.purchase_count_lifetime,
        cast(tenured.net_revenue_lifetime as decimal(18, 2)) as net_revenue_lifetime,
        cast(tenured.net_revenue_lifetime / nullif(tenured.purchase_count_lifetime, 0) as decimal(18, 2))
            as avg_order_value,
        cast(
            {{ dbt.datediff('tenured.first_purchase_date', 'tenured.last_purchase_date', 'day') | trim }}
            / nullif(tenured.purchase_count_lifetime - 1, 0) as {{ cvm_type_double() }}
        ) as avg_days_between_purchases,
        {{ var('rfm_lookback_days') | int }} as lookback_days,
        tenured.recency_days,
        tenured.purchase_count_lookback as frequency_lookback,
        cast(tenured.net_revenue_lookback as decimal(18, 2)) as monetary_lookback,
        tenured.recency_score,
        tenured.frequency_score,
        tenured.monetary_score,
        tenured.frequency_monetary_score,
        tenured.rfm_cell,
        tenured.rfm_segment,
        cast(tenured.gross_sales_lookback as decimal(18, 2)) as gross_sales_lookback,
        cast(tenured.discount_amount_lookback as decimal(18, 2)) as discount_amount_lookback,
        cast(tenured.refund_amount_lookback as decimal(18, 2)) as refund_amount_lookback,
        cast(tenured.complaint_compensation_lookback as decimal(18, 2)) as complaint_compensation_lookback,
        case
            when tenured.purchases_without_cost_lookback = 0
                then cast(tenured.cost_of_goods_lookback as decimal(18, 2))
        end as cost_of_goods_lookback,
        case
            when tenured.purchases_without_cost_lookback = 0
                then cast(
                    tenured.net_revenue_lookback
                    - tenured.cost_of_goods_lookback
                    - tenured.complaint_compensation_lookback as decimal(18, 2)
                )
        end as gross_margin_lookback,
        tenured.purchases_without_cost_lookback = 0
        and tenured.net_revenue_lookback - tenured.cost_of_goods_lookback
        - tenured.complaint_compensation_lookback < 0 as is_unprofitable_lookback,
        tenured.distinct_product_count,
        tenured.distinct_category_count,
        tenured.discount_share_of_spend,
        tenured.complaint_count,
        tenured.open_complaint_count,
        tenured.median_hours_to_resolve,
        tenured.last_complaint_at,
        tenured.last_complaint_category,
        tenured.survey_response_count,
        tenured.latest_nps_score,
        case
            when tenured.latest_nps_score >= 9 then 'promoter'
            when tenured.latest_nps_score >= 7 then 'passive'
            when tenured.latest_nps_score >= 0 then 'detractor'
        end as latest_nps_class,
        tenured.avg_csat_score,
        tenured.latest_reported_share_of_wallet_pct
    from tenured
    left join tenure_bands
        on tenured.tenure_days between tenure_bands.min_tenure_days and tenure_bands.max_tenure_days

)

select * from final
