"""Every purchase model (BG/NBD, Pareto/NBD, MBG/NBD) and Gamma-Gamma fitted on the holdout
inputs (calibrated clv_holdout_days before the as-of date).

Thin on purpose: the work is cvm.clv.dbt_models.fit (engine: the cvm.clv package). dbt reads
the refs and config keys from this file, so they are spelled out here.
"""

from cvm.clv.dbt_models import fit


def model(dbt, session):
    dbt.config(materialized="table")
    return fit(
        session,
        "holdout",
        dbt.ref("int_clv_inputs_compressed"),
        dbt.ref("int_clv_repeat_spend_compressed"),
        interval=dbt.config.get("clv_interval_level"),
        min_repeat_customers=dbt.config.get("clv_min_repeat_customers"),
        strict=dbt.config.get("clv_strict_fit"),
    )
