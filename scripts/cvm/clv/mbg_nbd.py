"""MBG/NBD model: maximum likelihood on compressed data and per-customer predictions.

Reference: Batislam, E. P., Denizel, M. & Filiztekin, A. (2007), "Empirical validation and
comparison of models for customer base analysis", International Journal of Research in
Marketing 24(3), 201-209 (as implemented by lifetimes' ``ModifiedBetaGeoFitter``).

Data: (x, t_x, T) in days with the definitions of :mod:`cvm.clv.bg_nbd`.

Story: the BG/NBD's, except that a customer may also drop out right after her FIRST purchase:
after every purchase, the first included, she leaves with probability p ~ Beta(a, b). So a
customer with x = 0 is no longer alive for sure, which is what the BG/NBD gets wrong for the
many one-time buyers of real shops. r and a, b are unit-free; alpha is in days.

Likelihood per customer:

    ln L = ln G(r+x) - ln G(r) + r ln alpha - ln B(a, b)
           + ln( B(a, b+x+1) (alpha+T)^-(r+x) + B(a+1, b+x) (alpha+t_x)^-(r+x) )

(alive at T; or gone right after the last purchase, at t_x, which for x = 0 is the first).
Written row by row with analytic derivatives (:mod:`cvm.clv.row_models`). Its predictions are
the BG/NBD's with b + 1 in the place of b (see :func:`expected_purchases_if_alive`), so they
share the BG/NBD's guarded hypergeometric code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple

import numpy as np
import numpy.typing as npt
from scipy.special import betaln, digamma, expit, gammaln, polygamma

from cvm.clv import bg_nbd
from cvm.clv.estimation import Distinct, FloatArray, ParameterSet, distinct
from cvm.clv.row_models import (
    RowModel,
    RowTerms,
    fit_purchase_model,
    log_mixture,
    repeat_rate,
    row_log_likelihood,
)

MODEL = "mbg_nbd"
PARAMETER_NAMES = ("r", "alpha", "a", "b")


class MbgNbdParams(NamedTuple):
    r: Any
    alpha: Any
    a: Any
    b: Any


@dataclass(frozen=True, eq=False)
class MbgNbdFit(ParameterSet):
    """Fitted MBG/NBD parameters with fit diagnostics; fields as in
    :class:`cvm.clv.bg_nbd.BgNbdFit`."""

    MODEL: ClassVar[str] = MODEL
    PARAMETER_NAMES: ClassVar[tuple[str, ...]] = PARAMETER_NAMES
    PARAMETER_UNITS: ClassVar[tuple[str, ...]] = ("1", "days", "1", "1")
    PARAMS: ClassVar[type] = MbgNbdParams

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


def _branch(theta: FloatArray, xs: Distinct, at: FloatArray, a_shift: float, b_shift: float,
            order: int):  # fmt: skip
    """ln B(a + a_shift, b + x + b_shift) - (r+x) ln(alpha + at), with its gradient and (order
    2) Hessian in (r, alpha, a, b): the alive branch is (0, 1) at T, the gone one (1, 0) at t_x.
    ``xs``: the rows' x as distinct values, on which the special functions are evaluated."""
    r, alpha, a, b = theta
    x = xs.values[xs.index]
    sx, log_at = r + x, np.log(alpha + at)
    a_, b_ = a + a_shift, b + xs.values + b_shift
    psi_ab = digamma(a_ + b_)
    value = betaln(a_, b_)[xs.index] - sx * log_at
    gradient = np.column_stack(
        [-log_at, -sx / (alpha + at), (digamma(a_) - psi_ab)[xs.index],
         (digamma(b_) - psi_ab)[xs.index]]
    )  # fmt: skip
    hessian = None
    if order == 2:
        tri_ab = polygamma(1, a_ + b_)
        hessian = np.zeros((x.size, 4, 4))
        hessian[:, 0, 1] = hessian[:, 1, 0] = -1.0 / (alpha + at)
        hessian[:, 1, 1] = sx / (alpha + at) ** 2
        hessian[:, 2, 2] = (polygamma(1, a_) - tri_ab)[xs.index]
        hessian[:, 2, 3] = hessian[:, 3, 2] = -tri_ab[xs.index]
        hessian[:, 3, 3] = (polygamma(1, b_) - tri_ab)[xs.index]
    return value, gradient, hessian


