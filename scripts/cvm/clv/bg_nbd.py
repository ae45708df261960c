"""BG/NBD model: maximum likelihood on compressed data and per-customer predictions.

Reference: Fader, P. S., Hardie, B. G. S. & Lee, K. L. (2005), "'Counting your customers' the
easy way: an alternative to the Pareto/NBD model", Marketing Science 24(2), 275-284 ("FHL").
Equation numbers below are FHL's; P(alive) is from Fader, Hardie & Lee, "Computing
P(alive) using the BG/NBD model" (brucehardie.com note 021).

Data (per customer; all times in DAYS, as in lifetimes and CLVTools):
    x    number of distinct purchase days after the first purchase day in the calibration period
    t_x  days from the first to the last purchase day (0 when x = 0)
    T    days from the first purchase day to the calibration end date (end date - first date;
         this is the definition that reproduces FHL's CDNOW numbers, see python_tests/test_clv.py)
Rows are distinct (x, t_x, T) combinations with ``weights`` = number of customers; the
log-likelihood is the weighted sum of the per-row terms, so a compressed fit equals the fit on
the expanded per-customer rows.

Story: while alive, a customer buys as a Poisson process with rate lambda ~ Gamma(r, rate alpha);
after every REPEAT purchase she drops out with probability p ~ Beta(a, b). Hence alpha is in days
(it scales with the time unit; r, a, b are unit-free) and a customer with x = 0 is alive for sure.

Numerics: the log-likelihood uses gammaln/betaln and logaddexp, so it is finite for x in the
thousands and T of decades in days. The fit maximises it in the form of :class:`_Likelihood`,
which evaluates the special functions per distinct x and T and does a few array operations per
row, with analytic gradient and Hessian. The hypergeometric term of the conditional
expectation is evaluated in its Euler-transformed form and checked against analytic bounds;
see :func:`expected_purchases_if_alive`.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple, Protocol

import numpy as np
import numpy.typing as npt
from scipy import integrate
from scipy.special import betaln, digamma, expit, gammaln, hyp2f1, polygamma

from cvm.clv.estimation import (
    Distinct,
    Evaluation,
    FloatArray,
    IdentificationError,
    ParameterSet,
    distinct,
    log_scale_derivatives,
    map_blocks,
    maximise,
    objective_value,
    row_blocks,
    systematic_sample,
    validate_weights,
    weighted_sum,
)

MODEL = "bg_nbd"
PARAMETER_NAMES = ("r", "alpha", "a", "b")

FIT_HINT = (
    "Things to try: check the inputs are in days and follow the FHL definitions (x distinct "
    "purchase days after the first, t_x <= T); look for a pile of customers with T = 0 (first "
    "purchase on the calibration end date, they carry no information); use a longer calibration "
    "period so that there are enough repeat purchases and some visible drop-out (a -> 0 with "
    "b -> infinity means the data show none: the BG/NBD then degenerates to the NBD, with "
    "everyone alive); pass other starting values (initial=...) or more iterations "
    "(max_iterations=...)."
)


class BgNbdParameters(Protocol):
    """Anything carrying r, alpha (days), a, b: a :class:`BgNbdFit` or :class:`BgNbdParams`.

    The values may be arrays (e.g. bootstrap draws of shape (draws, 1)); they broadcast against
    the customer arrays.
    """

    r: Any
    alpha: Any
    a: Any
    b: Any


class BgNbdParams(NamedTuple):
    r: Any
    alpha: Any
    a: Any
    b: Any


@dataclass(frozen=True, eq=False)
class BgNbdFit(ParameterSet):
    """Fitted BG/NBD parameters with fit diagnostics.

    ``log_covariance`` is the covariance of (ln r, ln alpha, ln a, ln b): the inverse observed
    information, i.e. the inverse Hessian of the total negative log-likelihood at the optimum,
    from the likelihood's analytic second derivatives (see :mod:`cvm.clv.estimation`).
    ``covariance`` / ``standard_errors`` are on the natural scale (delta method).
    ``converged`` is always True: a fit that does not converge raises instead.
    """

    MODEL: ClassVar[str] = MODEL
    PARAMETER_NAMES: ClassVar[tuple[str, ...]] = PARAMETER_NAMES
    PARAMETER_UNITS: ClassVar[tuple[str, ...]] = ("1", "days", "1", "1")
    PARAMS: ClassVar[type] = BgNbdParams

    r: float
    alpha: float
    a: float
    b: float
    log_likelihood: float
    n_customers: float
    fit_seconds: float
    converged: bool
    iterations: int
    log_covariance: FloatArray


# --------------------------------------------------------------------------------------------
# Inputs


def validate_rfm(
    x: npt.ArrayLike, t_x: npt.ArrayLike, T: npt.ArrayLike
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Checks the FHL frequency/recency/age data; returns float arrays of equal length.

    x must be a whole number >= 0, 0 <= t_x <= T, and x = 0 exactly when t_x = 0: a repeat
    purchase happens on a later day than the first (t_x > 0), and with no repeat purchase the
    last purchase is the first (t_x = 0).
    """
    arrays = [np.asarray(v, dtype=float).reshape(-1) for v in (x, t_x, T)]
    x_, tx_, T_ = np.broadcast_arrays(*arrays)
    problems = {
        "non-finite value in x, t_x or T": ~(np.isfinite(x_) & np.isfinite(tx_) & np.isfinite(T_)),
        "x is negative or not a whole number": (x_ < 0) | (x_ != np.round(x_)),
        "t_x or T is negative": (tx_ < 0) | (T_ < 0),
        "t_x > T (last purchase after the end of the calibration period)": tx_ > T_,
        "x = 0 but t_x > 0 (recency without a repeat purchase)": (x_ == 0) & (tx_ > 0),
        "x > 0 but t_x = 0 (repeat purchase on the first purchase day)": (x_ > 0) & (tx_ == 0),
    }
    messages = []
    for text, bad in problems.items():
        if np.any(bad):
            i = int(np.flatnonzero(bad)[0])
            messages.append(
                f"{text}: {int(bad.sum())} row(s), e.g. row {i} (x={x_[i]}, t_x={tx_[i]}, "
                f"T={T_[i]})"
            )
    if messages:
        raise ValueError("invalid BG/NBD input: " + "; ".join(messages))
    return x_.astype(float), tx_.astype(float), T_.astype(float)


