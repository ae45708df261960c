-- Exactly one purchase model is chosen (var clv_model, or the candidate auto chose), and it is
-- the same in both fits' rows: customer_value's scores, the holdout report's chosen rows and the
-- build summary all read that one model.
with

parameters as (

    select * from {{ ref('clv_model_parameters') }}

),

chosen as (

    select
        count(distinct model) as chosen_models,
        count(distinct fit_purpose) as fits_with_the_choice
    from parameters
    where chosen and model != 'gamma_gamma'

),

fits as (

    select count(distinct fit_purpose) as fits
    from parameters

)

select
    chosen.chosen_models,
    chosen.fits_with_the_choice,
    fits.fits
from chosen
cross join fits
where chosen.chosen_models != 1 or chosen.fits_with_the_choice != fits.fits
