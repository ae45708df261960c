-- Every customer with an accepted order appears in the customer value mart (exactly once:
-- customer_id is also tested unique). Returns the customers that are missing.
with

ordering_customers as (

    select distinct customer_id from {{ ref('fct_orders') }}

),

mart as (

    select customer_id from {{ ref('customer_value') }}

),

final as (

    select ordering_customers.customer_id
    from ordering_customers
    left join mart
        on ordering_customers.customer_id = mart.customer_id
    where mart.customer_id is null

)

select * from final