# --------------------------------------------------------------------------------------------
# Likelihood


class _RowIndex(NamedTuple):
    """Distinct x, t_x and T: the special functions are evaluated once per distinct value (a few
    hundred x values and a few thousand days) instead of once per row."""

    x: Distinct
    t_x: Distinct
    T: Distinct


def _row_index(x: FloatArray, t_x: FloatArray, T: FloatArray) -> _RowIndex:
    return _RowIndex(distinct(x), distinct(t_x), distinct(T))


def _log_likelihood_terms(
    log_params: FloatArray,
    x: FloatArray,
    t_x: FloatArray,
    T: FloatArray,
    index: _RowIndex | None = None,
) -> tuple[FloatArray, FloatArray]:
    """Per-row log-likelihood (FHL eq. 6) and its gradient w.r.t. the log-parameters (n, 4).

    ln L = ln G(r+x) - ln G(r) + r ln(alpha) - ln B(a, b)
           + logaddexp(ln B(a, b+x) - (r+x) ln(alpha+T),
                       [x>0] (ln B(a+1, b+x-1) - (r+x) ln(alpha+t_x)))
    Gradient, with w1, w2 the shares of the two terms inside the logaddexp (w2 = 0 for x = 0):
        d/dr     = psi(r+x) - psi(r) + ln(alpha) - w1 ln(alpha+T) - w2 ln(alpha+t_x)
        d/dalpha = r/alpha - (r+x) (w1/(alpha+T) + w2/(alpha+t_x))
        d/da     = psi(a+b) - psi(a+b+x) + w2/a
        d/db     = psi(a+b) - psi(b) + psi(b+x) - psi(a+b+x) - w2/(b+x-1)
    (using psi(a+1) = psi(a) + 1/a and psi(b+x) = psi(b+x-1) + 1/(b+x-1)); times theta for the
    log scale. ``index`` (distinct values, computed once per fit) only saves time.
    """
    r, alpha, a, b = np.exp(log_params)
    index = index or _row_index(x, t_x, T)
    # Functions of x alone, of T alone and of t_x alone, on distinct values.
    xu = index.x.values
    xu1 = np.maximum(xu, 1.0)  # keeps B(a+1, b+x-1) defined where x = 0 (term unused there)
    by_x = np.stack(
        [
            gammaln(r + xu) - gammaln(r),
            betaln(a, b + xu),
            np.where(xu > 0, betaln(a + 1, b + xu1 - 1), -np.inf),
            digamma(r + xu) - digamma(r),
            digamma(a + b) - digamma(a + b + xu),
            digamma(a + b) - digamma(b) + digamma(b + xu) - digamma(a + b + xu),
            1.0 / (b + xu1 - 1),
        ]
    )[:, index.x.index]
    log_T = np.log(alpha + index.T.values)[index.T.index]
    log_tx = np.log(alpha + index.t_x.values)[index.t_x.index]
    gamma_part, beta_T, beta_tx, psi_r, psi_a, psi_b, inv_b = by_x

    rx = r + x
    term_T = beta_T - rx * log_T
    term_tx = beta_tx - rx * log_tx  # -inf where x = 0
    mixture = np.logaddexp(term_T, term_tx)
    ll = gamma_part + r * np.log(alpha) - betaln(a, b) + mixture

    w1 = np.exp(term_T - mixture)
    w2 = np.exp(term_tx - mixture)  # 0 where x = 0
    d_r = psi_r + np.log(alpha) - w1 * log_T - w2 * log_tx
    d_alpha = r / alpha - rx * (w1 * np.exp(-log_T) + w2 * np.exp(-log_tx))
    d_a = psi_a + w2 / a
    d_b = psi_b - w2 * inv_b
    grad = np.column_stack([d_r * r, d_alpha * alpha, d_a * a, d_b * b])
    return ll, grad


