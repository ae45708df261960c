-- Repeat customers' (x, m) per fit with their counts: the Gamma-Gamma likelihood's input.
-- Gamma-Gamma models positive spends: a repeat customer whose repeat days were all free orders
-- (m = 0; CDNOW has one) is left out of the fit and scored from it (the posterior mean spend
-- at m = 0 is p v / (p x + q - 1), below the population's).
with

customers as (

    select * from {{ ref('int_customers_summarised_for_clv') }}

),

final as (

    select
        fit_purpose,
        repeat_purchase_days,
        avg_repeat_spend,
        cast(count(*) as {{ dbt.type_bigint() }}) as customer_count
    from customers
    where repeat_purchase_days > 0 and avg_repeat_spend > 0
    group by fit_purpose, repeat_purchase_days, avg_repeat_spend

)

select * from final
