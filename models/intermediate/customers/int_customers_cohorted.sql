with

customers as (

    select * from {{ ref('stg_shop__customers') }}

),

orders as (

    select * from {{ ref('stg_shop__orders') }}

),

first_orders as (

    select
        customer_id,
        min(ordered_at) as first_ordered_at,
        max(ordered_at) as last_ordered_at
    from orders
    group by customer_id

),

final as (

    -- Email and name are dropped here: no PII leaves staging.
    select
        customers.customer_id,
        customers.country,
        customers.acquisition_channel,
        customers.email is not null as has_email,
        customers.signup_date,
        cast({{ dbt.date_trunc('month', 'customers.signup_date') }} as date) as signup_month,
        first_orders.first_ordered_at,
        first_orders.last_ordered_at,
        cast({{ dbt.date_trunc('month', 'first_orders.first_ordered_at') }} as date) as cohort_month,
        first_orders.customer_id is not null as has_ordered
    from customers
    left join first_orders
        on customers.customer_id = first_orders.customer_id

)

select * from final