class _Likelihood:
    """The fit's objective: mean negative log-likelihood of weighted rows with its analytic
    gradient and Hessian (log-parameters), arranged so that little is computed per row.

    Writing the logaddexp of :func:`_log_likelihood_terms` as the first term plus
    softplus(d), with the difference of the two terms
        d = ln a - ln(b + x - 1) - (r + x) Delta,   Delta = ln(alpha + t_x) - ln(alpha + T)
    (B(a+1, b+x-1) / B(a, b+x) = a / (b+x-1); softplus(d) = ln(1 + e^d), 0 for x = 0), the
    total is
        sum_x W_x [ln G(r+x) - ln G(r) + ln B(a, b+x)] - W ln B(a, b) + W r ln alpha
        - sum_T (r W_T + X_T) ln(alpha + T) + sum_(rows with x > 0) w softplus(d)
    with W_x, W_T the weights per distinct x and T and X_T the weighted sum of x per T, all
    computed once per fit. Only softplus(d) is per row: a handful of array operations on the
    repeat buyers' rows per evaluation. Derivatives: softplus' = sigma (the logistic function),
    softplus'' = sigma (1 - sigma), and d is linear in ln a, in 1 / (b+x-1) and in Delta, so
    the per-row sums reduce to per-x sums (bincount) and a few dot products.
    """

    def __init__(self, x: FloatArray, t_x: FloatArray, T: FloatArray, w: FloatArray) -> None:
        self.total = float(w.sum())
        self.x = distinct(x)
        self.w_x = np.bincount(self.x.index, w, minlength=self.x.values.size)
        self.T = distinct(T)
        self.w_T = np.bincount(self.T.index, w, minlength=self.T.values.size)
        self.xw_T = np.bincount(self.T.index, w * x, minlength=self.T.values.size)
        repeat = x > 0
        self.x_r, self.w_r = x[repeat], w[repeat]
        self.ix_r, self.iT_r = self.x.index[repeat], self.T.index[repeat]
        self.t_x = distinct(t_x[repeat])
        self.blocks = row_blocks(self.x_r.size) or [slice(0, 0)]

    def __call__(self, log_params: FloatArray, hessian: bool = False) -> Evaluation:
        theta = np.exp(log_params)
        r, alpha, a, b = theta
        total, xu, w_x = self.total, self.x.values, self.w_x
        # Per distinct x (b + x - 1 only matters where x >= 1) and per distinct T.
        b_x = b + np.maximum(xu, 1.0) - 1.0
        log_T, inv_T = np.log(alpha + self.T.values), 1.0 / (alpha + self.T.values)
        rate_w_T = r * self.w_T + self.xw_T
        ll = (
            weighted_sum(w_x, gammaln(r + xu) - gammaln(r) + betaln(a, b + xu))
            - total * betaln(a, b) + total * r * np.log(alpha) - weighted_sum(rate_w_T, log_T)
        )  # fmt: skip

        log_tx, inv_tx = np.log(alpha + self.t_x.values), 1.0 / (alpha + self.t_x.values)
        tables = (r, np.log(a) - np.log(b_x), log_T, inv_T, log_tx, inv_tx)
        # Per-row sums block by block (at least one block, empty without repeat buyers),
        # combined in block order.
        parts = map_blocks(lambda rows: self._row_sums(rows, tables, hessian), self.blocks)
        sums = np.sum([p[0] for p in parts], axis=0)
        per_x = np.sum([p[1] for p in parts], axis=0)
        ll += sums[0]
        sigma_x = per_x[0]

        psi_ab, psi_abx = digamma(a + b), digamma(a + b + xu)
        grad = np.array(
            [
                weighted_sum(w_x, digamma(r + xu) - digamma(r)) + total * np.log(alpha)
                - weighted_sum(self.w_T, log_T) - sums[1],
                total * r / alpha - weighted_sum(rate_w_T, inv_T) - sums[2],
                weighted_sum(w_x, psi_ab - psi_abx) + sigma_x.sum() / a,
                weighted_sum(w_x, digamma(b + xu) - psi_abx - digamma(b) + psi_ab)
                - weighted_sum(sigma_x, 1.0 / b_x),
            ]
        )  # fmt: skip
        if not hessian:
            log_grad, _ = log_scale_derivatives(theta, grad, None)
            return objective_value(ll, log_grad, None, total)

        v_x, vd_x, va_x = per_x[1:]
        inv_b = 1.0 / b_x
        tri_ab, tri_abx = polygamma(1, a + b), polygamma(1, a + b + xu)
        h_ab = weighted_sum(w_x, tri_ab - tri_abx)
        h = np.empty((4, 4))
        h[0, 0] = sums[3] + weighted_sum(w_x, polygamma(1, r + xu) - polygamma(1, r))
        h[0, 1] = sums[4] - sums[6] + total / alpha - weighted_sum(self.w_T, inv_T)
        h[1, 1] = sums[5] + sums[7] - total * r / alpha**2 + weighted_sum(rate_w_T, inv_T**2)
        h[0, 2] = -vd_x.sum() / a
        h[0, 3] = weighted_sum(vd_x, inv_b)
        h[1, 2] = -va_x.sum() / a
        h[1, 3] = weighted_sum(va_x, inv_b)
        h[2, 2] = (v_x.sum() - sigma_x.sum()) / a**2 + h_ab
        h[2, 3] = -weighted_sum(v_x, inv_b) / a + h_ab
        h[3, 3] = weighted_sum(v_x + sigma_x, inv_b**2) + weighted_sum(
            w_x, polygamma(1, b + xu) - tri_abx - polygamma(1, b) + tri_ab
        )
        lower = np.tril_indices(4, -1)
        h[lower] = h.T[lower]
        log_grad, log_hess = log_scale_derivatives(theta, grad, h)
        return objective_value(ll, log_grad, log_hess, total)

    def _row_sums(
        self, rows: slice, tables: tuple[float, FloatArray, FloatArray, FloatArray, FloatArray,
        FloatArray], hessian: bool,
    ) -> tuple[FloatArray, FloatArray]:  # fmt: skip
        """The per-row part for one block of repeat-buyer rows: sums over its rows of
        [w softplus(d), w sigma Delta, w sigma s DR] (s = r + x, DR = 1/(alpha+t_x) -
        1/(alpha+T)) and, per distinct x, of [w sigma]; with ``hessian`` also the sums
        [v Delta^2, v Delta s DR, v (s DR)^2, w sigma DR, w sigma s DR2] (v = w sigma (1 -
        sigma), DR2 = 1/(alpha+t_x)^2 - 1/(alpha+T)^2) and per x [v, v Delta, v s DR]."""
        r, c_x, log_T, inv_T, log_tx, inv_tx = tables
        itx, iT, ix = self.t_x.index[rows], self.iT_r[rows], self.ix_r[rows]
        w = self.w_r[rows]
        n_x = c_x.size
        # d, softplus(d) = max(d, 0) + log1p(e) with e = exp(-|d|), and the logistic
        # sigma(d) = exp(min(d, 0)) / (1 + e): no overflow for any d.
        delta = log_tx[itx] - log_T[iT]
        s = r + self.x_r[rows]
        d = c_x[ix] - s * delta
        e = np.exp(-np.abs(d))
        log1p_e = np.log1p(e)
        low = np.minimum(d, 0.0)
        w_sigma = w * np.exp(low - log1p_e)
        dr = inv_tx[itx] - inv_T[iT]
        s_dr = s * dr  # -(d d / d alpha)
        sums = [weighted_sum(w, d - low + log1p_e), weighted_sum(w_sigma, delta)]
        sums.append(weighted_sum(w_sigma, s_dr))
        per_x = [np.bincount(ix, w_sigma, minlength=n_x)]
        if hessian:
            # sigma (1 - sigma) = e / (1 + e)^2; the gradient of d is (-Delta, -s DR, 1/a,
            # -1/(b+x-1)), its second derivatives -DR (r, alpha) and s DR2 (alpha, alpha).
            v = w * e / (1.0 + e) ** 2
            v_delta, v_sdr = v * delta, v * s_dr
            sums += [weighted_sum(v_delta, delta), weighted_sum(v_delta, s_dr)]
            sums += [weighted_sum(v_sdr, s_dr), weighted_sum(w_sigma, dr)]
            sums.append(weighted_sum(w_sigma * s, inv_tx[itx] ** 2 - inv_T[iT] ** 2))
            per_x += [np.bincount(ix, values, minlength=n_x) for values in (v, v_delta, v_sdr)]
        return np.array(sums), np.array(per_x)