def _terms(theta: FloatArray, x: FloatArray, t_x: FloatArray, T: FloatArray, hessian: bool):
    """Per-row log-likelihood (module docstring) with its gradient and Hessian in
    (r, alpha, a, b). The special functions depend on the rows through x alone, which takes
    few distinct values: they are evaluated once per value (most of the time otherwise)."""
    r, alpha, a, b = theta
    order = 2 if hessian else 1
    xs = distinct(x)
    mix = log_mixture(
        *_branch(theta, xs, T, 0.0, 1.0, order), *_branch(theta, xs, t_x, 1.0, 0.0, order)
    )
    rx = r + xs.values
    value = gammaln(rx)[xs.index] - gammaln(r) + r * np.log(alpha) - betaln(a, b) + mix.value
    psi_ab = digamma(a + b)
    gradient = mix.gradient + np.column_stack(
        [
            (digamma(rx) - digamma(r))[xs.index] + np.log(alpha),
            np.full(x.size, r / alpha),
            np.full(x.size, psi_ab - digamma(a)),
            np.full(x.size, psi_ab - digamma(b)),
        ]
    )
    hess = mix.hessian
    if hess is not None:
        tri_ab = polygamma(1, a + b)
        hess[:, 0, 0] += (polygamma(1, rx) - polygamma(1, r))[xs.index]
        hess[:, 0, 1] += 1.0 / alpha
        hess[:, 1, 0] += 1.0 / alpha
        hess[:, 1, 1] -= r / alpha**2
        hess[:, 2, 2] += tri_ab - polygamma(1, a)
        hess[:, 2, 3] += tri_ab
        hess[:, 3, 2] += tri_ab
        hess[:, 3, 3] += tri_ab - polygamma(1, b)
    return RowTerms(value, gradient, hess)


def _starting_values(x: FloatArray, T: FloatArray, w: FloatArray) -> list[FloatArray]:
    """As for BG/NBD: r = 1 with alpha matching the mean repeat rate, a = 1, b = 3; then
    lifetimes' all ones with alpha at max T / 10."""
    rate = repeat_rate(x, T, w)
    return [
        np.log([1.0, 1.0 / rate, 1.0, 3.0]),
        np.log([1.0, max(float(T.max()) / 10, 1e-6), 1.0, 1.0]),
    ]


ROW_MODEL = RowModel(
    MbgNbdFit, _terms, _starting_values, bg_nbd.FIT_HINT.replace("BG/NBD", "MBG/NBD")
)


def fit_mbg_nbd(
    x: npt.ArrayLike,
    t_x: npt.ArrayLike,
    T: npt.ArrayLike,
    weights: npt.ArrayLike | None = None,
    *,
    initial: MbgNbdParams | None = None,
    max_iterations: int = 1000,
) -> MbgNbdFit:
    """Maximum-likelihood MBG/NBD fit on (compressed) data; ``weights`` = customers per row.
    Errors as :func:`cvm.clv.bg_nbd.fit_bg_nbd`."""
    fit = fit_purchase_model(
        ROW_MODEL, x, t_x, T, weights, initial=initial, max_iterations=max_iterations
    )
    assert isinstance(fit, MbgNbdFit)
    return fit


def log_likelihood(params: Any, x: Any, t_x: Any, T: Any, weights: Any = None) -> float:
    """Total (weighted) MBG/NBD log-likelihood at the given parameters."""
    return row_log_likelihood(ROW_MODEL, params, x, t_x, T, weights)


