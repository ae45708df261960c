"""Gamma-Gamma model of spend per transaction: maximum likelihood and expected average spend.

References: Colombo, R. & Jiang, W. (1999), "A stochastic RFM model", Journal of Interactive
Marketing 13(3), 2-12; Fader, P. S., Hardie, B. G. S. & Lee, K. L. (2005), "RFM and CLV: using
iso-value curves for customer base analysis", Journal of Marketing Research 42(4), 415-430
("FHL-RFM"); Fader & Hardie (2013), "The Gamma-Gamma model of monetary value"
(brucehardie.com note 025).

Data: repeat customers only (x >= 1 distinct repeat purchase days), with m = their mean spend
per REPEAT purchase day (the first purchase day is excluded, as in FHL-RFM), compressed to
distinct (x, m) with ``weights`` = customers per row. Rows with x = 0 carry no monetary
information and are dropped. Spend must be > 0 (the model is a gamma mixture): zero or negative
means are rejected rather than silently excluded, because they usually signal refunds or
free orders that the SQL should have filtered or netted out.

Story: spend per transaction z ~ Gamma(p, rate nu), nu ~ Gamma(q, rate v) across customers;
the mean of x transactions is then Gamma(p x, rate nu x), and integrating nu out gives the
marginal density of the mean spend (note 025; Colombo & Jiang 1999). The population mean
spend p v / (q - 1) needs q > 1.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple, Protocol

import numpy as np
import numpy.typing as npt
from scipy.special import digamma, gammaln, polygamma

from cvm.clv.estimation import (
    ClvFitError,
    Evaluation,
    FloatArray,
    IdentificationError,
    ParameterSet,
    distinct,
    log_scale_derivatives,
    map_blocks,
    maximise,
    row_blocks,
    systematic_sample,
    validate_weights,
    weighted_sum,
)

MODEL = "gamma_gamma"
PARAMETER_NAMES = ("p", "q", "v")
# Rows of the subsample the optimiser's search runs on (see cvm.clv.estimation).
_SEARCH_ROWS = 50_000

FIT_HINT = (
    "Things to try: check that m is the mean spend per repeat purchase day (not a total) in one "
    "currency, that outliers (e.g. B2B orders) are handled upstream, that there are enough "
    "repeat customers with x >= 2 (their spread is what identifies p), or pass other starting "
    "values (initial=...) or more iterations (max_iterations=...)."
)


class GammaGammaParameters(Protocol):
    """Anything carrying p, q, v (a :class:`GammaGammaFit` or :class:`GammaGammaParams`);
    values may be arrays that broadcast against the data (bootstrap draws)."""

    p: Any
    q: Any
    v: Any


class GammaGammaParams(NamedTuple):
    p: Any
    q: Any
    v: Any


@dataclass(frozen=True, eq=False)
class GammaGammaFit(ParameterSet):
    """Fitted Gamma-Gamma parameters; fields as in :class:`cvm.clv.bg_nbd.BgNbdFit`.

    ``log_covariance`` is the covariance of (ln p, ln q, ln v) from the observed information
    (the likelihood's analytic Hessian). ``n_customers`` counts the repeat customers used.
    """

    MODEL: ClassVar[str] = MODEL
    PARAMETER_NAMES: ClassVar[tuple[str, ...]] = PARAMETER_NAMES
    PARAMETER_UNITS: ClassVar[tuple[str, ...]] = ("1", "1", "currency")
    PARAMS: ClassVar[type] = GammaGammaParams

    p: float
    q: float
    v: float
    log_likelihood: float
    n_customers: float
    fit_seconds: float
    converged: bool
    iterations: int
    log_covariance: FloatArray

    @property
    def population_mean_spend(self) -> float:
        return population_mean_spend(self)


def validate_monetary(
    x: npt.ArrayLike, m: npt.ArrayLike, weights: npt.ArrayLike | None = None
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Keeps repeat customers (x >= 1) and checks them: whole x, finite m > 0, weights > 0."""
    x_ = np.asarray(x, dtype=float).reshape(-1)
    m_ = np.asarray(m, dtype=float).reshape(-1)
    if x_.shape != m_.shape:
        raise ValueError(f"x and m must have the same length, got {x_.size} and {m_.size}")
    w = validate_weights(weights, x_.size)
    if not np.all(np.isfinite(x_)) or np.any(x_ < 0) or np.any(x_ != np.round(x_)):
        raise ValueError("Gamma-Gamma input: x must be a whole number >= 0 on every row")
    repeat = x_ >= 1
    x_, m_, w = x_[repeat], m_[repeat], w[repeat]
    bad = ~np.isfinite(m_) | (m_ <= 0)
    if np.any(bad):
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"Gamma-Gamma input: mean spend m must be finite and > 0 for repeat customers; "
            f"{int(w[bad].sum()):g} customer(s) on {int(bad.sum())} row(s) are not, e.g. "
            f"x={x_[i]:g}, m={m_[i]}. Zero or negative means (refunds, free orders) must be "
            f"filtered or netted out before the fit."
        )
    return x_, m_, w


