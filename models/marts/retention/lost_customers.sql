-- Customers who lapsed: they purchased before, but not in the lookback window ending on the
-- as-of date (value tier Inactive). With what they told us before they went quiet: complaints
-- and survey answers from before the window, and one reason to summarise them by.
with

customers as (

    select * from {{ ref('customer_value') }}
    where purchase_count_lifetime > 0 and frequency_lookback = 0

),

complaints as (

    select * from {{ ref('stg_shop__complaints') }}
    where cast(opened_at as date) < {{ cvm_lookback_start_date() }}

),

surveys as (

    select * from {{ ref('stg_shop__surveys') }}
    where cast(responded_at as date) < {{ cvm_lookback_start_date() }}

),

complaints_before_lapse as (

    select
        customer_id,
        count(*) as complaint_count_before_lapse,
        max_by(category, opened_at) as last_complaint_category_before_lapse,
        max_by(severity, opened_at) as last_complaint_severity_before_lapse
    from complaints
    group by customer_id

),

surveys_before_lapse as (

    select
        customer_id,
        max_by(nps_score, case when nps_score is not null then responded_at end) as last_nps_score_before_lapse,
        max_by(csat_score, case when csat_score is not null then responded_at end) as last_csat_score_before_lapse
    from surveys
    group by customer_id

),

final as (

    select
        customers.customer_id,
        customers.country,
        customers.acquisition_channel,
        customers.cohort_month,
        customers.first_purchase_date,
        customers.last_purchase_date,
        customers.recency_days,
        customers.purchase_count_lifetime,
        customers.net_revenue_lifetime,
        customers.rfm_segment,
        complaints_before_lapse.last_complaint_category_before_lapse,
        complaints_before_lapse.last_complaint_severity_before_lapse,
        surveys_before_lapse.last_nps_score_before_lapse,
        surveys_before_lapse.last_csat_score_before_lapse,
        coalesce(complaints_before_lapse.complaint_count_before_lapse, 0) as complaint_count_before_lapse,
        {{ cvm_nps_class('surveys_before_lapse.last_nps_score_before_lapse') }} as last_nps_class_before_lapse,
        -- One reason per customer: the last complaint says most; else an unhappy survey answer.
        case
            when complaints_before_lapse.last_complaint_category_before_lapse is not null
                then {{ dbt.concat(["'complaint: '", 'complaints_before_lapse.last_complaint_category_before_lapse']) }}
            when surveys_before_lapse.last_nps_score_before_lapse <= 6 then 'detractor, no complaint'
            when surveys_before_lapse.last_csat_score_before_lapse <= 2 then 'dissatisfied, no complaint'
            else 'no signal'
        end as lapse_reason
    from customers
    left join complaints_before_lapse
        on customers.customer_id = complaints_before_lapse.customer_id
    left join surveys_before_lapse
        on customers.customer_id = surveys_before_lapse.customer_id

)

select * from final
