-- Per customer: complaints over the lifetime, what is still open, how fast they were resolved,
-- the latest category, and the compensation paid within the lookback window.
with

complaints as (

    select * from {{ ref('stg_shop__complaints') }}

),

timed as (

    select
        *,
        -- From whole seconds, which every engine counts alike (minute boundaries differ).
        cast({{ dbt.datediff('opened_at', 'resolved_at', 'second') | trim }} as {{ cvm_type_double() }}) / 3600
            as hours_to_resolve,
        cast(opened_at as date) >= {{ cvm_lookback_start_date() }} as is_in_lookback
    from complaints

),

final as (

    select
        customer_id,
        count(*) as complaint_count,
        cast(sum(case when resolved_at is null then 1 else 0 end) as {{ dbt.type_bigint() }}) as open_complaint_count,
        percentile_cont(0.5) within group (order by hours_to_resolve) as median_hours_to_resolve,
        max(opened_at) as last_complaint_at,
        max_by(category, opened_at) as last_complaint_category,
        sum(case when is_in_lookback then compensation_amount else 0 end) as complaint_compensation_lookback
    from timed
    group by customer_id

)

select * from final