# --------------------------------------------------------------------------------------------
# Predictions (vectorised; parameters may be arrays that broadcast against the data)


def _log_odds_gone(params: Any, x: Any, t_x: Any, T: Any) -> Any:
    """ln of the odds of having left right after the last purchase rather than being alive:
    ln a - ln(b + x) + (r+x) ln((alpha+T)/(alpha+t_x))."""
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    return np.log(a) - np.log(b + x) + (r + x) * (np.log(alpha + T) - np.log(alpha + t_x))


def probability_alive(
    params: Any, x: npt.ArrayLike, t_x: npt.ArrayLike, T: npt.ArrayLike
) -> FloatArray:
    """P(alive at T | x, t_x, T) = 1 / (1 + a/(b+x) ((alpha+T)/(alpha+t_x))^(r+x)), for every
    customer (x = 0 included: she may have left after her first purchase)."""
    x_, tx_, T_ = (np.asarray(v, dtype=float) for v in (x, t_x, T))
    return expit(-_log_odds_gone(params, x_, tx_, T_))


def probability_alive_log_gradient(
    params: Any, x: npt.ArrayLike, t_x: npt.ArrayLike, T: npt.ArrayLike
) -> FloatArray:
    """d ln P(alive) / d (ln r, ln alpha, ln a, ln b), shape (4, n), for scalar parameters:
    -(1 - P) times the log-gradient of the log-odds l of :func:`_log_odds_gone`,
    (r ln((alpha+T)/(alpha+t_x)), alpha (r+x) (1/(alpha+T) - 1/(alpha+t_x)), 1, -b/(b+x))."""
    r, alpha, b = (float(v) for v in (params.r, params.alpha, params.b))
    x_, tx_, T_ = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (x, t_x, T)))
    gone = expit(_log_odds_gone(params, x_, tx_, T_))
    return -gone * np.stack(
        [
            r * (np.log(alpha + T_) - np.log(alpha + tx_)),
            alpha * (r + x_) * (1.0 / (alpha + T_) - 1.0 / (alpha + tx_)),
            np.ones_like(x_),
            -b / (b + x_),
        ]
    )


def expected_purchases_if_alive(
    params: Any, t: npt.ArrayLike, x: npt.ArrayLike, T: npt.ArrayLike
) -> FloatArray:
    """Expected purchases in (T, T + t] of a customer alive at T: the BG/NBD's expression with
    b + 1 for b, (a+b+x)/(a-1) [1 - ((alpha+T)/(alpha+T+t))^(r+x) 2F1(r+x, b+x+1; a+b+x; z)]
    (lifetimes' ``ModifiedBetaGeoFitter``): alive after a purchase means one more survived
    drop-out chance than in the BG/NBD, which shifts the posterior of p from Beta(a, b+x-1) to
    Beta(a, b+x)."""
    shifted = bg_nbd.BgNbdParams(params.r, params.alpha, params.a, np.asarray(params.b) + 1.0)
    return bg_nbd.expected_purchases_if_alive(shifted, t, x, T)


def conditional_expected_purchases(
    params: Any, t: npt.ArrayLike, x: npt.ArrayLike, t_x: npt.ArrayLike, T: npt.ArrayLike
) -> FloatArray:
    """E[Y(t) | x, t_x, T]: P(alive) times :func:`expected_purchases_if_alive`."""
    return probability_alive(params, x, t_x, T) * expected_purchases_if_alive(params, t, x, T)


def expected_purchases(params: Any, t: npt.ArrayLike) -> FloatArray:
    """E[X(t)] of a new customer: b/(a-1) [1 - (alpha/(alpha+t))^r 2F1(r, b+1; a+b; t/(alpha+t))]
    = P(alive just after the first purchase) = b/(a+b) times the curve at x = T = 0."""
    t_ = np.asarray(t, dtype=float)
    zero = np.zeros_like(t_)
    return conditional_expected_purchases(params, t_, zero, zero, zero)
