"""Tests of the CLV engine (scripts/cvm/clv): BG/NBD, Gamma-Gamma, discounted CLV.

Fast (well under a minute). References, all independent of the code under test:
* the published CDNOW estimates (Fader, Hardie & Lee 2005 and "RFM and CLV" 2005) on the
  CDNOW 1/10 sample that ships with lifetimes, summarised here with pandas;
* lifetimes 0.11.3 (its own likelihoods, autograd Hessians and hyp2f1 code), on CDNOW and on a
  simulated set (a dev dependency: tests that need it fail without it, never skip);
* data simulated here with numpy from known parameters;
* adaptive quadrature of the expectation's integral representation for the hyp2f1 guards.
"""

from __future__ import annotations

import importlib.resources
import warnings

import numpy as np
import numpy.typing as npt
import pandas as pd
import pytest

from cvm.clv import bg_nbd, estimation, gamma_gamma, lifetime_value
from cvm.clv.bg_nbd import BgNbdParams
from cvm.clv.estimation import (
    ClvFitError,
    ConvergenceError,
    IdentificationError,
    numerical_hessian,
)

CALIBRATION_END = pd.Timestamp("1997-09-30")
# Published estimates: BG/NBD (FHL 2005, Marketing Science, CDNOW sample, time in WEEKS) and
# Gamma-Gamma (FHL 2005, JMR "RFM and CLV", 946 repeat buyers).
PUBLISHED_BG_WEEKLY = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
PUBLISHED_BG_LOG_LIKELIHOOD_WEEKLY = -9582.4
PUBLISHED_GG = {"p": 6.25, "q": 3.74, "v": 15.44}
PUBLISHED_TOLERANCE = 0.005  # the published values have 3-4 significant digits
LIFETIMES_PARAM_TOLERANCE = 1e-3
PREDICTION_TOLERANCE = 1e-6

TRUE_BG = BgNbdParams(r=0.25, alpha=40.0, a=0.8, b=2.5)  # alpha in days
TRUE_GG = gamma_gamma.GammaGammaParams(p=6.0, q=3.5, v=15.0)


# --------------------------------------------------------------------------------------------
# Data


@pytest.fixture(scope="module")
def lifetimes():
    """lifetimes is a dev dependency in the lock, so CI has it: a broken install must fail
    these tests, not turn them into skips."""
    with warnings.catch_warnings():  # its import sets a pandas option pandas 3 deprecates
        warnings.filterwarnings("ignore", message="The 'mode.chained_assignment' option")
        import lifetimes

    return lifetimes


@pytest.fixture(scope="module")
def cdnow(lifetimes) -> pd.DataFrame:
    """Per-customer calibration summary of the CDNOW 1/10 sample, computed here with pandas.

    Daily periods: several orders on one day count as one purchase day (their spend is summed),
    x = purchase days after the first, t_x = last - first day, T = 1997-09-30 - first day
    (days), m = mean spend of the repeat purchase days. This is the FHL data definition: it
    reproduces x exactly and t_x/7, T/7 and the mean repeat spend ``zbar`` to the 2 decimals of
    the summary FHL distribute (checked in test_cdnow_summary_matches_fhl_distribution).
    """
    path = importlib.resources.files("lifetimes") / "datasets" / "CDNOW_sample.txt"
    with importlib.resources.as_file(path) as file:
        orders = pd.read_csv(
            file, sep=r"\s+", header=None, names=["master_id", "id", "date", "cds", "spend"],
            dtype={"date": str},
        )  # fmt: skip
    orders["date"] = pd.to_datetime(orders["date"], format="%Y%m%d")
    days = (
        orders[orders["date"] <= CALIBRATION_END]
        .groupby(["id", "date"], as_index=False)["spend"]
        .sum()
        .sort_values(["id", "date"])
    )
    days["repeat_spend"] = days["spend"].where(days.groupby("id").cumcount() > 0)
    summary = days.groupby("id").agg(
        first=("date", "min"), last=("date", "max"), n_days=("date", "size"),
        m=("repeat_spend", "mean"),
    )  # fmt: skip
    return pd.DataFrame(
        {
            "x": summary["n_days"] - 1,
            "t_x": (summary["last"] - summary["first"]).dt.days,
            "T": (CALIBRATION_END - summary["first"]).dt.days,
            "m": summary["m"],
        }
    )