def log_likelihood(
    params: BgNbdParameters,
    x: npt.ArrayLike,
    t_x: npt.ArrayLike,
    T: npt.ArrayLike,
    weights: npt.ArrayLike | None = None,
) -> float:
    """Total (weighted) BG/NBD log-likelihood at the given parameters (FHL eq. 6-7)."""
    x_, tx_, T_ = validate_rfm(x, t_x, T)
    w = validate_weights(weights, x_.size)
    log_params = np.log([params.r, params.alpha, params.a, params.b])
    return float(weighted_sum(w, _log_likelihood_terms(log_params, x_, tx_, T_)[0]))


# Rows of the subsample the optimiser's search runs on (see cvm.clv.estimation); the Newton
# steps that follow use every row.
_SEARCH_ROWS = 50_000


def _distinct_histories(likelihood: _Likelihood, t_x: FloatArray) -> int:
    """Number of distinct (x, t_x, T) rows where it is below 4 (all the identification check
    needs to know), else a lower bound of at least 4: the distinct values of one column."""
    k = len(PARAMETER_NAMES)
    bound = max(likelihood.x.values.size, likelihood.T.values.size)
    tx = distinct(t_x) if bound < k else None
    if tx is None or tx.values.size >= k:
        return bound if tx is None else tx.values.size
    # Every column has fewer than k distinct values: count the combinations of their codes.
    return int(np.unique((likelihood.x.index * k + likelihood.T.index) * k + tx.index).size)


