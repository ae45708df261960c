-- Repeat customers' (x, m) per fit with their counts: the Gamma-Gamma likelihood's input.
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
    where repeat_purchase_days > 0
    group by fit_purpose, repeat_purchase_days, avg_repeat_spend

)

select * from final
