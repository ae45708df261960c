-- The fitted parameters of both fits as BI reads them: the Python models' output without the
-- covariance rows they keep for the scoring step, under an enforced contract.
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

final as (

    select
        fit_purpose,
        model,
        parameter,
        value,
        standard_error,
        interval_level,
        lower,
        upper,
        unit,
        log_likelihood,
        customer_count,
        fit_seconds,
        converged,
        iterations,
        fit_status,
        fit_message
    from fitted

)

select * from final