def _starting_values(x: FloatArray, T: FloatArray, w: FloatArray) -> list[FloatArray]:
    """r = 1 with alpha matching the mean repeat rate sum(x)/sum(T), a = 1, b = 3 (mean
    drop-out probability 1/4); then lifetimes' choice (all ones with T rescaled to max 10)."""
    rate = max(float(weighted_sum(w, x)), 1.0) / max(float(weighted_sum(w, T)), 1e-9)
    alpha_scaled = max(float(T.max()) / 10.0, 1e-6)
    return [np.log([1.0, 1.0 / rate, 1.0, 3.0]), np.log([1.0, alpha_scaled, 1.0, 1.0])]


def fit_bg_nbd(
    x: npt.ArrayLike,
    t_x: npt.ArrayLike,
    T: npt.ArrayLike,
    weights: npt.ArrayLike | None = None,
    *,
    initial: BgNbdParameters | None = None,
    max_iterations: int = 1000,
) -> BgNbdFit:
    """Maximum-likelihood BG/NBD fit on (compressed) data; ``weights`` = customers per row.

    Raises ValueError for invalid data, :class:`~cvm.clv.estimation.IdentificationError` when
    the data cannot identify the parameters (notably: no repeat purchases at all, in which case
    the likelihood does not depend on a and b and is maximised by r/alpha -> 0) and
    :class:`~cvm.clv.estimation.ConvergenceError` when the optimiser fails.
    """
    x_, tx_, T_ = validate_rfm(x, t_x, T)
    w = validate_weights(weights, x_.size)
    if x_.size == 0:
        raise ValueError("BG/NBD fit: no customers")
    if not np.any(x_ > 0):
        raise IdentificationError(
            f"{MODEL}: none of the {w.sum():g} customers made a repeat purchase, so the drop-out "
            "parameters a and b do not appear in the likelihood and the purchase rate is "
            "estimated at zero (r/alpha -> 0): the model cannot be identified. Use a longer "
            "calibration period or more customers."
        )
    likelihood = _Likelihood(x_, tx_, T_, w)
    n_distinct = _distinct_histories(likelihood, tx_)
    if n_distinct < len(PARAMETER_NAMES):
        raise IdentificationError(
            f"{MODEL}: only {n_distinct} distinct (x, t_x, T) histories ({w.sum():g} customers); "
            f"{len(PARAMETER_NAMES)} parameters cannot be identified from fewer distinct "
            "histories than parameters (and in practice need hundreds of customers)."
        )
    total = likelihood.total
    sample = systematic_sample(x_.size, _SEARCH_ROWS)
    coarse = None if sample is None else _Likelihood(x_[sample], tx_[sample], T_[sample], w[sample])

    starts = _starting_values(x_, T_, w)
    if initial is not None:
        starts.insert(0, np.log([initial.r, initial.alpha, initial.a, initial.b]))
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
    r, alpha, a, b = np.exp(opt.log_params)
    return BgNbdFit(
        r=float(r),
        alpha=float(alpha),
        a=float(a),
        b=float(b),
        log_likelihood=opt.log_likelihood,
        n_customers=total,
        fit_seconds=opt.seconds,
        converged=opt.converged,
        iterations=opt.iterations,
        log_covariance=opt.log_covariance,
    )


# --------------------------------------------------------------------------------------------
# Predictions (vectorised; parameters may be arrays that broadcast against the data)


def probability_alive(
    params: BgNbdParameters, x: npt.ArrayLike, t_x: npt.ArrayLike, T: npt.ArrayLike
) -> FloatArray:
    """P(alive at T | x, t_x, T) (note 021):

        1 / (1 + [x > 0] a / (b + x - 1) ((alpha + T) / (alpha + t_x))^(r + x)),

    evaluated as expit(-log of the odds) so that large x or T cannot overflow. Customers with
    x = 0 are alive for sure: in the BG/NBD, drop-out can only follow a repeat purchase.
    """
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    x_, tx_, T_ = (np.asarray(v, dtype=float) for v in (x, t_x, T))
    log_odds_dead = (
        np.log(a)
        - np.log(b + np.maximum(x_, 1.0) - 1.0)
        + (r + x_) * (np.log(alpha + T_) - np.log(alpha + tx_))
    )
    return np.where(x_ > 0, expit(-log_odds_dead), 1.0)


