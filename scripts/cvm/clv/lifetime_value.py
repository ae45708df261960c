"""Discounted customer lifetime value from a purchase model + Gamma-Gamma, with intervals.

The purchase model is BG/NBD, MBG/NBD or Pareto/NBD (:mod:`cvm.clv.purchase`); the formulas
below are written for BG/NBD and hold for all three, because each gives E[Y(t)] as P(alive)
times a curve G(t | x, T) that does not depend on t_x.

CLV over a horizon of H days, for a customer with history (x, t_x, T) and mean spend m:

    CLV_H = margin * E[M | x, m] * sum_k d_k (E[Y(t_k)] - E[Y(t_(k-1))])

* t_k = min(k * step, H), k = 1..ceil(H / step), t_0 = 0: monthly steps of 30 days (the last
  one shorter when H is not a multiple of 30), as in lifetimes' ``customer_lifetime_value``;
  30 days keeps the discounting granularity of the usual monthly cash-flow models while the
  expected purchases come from the exact cumulative curve, so the step only affects WHEN a
  purchase is discounted, never how many purchases are counted.
* E[Y(t)] = BG/NBD conditional expectation (FHL 2005 eq. 10), E[M | x, m] = Gamma-Gamma
  expected spend per transaction (note 025 eq. 5). Using their product assumes spend is
  independent of the purchase process, the Gamma-Gamma model's own assumption.
* Discounting: ``annual_discount_rate`` is an EFFECTIVE annual rate; cash flows of step k are
  discounted from the step's end, d_k = (1 + annual)^(-t_k / 365). With 30-day steps this is a
  per-step rate of (1 + annual)^(30/365) - 1, compounded per step (discrete compounding, no
  continuous-time approximation). A zero rate gives the undiscounted expected spend.

Because E[Y(t)] = P(alive | x, t_x, T) * G(t | x, T) where G does not depend on t_x, the sum
becomes P(alive) * sum_k w_k G(t_k) with w_k = d_k - d_(k+1) (d_(K+1) = 0; summation by parts),
and G is evaluated once per distinct (x, T), which is what makes the bootstrap affordable.
Those evaluations (scipy's hyp2f1, which dominates the scoring time) run in blocks of keys on
parallel threads (:func:`_purchase_sums`); the results do not depend on the number of threads.

Interval (default 80 %), reflecting parameter uncertainty only, for the AVERAGE customer of a
combination, not the spread of individual outcomes; two methods:
* ``delta`` (default, :func:`clv_interval_delta`): ln CLV's variance from its gradient in the
  log-parameters and their covariance (inverse observed information, the likelihood's
  curvature); bounds CLV * exp(-/+ z sd). The gradient is closed-form for P(alive) and the
  expected spend and by central differences for the purchase curve, 8 evaluations of it per
  distinct (x, T), so it scales to millions of customers.
* ``bootstrap`` (:func:`clv_interval`): log-parameters drawn from N(MLE, inverse observed
  information) for each model independently (they are fitted separately), CLV recomputed for
  every draw and combination, and the (1 - interval)/2 and (1 + interval)/2 quantiles taken.
  Better for small samples where the log-normal approximation is rough; one purchase-curve
  evaluation per draw, so 200 draws cost about 25 times the delta method. A Gamma-Gamma draw
  with q <= 1 has an infinite population mean spend; customers with x = 0 then get CLV = inf
  in that draw (which can make the upper bound inf: the data cannot exclude an unbounded
  mean).
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy.stats import norm

from cvm.clv import bg_nbd, gamma_gamma, purchase
from cvm.clv.estimation import FloatArray, ParameterSet, distinct, map_blocks, row_blocks, threads
from cvm.clv.gamma_gamma import GammaGammaFit, GammaGammaParameters

# A purchase model's fit (BG/NBD, MBG/NBD or Pareto/NBD; see cvm.clv.purchase) or a named
# tuple of its parameters, possibly arrays of draws.
PurchaseParameters = Any

STEP_DAYS = 30
DAYS_PER_YEAR = 365.0
PURCHASE_HORIZONS_DAYS = (30, 90, 365)
COMBINATION_COLUMNS = ("x", "t_x", "T", "n_customers", "m")
MONETARY_COLUMNS = ("x", "m", "n_customers")
_CHUNK_ELEMENTS = 1_000_000  # draws x rows per block in the bootstrap (bounds memory)
_DELTA_STEP = 1e-4  # in ln theta, for the central differences of the delta method


# --------------------------------------------------------------------------------------------
# Point CLV


def step_ends(horizon_days: float, step_days: float = STEP_DAYS) -> FloatArray:
    """t_1 < ... < t_K = horizon_days in steps of ``step_days`` (the last step may be shorter)."""
    if not (math.isfinite(horizon_days) and horizon_days > 0):
        raise ValueError(f"horizon_days must be a positive number, got {horizon_days}")
    if not (math.isfinite(step_days) and step_days > 0):
        raise ValueError(f"step_days must be a positive number, got {step_days}")
    n_steps = math.ceil(horizon_days / step_days - 1e-9)
    return np.minimum(np.arange(1, n_steps + 1) * float(step_days), float(horizon_days))


def discount_factors(ends: FloatArray, annual_discount_rate: float) -> FloatArray:
    """d_k = (1 + annual)^(-t_k / 365): effective annual rate, discrete compounding."""
    if not (math.isfinite(annual_discount_rate) and annual_discount_rate >= 0):
        raise ValueError(f"annual_discount_rate must be >= 0, got {annual_discount_rate}")
    return (1.0 + annual_discount_rate) ** (-np.asarray(ends, dtype=float) / DAYS_PER_YEAR)


def _step_weights(
    horizon_days: float, annual_discount_rate: float, step_days: float
) -> tuple[FloatArray, FloatArray]:
    ends = step_ends(horizon_days, step_days)
    factors = discount_factors(ends, annual_discount_rate)
    return ends, factors - np.append(factors[1:], 0.0)  # w_k = d_k - d_(k+1) >= 0


# --------------------------------------------------------------------------------------------
# The purchase curve G per distinct (x, T), in blocks and threads

_BLOCK_ELEMENTS = 1 << 16  # parameter sets x keys per block: temporaries stay cache-sized
_PARALLEL_ELEMENTS = 1 << 18  # below this many G values in total, threads cost more than they save


class _Keys(NamedTuple):
    """Distinct (x, T) of the rows (G depends on t_x only through P(alive)) and, per row, the
    index of its key."""

    x: FloatArray
    T: FloatArray
    inverse: npt.NDArray[np.intp]


def _distinct_keys(x: FloatArray, T: FloatArray) -> _Keys:
    """Hash-based: the codes of x and of T combined into one integer key, factorized; a
    fraction of np.unique(axis=0)'s cost (it sorts the rows as opaque byte strings)."""
    (x_values, x_index), (T_values, T_index) = distinct(x), distinct(T)
    inverse, codes = pd.factorize(x_index * T_values.size + T_index)
    return _Keys(
        x_values[codes // T_values.size], T_values[codes % T_values.size], inverse.astype(np.intp)
    )


def _purchase_sums(
    params: PurchaseParameters, x: FloatArray, T: FloatArray, ends: FloatArray, weights: FloatArray
) -> FloatArray:
    """sum_j weights[i, j] G(ends[j] | x, T) for each row i of ``weights``: an array of shape
    (len(weights), *parameter shape, len(x)); parameter arrays of shape (sets, 1) broadcast
    against the keys.

    The keys are cut into blocks that are evaluated in parallel threads (scipy's hyp2f1, which
    dominates, runs without the GIL, as do numpy's array operations); every value is computed
    by the same elementwise operations whatever the blocks, so the result does not depend on
    the number of threads. Terms with a zero weight are skipped, and the sums run in the order
    of ``ends`` starting from 0.
    """
    shape = purchase.parameter_shape(params)
    if x.size == 0:
        return np.zeros((len(weights), *shape, 0))
    sets = int(np.prod(shape))
    parallel = sets * x.size * len(ends) >= _PARALLEL_ELEMENTS
    workers = threads() if parallel else 1
    # Cache-sized blocks, and at least 4 per thread so that they share the work evenly.
    size = max(1, min(_BLOCK_ELEMENTS // sets, -(-x.size // (4 * workers))))
    blocks = row_blocks(x.size, size)

    def block(rows: slice) -> FloatArray:
        out: list[FloatArray | float] = [0.0] * len(weights)
        for j, end in enumerate(ends):
            if not np.any(weights[:, j]):
                continue
            curve = purchase.expected_purchases_if_alive(params, end, x[rows], T[rows])
            for i in np.flatnonzero(weights[:, j]):
                out[i] = out[i] + weights[i, j] * curve
        return np.stack([np.broadcast_to(o, curve.shape) for o in out])

    parts = map_blocks(block, blocks, parallel=parallel)
    return np.concatenate(parts, axis=-1)


def _discounted_alive_purchases(
    params: PurchaseParameters, x: FloatArray, T: FloatArray, ends: FloatArray, weights: FloatArray
) -> FloatArray:
    """sum_k w_k G(t_k | x, T); broadcasts parameter arrays (draws, 1) against rows (n,)."""
    return _purchase_sums(params, x, T, ends, weights.reshape(1, -1))[0]


def discounted_expected_purchases(
    params: PurchaseParameters,
    x: npt.ArrayLike,
    t_x: npt.ArrayLike,
    T: npt.ArrayLike,
    *,
    horizon_days: float,
    annual_discount_rate: float,
    step_days: float = STEP_DAYS,
) -> FloatArray:
    """sum_k d_k (E[Y(t_k)] - E[Y(t_(k-1))]): discounted expected purchases over the horizon."""
    x_, tx_, T_ = bg_nbd.validate_rfm(x, t_x, T)
    ends, weights = _step_weights(horizon_days, annual_discount_rate, step_days)
    keys = _distinct_keys(x_, T_)
    per_key = _discounted_alive_purchases(params, keys.x, keys.T, ends, weights)
    return purchase.probability_alive(params, x_, tx_, T_) * per_key[..., keys.inverse]


def customer_lifetime_value(
    bg: PurchaseParameters,
    gg: GammaGammaParameters,
    x: npt.ArrayLike,
    t_x: npt.ArrayLike,
    T: npt.ArrayLike,
    m: npt.ArrayLike,
    *,
    horizon_days: float,
    margin: float,
    annual_discount_rate: float,
    step_days: float = STEP_DAYS,
) -> FloatArray:
    """Point CLV (module docstring): margin * E[M | x, m] * discounted expected purchases."""
    _check_margin(margin)
    purchases = discounted_expected_purchases(
        bg, x, t_x, T, horizon_days=horizon_days,
        annual_discount_rate=annual_discount_rate, step_days=step_days,
    )  # fmt: skip
    return margin * purchases * gamma_gamma.conditional_expected_spend(gg, x, m)


def _check_margin(margin: float) -> None:
    if not (math.isfinite(margin) and 0 < margin <= 1):
        raise ValueError(f"margin must be a fraction of spend in (0, 1], got {margin}")


# --------------------------------------------------------------------------------------------
# Bootstrap interval


def draw_parameters(fit: ParameterSet, draws: int, rng: np.random.Generator) -> Any:
    """Parameter draws exp(N(ln theta_hat, cov(ln theta))), each of shape (draws, 1)."""
    log_draws = rng.multivariate_normal(
        np.log(fit.estimates), fit.log_covariance, size=draws, method="eigh"
    )
    columns = [np.exp(log_draws[:, [j]]) for j in range(log_draws.shape[1])]
    return fit.PARAMS(*columns)


def _quantiles(values: FloatArray, probs: tuple[float, float]) -> FloatArray:
    """Quantiles over axis 0; inf draws give inf (numpy's interpolation would give nan)."""
    with np.errstate(invalid="ignore"):
        out = np.quantile(values, probs, axis=0)
    return np.where(np.isnan(out) & np.isinf(values).any(axis=0), np.inf, out)


def _interval_inputs(
    margin: float,
    interval: float,
    x: npt.ArrayLike,
    t_x: npt.ArrayLike,
    T: npt.ArrayLike,
    m: npt.ArrayLike,
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """Checked settings and (x, t_x, T, m) as arrays of one shape, for both interval methods."""
    _check_margin(margin)
    if not 0 < interval < 1:
        raise ValueError(f"interval must be in (0, 1), got {interval}")
    x_, tx_, T_ = bg_nbd.validate_rfm(x, t_x, T)
    return x_, tx_, T_, np.broadcast_to(np.asarray(m, dtype=float).reshape(-1), x_.shape)


def clv_interval(
    purchase_fit: ParameterSet,
    gg_fit: GammaGammaFit,
    x: npt.ArrayLike,
    t_x: npt.ArrayLike,
    T: npt.ArrayLike,
    m: npt.ArrayLike,
    *,
    horizon_days: float,
    margin: float,
    annual_discount_rate: float,
    interval: float = 0.8,
    draws: int = 200,
    seed: int = 0,
    step_days: float = STEP_DAYS,
) -> tuple[FloatArray, FloatArray]:
    """(lower, upper) CLV bounds per row from the parametric bootstrap (module docstring).

    Vectorised over draws and rows in blocks of about a million elements; G is computed once
    per distinct (x, T) and draw (in parallel blocks, see :func:`_purchase_sums`).
    """
    if draws < 2:
        raise ValueError(f"draws must be >= 2, got {draws}")
    x_, tx_, T_, m_ = _interval_inputs(margin, interval, x, t_x, T, m)
    purchase_rng, gg_rng = np.random.default_rng(seed).spawn(2)
    purchase_draws = draw_parameters(purchase_fit, draws, purchase_rng)
    gg_draws = draw_parameters(gg_fit, draws, gg_rng)
    ends, weights = _step_weights(horizon_days, annual_discount_rate, step_days)

    keys = _distinct_keys(x_, T_)
    inverse = keys.inverse
    per_key = _discounted_alive_purchases(purchase_draws, keys.x, keys.T, ends, weights)
    block = max(1, _CHUNK_ELEMENTS // draws)

    probs = ((1 - interval) / 2, (1 + interval) / 2)
    lower, upper = np.empty(x_.size), np.empty(x_.size)
    for start in range(0, x_.size, block):
        rows = slice(start, start + block)
        alive = purchase.probability_alive(purchase_draws, x_[rows], tx_[rows], T_[rows])
        spend = gamma_gamma.conditional_expected_spend(gg_draws, x_[rows], m_[rows])
        with np.errstate(invalid="ignore"):  # 0 * inf cannot occur: alive and G are > 0
            clv = margin * alive * per_key[:, inverse[rows]] * spend
        lower[rows], upper[rows] = _quantiles(clv, probs)
    return lower, upper


def _perturbed(fit: ParameterSet, step: float) -> Any:
    """2k parameter sets, shape (2k, 1): ln theta +/- step along each of the k axes."""
    log_theta = np.log(fit.estimates)
    shifts = np.vstack([np.eye(log_theta.size) * step, -np.eye(log_theta.size) * step])
    columns = [np.exp(log_theta[j] + shifts[:, [j]]) for j in range(log_theta.size)]
    return fit.PARAMS(*columns)


def _log_gradient(values: FloatArray, step: float) -> FloatArray:
    """Central differences of ln(values) from the (2k, n) rows of :func:`_perturbed`."""
    k = values.shape[0] // 2
    with np.errstate(divide="ignore"):
        logs = np.log(values)
    return (logs[:k] - logs[k:]) / (2 * step)


def _quadratic_form(gradients: FloatArray, covariance: FloatArray) -> FloatArray:
    """g_n' C g_n for every column g_n of ``gradients`` (k, n)."""
    return np.einsum("in,ij,jn->n", gradients, covariance, gradients)


class _Curves(NamedTuple):
    """What the row scores need per distinct (x, T) key (see :func:`_curves`)."""

    keys: _Keys
    horizons: FloatArray  # (h, keys): G at fixed horizons
    discounted: FloatArray  # (keys,): sum_k w_k G(t_k)
    log_gradient: FloatArray | None  # (4, keys): d ln discounted / d ln theta, for the delta


def _curves(
    purchase_fit: ParameterSet,
    keys: _Keys,
    horizons: FloatArray,
    ends: FloatArray,
    weights: FloatArray,
    *,
    delta: bool,
) -> _Curves:
    """G at ``horizons`` and the discounted sum per key, in one pass over the union of their
    ends (a horizon that is also a step end is evaluated once); with ``delta``, the gradient
    of ln of the discounted sum by central differences (step 1e-4 in ln theta, error ~1e-9):
    2 x 4 more evaluations of the purchase curve per key."""
    curve_ends = np.union1d(horizons, ends)
    sum_weights = np.zeros((horizons.size + 1, curve_ends.size))
    sum_weights[np.arange(horizons.size), np.searchsorted(curve_ends, horizons)] = 1.0
    sum_weights[-1, np.searchsorted(curve_ends, ends)] = weights
    per_key = _purchase_sums(purchase_fit, keys.x, keys.T, curve_ends, sum_weights)
    log_gradient = None
    if delta:
        shifted = _discounted_alive_purchases(
            _perturbed(purchase_fit, _DELTA_STEP), keys.x, keys.T, ends, weights
        )
        log_gradient = _log_gradient(shifted, _DELTA_STEP)
    return _Curves(keys, per_key[:-1], per_key[-1], log_gradient)


def _row_scores(
    purchase_fit: ParameterSet,
    gg_fit: GammaGammaFit,
    rows: tuple[FloatArray, FloatArray, FloatArray, FloatArray],
    curves: _Curves,
    *,
    margin: float,
    interval: float,
) -> dict[str, FloatArray]:
    """Per row (x, t_x, T, m): p_alive, horizons (h, n) = expected purchases at the horizons,
    expected_avg_spend, purchases (discounted), clv and, when ``curves`` has the gradient, the
    delta-method bounds lower and upper.

    ln CLV = ln margin + ln P(alive) + ln D(x, T) + ln E[M | x, m], with D the discounted
    purchase curve per key, so its gradient in the log-parameters is the sum of theirs:
    closed forms for P(alive) and E[M] (per row), central differences for D (per key); then
    Var(ln CLV) = g' Cov(ln theta) g + g_gg' Cov(ln theta_gg) g_gg (g, theta: the purchase
    model's) and the bounds are CLV * exp(-/+ z sd). Computed in blocks of rows on threads
    (every value is elementwise, so the blocks do not change it); no (4, rows) array is ever
    whole.
    """
    x, t_x, T, m = rows
    n = x.size
    out = {name: np.empty(n) for name in ("p_alive", "expected_avg_spend", "purchases", "clv")}
    out["lower"], out["upper"] = np.full(n, np.nan), np.full(n, np.nan)
    out["horizons"] = np.empty((len(curves.horizons), n))
    z = norm.ppf((1 + interval) / 2)

    def block(b: slice) -> None:
        inverse = curves.keys.inverse[b]
        alive = purchase.probability_alive(purchase_fit, x[b], t_x[b], T[b])
        out["p_alive"][b] = alive
        for i, curve in enumerate(curves.horizons):
            out["horizons"][i, b] = alive * curve[inverse]
        spend = gamma_gamma.conditional_expected_spend(gg_fit, x[b], m[b])
        out["expected_avg_spend"][b] = spend
        purchases = alive * curves.discounted[inverse]
        out["purchases"][b] = purchases
        clv = margin * purchases * spend
        out["clv"][b] = clv
        if curves.log_gradient is not None:
            g_purchase = purchase.probability_alive_log_gradient(purchase_fit, x[b], t_x[b], T[b])
            for row, per_key in zip(g_purchase, curves.log_gradient, strict=True):
                row += per_key[inverse]
            g_gg = gamma_gamma.expected_spend_log_gradient(gg_fit, x[b], m[b])
            variance = _quadratic_form(g_purchase, purchase_fit.log_covariance) + _quadratic_form(
                g_gg, gg_fit.log_covariance
            )
            spread = np.exp(z * np.sqrt(variance))
            out["lower"][b], out["upper"][b] = clv / spread, clv * spread

    map_blocks(block, row_blocks(n))
    return out


def clv_interval_delta(
    purchase_fit: ParameterSet,
    gg_fit: GammaGammaFit,
    x: npt.ArrayLike,
    t_x: npt.ArrayLike,
    T: npt.ArrayLike,
    m: npt.ArrayLike,
    *,
    horizon_days: float,
    margin: float,
    annual_discount_rate: float,
    interval: float = 0.8,
    step_days: float = STEP_DAYS,
) -> tuple[FloatArray, FloatArray]:
    """(lower, upper) CLV bounds per row by the delta method on the log scale.

    Var(ln CLV) = g' Cov(ln theta) g + g_gg' Cov(ln theta_gg) g_gg, with g the gradient
    of ln CLV in the log-parameters (see :func:`_row_scores`) and the covariances from the
    fits (inverse observed information: the likelihood's curvature); the models are fitted
    separately, so they do not covary. Bounds: CLV * exp(-/+ z sd), which stay positive.
    About 2 x 4 evaluations of the purchase curve instead of one per bootstrap draw; agrees
    with :func:`clv_interval` once the sample is large enough for the asymptotics.
    """
    x_, tx_, T_, m_ = _interval_inputs(margin, interval, x, t_x, T, m)
    ends, weights = _step_weights(horizon_days, annual_discount_rate, step_days)
    curves = _curves(purchase_fit, _distinct_keys(x_, T_), np.empty(0), ends, weights, delta=True)
    scores = _row_scores(
        purchase_fit, gg_fit, (x_, tx_, T_, m_), curves, margin=margin, interval=interval
    )
    return scores["lower"], scores["upper"]


# --------------------------------------------------------------------------------------------
# Top level


class ClvScores(NamedTuple):
    """Output of :func:`fit_and_score`."""

    parameters: pd.DataFrame  # model, parameter, value, standard_error, unit, fit diagnostics
    scores: pd.DataFrame  # one row per input combination (input columns kept)
    purchase: ParameterSet  # the purchase model's fit (its MODEL says which)
    gamma_gamma: GammaGammaFit


def _require_columns(frame: pd.DataFrame, columns: tuple[str, ...], name: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{name} is missing column(s) {missing}; expected {list(columns)}")


def _validate_days(x: FloatArray, t_x: FloatArray, T: FloatArray) -> None:
    """The day-level contract on top of the model's own checks: whole days, and at most one
    repeat purchase day per elapsed day (x <= t_x), which catches x counted as transactions."""
    not_whole = (np.round(t_x) != t_x) | (np.round(T) != T)
    if np.any(not_whole):
        raise ValueError(f"t_x and T must be whole days; {int(not_whole.sum())} row(s) are not")
    too_many = x > t_x
    if np.any(too_many):
        i = int(np.flatnonzero(too_many)[0])
        raise ValueError(
            f"x (distinct repeat purchase days) exceeds t_x (days from first to last purchase) "
            f"on {int(too_many.sum())} row(s), e.g. x={x[i]:g}, t_x={t_x[i]:g}: x must count "
            "purchase DAYS, not transactions"
        )


def _validated_combinations(
    combinations: pd.DataFrame,
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """(x, t_x, T, m) as arrays after the model's and the day-level checks."""
    _require_columns(combinations, ("x", "t_x", "T", "m"), "combinations")
    x, t_x, T = bg_nbd.validate_rfm(combinations["x"], combinations["t_x"], combinations["T"])
    _validate_days(x, t_x, T)
    m = combinations["m"].to_numpy(dtype=float)
    # m = 0 (repeat days that were all free orders) scores: the posterior mean spend
    # p (v + x m) / (p x + q - 1) is defined there; only the Gamma-Gamma fit needs m > 0.
    missing_m = (x > 0) & ~(np.isfinite(m) & (m >= 0))
    if np.any(missing_m):
        raise ValueError(
            f"combinations: m (average mean spend) must be finite and >= 0 where x > 0; "
            f"{int(missing_m.sum())} row(s) are not"
        )
    return x, t_x, T, m


def score_combinations(
    purchase_fit: ParameterSet,
    gg_fit: GammaGammaFit,
    combinations: pd.DataFrame,
    *,
    horizon_days: int,
    margin: float,
    annual_discount_rate: float,
    interval: float = 0.8,
    interval_method: str = "delta",
    draws: int = 200,
    seed: int = 0,
    step_days: int = STEP_DAYS,
) -> pd.DataFrame:
    """Scores every (x, t_x, T, m) row of ``combinations`` with fitted models (see
    :func:`fit_and_score` for the columns); input columns are kept."""
    _check_margin(margin)
    if interval_method not in ("delta", "bootstrap"):
        raise ValueError(f"interval_method must be 'delta' or 'bootstrap', got {interval_method!r}")
    x, t_x, T, m = _validated_combinations(combinations)
    label = f"{horizon_days:g}d"
    ends, weights = _step_weights(horizon_days, annual_discount_rate, step_days)
    curves = _curves(
        purchase_fit, _distinct_keys(x, T), np.asarray(PURCHASE_HORIZONS_DAYS, dtype=float), ends,
        weights, delta=interval_method == "delta",
    )  # fmt: skip
    rows = _row_scores(
        purchase_fit, gg_fit, (x, t_x, T, m), curves, margin=margin, interval=interval
    )
    if interval_method == "bootstrap":
        rows["lower"], rows["upper"] = clv_interval(
            purchase_fit, gg_fit, x, t_x, T, m, horizon_days=horizon_days, margin=margin,
            annual_discount_rate=annual_discount_rate, interval=interval, draws=draws, seed=seed,
            step_days=step_days,
        )  # fmt: skip
    horizons = zip(PURCHASE_HORIZONS_DAYS, rows["horizons"], strict=True)
    columns = {
        "p_alive": rows["p_alive"],
        **{f"expected_purchases_{days}d": values for days, values in horizons},
        "expected_avg_spend": rows["expected_avg_spend"],
        f"discounted_expected_purchases_{label}": rows["purchases"],
        f"clv_{label}": rows["clv"],
        f"clv_{label}_lower": rows["lower"],
        f"clv_{label}_upper": rows["upper"],
    }
    # Side by side without copying (copy-on-write keeps the input frame unchanged); assigning
    # the columns one by one would copy every array and the input frame.
    kept = combinations.drop(columns=[c for c in columns if c in combinations.columns])
    new = pd.DataFrame(columns, index=combinations.index, copy=False)
    return pd.concat([kept, new], axis=1)


def fit_and_score(
    combinations: pd.DataFrame,
    monetary: pd.DataFrame,
    *,
    horizon_days: int,
    margin: float,
    annual_discount_rate: float,
    interval: float = 0.8,
    interval_method: str = "delta",
    draws: int = 200,
    seed: int = 0,
    step_days: int = STEP_DAYS,
    model: str = "bg_nbd",
) -> ClvScores:
    """Fits the purchase model ``model`` (bg_nbd, mbg_nbd or pareto_nbd) and Gamma-Gamma on
    compressed inputs and scores every combination.

    ``combinations``: one row per distinct (x, t_x, T) (times in whole days, FHL definitions,
    see :mod:`cvm.clv.bg_nbd`) with ``n_customers`` and ``m`` = the AVERAGE over the
    combination's customers of their mean spend per repeat purchase day (NaN where x = 0).
    Since E[M | x, m] and hence CLV are linear in m, scoring the average m gives exactly the
    average CLV of the combination's customers; a per-customer CLV is
    ``discounted_expected_purchases_<H>d * margin * E[M | x, m_customer]``. Other columns (keys)
    are carried through.
    ``monetary``: repeat customers' (x, m) with ``n_customers``, for the Gamma-Gamma fit (it
    needs the individual m, not the averages). Rows with x = 0 are ignored.

    Returns :class:`ClvScores`; score columns: p_alive, expected_purchases_{30,90,365}d,
    expected_avg_spend (per purchase day, currency of m), discounted_expected_purchases_<H>d,
    clv_<H>d, clv_<H>d_lower, clv_<H>d_upper (currency of m; H = horizon_days).
    """
    _require_columns(combinations, COMBINATION_COLUMNS, "combinations")
    _require_columns(monetary, MONETARY_COLUMNS, "monetary")
    _check_margin(margin)
    x, t_x, T, _ = _validated_combinations(combinations)
    n = combinations["n_customers"].to_numpy(dtype=float)

    purchase_fit = purchase.fit(model, x, t_x, T, n)
    gg_fit = gamma_gamma.fit_gamma_gamma(
        monetary["x"].to_numpy(dtype=float),
        monetary["m"].to_numpy(dtype=float),
        monetary["n_customers"].to_numpy(dtype=float),
    )
    scores = score_combinations(
        purchase_fit, gg_fit, combinations, horizon_days=horizon_days, margin=margin,
        annual_discount_rate=annual_discount_rate, interval=interval,
        interval_method=interval_method, draws=draws, seed=seed, step_days=step_days,
    )  # fmt: skip

    settings = pd.DataFrame(
        {
            "model": "clv",
            "parameter": [
                "horizon_days", "step_days", "margin", "annual_discount_rate", "interval",
                "draws", "seed",
            ],
            "value": [
                horizon_days, step_days, margin, annual_discount_rate, interval, draws, seed,
            ],
            "unit": ["days", "days", "share of spend", "per year", "probability", "1", "1"],
        }
    )  # fmt: skip
    parameters = pd.concat(
        [purchase_fit.to_frame(), gg_fit.to_frame(), settings], ignore_index=True
    )
    return ClvScores(
        parameters=parameters, scores=scores, purchase=purchase_fit, gamma_gamma=gg_fit
    )
