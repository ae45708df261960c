"""Scores every (x, t_x, T) combination with the fitted models (cvm.clv.warehouse.score_fits).

Thin on purpose, as int_clv_models_fitted: the settings come from the model's config, which
_clv__models.yml fills from the clv_* vars.
"""

from cvm.clv.warehouse import score_fits
from cvm.frames import to_engine, to_pandas


def model(dbt, session):
    dbt.config(materialized="table")
    scores = score_fits(
        to_pandas(dbt.ref("int_clv_inputs_compressed")),
        to_pandas(dbt.ref("int_clv_models_fitted")),
        horizon_days=int(dbt.config.get("clv_horizon_days")),
        annual_discount_rate=float(dbt.config.get("clv_annual_discount_rate")),
        interval=float(dbt.config.get("clv_interval_level")),
        interval_method=str(dbt.config.get("clv_interval_method")),
        draws=int(dbt.config.get("clv_bootstrap_draws")),
        holdout_days=int(dbt.config.get("clv_holdout_days")),
    )
    return to_engine(scores, session)