def probability_alive_log_gradient(
    params: BgNbdParameters, x: npt.ArrayLike, t_x: npt.ArrayLike, T: npt.ArrayLike
) -> FloatArray:
    """d ln P(alive) / d (ln r, ln alpha, ln a, ln b), shape (4, n), for scalar parameters.

    With l the log-odds of being dead (:func:`probability_alive`), ln P = -ln(1 + e^l), so the
    gradient is -(1 - P) times that of l: r ln((alpha+T)/(alpha+t_x)),
    alpha (r+x) (1/(alpha+T) - 1/(alpha+t_x)), 1 and -b / (b+x-1); 0 where x = 0.
    """
    r, alpha, a, b = (float(v) for v in (params.r, params.alpha, params.a, params.b))
    x_, tx_, T_ = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (x, t_x, T)))
    b_x = b + np.maximum(x_, 1.0) - 1.0
    inv_T, inv_tx = 1.0 / (alpha + T_), 1.0 / (alpha + tx_)
    log_ratio = np.log(inv_tx / inv_T)  # ln((alpha + T) / (alpha + t_x)), one log per row
    minus_dead = -expit(np.log(a) - np.log(b_x) + (r + x_) * log_ratio)
    minus_dead *= x_ > 0
    out = np.empty((4, *x_.shape))
    np.multiply(minus_dead, r * log_ratio, out=out[0])
    np.multiply(minus_dead, alpha * (r + x_) * (inv_T - inv_tx), out=out[1])
    out[2] = minus_dead
    np.multiply(minus_dead, -b / b_x, out=out[3])
    return out


def _euler_hypergeometric(
    t: FloatArray, x: FloatArray, T: FloatArray, r: FloatArray, alpha: FloatArray,
    a: FloatArray, b: FloatArray, *, log1p_k: FloatArray | None = None,
    c: FloatArray | None = None,
) -> FloatArray:  # fmt: skip
    """(a+b+x-1)/(a-1) [1 - (1-z)^(a-1) 2F1(a+b-1-r, a-1; a+b+x-1; z)], z = t/(alpha+T+t).

    This is FHL eq. (10)'s numerator after Euler's transformation
    2F1(A, B; C; z) = (1-z)^(C-A-B) 2F1(C-A, C-B; C; z) of its term
    ((alpha+T)/(alpha+T+t))^(r+x) 2F1(r+x, b+x; a+b+x-1; z), with 1 - z = (alpha+T)/(alpha+T+t).
    The original series has terms growing like (x z)^k and overflows for large x (lifetimes
    then switches to this same form); here the upper parameters do not grow with x while the
    lower one does, so the series converges faster as x grows, and the bracket is computed as
    -expm1(.) so it keeps its precision when it is small. ``log1p_k`` = ln(1 + t/(alpha+T))
    and ``c`` = a+b+x-1 if the caller has them already.
    """
    if log1p_k is None:
        log1p_k = np.log1p(t / (alpha + T))
    if c is None:
        c = a + b + x - 1
    hyp = hyp2f1(a + b - 1 - r, a - 1, c, t / (alpha + T + t))
    return c / (a - 1) * -np.expm1((a - 1) * -log1p_k + np.log(hyp))


_A_NEAR_ONE = 1e-5


