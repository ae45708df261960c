"""Tests of the purchase models beside BG/NBD: Pareto/NBD and MBG/NBD, and the model choice.

References, all independent of the code under test:
* lifetimes 0.11.3: ``ParetoNBDFitter`` (its hypergeometric likelihood, switching form at
  alpha = beta) and ``ModifiedBetaGeoFitter``, their predictions, on the CDNOW sample and on
  wide parameter grids;
* the published Pareto/NBD estimates for the CDNOW sample (Fader, Hardie & Lee 2005, "'Counting
  your customers' the easy way", table 1, time in weeks);
* data simulated here from each model's own story, with known parameters;
* central finite differences for the analytic gradients and Hessians.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from cvm.clv import covariates, lifetime_value, mbg_nbd, pareto_nbd, purchase, warehouse
from cvm.clv.estimation import ClvFitError, IdentificationError, numerical_hessian
from cvm.clv.mbg_nbd import MbgNbdParams
from cvm.clv.pareto_nbd import ParetoNbdParams
from cvm.clv.row_models import RowLikelihood
from test_clv import cdnow, compress, lifetimes, relative_error  # noqa: F401 (fixtures)

PUBLISHED_PARETO_WEEKLY = {"r": 0.553, "alpha": 10.58, "s": 0.606, "beta": 11.67}
PUBLISHED_TOLERANCE = 0.005  # 3-4 significant digits
LIFETIMES_TOLERANCE = 1e-6

TRUE = {
    "bg_nbd": purchase.FIT_CLASSES["bg_nbd"].PARAMS(r=0.8, alpha=30.0, a=1.2, b=4.0),
    "pareto_nbd": ParetoNbdParams(r=0.8, alpha=30.0, s=1.5, beta=200.0),
    "mbg_nbd": MbgNbdParams(r=0.8, alpha=30.0, a=1.2, b=3.0),
}
HOLDOUT_DAYS = 180.0
MODULES = {"pareto_nbd": pareto_nbd, "mbg_nbd": mbg_nbd}


# --------------------------------------------------------------------------------------------
# Simulation from each model's story, calibration and holdout


def simulate(model: str, n: int, seed: int) -> pd.DataFrame:
    """x, t_x, T (calibration, T ~ U(60, 730) days) and y, the repeat purchases in the next
    HOLDOUT_DAYS, of n customers whose purchases follow ``model`` with TRUE parameters.

    While alive, purchases are Poisson(lambda), lambda ~ Gamma(r, rate alpha); N potential
    purchases in the calibration period, x of them made. BG/NBD: after each repeat purchase the
    customer leaves with probability p ~ Beta(a, b), i.e. after the D-th, D ~ Geometric(p) on
    {1, 2, ...}: x = min(N, D), alive at T iff D > N. MBG/NBD: the same with D on {0, 1, ...}
    (she may leave right after her first purchase). Pareto/NBD: she leaves at tau ~ Exp(mu),
    mu ~ Gamma(s, rate beta), and buys only before. t_x is the x-th of N uniform order
    statistics on the time she was observed alive."""
    rng = np.random.default_rng(seed)
    params = TRUE[model]
    T = rng.uniform(60, 730, n)
    lam = rng.gamma(params.r, 1.0 / params.alpha, n)
    if model == "pareto_nbd":
        tau = rng.exponential(1.0 / rng.gamma(params.s, 1.0 / params.beta, n))
        observed = np.minimum(tau, T)
        x = rng.poisson(lam * observed)
        t_x = np.where(x > 0, observed * rng.beta(np.maximum(x, 1), 1), 0.0)
        y = rng.poisson(lam * np.clip(tau - T, 0, HOLDOUT_DAYS))
    else:
        p = rng.beta(params.a, params.b, n)
        leaves_after = rng.geometric(p) - (1 if model == "mbg_nbd" else 0)
        potential = rng.poisson(lam * T)
        x = np.minimum(potential, leaves_after)
        t_x = np.where(x > 0, T * rng.beta(np.maximum(x, 1), potential - x + 1), 0.0)
        alive = leaves_after > potential
        y = np.where(
            alive, np.minimum(rng.poisson(lam * HOLDOUT_DAYS), leaves_after - potential), 0
        )
    return pd.DataFrame({"x": x.astype(float), "t_x": t_x, "T": T, "y": y.astype(float)})


@pytest.fixture(scope="module", params=list(TRUE))
def generated(request) -> tuple[str, pd.DataFrame]:
    return request.param, simulate(request.param, 20_000, seed=41)


# --------------------------------------------------------------------------------------------
# Likelihoods against lifetimes


def _lifetimes_pareto_ll(lifetimes, params, x, t_x, T) -> np.ndarray:  # noqa: F811
    return lifetimes.ParetoNBDFitter._conditional_log_likelihood(
        tuple(params), np.asarray(x), np.asarray(t_x), np.asarray(T)
    )


def test_pareto_nbd_log_likelihood_matches_lifetimes_on_cdnow(lifetimes, cdnow):  # noqa: F811
    x, t_x, T = (cdnow[c].to_numpy(float) for c in ("x", "t_x", "T"))
    for params in [(0.55, 74.0, 0.61, 81.7), (0.2, 300.0, 2.0, 20.0), (3.0, 5.0, 0.1, 900.0)]:
        ours = pareto_nbd._terms(np.array(params), x, t_x, T, False).value
        reference = _lifetimes_pareto_ll(lifetimes, params, x, t_x, T)
        np.testing.assert_allclose(ours, reference, rtol=0, atol=1e-10)


@pytest.mark.filterwarnings("ignore:invalid value encountered in logaddexp")  # lifetimes' own
@pytest.mark.parametrize(("ratio", "tolerance"), [(5.0, 1e-10), (8.0, 1e-8)])
def test_pareto_nbd_log_likelihood_matches_lifetimes_over_wide_ranges(lifetimes, ratio, tolerance):  # noqa: F811
    """The quadrature against the closed form: r, s in e^(-3..2), alpha in e^(0..7) days, beta
    within a factor e^ratio of alpha, x up to 300 and T up to 3,000 days."""
    rng = np.random.default_rng(7)
    worst = 0.0
    for _ in range(1500):
        log_alpha = rng.uniform(0, 7)
        params = (
            np.exp(rng.uniform(-3, 2)), np.exp(log_alpha), np.exp(rng.uniform(-3, 2)),
            np.exp(np.clip(log_alpha + rng.uniform(-ratio, ratio), -2, 9)),
        )  # fmt: skip
        T = rng.uniform(1, 3000)
        x = float(rng.integers(0, 300)) if rng.uniform() < 0.7 else float(rng.integers(0, 5))
        t_x = 0.0 if x == 0 else max(T * rng.uniform(), 1.0)
        data = [np.array([v]) for v in (x, t_x, T)]
        ours = pareto_nbd._terms(np.array(params), *data, False).value[0]
        reference = _lifetimes_pareto_ll(lifetimes, params, *data)[0]
        worst = max(worst, abs(ours - reference))
    assert worst < tolerance


def test_mbg_nbd_log_likelihood_matches_lifetimes(lifetimes, cdnow):  # noqa: F811
    x, t_x, T = (cdnow[c].to_numpy(float) for c in ("x", "t_x", "T"))
    for params in [(0.52, 43.0, 0.89, 1.6), (2.0, 5.0, 0.2, 9.0)]:
        reference = -lifetimes.ModifiedBetaGeoFitter._negative_log_likelihood(
            np.log(params), x, t_x, T, np.ones(x.size), 0.0
        ) * x.size  # fmt: skip
        ours = mbg_nbd.log_likelihood(MbgNbdParams(*params), x, t_x, T)
        assert ours == pytest.approx(reference, rel=1e-12)


@pytest.mark.parametrize("model", list(MODULES))
def test_analytic_gradient_and_hessian_match_finite_differences(model):
    data = simulate(model, 3_000, seed=3)
    module = MODULES[model]
    likelihood = RowLikelihood(
        module._terms, *(data[c].to_numpy() for c in ("x", "t_x", "T")), np.ones(len(data)),
        block_rows=1_000,
    )  # fmt: skip
    at = np.log(np.asarray(TRUE[model], dtype=float)) + np.array([0.1, -0.2, 0.15, -0.1])
    evaluation = likelihood(at, hessian=True)
    step = 1e-6
    numeric = np.array(
        [
            (likelihood(at + step * e).value - likelihood(at - step * e).value) / (2 * step)
            for e in np.eye(4)
        ]
    )
    np.testing.assert_allclose(evaluation.gradient, numeric, rtol=1e-6, atol=1e-9)
    hessian = numerical_hessian(lambda p: likelihood(p).gradient, at)
    np.testing.assert_allclose(evaluation.hessian, hessian, rtol=1e-6, atol=1e-9)


# --------------------------------------------------------------------------------------------
# CDNOW: published estimates and lifetimes' fits


@pytest.fixture(scope="module")
def cdnow_pareto(cdnow):  # noqa: F811
    return pareto_nbd.fit_pareto_nbd(cdnow["x"], cdnow["t_x"], cdnow["T"])


def test_cdnow_pareto_nbd_matches_the_published_estimates(cdnow_pareto):
    weekly = {
        "r": cdnow_pareto.r, "alpha": cdnow_pareto.alpha / 7, "s": cdnow_pareto.s,
        "beta": cdnow_pareto.beta / 7,
    }  # fmt: skip
    for name, published in PUBLISHED_PARETO_WEEKLY.items():
        assert weekly[name] == pytest.approx(published, rel=PUBLISHED_TOLERANCE), name


def test_cdnow_pareto_nbd_matches_lifetimes(lifetimes, cdnow, cdnow_pareto):  # noqa: F811
    """lifetimes' own fit, with its Nelder-Mead run to a tolerance where it settles (its
    default, 1e-4, stops 2e-5 short)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference = lifetimes.ParetoNBDFitter().fit(
            cdnow["x"], cdnow["t_x"], cdnow["T"], tol=1e-12, maxiter=20_000
        )
    ours = pd.Series(dict(zip(cdnow_pareto.PARAMETER_NAMES, cdnow_pareto.estimates, strict=True)))
    assert relative_error(ours[reference.params_.index], reference.params_) < LIFETIMES_TOLERANCE


