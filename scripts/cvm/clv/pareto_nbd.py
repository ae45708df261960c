"""Pareto/NBD model: maximum likelihood on compressed data and per-customer predictions.

References: Schmittlein, D. C., Morrison, D. G. & Colombo, R. (1987), "Counting your customers:
who are they and what will they do next?", Management Science 33(1), 1-24; Fader, P. S. &
Hardie, B. G. S. (2005), "A note on deriving the Pareto/NBD model and related expressions"
(brucehardie.com note 008, "FH-008").

Data: (x, t_x, T) in days with the definitions of :mod:`cvm.clv.bg_nbd`, compressed to distinct
rows with ``weights`` = customers per row.

Story: while alive, a customer buys as a Poisson process with rate lambda ~ Gamma(r, rate
alpha); her lifetime is exponential with rate mu ~ Gamma(s, rate beta), independent of lambda.
Unlike the BG/NBD, drop-out can happen at any moment, not only at a purchase, so a customer
with x = 0 may be gone. alpha and beta are in days; r and s are unit-free.

Likelihood (FH-008 eq. 1-3 with the drop-out time integrated out directly):

    L = G(r+x) alpha^r beta^s / G(r) * [ (alpha+T)^-(r+x) (beta+T)^-s + s I ],
    I = integral over tau in (t_x, T] of (alpha+tau)^-(r+x) (beta+tau)^-(s+1) d tau

(alive at T, or gone at tau after the last purchase). FH-008 writes s I with a Gauss
hypergeometric function whose form switches at alpha = beta and whose parameter derivatives
have no closed form; here I is a Gauss-Legendre sum (:func:`_integral`) in the log-space of
its integrand, so the log-likelihood is finite for x in the thousands and T of decades, and its
gradient and Hessian are the same sums of the integrand's (elementary) derivatives. Checked in
python_tests/test_clv_models_beyond_bg_nbd.py against lifetimes' hypergeometric form (1e-9 on
the log-likelihood over wide parameter ranges) and against finite differences.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple

import numpy as np
import numpy.typing as npt
from scipy.special import digamma, expit, gammaln, polygamma

from cvm.clv.estimation import FloatArray, ParameterSet
from cvm.clv.row_models import (
    RowModel,
    RowTerms,
    fit_purchase_model,
    log_mixture,
    repeat_rate,
    row_log_likelihood,
)

MODEL = "pareto_nbd"
PARAMETER_NAMES = ("r", "alpha", "s", "beta")

FIT_HINT = (
    "Things to try: check the inputs are in days and follow the FHL definitions (x distinct "
    "purchase days after the first, t_x <= T); use a longer calibration period so that there "
    "are enough repeat purchases and some visible drop-out (without any, s/beta -> 0: the "
    "Pareto/NBD then turns into the NBD, with everyone alive); pass other starting values "
    "(initial=...) or more iterations (max_iterations=...)."
)


class ParetoNbdParams(NamedTuple):
    r: Any
    alpha: Any
    s: Any
    beta: Any


@dataclass(frozen=True, eq=False)
class ParetoNbdFit(ParameterSet):
    """Fitted Pareto/NBD parameters with fit diagnostics; fields as in
    :class:`cvm.clv.bg_nbd.BgNbdFit` (``log_covariance`` of (ln r, ln alpha, ln s, ln beta))."""

    MODEL: ClassVar[str] = MODEL
    PARAMETER_NAMES: ClassVar[tuple[str, ...]] = PARAMETER_NAMES
    PARAMETER_UNITS: ClassVar[tuple[str, ...]] = ("1", "days", "1", "days")
    PARAMS: ClassVar[type] = ParetoNbdParams

    r: float
    alpha: float
    s: float
    beta: float
    log_likelihood: float
    n_customers: float
    fit_seconds: float
    converged: bool
    iterations: int
    log_covariance: FloatArray


# --------------------------------------------------------------------------------------------
# The drop-out integral

# Gauss-Legendre nodes of panel 1 by its length in units of the leading decay (see _integral):
# (longest length, nodes). The rule's error on exp(-w) over a panel of length L with n nodes
# is about (L/4)^(2n) / (2n)!, below 1e-16 on every tier, and the rest of the integrand needs
# a few more where alpha and beta differ widely; most customers (few purchases, short
# spans) need the first. Panel 2, where it is needed at all, has _TAIL_NODES. Measured against
# lifetimes' closed form (python_tests/test_purchase_models.py): the log-likelihood error is
# below 1e-10 where alpha and beta are within a factor 150 of each other and about 1e-9 at a
# factor 3,000.
_NODE_TIERS = ((8.0, 24), (20.0, 32), (50.0, 48))
_MAIN_SPAN = _NODE_TIERS[-1][0]
_TAIL_NODES = 32
# Rows per quadrature call (see _integral).
_CHUNK_ROWS = 1 << 12
_GAUSS = {
    n: np.polynomial.legendre.leggauss(n) for n in (*(t[1] for t in _NODE_TIERS), _TAIL_NODES)
}


class _Integral(NamedTuple):
    """ln I per row and, when asked for, its gradient (n, 4) and Hessian (n, 4, 4) in
    (r, alpha, s, beta)."""

    log_value: FloatArray
    gradient: FloatArray | None
    hessian: FloatArray | None


def _integral(theta: FloatArray, x: FloatArray, t_x: FloatArray, T: FloatArray, order: int):
    """ln I (module docstring) by Gauss-Legendre in u = ln((g + tau) / (g + t_x)).

    The integrand f(tau) = (alpha+tau)^-p (beta+tau)^-q (p = r+x, q = s+1) is a product of two
    power laws. In u it is f (g + tau) du, which for alpha = beta = g is exactly
    exp(-(p+q-1) u) times a constant; g is the mixture of alpha and beta that makes its log-slope
    exactly that at the start, g = (p alpha/(alpha+t_x) + q beta/(beta+t_x)) / (p/(alpha+t_x) +
    q/(beta+t_x)), so that the rest of the integrand varies slowly. Panel 1 covers u up to
    50 / (p+q-1) (where that leading factor has fallen to e^-50), with as many nodes as its
    length needs (_NODE_TIERS); panel 2 the rest up to T, only where there is a rest (it matters
    where alpha and beta differ widely and the decay is slower). Rows are evaluated in groups of
    equal node counts. The sum is taken in log space (no overflow for any x), and its parameter
    derivatives are the same sums of the derivatives of ln f: d/dr = -ln(alpha+tau), d/dalpha =
    -p/(alpha+tau), d/ds = -ln(beta+tau), d/dbeta = -q/(beta+tau) (the nodes move with the
    parameters, but the integral over (t_x, T] does not depend on the variable used). ``order``:
    0 value only, 1 with the gradient, 2 with the Hessian.
    """
    r, alpha, s, beta = theta
    p, q = r + x, s + 1.0
    k = p + q - 1.0
    c_a, c_b = p / (alpha + t_x), q / (beta + t_x)
    g = (c_a * alpha + c_b * beta) / (c_a + c_b)
    base = g + t_x
    span = np.log1p((T - t_x) / base)
    cut = np.minimum(span, _MAIN_SPAN / k)
    tier = np.searchsorted([t[0] for t in _NODE_TIERS[:-1]], k * cut)
    tail = span > cut
    n = x.size
    # alpha and beta may differ by row (covariates, cvm.clv.covariates): one per row here.
    alpha_n, beta_n = np.broadcast_to(alpha, x.shape), np.broadcast_to(beta, x.shape)
    log_value = np.empty(n)
    gradient = np.empty((n, 4)) if order >= 1 else None
    hessian = np.empty((n, 4, 4)) if order == 2 else None
    for t, (_, nodes) in enumerate(_NODE_TIERS):
        for with_tail in (False, True):
            group = np.flatnonzero((tier == t) & (tail == with_tail))
            # In chunks: a (rows, nodes) temporary of every row at once is memory-bound (25
            # times slower at 500,000 rows); each row's sum is the same either way.
            for start in range(0, group.size, _CHUNK_ROWS):
                rows = group[start : start + _CHUNK_ROWS]
                part = _panel_sums(
                    alpha_n[rows, None], beta_n[rows, None], p[rows], q, g[rows], base[rows],
                    cut[rows], span[rows], nodes, with_tail, order,
                )  # fmt: skip
                log_value[rows] = part.log_value
                if gradient is not None and part.gradient is not None:
                    gradient[rows] = part.gradient
                if hessian is not None and part.hessian is not None:
                    hessian[rows] = part.hessian
    return _Integral(log_value, gradient, hessian)


def _panel_sums(
    alpha: FloatArray, beta: FloatArray, p: FloatArray, q: float, g: FloatArray,
    base: FloatArray, cut: FloatArray, span: FloatArray, nodes: int, with_tail: bool, order: int,
) -> _Integral:  # fmt: skip
    """The quadrature of :func:`_integral` for rows that share their node counts (alpha and
    beta as columns, one row each)."""
    z1, w1 = _GAUSS[nodes]
    u = cut[:, None] * (z1 + 1) / 2
    with np.errstate(divide="ignore", invalid="ignore"):  # T = t_x: an empty panel, weight 0
        log_w = np.log(w1 * cut[:, None] / 2)
        if with_tail:
            z2, w2 = _GAUSS[_TAIL_NODES]
            u = np.concatenate([u, cut[:, None] + (span - cut)[:, None] * (z2 + 1) / 2], axis=1)
            log_w = np.concatenate([log_w, np.log(w2 * (span - cut)[:, None] / 2)], axis=1)
    tau = base[:, None] * np.exp(u) - g[:, None]
    log_a, log_b = np.log(alpha + tau), np.log(beta + tau)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_f = -p[:, None] * log_a - q * log_b + np.log(base)[:, None] + u + log_w
    top = np.max(log_f, axis=1)
    empty = ~np.isfinite(top)  # T = t_x: nothing to integrate over
    top = np.where(empty, 0.0, top)
    shares = np.exp(log_f - top[:, None])
    total = shares.sum(axis=1)
    with np.errstate(divide="ignore"):
        log_value = np.where(empty, -np.inf, top + np.log(total))
    if order == 0:
        return _Integral(log_value, None, None)
    pi = shares / np.where(empty, 1.0, total)[:, None]  # quadrature shares of I; 0 when empty
    inv_a, inv_b = 1.0 / (alpha + tau), 1.0 / (beta + tau)
    d_phi = np.stack([-log_a, -p[:, None] * inv_a, -log_b, -q * inv_b], axis=-1)
    weighted = pi[:, :, None] * d_phi
    gradient = weighted.sum(axis=1)
    if order == 1:
        return _Integral(log_value, gradient, None)
    hessian = np.matmul(weighted.transpose(0, 2, 1), d_phi)
    hessian -= gradient[:, :, None] * gradient[:, None, :]
    mean_inv_a, mean_inv_b = np.einsum("nj,nj->n", pi, inv_a), np.einsum("nj,nj->n", pi, inv_b)
    hessian[:, 0, 1] -= mean_inv_a
    hessian[:, 1, 0] -= mean_inv_a
    hessian[:, 1, 1] += p * np.einsum("nj,nj->n", pi, inv_a**2)
    hessian[:, 2, 3] -= mean_inv_b
    hessian[:, 3, 2] -= mean_inv_b
    hessian[:, 3, 3] += q * np.einsum("nj,nj->n", pi, inv_b**2)
    return _Integral(log_value, gradient, hessian)


def _alive_term(theta: FloatArray, x: FloatArray, T: FloatArray):
    """A = -(r+x) ln(alpha+T) - s ln(beta+T) (alive at T) and its gradient (n, 4)."""
    r, alpha, s, beta = theta
    log_a, log_b = np.log(alpha + T), np.log(beta + T)
    value = -(r + x) * log_a - s * log_b
    gradient = np.column_stack([-log_a, -(r + x) / (alpha + T), -log_b, -s / (beta + T)])
    return value, gradient


def _mixture(theta: FloatArray, x: FloatArray, t_x: FloatArray, T: FloatArray, order: int):
    """ln(e^A + e^B) with B = ln s + ln I (gone in (t_x, T]); share_a is P(alive)."""
    r, alpha, s, beta = theta
    a, grad_a = _alive_term(theta, x, T)
    integral = _integral(theta, x, t_x, T, max(order, 1))
    b = np.log(s) + integral.log_value
    assert integral.gradient is not None
    grad_b = integral.gradient + np.array([0.0, 0.0, 1.0 / s, 0.0])
    hess_a = hess_b = None
    if order == 2:
        hess_a = np.zeros((x.size, 4, 4))
        hess_a[:, 0, 1] = hess_a[:, 1, 0] = -1.0 / (alpha + T)
        hess_a[:, 1, 1] = (r + x) / (alpha + T) ** 2
        hess_a[:, 2, 3] = hess_a[:, 3, 2] = -1.0 / (beta + T)
        hess_a[:, 3, 3] = s / (beta + T) ** 2
        hess_b = integral.hessian
        assert hess_b is not None
        hess_b[:, 2, 2] -= 1.0 / s**2
    return log_mixture(a, grad_a, hess_a, b, grad_b, hess_b)


def _terms(theta: FloatArray, x: FloatArray, t_x: FloatArray, T: FloatArray, hessian: bool):
    """Per-row log-likelihood with its gradient and Hessian in (r, alpha, s, beta):
    ln G(r+x) - ln G(r) + r ln alpha + s ln beta + ln(e^A + e^B)."""
    r, alpha, s, beta = theta
    mix = _mixture(theta, x, t_x, T, 2 if hessian else 1)
    value = gammaln(r + x) - gammaln(r) + r * np.log(alpha) + s * np.log(beta) + mix.value
    gradient = mix.gradient + np.column_stack(
        [
            digamma(r + x) - digamma(r) + np.log(alpha),
            np.full(x.size, r / alpha),
            np.full(x.size, np.log(beta)),
            np.full(x.size, s / beta),
        ]
    )
    hess = mix.hessian
    if hess is not None:
        hess[:, 0, 0] += polygamma(1, r + x) - polygamma(1, r)
        hess[:, 0, 1] += 1.0 / alpha
        hess[:, 1, 0] += 1.0 / alpha
        hess[:, 1, 1] -= r / alpha**2
        hess[:, 2, 3] += 1.0 / beta
        hess[:, 3, 2] += 1.0 / beta
        hess[:, 3, 3] -= s / beta**2
    return RowTerms(value, gradient, hess)


def _starting_values(x: FloatArray, T: FloatArray, w: FloatArray) -> list[FloatArray]:
    """r = s = 1 with alpha matching the mean repeat rate and beta the mean age (a lifetime
    of the order of the observation period); then all shapes 1 with the scales at max T / 10."""
    rate = repeat_rate(x, T, w)
    mean_age = max(float(w @ T) / float(w.sum()), 1.0)
    scale = max(float(T.max()) / 10.0, 1e-6)
    return [np.log([1.0, 1.0 / rate, 1.0, mean_age]), np.log([1.0, scale, 1.0, scale])]


ROW_MODEL = RowModel(ParetoNbdFit, _terms, _starting_values, FIT_HINT, block_rows=1 << 12)


def fit_pareto_nbd(
    x: npt.ArrayLike,
    t_x: npt.ArrayLike,
    T: npt.ArrayLike,
    weights: npt.ArrayLike | None = None,
    *,
    initial: ParetoNbdParams | None = None,
    max_iterations: int = 1000,
) -> ParetoNbdFit:
    """Maximum-likelihood Pareto/NBD fit on (compressed) data; ``weights`` = customers per row.
    Errors as :func:`cvm.clv.bg_nbd.fit_bg_nbd`."""
    fit = fit_purchase_model(
        ROW_MODEL, x, t_x, T, weights, initial=initial, max_iterations=max_iterations
    )
    assert isinstance(fit, ParetoNbdFit)
    return fit


def log_likelihood(params: Any, x: Any, t_x: Any, T: Any, weights: Any = None) -> float:
    """Total (weighted) Pareto/NBD log-likelihood at the given parameters."""
    return row_log_likelihood(ROW_MODEL, params, x, t_x, T, weights)


# --------------------------------------------------------------------------------------------
# Predictions


def _parameter_sets(params: Any) -> tuple[tuple[int, ...], list[FloatArray]]:
    """The shape of the parameters (() for scalars, (draws, 1) for bootstrap draws) and every
    set of them as a vector."""
    arrays = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in params[:4]))
    shape = arrays[0].shape
    return shape, [np.array([a.reshape(-1)[i] for a in arrays]) for i in range(arrays[0].size)]


def probability_alive(
    params: Any, x: npt.ArrayLike, t_x: npt.ArrayLike, T: npt.ArrayLike
) -> FloatArray:
    """P(alive at T | x, t_x, T) = e^A / (e^A + s I) (FH-008 eq. 11 in the integral form):
    the share of "alive at T" in the likelihood. Parameter arrays of shape (draws, 1) give
    (draws, n)."""
    x_, tx_, T_ = (np.asarray(v, dtype=float).reshape(-1) for v in (x, t_x, T))
    shape, sets = _parameter_sets((params.r, params.alpha, params.s, params.beta))
    out = []
    for theta in sets:
        a, _ = _alive_term(theta, x_, T_)
        b = np.log(theta[2]) + _integral(theta, x_, tx_, T_, 0).log_value
        out.append(expit(a - b))
    result = np.stack(out)
    return result.reshape(*shape[:-1], -1) if shape else result[0]


def probability_alive_log_gradient(
    params: Any, x: npt.ArrayLike, t_x: npt.ArrayLike, T: npt.ArrayLike
) -> FloatArray:
    """d ln P(alive) / d (ln r, ln alpha, ln s, ln beta), shape (4, n), for scalar parameters:
    ln P = A - ln(e^A + e^B), so the gradient is (1 - P)(grad A - grad B), times theta."""
    theta = np.array([params.r, params.alpha, params.s, params.beta], dtype=float)
    x_, tx_, T_ = (np.asarray(v, dtype=float).reshape(-1) for v in (x, t_x, T))
    a, grad_a = _alive_term(theta, x_, T_)
    integral = _integral(theta, x_, tx_, T_, 1)
    assert integral.gradient is not None
    b = np.log(theta[2]) + integral.log_value
    grad_b = integral.gradient + np.array([0.0, 0.0, 1.0 / theta[2], 0.0])
    gone = expit(b - a)
    return (gone[:, None] * (grad_a - grad_b) * theta).T


def _one_minus_power(c: Any, u: Any) -> Any:
    """(1 - e^(-c u)) / c, and its limit u at c = 0, without cancellation."""
    cu = c * u
    safe = np.where(np.abs(cu) > 1e-8, c, 1.0)
    return np.where(np.abs(cu) > 1e-8, -np.expm1(-cu) / safe, u * (1 - cu / 2))


def expected_purchases_if_alive(
    params: Any, t: npt.ArrayLike, x: npt.ArrayLike, T: npt.ArrayLike
) -> FloatArray:
    """Expected purchases in (T, T + t] of a customer alive at T with x repeat purchases
    (FH-008 eq. 22 without P(alive)):

        (r+x)/(alpha+T) * (beta+T)/(s-1) * [1 - ((beta+T)/(beta+T+t))^(s-1)],

    the expected rate times the expected remaining lifetime within t, with its limit
    (r+x)/(alpha+T) (beta+T) ln(1 + t/(beta+T)) at s = 1. Parameters broadcast against the
    rows (bootstrap draws of shape (draws, 1))."""
    t_, x_, T_ = (np.asarray(v, dtype=float) for v in (t, x, T))
    r, alpha, s, beta = (np.asarray(v, dtype=float) for v in (params.r, params.alpha,
                                                              params.s, params.beta))  # fmt: skip
    u = np.log1p(t_ / (beta + T_))
    return (r + x_) / (alpha + T_) * (beta + T_) * _one_minus_power(s - 1.0, u)


def conditional_expected_purchases(
    params: Any, t: npt.ArrayLike, x: npt.ArrayLike, t_x: npt.ArrayLike, T: npt.ArrayLike
) -> FloatArray:
    """E[Y(t) | x, t_x, T]: P(alive) times :func:`expected_purchases_if_alive`."""
    return probability_alive(params, x, t_x, T) * expected_purchases_if_alive(params, t, x, T)


def expected_purchases(params: Any, t: npt.ArrayLike) -> FloatArray:
    """E[X(t)] of a new customer (FH-008 eq. 17): r beta / (alpha (s-1)) [1 - (beta/(beta+t))^
    (s-1)], which is :func:`expected_purchases_if_alive` at x = T = 0 (alive for sure)."""
    t_ = np.asarray(t, dtype=float)
    return expected_purchases_if_alive(params, t_, np.zeros_like(t_), np.zeros_like(t_))