def _quadrature_one(
    t: float, x: float, T: float, r: float, alpha: float, a: float, b: float
) -> float:
    """The same expectation by adaptive quadrature over the drop-out probability p.

    Given alive at T, lambda ~ Gamma(r+x, rate alpha+T) and p ~ Beta(a, b+x) independently, and
    the expected number of purchases in the next t days given (lambda, p) is
    (1 - e^(-lambda p t)) / p (FHL section 3), so the expectation is
        E_p[f(p)],  f(p) = (1 - (1 + p k)^-(r+x)) / p,  k = t / (alpha + T),  p ~ Beta(a, b+x).
    For a < 1 the substitution p = w^(1/a) removes the Beta density's singularity at p = 0:
        E_p[f(p)] = 1 / (a B(a, b+x)) * integral_0^1 f(w^(1/a)) (1 - w^(1/a))^(b+x-1) dw.
    Break points where the integrand changes scale (around the Beta mass and p ~ 1/k) let
    QUADPACK find the narrow peak when b + x is large.
    """
    s, k, beta = r + x, t / (alpha + T), b + x

    def f(p: float) -> float:
        return s * k if p * k < 1e-12 else -np.expm1(-s * np.log1p(p * k)) / p

    mean = a / (a + beta)
    spread = np.sqrt(a * beta / (a + beta) ** 2 / (a + beta + 1))
    p_points = [mean + z * spread for z in (-3, -1, 0, 1, 3, 10, 30)]
    if k > 0:
        p_points.append(1 / k)
    p_points = [p for p in p_points if 0 < p < 1]
    log_beta = betaln(a, beta)
    if a < 1:

        def integrand(w: float) -> float:
            p = w ** (1.0 / a)
            return f(p) * np.exp((beta - 1) * np.log1p(-p)) if p < 1 else 0.0

        points = [p**a for p in p_points]
        log_norm = -log_beta - np.log(a)
    else:

        def integrand(w: float) -> float:
            if w <= 0 or w >= 1:
                return 0.0 if (w >= 1 and beta > 1) or (w <= 0 and a > 1) else f(w)
            return f(w) * np.exp((a - 1) * np.log(w) + (beta - 1) * np.log1p(-w) - log_beta)

        points, log_norm = p_points, 0.0
    points = sorted({float(q) for q in points if 0 < q < 1})
    # full_output: QUADPACK's round-off notes are judged by its error estimate instead.
    value, error, *_ = integrate.quad(
        integrand, 0.0, 1.0, points=points or None, limit=500, epsabs=0.0, epsrel=1e-11,
        full_output=1,
    )  # fmt: skip
    if not error <= 1e-8 * abs(value):
        warnings.warn(
            f"BG/NBD expectation by quadrature has relative error estimate "
            f"{error / abs(value):.2g} (t={t}, x={x}, T={T}, r={r}, alpha={alpha}, a={a}, b={b})",
            RuntimeWarning,
            stacklevel=3,
        )
    return float(value * np.exp(log_norm))


def _quadrature(
    t: FloatArray, x: FloatArray, T: FloatArray, r: FloatArray, alpha: FloatArray,
    a: FloatArray, b: FloatArray,
) -> FloatArray:  # fmt: skip
    """Elementwise :func:`_quadrature_one` (only used for the few points hyp2f1 gets wrong)."""
    return np.array(
        [_quadrature_one(*map(float, row)) for row in zip(t, x, T, r, alpha, a, b, strict=True)]
    )


_SERIES_TERMS = 64
_AMPLIFICATION_LIMIT = 1e5


def _pfaff_series(
    t: FloatArray, x: FloatArray, T: FloatArray, r: FloatArray, alpha: FloatArray,
    a: FloatArray, b: FloatArray,
) -> FloatArray:  # fmt: skip
    """The same expectation as a cancellation-free power series in k = t / (alpha + T).

    Pfaff's transformation turns the bracket of :func:`_euler_hypergeometric` into
    1 - 2F1(r+x, a-1; c; -k) with c = a+b+x-1, and dividing its series by (a-1) leaves
        value = c * sum_{j>=1} (r+x)_j (a)_(j-1) (-1)^(j+1) k^j / ((c)_j j!)
    ((.)_j rising factorials), which has no 0/0 at a = 1 and no difference of nearly equal
    numbers. Only used where the term ratio is at most 1/2 (:func:`_series_applies`), so 64
    terms reach double precision and the alternating sum lies within a factor 2 of its first
    term.
    """
    k = t / (alpha + T)
    s, c = r + x, a + b + x - 1
    term = s * k / c
    total = term.copy()
    for j in range(1, _SERIES_TERMS):
        term = term * (-k) * (s + j) * (a + j - 1) / ((c + j) * (j + 1))
        total += term
        if np.all(np.abs(term) <= 1e-17 * np.abs(total)):
            break
    return c * total


def _series_applies(
    t: FloatArray, x: FloatArray, T: FloatArray, r: FloatArray, alpha: FloatArray,
    a: FloatArray, b: FloatArray,
) -> FloatArray:  # fmt: skip
    """Bound on the term ratios of :func:`_pfaff_series`: k (s+j)/(c+j) (a+j-1)/(j+1) <= 1/2."""
    k = t / (alpha + T)
    c = a + b + x - 1
    ratio = k * np.maximum(1.0, (r + x + 1) / (c + 1)) * np.maximum(1.0, a / 2)
    return (c > 0) & (ratio <= 0.5)


