"""The lifetime-value models on a real build, checked against independent computations:
the SQL inputs against pandas from the order facts, the compressed fit against a per-customer
fit, the mart's CLV against the Python engine, and the dbt Python models on Spark against
what they wrote on DuckDB."""

from __future__ import annotations

import importlib.util
import json

import duckdb
import numpy as np
import pandas as pd
import pytest

from cvm import PROJECT_DIR
from cvm.clv import gamma_gamma, lifetime_value, purchase
from cvm.clv.warehouse import fits_from_parameters, fitted_model
from cvm.frames import to_pandas

pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore:PySpark does not yet fully support pandas:FutureWarning"),
]

PROJECT_VARS = {  # the defaults of dbt_project.yml that these tests recompute with
    "lookback_days": 365,
    "clv_horizon_days": 365,
    "clv_annual_discount_rate": 0.1,
    "clv_interval_level": 0.8,
    "clv_holdout_days": 182,
}


@pytest.fixture(scope="module")
def warehouse(parquet_build) -> duckdb.DuckDBPyConnection:
    assert parquet_build.result.returncode == 0, parquet_build.result.stdout[-3000:]
    with duckdb.connect(str(parquet_build.warehouse), read_only=True) as con:
        yield con


def frame(con: duckdb.DuckDBPyConnection, sql: str) -> pd.DataFrame:
    return to_pandas(con.sql(sql))


def fhl_summary(orders: pd.DataFrame, end: pd.Timestamp) -> pd.DataFrame:
    """x, t_x, T, m per customer from completed orders up to ``end``, in plain pandas."""
    days = (
        orders[orders["is_completed"] & (orders["order_date"] <= end)]
        .groupby(["customer_id", "order_date"], as_index=False)["order_total"]
        .sum()
    )
    first = days.groupby("customer_id")["order_date"].transform("min")
    repeat = days[days["order_date"] > first]
    per = days.groupby("customer_id").agg(first=("order_date", "min"), last=("order_date", "max"))
    per["x"] = days.groupby("customer_id").size() - 1
    per["t_x"] = (per["last"] - per["first"]).dt.days
    per["T"] = (end - per["first"]).dt.days
    per["m"] = repeat.groupby("customer_id")["order_total"].mean()
    return per[["x", "t_x", "T", "m"]]


@pytest.fixture(scope="module")
def orders(warehouse) -> pd.DataFrame:
    out = frame(warehouse, "select customer_id, order_date, is_completed, order_total, "
                "net_revenue, cost_of_goods from marts.fct_orders")  # fmt: skip
    out["order_date"] = pd.to_datetime(out["order_date"])
    return out


@pytest.fixture(scope="module")
def as_of(warehouse) -> pd.Timestamp:
    [(value,)] = warehouse.execute(
        "select as_of_date from staging.base_shop__as_of_date"
    ).fetchall()
    return pd.Timestamp(value)


def summary_from_sql(warehouse, purpose: str) -> pd.DataFrame:
    return frame(
        warehouse,
        "select customer_id, repeat_purchase_days as x, recency_days as t_x, age_days as T, "
        "avg_repeat_spend as m, holdout_purchase_days from "
        f"intermediate.int_customers_summarised_for_clv where fit_purpose = '{purpose}'",
    ).set_index("customer_id")


@pytest.mark.parametrize("purpose", ["scoring", "holdout"])
def test_sql_inputs_follow_the_fhl_definitions(warehouse, orders, as_of, purpose):
    end = as_of - pd.Timedelta(days=PROJECT_VARS["clv_holdout_days"] if purpose == "holdout" else 0)
    expected = fhl_summary(orders, end)
    actual = summary_from_sql(warehouse, purpose).loc[expected.index]
    assert len(actual) == len(expected) > 1_000
    for column in ("x", "t_x", "T"):
        np.testing.assert_array_equal(actual[column].to_numpy(float), expected[column].to_numpy())
    np.testing.assert_allclose(actual["m"].to_numpy(float), expected["m"].to_numpy(), rtol=1e-12)
    if purpose == "holdout":
        later = fhl_summary(orders, as_of)  # purchase days by the as-of date
        holdout = later["x"].loc[expected.index] - expected["x"]
        np.testing.assert_array_equal(actual["holdout_purchase_days"].to_numpy(float), holdout)


