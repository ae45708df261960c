"""Every scoring (x, t_x, T) combination scored with the fits of int_clv_models_fitted.

Thin on purpose: the work is cvm.clv.dbt_models.score. dbt reads the refs and config keys
from this file, so they are spelled out here; _clv__models.yml fills them from the clv_* vars.
"""

from cvm.clv.dbt_models import score


def model(dbt, session):
    dbt.config(materialized="table")
    settings = {
        "clv_horizon_days": dbt.config.get("clv_horizon_days"),
        "clv_annual_discount_rate": dbt.config.get("clv_annual_discount_rate"),
        "clv_interval_level": dbt.config.get("clv_interval_level"),
        "clv_interval_method": dbt.config.get("clv_interval_method"),
        "clv_bootstrap_draws": dbt.config.get("clv_bootstrap_draws"),
        "clv_holdout_days": dbt.config.get("clv_holdout_days"),
    }
    inputs = dbt.ref("int_clv_inputs_compressed")
    return score(session, "scoring", inputs, dbt.ref("int_clv_models_fitted"), settings)
