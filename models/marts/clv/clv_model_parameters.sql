-- The fitted parameters of both fits as BI reads them: the Python models' output without the
-- covariance rows they keep for the scoring step, with the scoring fit's model choice, under
-- an enforced contract.
with

scoring_fits as (

    select * from {{ ref('int_clv_models_fitted') }}

),

holdout_fits as (

    select * from {{ ref('int_clv_holdout_models_fitted') }}

),

fitted as (

    select * from scoring_fits
    union all
    select * from holdout_fits

),

-- The scoring fit's choice applies to a model's rows of both fits.
choice as (

    select
        model,
        max(case when chosen then 1 else 0 end) as is_chosen,
        max(holdout_rmse) as holdout_rmse,
        max(choice_reason) as choice_reason
    from scoring_fits
    group by model

),

final as (

    select
        fitted.fit_purpose,
        fitted.model,
        fitted.parameter,
        fitted.value,
        fitted.standard_error,
        fitted.interval_level,
        fitted.lower,
        fitted.upper,
        fitted.unit,
        fitted.log_likelihood,
        fitted.customer_count,
        fitted.fit_seconds,
        fitted.converged,
        fitted.iterations,
        fitted.fit_status,
        fitted.fit_message,
        choice.holdout_rmse,
        fitted.bic,
        choice.choice_reason,
        -- Placed as the contract orders it (dbt selects the contract's columns in its order).
        coalesce(choice.is_chosen, 0) = 1 as chosen
    from fitted
    left join choice on fitted.model = choice.model

)

select * from final
