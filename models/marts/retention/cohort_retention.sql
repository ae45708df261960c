-- Monthly acquisition cohorts: of the customers whose first completed purchase fell in a
-- month, how many bought again (and how much) in each later month, up to the as-of month.
with

purchases as (

    select * from {{ ref('int_orders_costed') }}
    where is_completed

),

first_purchases as (

    select * from {{ ref('int_orders_aggregated_to_customers') }}
    where purchase_count_lifetime > 0

),

cohorts as (

    select
        customer_id,
        cast({{ dbt.date_trunc('month', 'first_purchase_date') }} as date) as cohort_month
    from first_purchases

),

cohort_sizes as (

    select
        cohort_month,
        count(*) as cohort_customers
    from cohorts
    group by cohort_month

),

months as (

    select distinct order_month from purchases

),

-- Every cohort x every month since it began, so months without a purchase show 0, not a gap.
cohort_months as (

    select
        cohort_sizes.cohort_month,
        cohort_sizes.cohort_customers,
        months.order_month
    from cohort_sizes
    inner join months
        on cohort_sizes.cohort_month <= months.order_month

),

activity as (

    select
        cohorts.cohort_month,
        purchases.order_month,
        count(distinct purchases.customer_id) as purchasing_customers,
        sum(purchases.net_revenue) as net_revenue
    from purchases
    inner join cohorts
        on purchases.customer_id = cohorts.customer_id
    group by cohorts.cohort_month, purchases.order_month

),

final as (

    select
        cohort_months.cohort_month,
        cohort_months.order_month,
        cast(
            {{ dbt.datediff('cohort_months.cohort_month', 'cohort_months.order_month', 'month') | trim }}
            as integer
        ) as months_since_first_purchase,
        cohort_months.cohort_customers,
        coalesce(activity.purchasing_customers, 0) as purchasing_customers,
        cast(coalesce(activity.purchasing_customers, 0) as {{ cvm_type_double() }})
        / cohort_months.cohort_customers as retention_rate,
        cast(coalesce(activity.net_revenue, 0) as decimal(18, 2)) as net_revenue,
        {{ cvm_money_per(
            'sum(coalesce(activity.net_revenue, 0)) over (partition by cohort_months.cohort_month '
            ~ 'order by cohort_months.order_month rows between unbounded preceding and current row)',
            'cohort_months.cohort_customers'
        ) }} as cumulative_net_revenue_per_customer
    from cohort_months
    left join activity
        on
            cohort_months.cohort_month = activity.cohort_month
            and cohort_months.order_month = activity.order_month

)

select * from final