def test_compressed_fit_equals_the_per_customer_fit(warehouse):
    """The Python model fits distinct (x, t_x, T) with counts; fitting every customer's row
    (no compression) must give the same estimates, for every candidate purchase model."""
    customers = summary_from_sql(warehouse, "scoring")
    parameters = frame(warehouse, "select * from intermediate.int_clv_models_fitted")
    assert len(frame(warehouse, "select * from intermediate.int_clv_inputs_compressed "
                     "where fit_purpose = 'scoring'")) < len(customers)  # fmt: skip
    history = [customers[c].to_numpy(float) for c in ("x", "t_x", "T")]
    for model in purchase.MODELS:
        compressed = fitted_model(parameters, "scoring", model)
        assert compressed is not None, model
        direct = purchase.fit(model, *history)
        np.testing.assert_allclose(compressed.estimates, direct.estimates, rtol=1e-5)
    _, gg = fits_from_parameters(parameters, "scoring")
    repeaters = customers[customers["x"] > 0]
    direct_gg = gamma_gamma.fit_gamma_gamma(repeaters["x"].to_numpy(float), repeaters["m"])
    np.testing.assert_allclose(gg.estimates, direct_gg.estimates, rtol=1e-5)


def test_mart_clv_equals_the_python_engine_per_customer(warehouse, orders, as_of):
    customers = summary_from_sql(warehouse, "scoring")
    parameters = frame(warehouse, "select * from intermediate.int_clv_models_fitted")
    fit, gg = fits_from_parameters(parameters, "scoring")  # the chosen purchase model
    window = orders[
        orders["is_completed"]
        & orders["cost_of_goods"].notna()
        & (orders["order_date"] > as_of - pd.Timedelta(days=PROJECT_VARS["lookback_days"]))
    ]
    margin = (window["net_revenue"] - window["cost_of_goods"]).sum() / window["net_revenue"].sum()
    args = [customers[c].to_numpy(float) for c in ("x", "t_x", "T", "m")]
    settings = {
        "horizon_days": PROJECT_VARS["clv_horizon_days"],
        "annual_discount_rate": PROJECT_VARS["clv_annual_discount_rate"],
    }
    expected = lifetime_value.customer_lifetime_value(fit, gg, *args, margin=margin, **settings)
    mart = frame(
        warehouse,
        "select customer_id, p_alive, expected_purchases_90d, expected_avg_spend, clv, "
        "clv_lower, clv_upper from marts.customer_value where p_alive is not null",
    ).set_index("customer_id").loc[customers.index]  # fmt: skip
    np.testing.assert_allclose(mart["clv"], expected, rtol=1e-9)
    np.testing.assert_allclose(
        mart["p_alive"], purchase.probability_alive(fit, *args[:3]), rtol=1e-12
    )
    np.testing.assert_allclose(
        mart["expected_purchases_90d"],
        purchase.conditional_expected_purchases(fit, 90, *args[:3]),
        rtol=1e-9,
    )
    np.testing.assert_allclose(
        mart["expected_avg_spend"],
        gamma_gamma.conditional_expected_spend(gg, args[0], args[3]),
        rtol=1e-9,
    )
    # Alone in their combination, a customer's interval is exactly the engine's.
    alone = customers.groupby(["x", "t_x", "T"])["x"].transform("size") == 1
    lower, upper = lifetime_value.clv_interval_delta(
        fit, gg, *(a[alone.to_numpy()] for a in args), margin=margin,
        interval=PROJECT_VARS["clv_interval_level"], **settings,
    )  # fmt: skip
    assert alone.sum() > 100
    np.testing.assert_allclose(mart.loc[alone, "clv_lower"], lower, rtol=1e-6)
    np.testing.assert_allclose(mart.loc[alone, "clv_upper"], upper, rtol=1e-6)


def test_holdout_report_adds_up(warehouse):
    """Per purchase model: the buckets add up to the total, which counts every customer of the
    holdout fit and their actual purchases; one model is marked chosen."""
    report = frame(warehouse, "select * from marts.clv_holdout_report order by model, bucket_order")
    holdout = summary_from_sql(warehouse, "holdout")
    assert sorted(report["model"].unique()) == ["bg_nbd", "mbg_nbd", "pareto_nbd"]
    assert report.groupby("model")["chosen"].first().sum() == 1
    for _, rows in report.groupby("model"):
        total = rows[rows["calibration_repeat_purchase_days"] == "total"].iloc[0]
        buckets = rows[rows["calibration_repeat_purchase_days"] != "total"]
        assert total["customers"] == len(holdout) == buckets["customers"].sum()
        assert total["actual_purchase_days"] == holdout["holdout_purchase_days"].sum()
        assert total["predicted_purchase_days"] == pytest.approx(
            buckets["predicted_purchase_days"].sum()
        )
        # Every model is close to the data (generated by BG/NBD): the total within 10 %.
        assert abs(total["relative_error"]) < 0.10, rows


# ----------------------------------------------------------------------------------------------
# The dbt Python models on Spark


def load_model(relative_path: str):
    path = PROJECT_DIR / relative_path
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.model


