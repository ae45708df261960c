"""Fits BG/NBD and Gamma-Gamma on the compressed CLV inputs (cvm.clv.warehouse.fit_models);
clv_model_parameters publishes the result.

Thin on purpose: the engine is the cvm.clv package; cvm.frames converts dbt.ref's relation
(DuckDB here, Spark on Databricks) to pandas and the result back to the engine's frame type.
"""

from cvm.clv.warehouse import fit_models
from cvm.frames import to_engine, to_pandas


def model(dbt, session):
    dbt.config(materialized="table")
    parameters = fit_models(
        to_pandas(dbt.ref("int_clv_inputs_compressed")),
        to_pandas(dbt.ref("int_clv_repeat_spend_compressed")),
        interval=float(dbt.config.get("clv_interval_level")),
        min_repeat_customers=int(dbt.config.get("clv_min_repeat_customers")),
    )
    return to_engine(parameters, session)
