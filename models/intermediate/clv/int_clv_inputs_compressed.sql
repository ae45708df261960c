-- The distinct (x, t_x, T) combinations per fit with their customer counts: all the BG/NBD
-- likelihood needs, and the grain the Python model scores at. avg_repeat_spend is the mean
-- over the combination's customers, which scores their mean CLV exactly (CLV is linear in m).
with

customers as (

    select * from {{ ref('int_customers_summarised_for_clv') }}

),

final as (

    select
        fit_purpose,
        repeat_purchase_days,
        recency_days,
        age_days,
        cast(count(*) as {{ dbt.type_bigint() }}) as customer_count,
        avg(avg_repeat_spend) as avg_repeat_spend
    from customers
    group by fit_purpose, repeat_purchase_days, recency_days, age_days

)

select * from final