def compress(customers: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Distinct key combinations with their customer counts (what the SQL hands over)."""
    return customers.groupby(keys, as_index=False).size().rename(columns={"size": "n_customers"})


def simulate_bg_nbd(
    n: int, params: BgNbdParams, T: npt.NDArray[np.float64], rng: np.random.Generator
) -> pd.DataFrame:
    """BG/NBD in continuous time (days): lambda ~ Gamma(r, rate alpha), p ~ Beta(a, b); repeat
    purchases are Poisson(lambda) and the customer drops out after each with probability p, so
    x = min(N, D) with N ~ Poisson(lambda T), D ~ Geometric(p) on {1, 2, ...}, and t_x is the
    x-th of N uniform order statistics on [0, T], i.e. T * Beta(x, N - x + 1)."""
    lam = rng.gamma(params.r, 1.0 / params.alpha, n)
    p = rng.beta(params.a, params.b, n)
    n_poisson = rng.poisson(lam * T)
    x = np.minimum(n_poisson, rng.geometric(p))
    t_x = np.where(x > 0, T * rng.beta(np.maximum(x, 1), n_poisson - x + 1), 0.0)
    return pd.DataFrame({"x": x, "t_x": t_x, "T": T})


def simulate_mean_spend(
    x: npt.NDArray[np.int64], params: gamma_gamma.GammaGammaParams, rng: np.random.Generator
) -> npt.NDArray[np.float64]:
    """Gamma-Gamma: nu ~ Gamma(q, rate v), the mean of x transactions ~ Gamma(p x, rate nu x)."""
    nu = rng.gamma(params.q, 1.0 / params.v, x.size)
    safe_x = np.maximum(x, 1)
    return np.where(x > 0, rng.gamma(params.p * safe_x, 1.0 / (nu * safe_x)), np.nan)


def simulate_customers(n: int, seed: int, *, whole_days: bool = False) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    T = rng.integers(60, 731, n).astype(float)
    customers = simulate_bg_nbd(n, TRUE_BG, T, rng)
    if whole_days:  # day-level recency, so that rows repeat; x <= t_x as for purchase days
        customers["t_x"] = np.maximum(np.ceil(customers["t_x"]), customers["x"])
    customers["m"] = simulate_mean_spend(customers["x"].to_numpy(), TRUE_GG, rng)
    return customers


@pytest.fixture(scope="module")
def simulated() -> pd.DataFrame:
    return simulate_customers(20_000, seed=11)


@pytest.fixture(scope="module")
def day_level() -> pd.DataFrame:
    return simulate_customers(10_000, seed=13, whole_days=True)


@pytest.fixture(scope="module")
def simulated_fits(simulated):
    return (
        bg_nbd.fit_bg_nbd(simulated["x"], simulated["t_x"], simulated["T"]),
        gamma_gamma.fit_gamma_gamma(simulated["x"], simulated["m"]),
    )


@pytest.fixture(scope="module")
def cdnow_fits(cdnow):
    return (
        bg_nbd.fit_bg_nbd(cdnow["x"], cdnow["t_x"], cdnow["T"]),
        gamma_gamma.fit_gamma_gamma(cdnow["x"], cdnow["m"]),
    )


def relative_error(actual, expected) -> float:
    actual, expected = np.asarray(actual, dtype=float), np.asarray(expected, dtype=float)
    return float(np.max(np.abs(actual / expected - 1)))


# --------------------------------------------------------------------------------------------
# CDNOW against the published estimates


def test_cdnow_summary_matches_fhl_distribution(cdnow):
    """Our pandas summary reproduces the summary FHL distribute (weeks, 2 decimals)."""
    path = importlib.resources.files("lifetimes") / "datasets"
    path = path / "cdnow_customers_summary_with_transactions.csv"
    with importlib.resources.as_file(path) as file:
        fhl = pd.read_csv(file).set_index("ID")
    assert len(cdnow) == len(fhl) == 2357
    np.testing.assert_array_equal(cdnow["x"].to_numpy(), fhl["x"].to_numpy())
    np.testing.assert_allclose(cdnow["t_x"] / 7, fhl["t_x"], atol=0.005 + 1e-9)
    np.testing.assert_allclose(cdnow["T"] / 7, fhl["T"], atol=0.005 + 1e-9)
    repeat = cdnow["x"].to_numpy() > 0
    assert repeat.sum() == 946
    np.testing.assert_allclose(cdnow["m"][repeat], fhl["zbar"][repeat], atol=0.005 + 1e-9)


def test_cdnow_bg_nbd_matches_published(cdnow, cdnow_fits):
    """FHL fit on WEEKS (t_x = days / 7, T = (1997-09-30 - first purchase) / 7); in days only
    alpha changes, by exactly the factor 7 (alpha is a time scale)."""
    daily, _ = cdnow_fits
    weekly = bg_nbd.fit_bg_nbd(cdnow["x"], cdnow["t_x"] / 7, cdnow["T"] / 7)
    for name, published in PUBLISHED_BG_WEEKLY.items():
        assert getattr(weekly, name) == pytest.approx(published, rel=PUBLISHED_TOLERANCE), name
    assert weekly.log_likelihood == pytest.approx(PUBLISHED_BG_LOG_LIKELIHOOD_WEEKLY, abs=0.1)
    assert daily.alpha == pytest.approx(7 * weekly.alpha, rel=1e-7)
    assert daily.alpha == pytest.approx(7 * PUBLISHED_BG_WEEKLY["alpha"], rel=PUBLISHED_TOLERANCE)
    for name in ("r", "a", "b"):
        assert getattr(daily, name) == pytest.approx(getattr(weekly, name), rel=1e-7)
    # The day-level log-likelihood differs by the Jacobian of the time change, sum(x) ln 7.
    shift = cdnow["x"].sum() * np.log(7)
    assert daily.log_likelihood == pytest.approx(weekly.log_likelihood - shift, rel=1e-9)


def test_cdnow_t_to_end_of_day_does_not_reproduce_published(cdnow):
    """Which T reproduces the paper: end date - first date (above), not the count of days to the
    END of the calibration day (one day more), which moves a and b by about 2 %."""
    weekly = bg_nbd.fit_bg_nbd(cdnow["x"], cdnow["t_x"] / 7, (cdnow["T"] + 1) / 7)
    errors = [abs(getattr(weekly, k) / v - 1) for k, v in PUBLISHED_BG_WEEKLY.items()]
    assert max(errors) > 0.01


def test_cdnow_gamma_gamma_matches_published(cdnow_fits):
    _, gg = cdnow_fits
    assert gg.n_customers == 946
    for name, published in PUBLISHED_GG.items():
        assert getattr(gg, name) == pytest.approx(published, rel=PUBLISHED_TOLERANCE), name


# --------------------------------------------------------------------------------------------
# Against lifetimes


def _lifetimes_models(lifetimes, x, t_x, T, m):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bgf = lifetimes.BetaGeoFitter().fit(
            np.asarray(x), np.asarray(t_x, dtype=float), np.asarray(T, dtype=float)
        )
        repeat = np.asarray(x) > 0
        ggf = lifetimes.GammaGammaFitter().fit(np.asarray(x)[repeat], np.asarray(m)[repeat])
    return bgf, ggf


def _compare_with_lifetimes(lifetimes, data: pd.DataFrame) -> None:
    x, t_x, T, m = (data[c].to_numpy() for c in ("x", "t_x", "T", "m"))
    bg = bg_nbd.fit_bg_nbd(x, t_x, T)
    gg = gamma_gamma.fit_gamma_gamma(x, m)
    bgf, ggf = _lifetimes_models(lifetimes, x, t_x, T, m)

    # Estimates and standard errors (lifetimes: autograd Hessian; ours: numerical).
    bg_ref = bgf.params_[["r", "alpha", "a", "b"]].to_numpy()
    assert relative_error(bg.estimates, bg_ref) < LIFETIMES_PARAM_TOLERANCE
    gg_ref = ggf.params_[["p", "q", "v"]].to_numpy()
    assert relative_error(gg.estimates, gg_ref) < LIFETIMES_PARAM_TOLERANCE
    bg_se = np.sqrt(np.diag(bgf.variance_matrix_.to_numpy()))
    assert relative_error(bg.standard_errors, bg_se) < 1e-4
    gg_se = np.sqrt(np.diag(ggf.variance_matrix_.to_numpy()))
    assert relative_error(gg.standard_errors, gg_se) < 1e-4

    # Predictions at OUR parameters, so that only the formulas are compared.
    bgf.params_ = pd.Series(bg.estimates, index=["r", "alpha", "a", "b"])
    ggf.params_ = pd.Series(gg.estimates, index=["p", "q", "v"])
    for t in (1.0, 30.0, 90.0, 365.0, 3650.0):
        ours = bg_nbd.conditional_expected_purchases(bg, t, x, t_x, T)
        ref = bgf.conditional_expected_number_of_purchases_up_to_time(t, x, t_x, T)
        assert relative_error(ours, ref) < PREDICTION_TOLERANCE, t
    ours = bg_nbd.probability_alive(bg, x, t_x, T)
    assert relative_error(ours, bgf.conditional_probability_alive(x, t_x, T)) < 1e-12
    horizons = np.array([1.0, 30.0, 365.0, 3650.0])
    ours = bg_nbd.expected_purchases(bg, horizons)
    ref = bgf.expected_number_of_purchases_up_to_time(horizons)
    assert relative_error(ours, ref) < PREDICTION_TOLERANCE
    ours = gamma_gamma.conditional_expected_spend(gg, x, m)
    ref = ggf.conditional_expected_average_profit(x, np.nan_to_num(m))
    assert relative_error(ours, ref) < 1e-12

    # CLV: lifetimes discounts 30-day steps at a per-step rate, discount_rate per step, over
    # `time` months; our annual rate (1 + d)^(365/30) - 1 gives the same factors.
    step_rate = 0.01
    annual = (1 + step_rate) ** (365 / 30) - 1
    idx = pd.RangeIndex(len(x))
    ref = ggf.customer_lifetime_value(
        bgf, pd.Series(x, idx), pd.Series(t_x, idx), pd.Series(T, idx),
        pd.Series(np.nan_to_num(m), idx), time=12, discount_rate=step_rate, freq="D",
    )  # fmt: skip
    ours = lifetime_value.customer_lifetime_value(
        bg, gg, x, t_x, T, m, horizon_days=360, margin=1.0, annual_discount_rate=annual
    )
    assert relative_error(ours, ref.to_numpy()) < PREDICTION_TOLERANCE


def test_cdnow_agrees_with_lifetimes(lifetimes, cdnow):
    _compare_with_lifetimes(lifetimes, cdnow)


def test_simulated_agrees_with_lifetimes(lifetimes):
    _compare_with_lifetimes(lifetimes, simulate_customers(5_000, seed=5))


# --------------------------------------------------------------------------------------------
# Compressed fits, gradients, covariance


@pytest.mark.parametrize("dataset", ["cdnow", "day_level"])
def test_weighted_fit_equals_expanded_fit(request, dataset):
    customers = request.getfixturevalue(dataset)
    expanded_bg = bg_nbd.fit_bg_nbd(customers["x"], customers["t_x"], customers["T"])
    expanded_gg = gamma_gamma.fit_gamma_gamma(customers["x"], customers["m"])
    combos = compress(customers, ["x", "t_x", "T"])
    assert len(combos) < len(customers) / 2  # the compression is real
    bg = bg_nbd.fit_bg_nbd(combos["x"], combos["t_x"], combos["T"], combos["n_customers"])
    np.testing.assert_allclose(bg.estimates, expanded_bg.estimates, rtol=1e-9)
    assert bg.log_likelihood == pytest.approx(expanded_bg.log_likelihood, rel=1e-12)
    assert bg.n_customers == expanded_bg.n_customers == len(customers)
    np.testing.assert_allclose(bg.log_covariance, expanded_bg.log_covariance, rtol=1e-5)

    spend = customers.assign(m=customers["m"].round(0)).dropna()  # whole currency units
    monetary = compress(spend, ["x", "m"])
    assert len(monetary) < len(spend) / 2
    gg = gamma_gamma.fit_gamma_gamma(monetary["x"], monetary["m"], monetary["n_customers"])
    reference = gamma_gamma.fit_gamma_gamma(spend["x"], spend["m"])
    np.testing.assert_allclose(gg.estimates, reference.estimates, rtol=1e-9)
    np.testing.assert_allclose(gg.log_covariance, reference.log_covariance, rtol=1e-5)
    assert expanded_gg.estimates != pytest.approx(gg.estimates, rel=1e-4)  # rounding did matter


def _finite_difference_gradient(func, at: np.ndarray, step: float = 1e-6) -> np.ndarray:
    return np.array([(func(at + e) - func(at - e)) / (2 * step) for e in np.eye(at.size) * step])


def test_analytic_gradients_match_finite_differences(simulated):
    data = pd.concat(
        [simulated, pd.DataFrame({"x": [1500, 0], "t_x": [10900.0, 0], "T": [10957.0, 5.0]})]
    )
    x, t_x, T = (data[c].to_numpy(dtype=float) for c in ("x", "t_x", "T"))
    at = np.log([0.4, 25.0, 1.3, 4.0])
    _, grad = bg_nbd._log_likelihood_terms(at, x, t_x, T)
    numeric = _finite_difference_gradient(
        lambda p: bg_nbd._log_likelihood_terms(p, x, t_x, T)[0].sum(), at
    )
    np.testing.assert_allclose(grad.sum(axis=0), numeric, rtol=1e-6)

    repeat = simulated[simulated["x"] > 0]
    xm, m = repeat["x"].to_numpy(dtype=float), repeat["m"].to_numpy()
    at = np.log([4.0, 2.5, 20.0])
    _, grad = gamma_gamma._log_likelihood_terms(at, xm, m)
    numeric = _finite_difference_gradient(
        lambda p: gamma_gamma._log_likelihood_terms(p, xm, m)[0].sum(), at
    )
    np.testing.assert_allclose(grad.sum(axis=0), numeric, rtol=1e-6)


@pytest.mark.parametrize("model", ["bg_nbd", "gamma_gamma"])
def test_fit_objective_matches_the_row_likelihood_and_its_derivatives(simulated, model):
    """The fit's objective (special functions per distinct x and T, sums per x) is the mean of
    the per-row log-likelihood with its gradient, and its analytic Hessian (which gives the
    covariance) agrees with central differences of the gradient."""
    if model == "bg_nbd":
        extreme = pd.DataFrame({"x": [1500, 0], "t_x": [10900.0, 0], "T": [10957.0, 5.0]})
        data = pd.concat([simulated, extreme])
        columns = [data[c].to_numpy(dtype=float) for c in ("x", "t_x", "T")]
        module, points = bg_nbd, [np.log([0.4, 25.0, 1.3, 4.0]), np.log([2.0, 5.0, 0.1, 50.0])]
    else:
        repeat = simulated[simulated["x"] > 0]
        columns = [repeat["x"].to_numpy(dtype=float), repeat["m"].to_numpy()]
        module, points = gamma_gamma, [np.log([4.0, 2.5, 20.0]), np.log([0.5, 10.0, 300.0])]
    w = np.random.default_rng(2).integers(1, 5, columns[0].size).astype(float)
    objective = module._Likelihood(*columns, w)
    for at in points:
        value, gradient, hessian = objective(at, hessian=True)
        ll, grad = module._log_likelihood_terms(at, *columns)
        assert value == pytest.approx(-(w @ ll) / w.sum(), rel=1e-12)
        reference = -(w @ grad) / w.sum()
        np.testing.assert_allclose(gradient, reference, atol=1e-10 * np.abs(reference).max())
        numeric = numerical_hessian(lambda p, f=objective: f(p).gradient, at)
        np.testing.assert_allclose(hessian, numeric, atol=1e-7 * np.abs(numeric).max())


def test_fit_objective_in_blocks_and_threads(monkeypatch, simulated):
    """The per-row work runs in blocks of rows on threads: the sums are combined in block
    order, so the objective does not depend on the number of threads, and blocks change it at
    the rounding level only."""
    x, t_x, T, m = (simulated[c].to_numpy(dtype=float) for c in ("x", "t_x", "T", "m"))
    w = np.ones_like(x)
    repeat = x > 0
    cases = [
        (bg_nbd, (x, t_x, T, w), np.log([0.3, 30.0, 0.9, 2.0])),
        (gamma_gamma, (x[repeat], m[repeat], w[repeat]), np.log([5.0, 3.0, 20.0])),
    ]
    for module, columns, at in cases:
        whole = module._Likelihood(*columns)(at, hessian=True)
        monkeypatch.setattr(estimation, "ROW_BLOCK", 1_000)
        results = []
        for threads in (1, 4):
            monkeypatch.setattr(estimation, "MAX_THREADS", threads)
            results.append(module._Likelihood(*columns)(at, hessian=True))
        monkeypatch.undo()
        for a, b in zip(*results, strict=True):
            np.testing.assert_array_equal(a, b)
        for a, b in zip(results[0], whole, strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)


def test_subsample_search_gives_the_full_fit(monkeypatch, simulated):
    """On large inputs the optimiser searches on a subsample and Newton's method finishes on
    every row: same estimates and covariance as the search on every row."""
    x, t_x, T, m = (simulated[c].to_numpy() for c in ("x", "t_x", "T", "m"))
    reference = bg_nbd.fit_bg_nbd(x, t_x, T), gamma_gamma.fit_gamma_gamma(x, m)
    searched: list[float] = []  # customers in the objective of every search
    search = estimation._search

    def spy(objective, *args):
        searched.append(objective.total)
        return search(objective, *args)

    monkeypatch.setattr(estimation, "_search", spy)
    for module in (bg_nbd, gamma_gamma):
        monkeypatch.setattr(module, "_SEARCH_ROWS", 1_000)
    fits = bg_nbd.fit_bg_nbd(x, t_x, T), gamma_gamma.fit_gamma_gamma(x, m)
    # One search per model, on a subsample; Newton's method did the rest without falling back.
    assert len(searched) == 2 and max(searched) < 2_000, searched
    for fit, full in zip(fits, reference, strict=True):
        np.testing.assert_allclose(fit.estimates, full.estimates, rtol=1e-10)
        np.testing.assert_allclose(fit.log_covariance, full.log_covariance, rtol=1e-6)
        assert fit.log_likelihood == pytest.approx(full.log_likelihood, rel=1e-13)


def test_identification_checks_count_distinct_rows():
    """Many customers but only 3 distinct histories (or 2 distinct (x, m)) cannot identify 4
    (or 3) parameters; the counts come from cheap per-column checks."""
    x, t_x, T = np.tile([[0, 1, 2], [0.0, 5.0, 9.0], [10.0, 10.0, 10.0]], 50)
    with pytest.raises(IdentificationError, match="only 3 distinct"):
        bg_nbd.fit_bg_nbd(x, t_x, T)
    with pytest.raises(IdentificationError, match="only 2 distinct"):
        gamma_gamma.fit_gamma_gamma(np.tile([1, 2], 50), np.tile([10.0, 12.0], 50))
    with pytest.raises(IdentificationError, match="1 distinct mean spend"):
        gamma_gamma.fit_gamma_gamma(np.tile([1, 2, 3], 50), np.full(150, 10.0))


def test_parameter_recovery_within_standard_errors(simulated):
    """Estimates on 20,000 simulated customers lie within 4 standard errors (log scale, from
    our covariance) of the truth, and those errors are small enough for this to mean
    something. A wrong covariance would show up here too (or in the lifetimes comparison)."""
    bg = bg_nbd.fit_bg_nbd(simulated["x"], simulated["t_x"], simulated["T"])
    gg = gamma_gamma.fit_gamma_gamma(simulated["x"], simulated["m"])
    for fit, truth in ((bg, TRUE_BG), (gg, TRUE_GG)):
        se_log = np.sqrt(np.diag(fit.log_covariance))
        assert np.all(se_log < 0.15), (fit.MODEL, se_log)
        z = (np.log(fit.estimates) - np.log(np.array(truth, dtype=float))) / se_log
        assert np.all(np.abs(z) < 4), (fit.MODEL, fit.estimates, z)
        assert fit.converged


# --------------------------------------------------------------------------------------------
# Numerical guards of the conditional expectation


def test_conditional_expectation_matches_quadrature_over_wide_parameter_ranges():
    """The hyp2f1-based value against adaptive quadrature of the integral representation,
    over log-uniform parameters (x up to 5,000, T up to 30 years in days, a near 1 included)."""
    rng = np.random.default_rng(3)
    n = 400

    def log_uniform(low: float, high: float) -> np.ndarray:
        return np.exp(rng.uniform(np.log(low), np.log(high), n))

    r, alpha = log_uniform(0.02, 20), log_uniform(0.1, 3000)
    a, b = log_uniform(0.05, 20), log_uniform(0.1, 1e4)
    a[:40] = 1 + rng.uniform(-1e-4, 1e-4, 40)
    x = np.floor(log_uniform(1, 5001)) - 1
    T = np.floor(log_uniform(1, 10_958)) - 1
    t = np.floor(log_uniform(1, 3651))
    value = bg_nbd.expected_purchases_if_alive(BgNbdParams(r, alpha, a, b), t, x, T)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # QUADPACK's round-off notes on the sharpest peaks
        reference = bg_nbd._quadrature(t, x, T, r, alpha, a, b)
    assert relative_error(value, reference) < PREDICTION_TOLERANCE


def test_conditional_expectation_special_points():
    base = {"t": 90.0, "x": 0.0, "T": 100.0, "r": 0.3, "alpha": 20.0, "b": 2.0}

    def value(**kw):
        p = {**base, **kw}
        params = BgNbdParams(p["r"], p["alpha"], p["a"], p["b"])
        return float(bg_nbd.expected_purchases_if_alive(params, p["t"], p["x"], p["T"]))

    # a = 1 exactly is a removable singularity: finite and continuous.
    at_one = value(a=1.0)
    assert np.isfinite(at_one)
    assert at_one == pytest.approx((value(a=1 - 1e-3) + value(a=1 + 1e-3)) / 2, rel=1e-5)
    # a + b + x - 1 <= 0 (lower hypergeometric parameter not positive): quadrature.
    params = {"t": 30.0, "x": 0.0, "T": 0.0, "r": 0.05, "alpha": 0.5, "a": 0.1, "b": 0.2}
    with np.errstate(all="ignore"):
        raw = bg_nbd._euler_hypergeometric(*(np.array([v]) for v in params.values()))
    assert not np.isfinite(raw[0])  # the plain formula fails here ...
    guarded = value(**params)
    assert guarded == pytest.approx(bg_nbd._quadrature_one(**params), rel=1e-9)  # ... not we


def test_extreme_history_is_finite():
    """x > 1000 repeat days over 30 years (in days): finite likelihood and predictions."""
    params = BgNbdParams(r=0.24, alpha=30.9, a=0.79, b=2.43)
    x = np.array([1200.0, 5000.0, 0.0])
    t_x = np.array([10_900.0, 10_950.0, 0.0])
    T = np.full(3, 30 * 365.25).round()
    assert np.isfinite(bg_nbd.log_likelihood(params, x, t_x, T))
    _, grad = bg_nbd._log_likelihood_terms(np.log(np.array(params)), x, t_x, T)
    assert np.all(np.isfinite(grad))
    alive = bg_nbd.probability_alive(params, x, t_x, T)
    assert np.all((alive > 0) & (alive <= 1))
    expected = bg_nbd.conditional_expected_purchases(params, 365.0, x, t_x, T)
    assert np.all(np.isfinite(expected)) and np.all(expected > 0)
    reference = alive * bg_nbd._quadrature(
        np.full(3, 365.0), x, T, *(np.full(3, v) for v in params)
    )
    assert relative_error(expected, reference) < PREDICTION_TOLERANCE


# --------------------------------------------------------------------------------------------
# Edge cases and errors


def test_no_repeat_buyers():
    T = np.arange(10.0, 60.0)
    zeros = np.zeros_like(T)
    with pytest.raises(IdentificationError, match=r"a and b"):
        bg_nbd.fit_bg_nbd(zeros, zeros, T)
    with pytest.raises(ValueError, match="no repeat customers"):
        gamma_gamma.fit_gamma_gamma(zeros, np.full_like(T, np.nan))


def test_one_customer():
    with pytest.raises(IdentificationError, match="distinct"):
        bg_nbd.fit_bg_nbd([2], [20.0], [30.0], [1])
    with pytest.raises(IdentificationError, match="distinct"):
        gamma_gamma.fit_gamma_gamma([2], [20.0])
    # Scoring one customer works with scalars.
    alive = bg_nbd.probability_alive(TRUE_BG, 2, 20.0, 30.0)
    assert alive.shape == () and 0 < alive < 1


def test_no_visible_drop_out_is_not_returned_silently():
    """NBD data (nobody ever drops out) push a -> 0 and b -> infinity along a flat ridge: the
    fit must fail with an explanation instead of returning arbitrary a and b."""
    rng = np.random.default_rng(0)
    T = rng.integers(60, 731, 5_000).astype(float)
    x = rng.poisson(rng.gamma(0.5, 1 / 20, T.size) * T)
    t_x = np.where(x > 0, T * rng.beta(np.maximum(x, 1), 1), 0.0)  # max of x uniforms
    with pytest.raises(ClvFitError, match="drop-out"):
        bg_nbd.fit_bg_nbd(x, t_x, T)


def test_zero_or_negative_monetary_values_are_rejected():
    with pytest.raises(ValueError, match=r"> 0"):
        gamma_gamma.fit_gamma_gamma([1, 2, 3, 2], [10.0, 0.0, 12.0, 9.0])
    with pytest.raises(ValueError, match=r"> 0"):
        gamma_gamma.fit_gamma_gamma([1, 2, 3, 2], [10.0, -5.0, 12.0, 9.0])


def test_infinite_mean_spend_is_rejected():
    rng = np.random.default_rng(4)
    x = 1 + rng.poisson(2, 5_000)
    m = simulate_mean_spend(x, gamma_gamma.GammaGammaParams(p=6.0, q=0.7, v=15.0), rng)
    with pytest.raises(ClvFitError, match=r"q = .* <= 1"):
        gamma_gamma.fit_gamma_gamma(x, m)


def test_non_convergence_error_says_what_to_try(simulated):
    with pytest.raises(ConvergenceError) as error:
        bg_nbd.fit_bg_nbd(simulated["x"], simulated["t_x"], simulated["T"], max_iterations=2)
    message = str(error.value)
    assert "did not converge" in message and "ITERATIONS" in message
    for advice in ("days", "T = 0", "longer calibration period", "initial="):
        assert advice in message


@pytest.mark.parametrize(
    ("x", "t_x", "T", "problem"),
    [
        ([1, 2], [5.0, 40.0], [30.0, 30.0], "t_x > T"),
        ([0, 1], [3.0, 2.0], [30.0, 30.0], "x = 0 but t_x > 0"),
        ([1, 1], [0.0, 2.0], [30.0, 30.0], "x > 0 but t_x = 0"),
        ([-1, 1], [0.0, 2.0], [30.0, 30.0], "negative"),
        ([1.5, 1], [3.0, 2.0], [30.0, 30.0], "whole number"),
        ([1, 1], [3.0, np.nan], [30.0, 30.0], "non-finite"),
    ],
)
def test_invalid_bg_nbd_inputs(x, t_x, T, problem):
    with pytest.raises(ValueError, match=problem):
        bg_nbd.fit_bg_nbd(x, t_x, T)


# --------------------------------------------------------------------------------------------
# CLV: discounting, intervals, fit_and_score


def test_zero_discount_rate_gives_undiscounted_sum(simulated, simulated_fits):
    bg, gg = simulated_fits
    x, t_x, T, m = (simulated[c].to_numpy() for c in ("x", "t_x", "T", "m"))
    for horizon in (365, 400):  # 400 days: the last 30-day step is 10 days long
        purchases = lifetime_value.discounted_expected_purchases(
            bg, x, t_x, T, horizon_days=horizon, annual_discount_rate=0.0
        )
        expected = bg_nbd.conditional_expected_purchases(bg, horizon, x, t_x, T)
        np.testing.assert_allclose(purchases, expected, rtol=1e-12)
        clv = lifetime_value.customer_lifetime_value(
            bg, gg, x, t_x, T, m, horizon_days=horizon, margin=0.25, annual_discount_rate=0.0
        )
        spend = gamma_gamma.conditional_expected_spend(gg, x, m)
        np.testing.assert_allclose(clv, 0.25 * spend * expected, rtol=1e-12)


def test_discounting_formula_and_monotonicity(simulated, simulated_fits):
    bg, gg = simulated_fits
    x, t_x, T = (simulated[c].to_numpy() for c in ("x", "t_x", "T"))
    # Two steps of 30 days at 12 % a year: d_k = 1.12^(-30 k / 365).
    e30, e60 = (bg_nbd.conditional_expected_purchases(bg, t, x, t_x, T) for t in (30, 60))
    by_hand = e30 * 1.12 ** (-30 / 365) + (e60 - e30) * 1.12 ** (-60 / 365)
    ours = lifetime_value.discounted_expected_purchases(
        bg, x, t_x, T, horizon_days=60, annual_discount_rate=0.12
    )
    np.testing.assert_allclose(ours, by_hand, rtol=1e-12)
    values = [
        lifetime_value.customer_lifetime_value(
            bg,
            gg,
            x,
            t_x,
            T,
            simulated["m"],
            horizon_days=730,
            margin=0.3,
            annual_discount_rate=d,
        )
        for d in (0.0, 0.05, 0.2)
    ]
    assert np.all(values[1] < values[0]) and np.all(values[2] < values[1])


def _fit_and_score(customers: pd.DataFrame, **kwargs) -> lifetime_value.ClvScores:
    combos = customers.groupby(["x", "t_x", "T"], as_index=False).agg(
        n_customers=("x", "size"), m=("m", "mean")
    )
    monetary = compress(customers.dropna(subset=["m"]).assign(m=lambda d: d["m"].round(2)), [
        "x", "m"
    ])  # fmt: skip
    settings = {"horizon_days": 365, "margin": 0.3, "annual_discount_rate": 0.1, "draws": 100}
    return lifetime_value.fit_and_score(combos, monetary, **{**settings, **kwargs})


@pytest.mark.parametrize("dataset", ["cdnow", "day_level"])
def test_fit_and_score(request, dataset):
    customers = request.getfixturevalue(dataset)
    result = _fit_and_score(customers, draws=200, seed=7)
    scores = result.scores
    expected_columns = {
        "p_alive", "expected_purchases_30d", "expected_purchases_90d", "expected_purchases_365d",
        "expected_avg_spend", "discounted_expected_purchases_365d", "clv_365d", "clv_365d_lower",
        "clv_365d_upper",
    }  # fmt: skip
    assert expected_columns <= set(scores.columns)
    assert scores["n_customers"].sum() == len(customers)
    # The fit on compressed combinations is the fit on the customers.
    expanded = bg_nbd.fit_bg_nbd(customers["x"], customers["t_x"], customers["T"])
    np.testing.assert_allclose(result.purchase.estimates, expanded.estimates, rtol=1e-9)
    # The interval contains the point estimate and is not degenerate.
    assert np.all(scores["clv_365d_lower"] <= scores["clv_365d"])
    assert np.all(scores["clv_365d"] <= scores["clv_365d_upper"])
    assert np.all(scores["clv_365d_upper"] > scores["clv_365d_lower"])
    # Combination CLV = average customer CLV (linearity in m).
    per_customer = lifetime_value.customer_lifetime_value(
        result.purchase, result.gamma_gamma, customers["x"], customers["t_x"], customers["T"],
        customers["m"], horizon_days=365, margin=0.3, annual_discount_rate=0.1,
    )  # fmt: skip
    total = (scores["clv_365d"] * scores["n_customers"]).sum()
    assert total == pytest.approx(per_customer.sum(), rel=1e-10)
    # Parameter table: both models with diagnostics, plus the settings used.
    table = result.parameters.set_index(["model", "parameter"])
    assert table.loc[("bg_nbd", "alpha"), "unit"] == "days"
    assert table.loc[("bg_nbd", "alpha"), "value"] == pytest.approx(expanded.alpha, rel=1e-7)
    assert table.loc[("gamma_gamma", "q"), "n_customers"] == (customers["x"] > 0).sum()
    assert table.loc[("clv", "horizon_days"), "value"] == 365
    assert np.all(table.loc[["bg_nbd", "gamma_gamma"], "standard_error"] > 0)
    # Same seed, same intervals.
    again = _fit_and_score(customers, draws=200, seed=7).scores
    np.testing.assert_array_equal(again["clv_365d_lower"], scores["clv_365d_lower"])


def test_interval_narrows_with_more_customers():
    probe = pd.DataFrame(
        {"x": [0, 1, 3, 8], "t_x": [0.0, 40.0, 200.0, 300.0], "T": [100.0, 300.0, 320.0, 330.0],
         "m": [np.nan, 30.0, 25.0, 40.0]}
    )  # fmt: skip
    widths = []
    for n in (2_000, 40_000):
        customers = simulate_customers(n, seed=n)
        bg = bg_nbd.fit_bg_nbd(customers["x"], customers["t_x"], customers["T"])
        gg = gamma_gamma.fit_gamma_gamma(customers["x"], customers["m"])
        args = [probe[c] for c in ("x", "t_x", "T", "m")]
        settings = {"horizon_days": 365, "margin": 0.3, "annual_discount_rate": 0.1}
        clv = lifetime_value.customer_lifetime_value(bg, gg, *args, **settings)
        lower, upper = lifetime_value.clv_interval(bg, gg, *args, **settings, draws=200, seed=1)
        assert np.all((lower <= clv) & (clv <= upper))
        widths.append((upper - lower) / clv)
    # Standard errors shrink like 1/sqrt(n): 20 times the customers, about 1/4.5 the width.
    assert np.all(widths[1] < 0.5 * widths[0]), widths


def test_fit_and_score_rejects_transaction_counts_as_x(day_level):
    bad = day_level.assign(x=lambda d: np.where(d["x"] > 0, d["t_x"] + 1, 0))
    with pytest.raises(ValueError, match="purchase DAYS"):
        _fit_and_score(bad)


def test_closed_form_log_gradients_match_finite_differences(simulated, simulated_fits):
    """d ln P(alive) and d ln E[M] in the log-parameters (delta method) vs central differences."""
    bg, gg = simulated_fits
    x, t_x, T, m = (simulated[c].to_numpy() for c in ("x", "t_x", "T", "m"))
    step = 1e-6

    def differences(func, fit) -> np.ndarray:
        at = np.log(fit.estimates)
        return np.array(
            [
                (func(np.exp(at + e)) - func(np.exp(at - e))) / (2 * step)
                for e in np.eye(at.size) * step
            ]
        )

    numeric = differences(
        lambda p: np.log(bg_nbd.probability_alive(BgNbdParams(*p), x, t_x, T)), bg
    )
    analytic = bg_nbd.probability_alive_log_gradient(bg, x, t_x, T)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-9)
    numeric = differences(
        lambda p: np.log(
            gamma_gamma.conditional_expected_spend(gamma_gamma.GammaGammaParams(*p), x, m)
        ),
        gg,
    )
    analytic = gamma_gamma.expected_spend_log_gradient(gg, x, m)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-9)


def test_purchase_curve_per_key_in_blocks_and_threads(monkeypatch, day_level, simulated_fits):
    """G per distinct (x, T), summed over the steps, is the same whatever the blocks and
    threads, and the keys map back to every row."""
    bg, _ = simulated_fits
    x, T = day_level["x"].to_numpy(dtype=float), day_level["T"].to_numpy(dtype=float)
    keys = lifetime_value._distinct_keys(x, T)
    np.testing.assert_array_equal(keys.x[keys.inverse], x)
    np.testing.assert_array_equal(keys.T[keys.inverse], T)
    assert keys.x.size == len(np.unique(np.column_stack([x, T]), axis=0)) < x.size
    ends, weights = lifetime_value._step_weights(365, 0.1, 30)
    sets = lifetime_value._perturbed(bg, 1e-4)
    direct = sum(
        w * bg_nbd.expected_purchases_if_alive(sets, t, keys.x, keys.T)
        for t, w in zip(ends, weights, strict=True)
    )
    monkeypatch.setattr(estimation, "MAX_THREADS", 1)
    serial = lifetime_value._discounted_alive_purchases(sets, keys.x, keys.T, ends, weights)
    monkeypatch.setattr(estimation, "MAX_THREADS", 4)
    monkeypatch.setattr(lifetime_value, "_BLOCK_ELEMENTS", 1_000)
    monkeypatch.setattr(lifetime_value, "_PARALLEL_ELEMENTS", 0)
    parallel = lifetime_value._discounted_alive_purchases(sets, keys.x, keys.T, ends, weights)
    np.testing.assert_array_equal(serial, direct)
    np.testing.assert_array_equal(parallel, direct)


def test_delta_interval_is_the_gradient_of_ln_clv(day_level, simulated_fits):
    """The delta interval's gradient (closed forms and per-key differences) is the gradient of
    ln CLV itself, by central differences through whole parameter sets; and the scoring path
    gives the same bounds as clv_interval_delta."""
    bg, gg = simulated_fits
    probe = day_level.iloc[:2_000]  # whole days, as score_combinations requires
    args = [probe[c].to_numpy(dtype=float) for c in ("x", "t_x", "T", "m")]
    settings = {"horizon_days": 365, "margin": 0.3, "annual_discount_rate": 0.1}
    clv = lifetime_value.customer_lifetime_value(bg, gg, *args, **settings)
    step = 1e-4
    variance = np.zeros_like(clv)
    for fit in (bg, gg):
        at = np.log(fit.estimates)
        gradient = []
        for e in np.eye(at.size) * step:
            ln_clv = []
            for shifted in (np.exp(at + e), np.exp(at - e)):
                bg_p = BgNbdParams(*shifted) if fit is bg else bg
                gg_p = gg if fit is bg else gamma_gamma.GammaGammaParams(*shifted)
                ln_clv.append(
                    np.log(lifetime_value.customer_lifetime_value(bg_p, gg_p, *args, **settings))
                )
            gradient.append((ln_clv[0] - ln_clv[1]) / (2 * step))
        gradient = np.array(gradient)
        variance += np.einsum("in,ij,jn->n", gradient, fit.log_covariance, gradient)
    spread = np.exp(1.2815515655446004 * np.sqrt(variance))
    lower, upper = lifetime_value.clv_interval_delta(bg, gg, *args, **settings)
    np.testing.assert_allclose(lower, clv / spread, rtol=1e-8)
    np.testing.assert_allclose(upper, clv * spread, rtol=1e-8)

    combos = pd.DataFrame(dict(zip(("x", "t_x", "T", "m"), args, strict=True)))
    scores = lifetime_value.score_combinations(bg, gg, combos.assign(n_customers=1), **settings)
    np.testing.assert_allclose(scores["clv_365d"], clv, rtol=1e-14)
    np.testing.assert_allclose(scores["clv_365d_lower"], lower, rtol=1e-14)
    np.testing.assert_allclose(scores["clv_365d_upper"], upper, rtol=1e-14)


def test_delta_interval_agrees_with_the_bootstrap():
    """The delta method (default) and the parametric bootstrap estimate the same interval; with
    40,000 customers the asymptotics hold and their half-widths agree closely."""
    customers = simulate_customers(40_000, seed=11)
    bg = bg_nbd.fit_bg_nbd(customers["x"], customers["t_x"], customers["T"])
    gg = gamma_gamma.fit_gamma_gamma(customers["x"], customers["m"])
    probe = customers.iloc[:300]
    args = [probe[c] for c in ("x", "t_x", "T", "m")]
    settings = {"horizon_days": 365, "margin": 0.3, "annual_discount_rate": 0.1}
    clv = lifetime_value.customer_lifetime_value(bg, gg, *args, **settings)
    delta = lifetime_value.clv_interval_delta(bg, gg, *args, **settings)
    boot = lifetime_value.clv_interval(bg, gg, *args, **settings, draws=2_000, seed=3)
    for d, b in zip(delta, boot, strict=True):
        half_delta, half_boot = np.abs(d - clv) / clv, np.abs(b - clv) / clv
        assert np.all(half_delta > 0)
        np.testing.assert_allclose(half_delta, half_boot, rtol=0.15)
        np.testing.assert_allclose(np.median(half_delta / half_boot), 1.0, atol=0.03)
