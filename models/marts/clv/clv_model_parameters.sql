-- The fitted parameters as BI reads them: the Python model's output without the covariance
-- rows it keeps for the scoring step, under an enforced contract.
with

fitted as (

    select * from {{ ref('int_clv_models_fitted') }}

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
        n_customers,
        fit_seconds,
        converged,
        iterations,
        fit_status
    from fitted

)

select * from final