def _log_likelihood_terms(
    log_params: FloatArray, x: FloatArray, m: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """Per-row log-likelihood (marginal density of the mean spend, note 025) and gradient (n, 3):

    ln f(m | x) = ln G(px+q) - ln G(px) - ln G(q) + q ln v + (px-1) ln m + px ln x
                  - (px+q) ln(v + x m)
        d/dp = x [psi(px+q) - psi(px) + ln(m x / (v + x m))]
        d/dq = psi(px+q) - psi(q) + ln(v / (v + x m))
        d/dv = q/v - (px+q)/(v + x m)
    times theta for the log scale.
    """
    p, q, v = np.exp(log_params)
    px = p * x
    log_vxm = np.log(v + x * m)
    ll = (
        gammaln(px + q) - gammaln(px) - gammaln(q) + q * np.log(v)
        + (px - 1) * np.log(m) + px * np.log(x) - (px + q) * log_vxm
    )  # fmt: skip
    psi_pxq = digamma(px + q)
    d_p = x * (psi_pxq - digamma(px) + np.log(m) + np.log(x) - log_vxm)
    d_q = psi_pxq - digamma(q) + np.log(v) - log_vxm
    d_v = q / v - (px + q) / (v + x * m)
    return ll, np.column_stack([d_p * p, d_q * q, d_v * v])


class _Likelihood:
    """The fit's objective: mean negative log-likelihood of weighted (x, m) rows with its
    analytic gradient and Hessian (log-parameters).

    With s = x m, ln(v + x m) = ln s + ln(1 + v/s), and the row term of
    :func:`_log_likelihood_terms` becomes
        ln G(px+q) - ln G(px) - ln G(q) + q ln v - ln m - q ln s - (px + q) ln(1 + v/s):
    the gamma functions depend on x alone (evaluated per distinct x), ln m and ln s are fixed,
    and what is left per row is one log1p and, for the derivatives in v, 1 / (v + s), summed
    against the weights w and w x. Writing ln(1 + v/s) also avoids the cancellation between
    ln(v + x m) and ln m + ln x of the row form.
    """

    def __init__(self, x: FloatArray, m: FloatArray, w: FloatArray) -> None:
        self.total = float(w.sum())
        self.x = distinct(x)
        xu, ix = self.x
        self.w_x = np.bincount(ix, w, minlength=xu.size)
        self.w, self.wx = w, w * x
        self.s = x * m
        self.sum_log_m = float(weighted_sum(w, np.log(m)))
        self.sum_log_s = float(weighted_sum(w, np.log(self.s)))
        self.blocks = row_blocks(x.size)

    def __call__(self, log_params: FloatArray, hessian: bool = False) -> Evaluation:
        theta = np.exp(log_params)
        p, q, v = theta
        total, xu, w_x = self.total, self.x.values, self.w_x
        px = p * xu
        parts = map_blocks(lambda rows: self._row_sums(rows, v, hessian), self.blocks)
        sums = np.sum(parts, axis=0)  # combined in block order
        sum_w_l, sum_wx_l, sum_w_inv, sum_wx_inv = sums[:4]
        ll = (
            weighted_sum(w_x, gammaln(px + q) - gammaln(px)) - total * gammaln(q)
            + total * q * np.log(v) - self.sum_log_m - q * self.sum_log_s
            - p * sum_wx_l - q * sum_w_l
        )  # fmt: skip
        psi_pxq = digamma(px + q)
        grad = np.array(
            [
                weighted_sum(w_x * xu, psi_pxq - digamma(px)) - sum_wx_l,
                weighted_sum(w_x, psi_pxq) - total * digamma(q) + total * np.log(v)
                - self.sum_log_s - sum_w_l,
                total * q / v - p * sum_wx_inv - q * sum_w_inv,
            ]
        )  # fmt: skip
        h = None
        if hessian:
            tri_pxq = polygamma(1, px + q)
            h = np.empty((3, 3))
            h[0, 0] = weighted_sum(w_x * xu**2, tri_pxq - polygamma(1, px))
            h[0, 1] = h[1, 0] = weighted_sum(w_x * xu, tri_pxq)
            h[1, 1] = weighted_sum(w_x, tri_pxq) - total * polygamma(1, q)
            h[0, 2] = h[2, 0] = -sum_wx_inv
            h[1, 2] = h[2, 1] = total / v - sum_w_inv
            h[2, 2] = -total * q / v**2 + p * sums[5] + q * sums[4]
        log_grad, log_hess = log_scale_derivatives(theta, grad, h)
        value = -float(ll) / total
        if not np.isfinite(value):
            return Evaluation(np.inf, np.zeros(3), None if h is None else np.full((3, 3), np.nan))
        return Evaluation(value, -log_grad / total, None if log_hess is None else -log_hess / total)

    def _row_sums(self, rows: slice, v: float, hessian: bool) -> FloatArray:
        """Sums over one block of rows of w L, w x L, w R, w x R and, with ``hessian``, w R^2,
        w x R^2, where L = ln(1 + v/s) and R = 1 / (v + s)."""
        w, wx, s = self.w[rows], self.wx[rows], self.s[rows]
        log1p_vs = np.log1p(v / s)
        inv = 1.0 / (v + s)
        sums = [weighted_sum(w, log1p_vs), weighted_sum(wx, log1p_vs)]
        sums += [weighted_sum(w, inv), weighted_sum(wx, inv)]
        if hessian:
            inv *= inv
            sums += [weighted_sum(w, inv), weighted_sum(wx, inv)]
        return np.array(sums)


def _distinct_spend(x: FloatArray, m: FloatArray) -> tuple[int, int]:
    """(distinct (x, m) rows, distinct m), exact where below 3 (what the identification check
    needs to know), else lower bounds of at least 3; a few passes over m instead of a sort."""
    k = len(PARAMETER_NAMES)
    rest, n_m = m, 0
    while rest.size and n_m < k:
        rest = rest[rest != rest[0]]
        n_m += 1
    if n_m >= k:
        return n_m, n_m
    return len(np.unique(np.column_stack([x, m]), axis=0)), n_m


def log_likelihood(
    params: GammaGammaParameters,
    x: npt.ArrayLike,
    m: npt.ArrayLike,
    weights: npt.ArrayLike | None = None,
) -> float:
    """Total (weighted) Gamma-Gamma log-likelihood over the repeat customers."""
    x_, m_, w = validate_monetary(x, m, weights)
    return float(
        weighted_sum(w, _log_likelihood_terms(np.log([params.p, params.q, params.v]), x_, m_)[0])
    )


def fit_gamma_gamma(
    x: npt.ArrayLike,
    m: npt.ArrayLike,
    weights: npt.ArrayLike | None = None,
    *,
    initial: GammaGammaParameters | None = None,
    max_iterations: int = 1000,
) -> GammaGammaFit:
    """Maximum-likelihood Gamma-Gamma fit on (compressed) repeat customers' (x, m).

    Starts at p = 1, q = 3 and v = 2 * mean(m) (so that the population mean p v / (q - 1)
    matches the data), then at p = q = 1, v = mean(m). Raises ValueError for invalid data or no
    repeat customers, :class:`~cvm.clv.estimation.IdentificationError` or
    :class:`~cvm.clv.estimation.ConvergenceError` from the optimiser, and
    :class:`~cvm.clv.estimation.ClvFitError` when the estimated q <= 1 (infinite mean spend).
    """
    x_, m_, w = validate_monetary(x, m, weights)
    if x_.size == 0:
        raise ValueError(
            "Gamma-Gamma fit: there are no repeat customers (x >= 1), and spend per repeat "
            "purchase is only observed for them; the model cannot be fitted."
        )
    n_distinct, n_m = _distinct_spend(x_, m_)
    if n_distinct < len(PARAMETER_NAMES) or n_m == 1:
        raise IdentificationError(
            f"{MODEL}: {w.sum():g} repeat customers with only {n_distinct} distinct (x, m) and "
            f"{n_m} distinct mean spend(s); the spread across customers that "
            "identifies p, q and v is missing (in practice hundreds of repeat customers are "
            "needed)."
        )
    likelihood = _Likelihood(x_, m_, w)
    total = likelihood.total
    sample = systematic_sample(x_.size, _SEARCH_ROWS)
    coarse = None if sample is None else _Likelihood(x_[sample], m_[sample], w[sample])

    mean_m = float(weighted_sum(w, m_)) / total
    starts = [np.log([1.0, 3.0, 2.0 * mean_m]), np.log([1.0, 1.0, mean_m])]
    if initial is not None:
        starts.insert(0, np.log([initial.p, initial.q, initial.v]))
    opt = maximise(
        likelihood,
        starts,
        names=PARAMETER_NAMES,
        model=MODEL,
        total_weight=total,
        max_iterations=max_iterations,
        hint=FIT_HINT,
        coarse=coarse,
    )
    p, q, v = np.exp(opt.log_params)
    if q <= 1:
        raise ClvFitError(
            f"{MODEL}: estimated q = {q:.4g} <= 1, so the population mean spend p v / (q - 1) is "
            "infinite (spend too heavy-tailed for the model). Cap or remove extreme spenders "
            "upstream, or model them separately."
        )
    return GammaGammaFit(
        p=float(p),
        q=float(q),
        v=float(v),
        log_likelihood=opt.log_likelihood,
        n_customers=total,
        fit_seconds=opt.seconds,
        converged=opt.converged,
        iterations=opt.iterations,
        log_covariance=opt.log_covariance,
    )


def population_mean_spend(params: GammaGammaParameters) -> Any:
    """E[M] = p v / (q - 1): expected spend per transaction of a customer with no history;
    +inf where q <= 1 (possible for bootstrap draws)."""
    p, q, v = params.p, params.q, params.v
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(q > 1, p * v / np.maximum(q - 1, 1e-300), np.inf)


def conditional_expected_spend(
    params: GammaGammaParameters, x: npt.ArrayLike, m: npt.ArrayLike
) -> FloatArray:
    """E[M | x, m] (note 025 eq. 5, FHL-RFM): expected spend per future transaction,

        p (v + x m) / (p x + q - 1)
      = (q-1)/(p x + q - 1) * p v/(q-1)  +  p x/(p x + q - 1) * m,

    a weighted average of the population mean and the customer's own mean m (the posterior mean
    of p/nu). Customers with x = 0 get the population mean p v / (q - 1) whatever m is (m may be
    NaN for them). The posterior mean is infinite where p x + q <= 1 (only possible for
    bootstrap draws with q < 1); +inf is returned there.
    """
    p, q, v = params.p, params.q, params.v
    x_ = np.asarray(x, dtype=float)
    m_ = np.where(x_ > 0, np.asarray(m, dtype=float), 0.0)
    denominator = p * x_ + q - 1
    with np.errstate(divide="ignore", invalid="ignore"):
        own = np.where(denominator > 0, p * (v + x_ * m_) / denominator, np.inf)
    return np.where(x_ > 0, own, population_mean_spend(params))


def expected_spend_log_gradient(
    params: GammaGammaParameters, x: npt.ArrayLike, m: npt.ArrayLike
) -> FloatArray:
    """d ln E[M | x, m] / d (ln p, ln q, ln v), shape (3, n), for scalar parameters with q > 1:
    ln E = ln p + ln(v + x m) - ln(p x + q - 1) (m taken as 0 where x = 0, which gives the
    population mean's gradient, (1, -q / (q - 1), 1))."""
    p, q, v = (float(val) for val in (params.p, params.q, params.v))
    x_ = np.asarray(x, dtype=float)
    m_ = np.where(x_ > 0, np.asarray(m, dtype=float), 0.0)
    denominator = p * x_ + q - 1
    return np.stack(
        np.broadcast_arrays(1.0 - p * x_ / denominator, -q / denominator, v / (v + x_ * m_))
    )