class FakeConfig:
    def __init__(self, values: dict):
        self._values = values

    def __call__(self, **_: object) -> None:
        pass

    def get(self, key: str, default: object = None) -> object:
        return self._values.get(key, default)


class FakeDbt:
    """The part of dbt's Python-model API the models use: ref(), config() and config.get()."""

    def __init__(self, refs: dict, config: dict):
        self._refs = refs
        self.config = FakeConfig(config)

    def ref(self, name: str):
        return self._refs[name]


def config_from_manifest(parquet_build, model: str) -> dict:
    manifest = json.loads((parquet_build.warehouse.parent / "target" / "manifest.json").read_text())
    node = manifest["nodes"][f"model.customer_value_warehouse.{model}"]
    return node["config"]


def spark_table(spark, warehouse, relation: str):
    return spark.createDataFrame(warehouse.sql(f"select * from {relation}").to_arrow_table())


@pytest.mark.parametrize(
    ("model", "path", "refs", "keys"),
    [
        (
            "int_clv_models_fitted",
            "models/intermediate/clv/int_clv_models_fitted.py",
            {
                "int_clv_inputs_compressed": "intermediate.int_clv_inputs_compressed",
                "int_clv_repeat_spend_compressed": "intermediate.int_clv_repeat_spend_compressed",
                "int_clv_holdout_combinations_scored": (
                    "intermediate.int_clv_holdout_combinations_scored"
                ),
            },
            ["fit_purpose", "model", "parameter"],
        ),
        (
            "int_clv_holdout_models_fitted",
            "models/intermediate/clv/int_clv_holdout_models_fitted.py",
            {
                "int_clv_inputs_compressed": "intermediate.int_clv_inputs_compressed",
                "int_clv_repeat_spend_compressed": "intermediate.int_clv_repeat_spend_compressed",
            },
            ["fit_purpose", "model", "parameter"],
        ),
        (
            "int_clv_combinations_scored",
            "models/intermediate/clv/int_clv_combinations_scored.py",
            {
                "int_clv_inputs_compressed": "intermediate.int_clv_inputs_compressed",
                "int_clv_models_fitted": "intermediate.int_clv_models_fitted",
            },
            ["fit_purpose", "model", "repeat_purchase_days", "recency_days", "age_days"],
        ),
    ],
)
def test_python_models_on_spark_match_duckdb(
    spark, warehouse, parquet_build, model, path, refs, keys
):
    """Run the model file itself with Spark DataFrames as dbt.ref's results (what dbt-spark
    and Databricks pass): it must return a Spark DataFrame equal to the DuckDB build's table."""
    config = config_from_manifest(parquet_build, model)
    dbt = FakeDbt({name: spark_table(spark, warehouse, rel) for name, rel in refs.items()}, config)
    result = load_model(path)(dbt, spark)
    assert type(result).__module__.startswith("pyspark")
    on_spark = to_pandas(result).sort_values(keys, ignore_index=True)
    on_duckdb = frame(warehouse, f"select * from intermediate.{model}").sort_values(
        keys, ignore_index=True
    )
    ignore = [c for c in ("fit_seconds",) if c in on_duckdb.columns]  # wall time
    pd.testing.assert_frame_equal(
        on_spark.drop(columns=ignore), on_duckdb.drop(columns=ignore), check_dtype=False,
        rtol=1e-9,
    )  # fmt: skip


def test_customers_first_seen_in_the_holdout_period_are_left_out_of_the_holdout_fit(warehouse):
    """They have no calibration history: the holdout fit and report must not count them, and
    the scoring fit must (they bought before the as-of date)."""
    rows = warehouse.execute(
        """
        select count(*) filter (where holdout.customer_id is null),
               count(*) filter (where holdout.customer_id is null
                                and scoring.first_purchase_date <= holdout_end.end_date)
        from intermediate.int_customers_summarised_for_clv as scoring
        cross join (select max(calibration_end_date) as end_date
                    from intermediate.int_customers_summarised_for_clv
                    where fit_purpose = 'holdout') as holdout_end
        left join intermediate.int_customers_summarised_for_clv as holdout
            on scoring.customer_id = holdout.customer_id and holdout.fit_purpose = 'holdout'
        where scoring.fit_purpose = 'scoring'
        """
    ).fetchall()
    [(first_seen_in_holdout, wrongly_left_out)] = rows
    assert first_seen_in_holdout > 10
    assert wrongly_left_out == 0
    [(reported,)] = warehouse.execute(
        "select customers from marts.clv_holdout_report where bucket_order = 99 and chosen"
    ).fetchall()
    [(holdout_customers,)] = warehouse.execute(
        "select count(*) from intermediate.int_customers_summarised_for_clv "
        "where fit_purpose = 'holdout'"
    ).fetchall()
    assert reported == holdout_customers
