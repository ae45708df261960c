"""The purchase model (var clv_model; auto: every candidate, the one with the lowest holdout
error chosen) and Gamma-Gamma fitted on the scoring inputs (calibrated up to the as-of date).

Thin on purpose: the work is cvm.clv.dbt_models.fit (engine: the cvm.clv package). dbt reads
the refs and config keys from this file, so they are spelled out here.
"""

from cvm.clv.dbt_models import fit


def model(dbt, session):
    dbt.config(materialized="table")
    return fit(
        session,
        "scoring",
        dbt.ref("int_clv_inputs_compressed"),
        dbt.ref("int_clv_repeat_spend_compressed"),
        interval=dbt.config.get("clv_interval_level"),
        min_repeat_customers=dbt.config.get("clv_min_repeat_customers"),
        strict=dbt.config.get("clv_strict_fit"),
        clv_model=dbt.config.get("clv_model"),
        holdout_scores=dbt.ref("int_clv_holdout_combinations_scored"),
    )
