-- Holdout check of every purchase model's holdout fit: customers with a purchase by the holdout
-- fit's calibration end, bucketed by their calibration repeat purchase days (0..6, 7+, as in
-- FHL's figure 4), with actual and predicted repeat purchase days in the holdout period, and a
-- total row, per model; chosen marks the model customer_value is scored with. When a model's
-- holdout fit was skipped or failed, the actual purchases stay and its predictions are null,
-- with the fit's status and message.
with

customers as (

    select * from {{ ref('int_customers_summarised_for_clv') }}
    where fit_purpose = 'holdout'

),

scores as (

    select * from {{ ref('int_clv_holdout_combinations_scored') }}

),

fits as (

    select
        model,
        max(fit_status) as fit_status,
        max(fit_message) as fit_message
    from {{ ref('int_clv_holdout_models_fitted') }}
    where model != 'gamma_gamma'
    group by model

),

choice as (

    select
        model,
        max(case when chosen then 1 else 0 end) as is_chosen
    from {{ ref('int_clv_models_fitted') }}
    group by model

),

predicted as (

    select
        fits.model,
        customers.calibration_end_date,
        customers.holdout_purchase_days,
        scores.expected_purchases_holdout,
        least(customers.repeat_purchase_days, 7) as bucket_order
    from customers
    cross join fits
    left join scores
        on
            fits.model = scores.model
            and customers.repeat_purchase_days = scores.repeat_purchase_days
            and customers.recency_days = scores.recency_days
            and customers.age_days = scores.age_days
            and customers.covariates = scores.covariates

),

bucketed as (

    select
        model,
        bucket_order,
        case when bucket_order = 7 then '7+' else cast(bucket_order as {{ dbt.type_string() }}) end
            as calibration_repeat_purchase_days,
        calibration_end_date,
        holdout_purchase_days,
        expected_purchases_holdout
    from predicted
    union all
    select
        model,
        99 as bucket_order,
        'total' as calibration_repeat_purchase_days,
        calibration_end_date,
        holdout_purchase_days,
        expected_purchases_holdout
    from predicted

),

summed as (

    select
        model,
        bucket_order,
        calibration_repeat_purchase_days,
        min(calibration_end_date) as calibration_end_date,
        count(*) as customers,
        sum(holdout_purchase_days) as actual_purchase_days,
        sum(expected_purchases_holdout) as predicted_purchase_days
    from bucketed
    group by model, bucket_order, calibration_repeat_purchase_days

),

reported as (

    select
        summed.*,
        fits.fit_status,
        fits.fit_message,
        coalesce(choice.is_chosen, 0) = 1 as chosen
    from summed
    inner join fits on summed.model = fits.model
    left join choice on summed.model = choice.model

),

final as (

    select
        model,
        chosen,
        cast(bucket_order as integer) as bucket_order,
        calibration_repeat_purchase_days,
        calibration_end_date,
        {{ var('clv_holdout_days') | int }} as holdout_days,
        cast(customers as {{ dbt.type_bigint() }}) as customers,
        cast(actual_purchase_days as {{ dbt.type_bigint() }}) as actual_purchase_days,
        cast(predicted_purchase_days as {{ cvm_type_double() }}) as predicted_purchase_days,
        cast(actual_purchase_days as {{ cvm_type_double() }}) / customers as actual_per_customer,
        cast(predicted_purchase_days / customers as {{ cvm_type_double() }}) as predicted_per_customer,
        cast(predicted_purchase_days - actual_purchase_days as {{ cvm_type_double() }}) as error_purchase_days,
        cast(
            (predicted_purchase_days - actual_purchase_days) / nullif(actual_purchase_days, 0)
            as {{ cvm_type_double() }}
        ) as relative_error,
        fit_status,
        fit_message
    from reported

)

select * from final