def expected_purchases_if_alive(
    params: BgNbdParameters, t: npt.ArrayLike, x: npt.ArrayLike, T: npt.ArrayLike
) -> FloatArray:
    """Expected purchases in (T, T + t] of a customer who is alive at T with x repeat purchases.

    FHL eq. (10) is this quantity times P(alive); it does not depend on t_x, which is why the
    CLV code evaluates it once per distinct (x, T). How hyp2f1's numerical failures are handled:

    * hyp2f1 is evaluated in the Euler-transformed form (:func:`_euler_hypergeometric`), whose
      series does not blow up with x (the form lifetimes only falls back to on overflow);
    * the bracket 1 - (1-z)^(a-1) 2F1(.) loses digits when it is small: relative error about
      1e-16 * c / (|a - 1| L) with c = a+b+x-1 and L the lower bound below (a near 1, large b,
      short horizons). Where that factor exceeds 1e5 and k = t/(alpha+T) is small enough, the
      cancellation-free Pfaff series (:func:`_pfaff_series`) is used instead;
    * a = 1 is a removable singularity (0/0): elsewhere within 1e-5 of it the value is
      interpolated linearly between a = 1 -/+ 1e-5 (error about 1e-9 relative);
    * every value is checked against bounds that hold for any parameters,
        L = 1 - (1 + k)^-(r+x) <= value <= (r + x) k,
      (the integrand of :func:`_quadrature_one` decreases in p from (r+x) k at p = 0 to L at
      p = 1); nan/inf or out-of-bounds values (relative slack 1e-8) are recomputed by adaptive
      quadrature (:func:`_quadrature`), and so is all of c <= 0 (possible for x = 0 when
      a + b < 1), where hyp2f1's analytic continuation returns nan for part of the range.
    """
    t_arr = np.asarray(t, dtype=float)
    a_arr = np.asarray(params.a, dtype=float)
    args = np.broadcast_arrays(
        t_arr,
        *(np.asarray(v, dtype=float) for v in (x, T, params.r, params.alpha)),
        a_arr,
        np.asarray(params.b, dtype=float),
    )  # read-only views: nothing is copied unless a subset needs special treatment
    t_, x_, T_, r, alpha, a, b = args
    with np.errstate(all="ignore"):
        k = t_ / (alpha + T_)
        log1p_k = np.log1p(k)
        s = r + x_
        upper = s * k
        lower = -np.expm1(-s * log1p_k)
        c = a + b + x_ - 1
        # The series' own applicability test only where the bracket's cancellation matters.
        series = np.asarray(c / (np.abs(a - 1) * lower) > _AMPLIFICATION_LIMIT)
        if np.any(series):
            series[series] = _series_applies(*(v[series] for v in args))
        near_one = np.broadcast_to(np.abs(a_arr - 1) < _A_NEAR_ONE, series.shape) & ~series
        if not (np.any(series) or np.any(near_one)):
            value = np.asarray(_euler_hypergeometric(*args, log1p_k=log1p_k, c=c), dtype=float)
            if not value.flags.writeable:
                value = value.copy()
        else:
            value = np.empty(t_.shape)
            plain = ~series & ~near_one
            value[plain] = _euler_hypergeometric(*(v[plain] for v in args))
            value[series] = _pfaff_series(*(v[series] for v in args))
            if np.any(near_one):
                sub = [v[near_one] for v in args]
                ones = np.ones_like(sub[5])
                lo = _euler_hypergeometric(*sub[:5], ones * (1 - _A_NEAR_ONE), sub[6])
                hi = _euler_hypergeometric(*sub[:5], ones * (1 + _A_NEAR_ONE), sub[6])
                share = (sub[5] - (1 - _A_NEAR_ONE)) / (2 * _A_NEAR_ONE)
                value[near_one] = lo + share * (hi - lo)
        bad = ~np.isfinite(value)
        bad |= value > upper * (1 + 1e-8)
        bad |= value < lower * (1 - 1e-8)
        bad |= c <= 0
    if np.any(bad):
        value[bad] = _quadrature(*(v[bad] for v in args))
    if np.any(t_arr == 0):
        value = np.where(t_ == 0, 0.0, value)
    return value


def conditional_expected_purchases(
    params: BgNbdParameters,
    t: npt.ArrayLike,
    x: npt.ArrayLike,
    t_x: npt.ArrayLike,
    T: npt.ArrayLike,
) -> FloatArray:
    """E[Y(t) | x, t_x, T] (FHL eq. 10): expected repeat purchases in the next t days.

    = P(alive | x, t_x, T) * E[purchases in (T, T+t] | alive at T, x, T]; see
    :func:`probability_alive` and :func:`expected_purchases_if_alive`.
    """
    return probability_alive(params, x, t_x, T) * expected_purchases_if_alive(params, t, x, T)


def expected_purchases(params: BgNbdParameters, t: npt.ArrayLike) -> FloatArray:
    """E[X(t)] (FHL eq. 9): expected repeat purchases in the first t days of a NEW customer,

        (a+b-1)/(a-1) [1 - (alpha/(alpha+t))^r 2F1(r, b; a+b-1; t/(alpha+t))],

    which is eq. (10) at x = t_x = T = 0 (a new customer is alive), so it shares its guards.
    """
    t_ = np.asarray(t, dtype=float)
    zero = np.zeros_like(t_)
    return expected_purchases_if_alive(params, t_, zero, zero)
