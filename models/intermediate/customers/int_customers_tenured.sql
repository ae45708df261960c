-- Per customer: how long they have been a customer, as of the as-of date.
with

customers as (

    select * from {{ ref('int_customers_cohorted') }}

),

purchases as (

    select * from {{ ref('int_orders_aggregated_to_customers') }}

),

as_of as (

    select as_of_date from {{ ref('base_shop__as_of_date') }}

),

tenure_bands as (

    select * from {{ ref('tenure_bands') }}

),

measured as (

    select
        customers.customer_id,
        as_of.as_of_date,
        {{ cvm_days_between('customers.signup_date', 'as_of.as_of_date') }} as days_since_signup,
        {{ cvm_days_between('purchases.first_purchase_date', 'as_of.as_of_date') }} as tenure_days,
        {{ cvm_whole_months_between('purchases.first_purchase_date', 'as_of.as_of_date') }} as tenure_months
    from customers
    cross join as_of
    left join purchases
        on customers.customer_id = purchases.customer_id

),

final as (

    select
        measured.customer_id,
        measured.as_of_date,
        measured.days_since_signup,
        measured.tenure_days,
        cast(measured.tenure_months as integer) as tenure_months,
        tenure_bands.tenure_band
    from measured
    left join tenure_bands
        on measured.tenure_days between tenure_bands.min_tenure_days and tenure_bands.max_tenure_days

)

select * from final
