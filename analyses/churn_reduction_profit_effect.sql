-- What would cutting churn by 5 percentage points be worth on this customer base?
-- The literature quotes +25 % to +125 % profit (Reichheld & Sasser 1990; Reichheld 1996); this
-- computes it from the data instead:
--   r  observed annual retention: of the customers with a completed purchase in the year before
--      the lookback window, the share that purchased again in the lookback window (365 days
--      ending on the as-of date);
--   m  the mean gross margin of a retained customer over the lookback window;
--   d  var clv_annual_discount_rate.
-- A customer active today is retained each further year with probability r and then earns m,
-- so the present value of the active base's future profit is N x m x r / (1 + d - r)
-- (geometric retention, margins at the end of each year). Churn 5 points lower means
-- r' = r + 0.05: the next year's profit grows by 0.05 / r, the base's lifetime profit by
-- [r' / (1 + d - r')] / [r / (1 + d - r)] - 1. Run:
--   dbt compile --select churn_reduction_profit_effect, then run the compiled SQL
--   (target/compiled/.../analyses/churn_reduction_profit_effect.sql) against the warehouse.
{%- set churn_reduction = 0.05 %}
{%- set lookback = var('lookback_days') | int %}

with

orders as (

    select * from {{ ref('fct_orders') }}

),

customers as (

    select * from {{ ref('customer_value') }}

),

purchasers as (

    select
        orders.customer_id,
        max(
            case
                when
                    orders.order_date <= {{ dbt.dateadd('day', -lookback, 'customers.as_of_date') }}
                    and orders.order_date > {{ dbt.dateadd('day', -2 * lookback, 'customers.as_of_date') }}
                    then 1
                else 0
            end
        ) as bought_in_prior_year,
        max(
            case
                when orders.order_date > {{ dbt.dateadd('day', -lookback, 'customers.as_of_date') }}
                    then 1
                else 0
            end
        ) as bought_in_last_year
    from orders
    inner join customers
        on orders.customer_id = customers.customer_id
    where orders.is_completed
    group by orders.customer_id

),

retention as (

    select
        sum(bought_in_prior_year) as prior_year_customers,
        sum(bought_in_prior_year * bought_in_last_year) as retained_customers,
        sum(bought_in_last_year) as active_customers,
        cast(sum(bought_in_prior_year * bought_in_last_year) as {{ cvm_type_double() }})
        / nullif(sum(bought_in_prior_year), 0) as annual_retention_rate
    from purchasers

),

margins as (

    select avg(customers.gross_margin_lookback) as margin_per_retained_customer
    from customers
    inner join purchasers
        on customers.customer_id = purchasers.customer_id
    where
        purchasers.bought_in_prior_year = 1
        and purchasers.bought_in_last_year = 1
        and customers.gross_margin_lookback is not null

),

inputs as (

    select
        retention.prior_year_customers,
        retention.retained_customers,
        retention.active_customers,
        retention.annual_retention_rate,
        margins.margin_per_retained_customer,
        {{ var('clv_annual_discount_rate') }} as discount_rate,
        least(retention.annual_retention_rate + {{ churn_reduction }}, 1) as improved_retention_rate
    from retention
    cross join margins

),

final as (

    select
        prior_year_customers,
        retained_customers,
        active_customers,
        annual_retention_rate,
        improved_retention_rate,
        margin_per_retained_customer,
        discount_rate,
        1 - annual_retention_rate as annual_churn_rate,
        active_customers * margin_per_retained_customer * annual_retention_rate
        / (1 + discount_rate - annual_retention_rate) as base_future_profit,
        active_customers * margin_per_retained_customer * improved_retention_rate
        / (1 + discount_rate - improved_retention_rate) as improved_future_profit,
        100 * (improved_retention_rate - annual_retention_rate) / annual_retention_rate
            as next_year_profit_effect_pct,
        100 * (
            (improved_retention_rate / (1 + discount_rate - improved_retention_rate))
            / (annual_retention_rate / (1 + discount_rate - annual_retention_rate))
            - 1
        ) as lifetime_profit_effect_pct
    from inputs

)

select * from final