def test_cdnow_mbg_nbd_matches_lifetimes(lifetimes, cdnow):  # noqa: F811
    ours = mbg_nbd.fit_mbg_nbd(cdnow["x"], cdnow["t_x"], cdnow["T"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference = lifetimes.ModifiedBetaGeoFitter().fit(cdnow["x"], cdnow["t_x"], cdnow["T"])
    estimates = pd.Series(dict(zip(ours.PARAMETER_NAMES, ours.estimates, strict=True)))
    assert relative_error(estimates[reference.params_.index], reference.params_) < (
        LIFETIMES_TOLERANCE
    )


@pytest.mark.parametrize("model", list(MODULES))
def test_predictions_match_lifetimes_per_customer(lifetimes, cdnow, model):  # noqa: F811
    x, t_x, T = (cdnow[c].to_numpy(float) for c in ("x", "t_x", "T"))
    fit = purchase.fit(model, x, t_x, T)
    fitter = (
        lifetimes.ParetoNBDFitter() if model == "pareto_nbd"
        else lifetimes.ModifiedBetaGeoFitter()
    )  # fmt: skip
    fitter.params_ = pd.Series(dict(zip(fit.PARAMETER_NAMES, fit.estimates, strict=True)))
    assert (
        relative_error(
            purchase.probability_alive(fit, x, t_x, T),
            fitter.conditional_probability_alive(x, t_x, T),
        )
        < 1e-9
    )
    for days in (30, 90, 365):
        assert (
            relative_error(
                purchase.conditional_expected_purchases(fit, days, x, t_x, T),
                fitter.conditional_expected_number_of_purchases_up_to_time(days, x, t_x, T),
            )
            < 1e-9
        )
        assert MODULES[model].expected_purchases(fit, days) == pytest.approx(
            fitter.expected_number_of_purchases_up_to_time(days), rel=1e-9
        )


# --------------------------------------------------------------------------------------------
# Simulated data: compression, recovery, the model choice


@pytest.mark.parametrize("model", list(MODULES))
def test_compressed_fit_equals_expanded_fit(model):
    data = simulate(model, 4_000, seed=5)
    data[["t_x", "T"]] = np.ceil(data[["t_x", "T"]])  # whole days, so that rows repeat
    data["t_x"] = np.where(data["x"] > 0, np.maximum(data["t_x"], data["x"]), 0.0)
    rows = compress(data, ["x", "t_x", "T"])
    assert len(rows) < 0.9 * len(data)
    expanded = purchase.fit(model, data["x"], data["t_x"], data["T"])
    compressed = purchase.fit(model, rows["x"], rows["t_x"], rows["T"], rows["n_customers"])
    np.testing.assert_allclose(compressed.estimates, expanded.estimates, rtol=1e-8)
    assert compressed.log_likelihood == pytest.approx(expanded.log_likelihood, rel=1e-12)


def test_parameters_recovered_within_three_standard_errors(generated):
    model, data = generated
    fit = purchase.fit(model, data["x"], data["t_x"], data["T"])
    log_errors = np.sqrt(np.diag(fit.log_covariance))
    deviation = np.abs(np.log(fit.estimates) - np.log(np.asarray(TRUE[model], dtype=float)))
    assert np.all(deviation < 3 * log_errors), (fit.estimates, log_errors)
    assert np.all(log_errors < 0.1)  # the data pin the parameters down: passing means something


def _warehouse_frames(data: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """int_clv_inputs_compressed and int_clv_repeat_spend_compressed of simulated customers,
    the same customers as both fits (what matters here is the holdout's choice)."""
    rng = np.random.default_rng(1)
    m = np.where(data["x"] > 0, rng.gamma(6.0, 5.0, len(data)), np.nan)
    frames = []
    for purpose in ("holdout", "scoring"):
        frames.append(
            pd.DataFrame(
                {
                    "fit_purpose": purpose, "repeat_purchase_days": data["x"],
                    "recency_days": data["t_x"], "age_days": data["T"], "customer_count": 1,
                    "avg_repeat_spend": m,
                    "holdout_purchase_days": data["y"] if purpose == "holdout" else np.nan,
                    "holdout_purchase_days_squared": data["y"] ** 2 if purpose == "holdout"
                    else np.nan,
                }
            )
        )  # fmt: skip
    inputs = pd.concat(frames, ignore_index=True)
    repeat = inputs[inputs["repeat_purchase_days"] > 0]
    spend = repeat[["fit_purpose", "repeat_purchase_days", "avg_repeat_spend", "customer_count"]]
    return inputs, spend


def test_auto_chooses_the_model_the_data_come_from(generated):
    """Fit every candidate on the holdout period, score the holdout, then let the scoring fit
    choose: the lowest holdout error must be the generating model's."""
    model, data = generated
    inputs, spend = _warehouse_frames(data)
    settings = {"interval": 0.8, "min_repeat_customers": 50}
    holdout = warehouse.fit_models(inputs, spend, purpose="holdout", **settings)
    assert (holdout["fit_status"] == "fitted").all(), holdout
    scores = warehouse.score_fits(
        inputs[inputs["fit_purpose"] == "holdout"], holdout, horizon_days=365,
        annual_discount_rate=0.1, interval=0.8, interval_method="delta", draws=10,
        holdout_days=int(HOLDOUT_DAYS),
    )  # fmt: skip
    scoring = warehouse.fit_models(
        inputs, spend, purpose="scoring", holdout_scores=scores, **settings
    )
    assert warehouse.chosen_model(scoring) == model, scoring[["model", "holdout_rmse"]]
    chosen = scoring[scoring["chosen"] & (scoring["model"] == model)]
    assert chosen["choice_reason"].str.startswith("lowest holdout error").all()
    errors = scoring.groupby("model")["holdout_rmse"].first().dropna()
    assert errors.idxmin() == model and len(errors) == 3


def test_without_a_holdout_auto_falls_back_to_bic():
    inputs, spend = _warehouse_frames(simulate("mbg_nbd", 5_000, seed=9))
    scoring = warehouse.fit_models(
        inputs, spend, purpose="scoring", interval=0.8, min_repeat_customers=50
    )
    per_model = scoring.groupby("model").first()
    purchase_models = per_model.drop(index="gamma_gamma")
    assert purchase_models["holdout_rmse"].isna().all()
    chosen = warehouse.chosen_model(scoring)
    assert chosen == purchase_models["bic"].idxmin()
    assert per_model.loc[chosen, "choice_reason"].startswith("lowest BIC")


def test_a_named_model_is_used_as_it_is():
    inputs, spend = _warehouse_frames(simulate("pareto_nbd", 3_000, seed=2))
    scoring = warehouse.fit_models(
        inputs, spend, purpose="scoring", interval=0.8, min_repeat_customers=50,
        clv_model="mbg_nbd",
    )  # fmt: skip
    assert set(scoring["model"]) == {"mbg_nbd", "gamma_gamma"}
    assert warehouse.chosen_model(scoring) == "mbg_nbd"
    with pytest.raises(ValueError, match="clv_model must be one of"):
        warehouse.fit_models(
            inputs, spend, purpose="scoring", interval=0.8, min_repeat_customers=50,
            clv_model="pareto",
        )  # fmt: skip


# --------------------------------------------------------------------------------------------
# Boundaries and extremes


@pytest.mark.parametrize("model", list(MODULES))
def test_no_repeat_buyers_cannot_be_identified(model):
    with pytest.raises(IdentificationError, match="none of the 3 customers made a repeat"):
        purchase.fit(model, [0, 0, 0], [0, 0, 0], [10, 20, 30])


def test_customers_who_never_leave_are_a_named_boundary():
    """Regular buyers who never drop out: Pareto/NBD's drop-out rate runs to 0, and the
    warehouse names the boundary in plain words."""
    rng = np.random.default_rng(4)
    T = rng.uniform(200, 700, 3_000)
    x = rng.poisson(T * rng.gamma(2.0, 1 / 40, T.size))
    t_x = np.where(x > 0, T * rng.beta(np.maximum(x, 1), 1), 0.0)
    # On the boundary the likelihood is flat along a ridge: the optimiser may stop there
    # without converging or be stopped by the identification checks; the outcome is the same.
    with pytest.raises(ClvFitError) as raised:
        pareto_nbd.fit_pareto_nbd(x, t_x, T)
    outcome = warehouse.failure_outcome("pareto_nbd", raised.value)
    assert outcome.status == "not_identified"
    assert outcome.message.startswith("almost nobody drops out"), outcome.message


@pytest.mark.parametrize("model", list(MODULES))
def test_extreme_histories_are_finite(model):
    params = purchase.FIT_CLASSES[model].PARAMS(0.5, 20.0, 0.7, 40.0)
    x = np.array([0.0, 5_000.0, 5_000.0, 1.0])
    t_x = np.array([0.0, 9_000.0, 100.0, 0.5])
    T = np.array([20_000.0, 10_000.0, 10_000.0, 0.5])
    ll = purchase.module_of(params).log_likelihood(params, x, t_x, T)
    alive = purchase.probability_alive(params, x, t_x, T)
    expected = purchase.conditional_expected_purchases(params, 365.0, x, t_x, T)
    assert np.isfinite(ll)
    assert np.all((alive >= 0) & (alive <= 1)) and np.all(np.isfinite(expected))
    assert alive[2] < 1e-6  # 5,000 purchases in 100 days, then nothing for 27 years


def test_pareto_nbd_quadrature_gives_each_row_its_own_value_whatever_the_batch():
    """The drop-out integral is evaluated in groups of rows that share their nodes, in chunks
    (pareto_nbd._integral): on more rows than a chunk, with every node tier and tails, each
    row's P(alive), its gradient and its likelihood terms are what the row gets alone."""
    params = ParetoNbdParams(r=0.8, alpha=30.0, s=1.5, beta=200.0)
    data = simulate("pareto_nbd", 3 * pareto_nbd._CHUNK_ROWS + 123, seed=12)
    # Long-lived heavy buyers and wide alpha/beta gaps reach the larger tiers and the tails.
    data.loc[::50, "x"] = data["x"][::50] + 300
    x, t_x, T = (data[c].to_numpy() for c in ("x", "t_x", "T"))
    theta = np.array(params)
    bulk = pareto_nbd._integral(theta, x, t_x, T, 2)
    alive = purchase.probability_alive(params, x, t_x, T)
    gradient = purchase.probability_alive_log_gradient(params, x, t_x, T)
    for row in range(0, x.size, 997):
        one = slice(row, row + 1)
        alone = pareto_nbd._integral(theta, x[one], t_x[one], T[one], 2)
        assert alone.log_value[0] == bulk.log_value[row]
        assert np.array_equal(alone.gradient[0], bulk.gradient[row])
        assert np.array_equal(alone.hessian[0], bulk.hessian[row])
        assert purchase.probability_alive(params, x[one], t_x[one], T[one])[0] == alive[row]
        assert np.array_equal(
            purchase.probability_alive_log_gradient(params, x[one], t_x[one], T[one])[:, 0],
            gradient[:, row],
        )


@pytest.mark.parametrize("model", list(MODULES))
def test_p_alive_log_gradient_matches_finite_differences(model):
    data = simulate(model, 500, seed=8)
    x, t_x, T = (data[c].to_numpy() for c in ("x", "t_x", "T"))
    fit = purchase.fit(model, x, t_x, T)
    cls = type(fit).PARAMS
    analytic = purchase.probability_alive_log_gradient(fit, x, t_x, T)
    step = 1e-6
    for j in range(4):
        up, down = np.log(fit.estimates), np.log(fit.estimates)
        up[j] += step
        down[j] -= step
        numeric = (
            np.log(purchase.probability_alive(cls(*np.exp(up)), x, t_x, T))
            - np.log(purchase.probability_alive(cls(*np.exp(down)), x, t_x, T))
        ) / (2 * step)
        np.testing.assert_allclose(analytic[j], numeric, rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize("model", list(MODULES))
def test_lifetime_value_with_each_model_and_its_intervals(model):
    """fit_and_score with another purchase model: the delta-method interval brackets the CLV
    and agrees with the bootstrap's (parameter draws of that model) within 10 %."""
    data = simulate(model, 4_000, seed=6)
    data[["t_x", "T"]] = np.ceil(data[["t_x", "T"]])
    data["t_x"] = np.where(data["x"] > 0, np.maximum(data["t_x"], data["x"]), 0.0)
    rng = np.random.default_rng(2)
    data["m"] = np.where(data["x"] > 0, rng.gamma(6.0, 5.0, len(data)), np.nan)
    combinations = data.groupby(["x", "t_x", "T"], as_index=False).agg(
        n_customers=("m", "size"), m=("m", "mean")
    )
    monetary = compress(data[data["x"] > 0], ["x", "m"])
    settings = {"horizon_days": 365, "margin": 1.0, "annual_discount_rate": 0.1, "model": model}
    delta = lifetime_value.fit_and_score(combinations, monetary, **settings)
    assert model == type(delta.purchase).MODEL
    clv = delta.scores["clv_365d"]
    assert (delta.scores["clv_365d_lower"] < clv).all() and (
        clv < delta.scores["clv_365d_upper"]
    ).all()
    boot = lifetime_value.fit_and_score(
        combinations, monetary, interval_method="bootstrap", draws=200, **settings
    )
    width_delta = (delta.scores["clv_365d_upper"] - delta.scores["clv_365d_lower"]).mean()
    width_boot = (boot.scores["clv_365d_upper"] - boot.scores["clv_365d_lower"]).mean()
    assert width_boot == pytest.approx(width_delta, rel=0.1)


# --------------------------------------------------------------------------------------------
# Pareto/NBD with covariates

CHANNEL_SHARES = {"web": 0.5, "email": 0.3, "store": 0.2}  # web, the most frequent: reference
PURCHASE_EFFECT = {"web": 0.0, "email": 0.5, "store": -0.3}  # log rate ratios
DROPOUT_EFFECT = {"web": 0.0, "email": 0.4, "store": 0.0}


def simulate_channels(n: int, seed: int) -> pd.DataFrame:
    """Pareto/NBD customers whose acquisition channel scales their purchase rate by
    exp(PURCHASE_EFFECT) and their drop-out rate by exp(DROPOUT_EFFECT) (alpha_i = alpha
    exp(-gamma z_i), beta_i likewise), with TRUE["pareto_nbd"] for the reference channel."""
    rng = np.random.default_rng(seed)
    params = TRUE["pareto_nbd"]
    channel = rng.choice(list(CHANNEL_SHARES), n, p=list(CHANNEL_SHARES.values()))
    alpha = params.alpha * np.exp(-pd.Series(channel).map(PURCHASE_EFFECT).to_numpy())
    beta = params.beta * np.exp(-pd.Series(channel).map(DROPOUT_EFFECT).to_numpy())
    T = rng.uniform(60, 730, n)
    lam = rng.gamma(params.r, 1.0 / alpha)
    tau = rng.exponential(1.0 / rng.gamma(params.s, 1.0 / beta))
    observed = np.minimum(tau, T)
    x = rng.poisson(lam * observed).astype(float)
    t_x = np.where(x > 0, observed * rng.beta(np.maximum(x, 1), 1), 0.0)
    return pd.DataFrame({"x": x, "t_x": t_x, "T": T, "channel": channel})


@pytest.fixture(scope="module")
def channels() -> pd.DataFrame:
    return simulate_channels(30_000, seed=3)


def test_covariate_likelihood_derivatives_match_finite_differences(channels):
    data = channels.iloc[:3_000]
    z, _ = covariates.covariate_matrix(data, ["channel"])
    likelihood = covariates._Likelihood(
        *(data[c].to_numpy() for c in ("x", "t_x", "T")), np.ones(len(data)), z
    )
    at = np.concatenate(
        [np.log(np.asarray(TRUE["pareto_nbd"], dtype=float)), [0.1, -0.2, 0.3, 0.05]]
    )
    evaluation = likelihood(at, hessian=True)
    step = 1e-5
    numeric = np.array(
        [
            (likelihood(at + step * e).value - likelihood(at - step * e).value) / (2 * step)
            for e in np.eye(at.size)
        ]
    )
    # A central difference is only as exact as the rounding of the two values it subtracts,
    # about eps * |value| / step (4e-10 here); a smaller step than 1e-5 makes that larger.
    rounding = 4 * np.finfo(float).eps * abs(evaluation.value) / step
    np.testing.assert_allclose(evaluation.gradient, numeric, rtol=1e-6, atol=rounding)
    hessian = numerical_hessian(lambda p: likelihood(p).gradient, at)
    np.testing.assert_allclose(evaluation.hessian, hessian, rtol=1e-6, atol=1e-9)


def test_channel_effects_recovered_within_three_standard_errors(channels):
    z, names = covariates.covariate_matrix(channels, ["channel"])
    assert names == ["channel=email", "channel=store"]  # web, the most frequent, is the reference
    fit = covariates.fit_pareto_nbd_covariates(
        channels["x"], channels["t_x"], channels["T"], z, names
    )
    truth = np.array(
        [
            *np.asarray(TRUE["pareto_nbd"], dtype=float),
            *(PURCHASE_EFFECT[c] for c in ("email", "store")),
            *(DROPOUT_EFFECT[c] for c in ("email", "store")),
        ]
    )
    errors = fit.standard_errors
    assert np.all(np.abs(fit.estimates - truth) < 3 * errors), (fit.estimates, errors)
    assert np.all(errors[4:] < 0.05)  # the effects are pinned down: passing means something
    # Customers of one channel are a plain Pareto/NBD with that channel's alpha and beta.
    email = fit.pattern_fit([1.0, 0.0])
    assert email.alpha == pytest.approx(fit.estimates[1] * np.exp(-fit.estimates[4]))
    assert email.beta == pytest.approx(fit.estimates[3] * np.exp(-fit.estimates[6]))


def test_warehouse_fits_covariates_and_scores_each_pattern(channels):
    """The covariate key the SQL builds, through fit_models, the parameter rows and score_fits:
    Pareto/NBD gets a coefficient per level, and every combination is scored with its own
    channel's parameters."""
    data = channels.iloc[:8_000].copy()
    data[["t_x", "T"]] = np.ceil(data[["t_x", "T"]])
    data["t_x"] = np.where(data["x"] > 0, np.maximum(data["t_x"], data["x"]), 0.0)
    data["y"] = 0.0
    inputs, spend = _warehouse_frames(data)
    inputs["covariates"] = np.tile("channel=" + data["channel"].to_numpy(), 2)
    scoring = warehouse.fit_models(
        inputs, spend, purpose="scoring", interval=0.8, min_repeat_customers=50,
        clv_model="pareto_nbd",
    )  # fmt: skip
    rows = scoring[scoring["model"] == "pareto_nbd"].set_index("parameter")
    assert list(rows.index) == [
        "r", "alpha", "s", "beta", "purchase: channel=email", "purchase: channel=store",
        "dropout: channel=email", "dropout: channel=store",
    ]  # fmt: skip
    coefficients = rows.loc["purchase: channel=email"]
    assert coefficients["unit"] == "log rate ratio"
    assert coefficients["lower"] < coefficients["value"] < coefficients["upper"]
    fit = warehouse.fitted_model(scoring, "scoring", "pareto_nbd")
    assert isinstance(fit, covariates.CovariateFit)
    scored = warehouse.score_fits(
        inputs[inputs["fit_purpose"] == "scoring"], scoring, horizon_days=365,
        annual_discount_rate=0.1, interval=0.8, interval_method="delta", draws=10,
        holdout_days=180,
    )  # fmt: skip
    for channel, z in (("web", [0.0, 0.0]), ("store", [0.0, 1.0])):
        mine = scored[scored["covariates"] == f"channel={channel}"]
        history = [
            mine[c].to_numpy(float) for c in ("repeat_purchase_days", "recency_days", "age_days")
        ]
        np.testing.assert_allclose(
            mine["p_alive"], pareto_nbd.probability_alive(fit.pattern_fit(z), *history), rtol=1e-12
        )
