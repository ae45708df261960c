"""The CLV engine as the warehouse calls it: a fit that cannot be identified is a finding with a
reason in plain words, not a crash; strict mode stops; scoring uses what was fitted."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cvm.clv import bg_nbd
from cvm.clv.estimation import ConvergenceError, IdentificationError
from cvm.clv.warehouse import (
    FitOutcome,
    StrictFitError,
    failure_outcome,
    fit_models,
    score_fits,
)

SCORE = {
    "horizon_days": 365,
    "annual_discount_rate": 0.1,
    "interval": 0.8,
    "interval_method": "delta",
    "draws": 50,
    "holdout_days": 90,
}


def customers(n: int, seed: int, *, dropout: bool, same_spend: bool = False) -> pd.DataFrame:
    """Whole-day (x, t_x, T, m) of n customers buying as Poisson processes (rate ~ Gamma(2,
    rate 30) per day); with ``dropout`` each repeat purchase ends the customer with a
    probability p ~ Beta(0.8, 2.5), else nobody ever leaves. Spend is Gamma-Gamma, or one price
    for all (``same_spend``)."""
    rng = np.random.default_rng(seed)
    rate = rng.gamma(2.0, 1 / 30, n)
    T = rng.integers(100, 700, n).astype(float)
    purchases = rng.poisson(rate * T)
    x = np.minimum(purchases, rng.geometric(rng.beta(0.8, 2.5, n))) if dropout else purchases
    t_x = np.where(x > 0, np.ceil(T * rng.beta(np.maximum(x, 1), purchases - x + 1)), 0.0)
    t_x = np.minimum(np.maximum(t_x, x), T)
    nu = rng.gamma(4.0, 1 / 40.0, n)
    m = (
        np.full(n, 25.0)
        if same_spend
        else rng.gamma(6.0 * np.maximum(x, 1), 1 / (nu * np.maximum(x, 1)))
    )
    return pd.DataFrame({"x": x, "t_x": t_x, "T": T, "m": np.where(x > 0, m, np.nan)})


def warehouse_inputs(
    frame: pd.DataFrame, purpose: str = "scoring"
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """int_clv_inputs_compressed and int_clv_repeat_spend_compressed of one purpose."""
    keys = ["x", "t_x", "T"]
    inputs = frame.groupby(keys, as_index=False).agg(n=("m", "size"), m=("m", "mean"))
    inputs = inputs.rename(
        columns={"x": "repeat_purchase_days", "t_x": "recency_days", "T": "age_days",
                 "n": "customer_count", "m": "avg_repeat_spend"}
    )  # fmt: skip
    repeat = frame[frame["x"] > 0].groupby(["x", "m"], as_index=False).size()
    repeat = repeat.rename(
        columns={"x": "repeat_purchase_days", "m": "avg_repeat_spend", "size": "customer_count"}
    )
    return inputs.assign(fit_purpose=purpose), repeat.assign(fit_purpose=purpose)


def fit(frame: pd.DataFrame, purpose: str = "scoring", **options) -> pd.DataFrame:
    inputs, repeat = warehouse_inputs(frame, purpose)
    return fit_models(
        inputs, repeat, purpose=purpose, interval=0.8, min_repeat_customers=50, **options
    )


def status(parameters: pd.DataFrame, model: str) -> tuple[str, str]:
    rows = parameters[parameters["model"] == model]
    assert len(set(rows["fit_status"])) == 1 and len(set(rows["fit_message"].fillna(""))) == 1
    return rows["fit_status"].iloc[0], rows["fit_message"].iloc[0]


def test_customers_who_never_leave_are_a_finding_in_plain_words():
    parameters = fit(customers(3000, seed=1, dropout=False))
    bg_status, message = status(parameters, "bg_nbd")
    assert bg_status == "not_identified"
    assert message.startswith("almost nobody drops out in these data")
    assert "a = " in message and "-> 0" in message and "Things to try" not in message
    assert parameters.loc[parameters["model"] == "bg_nbd", "value"].isna().all()
    assert not parameters.loc[parameters["model"] == "bg_nbd", "converged"].any()
    gg_status, gg_message = status(parameters, "gamma_gamma")
    assert gg_status == "fitted" and pd.isna(gg_message)
    assert parameters.loc[parameters["model"] == "gamma_gamma", "value"].notna().all()


def test_strict_stops_a_failed_scoring_fit_but_never_the_holdout():
    frame = customers(3000, seed=1, dropout=False)
    with pytest.raises(StrictFitError, match="var clv_strict_fit is true: almost nobody drops out"):
        fit(frame, strict=True)
    holdout = fit(frame, purpose="holdout", strict=True)
    assert status(holdout, "bg_nbd")[0] == "not_identified"


def test_too_few_repeat_customers_skip_both_models_even_when_strict():
    parameters = fit(customers(30, seed=2, dropout=True), strict=True)
    for model in ("bg_nbd", "gamma_gamma"):
        skipped, message = status(parameters, model)
        assert skipped == "skipped" and "fewer than var clv_min_repeat_customers (50)" in message


def test_nothing_is_scored_without_a_purchase_model():
    frame = customers(3000, seed=1, dropout=False)
    inputs, _ = warehouse_inputs(frame)
    scores = score_fits(inputs, fit(frame), **SCORE)
    assert scores.empty and "p_alive" in scores.columns


def test_a_failed_spend_model_leaves_p_alive_and_purchases_but_no_clv():
    frame = customers(3000, seed=3, dropout=True, same_spend=True)
    parameters = fit(frame)
    assert status(parameters, "bg_nbd")[0] == "fitted"
    gg_status, message = status(parameters, "gamma_gamma")
    assert gg_status == "not_identified" and "distinct mean spend" in message
    inputs, _ = warehouse_inputs(frame)
    scores = score_fits(inputs, parameters, **SCORE)
    assert len(scores) == len(inputs)
    bg = parameters[parameters["model"] == "bg_nbd"].set_index("parameter")["value"]
    params = bg_nbd.BgNbdParams(*(bg[name] for name in ("r", "alpha", "a", "b")))
    expected = bg_nbd.probability_alive(
        params, scores["repeat_purchase_days"], scores["recency_days"], scores["age_days"]
    )
    assert np.allclose(scores["p_alive"], expected, rtol=1e-12)
    assert scores["expected_purchases_365d"].notna().all()
    assert scores["discounted_expected_purchases"].gt(0).all()
    assert scores["discounted_expected_spend"].isna().all()


def test_the_spend_models_boundary_is_named():
    error = IdentificationError(
        "gamma_gamma: the likelihood is nearly flat", {"p": 7.7, "q": 9300.0, "v": 57000.0}
    )
    outcome = failure_outcome("gamma_gamma", error)
    assert outcome.status == "not_identified"
    assert outcome.message.startswith("customers' average spend per purchase differs hardly")
    other = failure_outcome("gamma_gamma", IdentificationError("gamma_gamma: flat", {"q": 3.0}))
    assert other.message == "flat"  # the engine's reason, without the model prefix


def test_the_spend_models_fixed_price_boundary_is_named():
    """lifetimes' example transactions at 10.00 per order (purchase days of one, two or
    three orders): the optimiser stopped on the p -> infinity ridge, unconverged."""
    stopped = ConvergenceError(
        "gamma_gamma: the optimiser stopped", {"p": 51220798.4, "q": 60.73, "v": 1.2e-05}
    )
    outcome = failure_outcome("gamma_gamma", stopped)
    assert outcome.status == "not_identified"
    assert outcome.message.startswith("a customer's purchases are worth (almost) the same")
    assert "p = 5.12e+07 -> infinity" in outcome.message
    usual = ConvergenceError("gamma_gamma: stopped", {"p": 6.2, "q": 3.7, "v": 15.4})
    assert failure_outcome("gamma_gamma", usual) == FitOutcome("not_converged", "stopped")


def test_a_boundary_is_not_identified_however_the_optimiser_stopped():
    """On the no-drop-out ridge the optimiser may stop short of the bound without converging,
    depending on the order of the rows: the finding is the same."""
    stopped = ConvergenceError(
        "bg_nbd: stopped", {"r": 20.3, "alpha": 759.0, "a": 1e-9, "b": 1042.0}
    )
    outcome = failure_outcome("bg_nbd", stopped)
    assert outcome.status == "not_identified"
    assert outcome.message.startswith("almost nobody drops out")
    elsewhere = ConvergenceError("bg_nbd: stopped", {"r": 0.2, "alpha": 30.0, "a": 0.8, "b": 2.4})
    assert failure_outcome("bg_nbd", elsewhere) == FitOutcome("not_converged", "stopped")


@pytest.mark.parametrize("dropout", [True, False])
def test_the_fit_does_not_depend_on_the_order_the_engine_returns_rows_in(dropout):
    """DuckDB returns the compressed inputs in any order; the fit (and where it stops on a flat
    ridge) must not change with it."""
    inputs, repeat = warehouse_inputs(customers(3000, seed=4, dropout=dropout))
    fits = [
        fit_models(
            inputs.sample(frac=1, random_state=seed), repeat.sample(frac=1, random_state=seed),
            purpose="scoring", interval=0.8, min_repeat_customers=50,
        ).drop(columns="fit_seconds")
        for seed in (1, 2)
    ]  # fmt: skip
    pd.testing.assert_frame_equal(fits[0], fits[1], check_exact=True)


def test_no_repeat_customer_is_a_skip_even_without_a_minimum():
    one_time_buyers = customers(200, seed=5, dropout=True).assign(x=0.0, t_x=0.0, m=np.nan)
    inputs, repeat = warehouse_inputs(one_time_buyers)
    parameters = fit_models(
        inputs, repeat, purpose="scoring", interval=0.8, min_repeat_customers=0, strict=True
    )
    assert set(parameters["fit_status"]) == {"skipped"}
    assert parameters["fit_message"].str.startswith("0 repeat customer(s), and drop-out").all()


def test_a_log_of_free_orders_fits_the_purchase_models_and_skips_spend():
    """Repeat purchases all worth 0 (a log without amounts): drop-out and purchase rates are
    measured on the repeat purchases, spend on none (int_clv_repeat_spend_compressed is empty),
    so only Gamma-Gamma is skipped; P(alive) and expected purchases are scored, CLV is not."""
    frame = customers(3000, seed=3, dropout=True).assign(m=lambda f: f["m"] * 0)
    inputs, repeat = warehouse_inputs(frame)
    repeat = repeat[repeat["avg_repeat_spend"] > 0]  # as the warehouse model leaves them out
    parameters = fit_models(
        inputs, repeat, purpose="scoring", interval=0.8, min_repeat_customers=50
    )
    assert status(parameters, "bg_nbd")[0] == "fitted"
    skipped, message = status(parameters, "gamma_gamma")
    assert skipped == "skipped"
    assert message.startswith(
        "0 repeat customer(s) with repeat purchases worth more than 0, fewer than var "
        "clv_min_repeat_customers (50): too few to estimate spend"
    )
    scores = score_fits(inputs, parameters, **SCORE)
    assert scores["p_alive"].notna().all() and scores["discounted_expected_spend"].isna().all()


def test_a_repeat_customer_who_spent_nothing_is_scored_from_the_spend_fit():
    """Free repeat orders (m = 0; CDNOW has such a customer) stay out of the Gamma-Gamma fit
    (its likelihood needs m > 0; int_clv_repeat_spend_compressed leaves them out) but are scored:
    the posterior mean spend at m = 0 is p v / (p x + q - 1), below the population's."""
    frame = customers(3000, seed=4, dropout=True)
    parameters = fit(frame)
    assert status(parameters, "gamma_gamma")[0] == "fitted"
    inputs, _ = warehouse_inputs(frame)
    free = {"repeat_purchase_days": 2.0, "recency_days": 40.0, "age_days": 300.0}
    inputs = pd.concat(
        [inputs, pd.DataFrame([{**free, "customer_count": 1, "avg_repeat_spend": 0.0}])],
        ignore_index=True,
    ).assign(fit_purpose="scoring")
    scores = score_fits(inputs, parameters, **SCORE)
    row = scores[
        (scores["repeat_purchase_days"] == 2)
        & (scores["recency_days"] == 40)
        & (scores["age_days"] == 300)
    ]
    assert len(row) == 1
    gg = parameters[parameters["model"] == "gamma_gamma"].set_index("parameter")["value"]
    spend_per_purchase = gg["p"] * gg["v"] / (gg["p"] * 2 + gg["q"] - 1)
    assert 0 < spend_per_purchase < gg["p"] * gg["v"] / (gg["q"] - 1)
    expected = row["discounted_expected_purchases"].iloc[0] * spend_per_purchase
    assert row["discounted_expected_spend"].iloc[0] == pytest.approx(expected, rel=1e-9)
