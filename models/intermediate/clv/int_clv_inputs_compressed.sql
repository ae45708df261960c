-- The distinct (x, t_x, T) combinations per fit with their customer counts: all the purchase
-- models' likelihoods need, and the grain the Python model scores at. For the holdout fit, the
-- sums of the actual holdout purchase days and of their squares give each model's holdout
-- error (cvm.clv.warehouse.holdout_errors) without a row per customer. avg_repeat_spend is
-- the mean over the combination's customers, which scores their mean CLV exactly (CLV is
-- linear in m).
with

customers as (

    select * from {{ ref('int_customers_summarised_for_clv') }}

),

final as (

    select
        fit_purpose,
        covariates,
        repeat_purchase_days,
        recency_days,
        age_days,
        cast(count(*) as {{ dbt.type_bigint() }}) as customer_count,
        avg(avg_repeat_spend) as avg_repeat_spend,
        cast(sum(holdout_purchase_days) as {{ dbt.type_bigint() }}) as holdout_purchase_days,
        cast(sum(holdout_purchase_days * holdout_purchase_days) as {{ dbt.type_bigint() }})
            as holdout_purchase_days_squared
    from customers
    group by fit_purpose, covariates, repeat_purchase_days, recency_days, age_days

)

select * from final
