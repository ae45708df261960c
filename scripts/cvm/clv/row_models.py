"""What the purchase models beside BG/NBD share: a likelihood written row by row, its fit, and
the two-term mixture their likelihoods and P(alive) are made of.

BG/NBD (:mod:`cvm.clv.bg_nbd`) has a likelihood tuned to its own algebra; Pareto/NBD and
MBG/NBD are written the plain way instead: a function returns, per row of (x, t_x, T), the
log-likelihood with its analytic gradient and Hessian in the natural parameters, and
:class:`RowLikelihood` sums them with the customer weights (in blocks, on threads, in block
order, so the sums do not depend on the number of threads) and moves them to the log scale the
optimiser works on (:mod:`cvm.clv.estimation`). :func:`fit_purchase_model` is the fit around it:
the same checks, subsample search, Newton steps and covariance as the BG/NBD fit.

Both models' likelihoods are ln L = c + ln(e^A + e^B) per customer: "alive at T" plus
"dropped out after the last purchase" (Pareto/NBD: at any time in (t_x, T]; MBG/NBD: at the
last purchase). :func:`log_mixture` gives ln(e^A + e^B) with its derivatives from those of A
and B, and the share e^A / (e^A + e^B) is P(alive).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from cvm.clv.bg_nbd import validate_rfm
from cvm.clv.estimation import (
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
)

# Rows of the subsample the optimiser's search runs on (as for BG/NBD).
SEARCH_ROWS = 50_000


class RowTerms(NamedTuple):
    """Per-row log-likelihood (n,), its gradient (n, k) and, when asked for, its Hessian
    (n, k, k), all in the natural parameters."""

    value: FloatArray
    gradient: FloatArray
    hessian: FloatArray | None


# (natural parameters, x, t_x, T, hessian?) -> RowTerms
TermsFunction = Callable[[FloatArray, FloatArray, FloatArray, FloatArray, bool], RowTerms]


class Mixture(NamedTuple):
    """ln(e^A + e^B) per row with its gradient and Hessian, and the share of A."""

    value: FloatArray
    gradient: FloatArray
    hessian: FloatArray | None
    share_a: FloatArray


def log_mixture(
    a: FloatArray, grad_a: FloatArray, hess_a: FloatArray | None,
    b: FloatArray, grad_b: FloatArray, hess_b: FloatArray | None,
) -> Mixture:  # fmt: skip
    """M = ln(e^A + e^B), computed without overflow; with the shares w_A, w_B = e^(A-M),
    e^(B-M): grad M = w_A grad A + w_B grad B and
    Hess M = w_A Hess A + w_B Hess B + w_A w_B (grad A - grad B)(grad A - grad B)'."""
    value = np.logaddexp(a, b)
    share_a = np.exp(a - value)
    share_b = np.exp(b - value)
    gradient = share_a[:, None] * grad_a + share_b[:, None] * grad_b
    hessian = None
    if hess_a is not None and hess_b is not None:
        diff = grad_a - grad_b
        hessian = (
            share_a[:, None, None] * hess_a + share_b[:, None, None] * hess_b
            + (share_a * share_b)[:, None, None] * diff[:, :, None] * diff[:, None, :]
        )  # fmt: skip
    return Mixture(value, gradient, hessian, share_a)


class RowLikelihood:
    """The fit's objective (:class:`cvm.clv.estimation.Objective`) from a per-row
    :data:`TermsFunction`: weighted sums over blocks of rows, in block order."""

    def __init__(
        self, terms: TermsFunction, x: FloatArray, t_x: FloatArray, T: FloatArray,
        w: FloatArray, *, block_rows: int,
    ) -> None:  # fmt: skip
        self.terms, self.x, self.t_x, self.T, self.w = terms, x, t_x, T, w
        self.total = float(w.sum())
        self.blocks = row_blocks(x.size, block_rows)

    def __call__(self, log_params: FloatArray, hessian: bool = False) -> Evaluation:
        theta = np.exp(log_params)

        def block(rows: slice) -> tuple[float, FloatArray, FloatArray | None]:
            with np.errstate(all="ignore"):
                terms = self.terms(theta, self.x[rows], self.t_x[rows], self.T[rows], hessian)
            w = self.w[rows]
            h = None if terms.hessian is None else np.einsum("n,nij->ij", w, terms.hessian)
            return float(w @ terms.value), np.einsum("n,nj->j", w, terms.gradient), h

        parts = map_blocks(block, self.blocks)
        ll = float(np.sum([p[0] for p in parts]))
        grad = np.sum([p[1] for p in parts], axis=0)
        hess = np.sum([p[2] for p in parts], axis=0) if hessian else None
        log_grad, log_hess = log_scale_derivatives(theta, grad, hess)
        return objective_value(ll, log_grad, log_hess, self.total)

    def log_likelihood(self, theta: FloatArray) -> float:
        """Total (weighted) log-likelihood at natural parameters ``theta``."""
        return -self(np.log(theta)).value * self.total


@dataclass(frozen=True)
class RowModel:
    """What :func:`fit_purchase_model` needs to know about a model."""

    fit_class: type[ParameterSet]
    terms: TermsFunction
    starts: Callable[[FloatArray, FloatArray, FloatArray], list[FloatArray]]  # (x, T, w)
    hint: str
    block_rows: int = 1 << 14


def fit_purchase_model(
    model: RowModel,
    x: npt.ArrayLike,
    t_x: npt.ArrayLike,
    T: npt.ArrayLike,
    weights: npt.ArrayLike | None = None,
    *,
    initial: Sequence[float] | None = None,
    max_iterations: int = 1000,
) -> ParameterSet:
    """Maximum-likelihood fit of a row model on (compressed) (x, t_x, T) rows, ``weights`` =
    customers per row; the checks and errors are those of :func:`cvm.clv.bg_nbd.fit_bg_nbd`:
    without a repeat purchase the purchase rate is estimated at zero and drop-out does not
    appear in the data, and fewer distinct histories than parameters identify nothing."""
    cls = model.fit_class
    names = cls.PARAMETER_NAMES
    x_, tx_, T_ = validate_rfm(x, t_x, T)
    w = validate_weights(weights, x_.size)
    if x_.size == 0:
        raise ValueError(f"{cls.MODEL} fit: no customers")
    if not np.any(x_ > 0):
        raise IdentificationError(
            f"{cls.MODEL}: none of the {w.sum():g} customers made a repeat purchase, so the "
            "purchase rate is estimated at zero and drop-out is never observed: the model "
            "cannot be identified. Use a longer calibration period or more customers."
        )
    histories = _distinct_histories(x_, tx_, T_, len(names))
    if histories < len(names):
        raise IdentificationError(
            f"{cls.MODEL}: only {histories} distinct (x, t_x, T) histories ({w.sum():g} "
            f"customers); {len(names)} parameters cannot be identified from fewer distinct "
            "histories than parameters (and in practice need hundreds of customers)."
        )
    likelihood = RowLikelihood(model.terms, x_, tx_, T_, w, block_rows=model.block_rows)
    sample = systematic_sample(x_.size, SEARCH_ROWS)
    coarse = None
    if sample is not None:
        coarse = RowLikelihood(
            model.terms, x_[sample], tx_[sample], T_[sample], w[sample],
            block_rows=model.block_rows,
        )  # fmt: skip
    starts = model.starts(x_, T_, w)
    if initial is not None:
        starts.insert(0, np.log(np.asarray(initial, dtype=float)))
    opt = maximise(
        likelihood, starts, names=names, model=cls.MODEL, total_weight=likelihood.total,
        max_iterations=max_iterations, hint=model.hint, coarse=coarse,
    )  # fmt: skip
    estimates = dict(zip(names, np.exp(opt.log_params).tolist(), strict=True))
    return cls(
        **estimates,
        log_likelihood=opt.log_likelihood,
        n_customers=likelihood.total,
        fit_seconds=opt.seconds,
        converged=opt.converged,
        iterations=opt.iterations,
        log_covariance=opt.log_covariance,
    )


def row_log_likelihood(
    model: RowModel, params: Any, x: npt.ArrayLike, t_x: npt.ArrayLike, T: npt.ArrayLike,
    weights: npt.ArrayLike | None = None,
) -> float:  # fmt: skip
    """Total (weighted) log-likelihood of a row model at the given parameters (a fit or its
    ``PARAMS`` tuple)."""
    x_, tx_, T_ = validate_rfm(x, t_x, T)
    w = validate_weights(weights, x_.size)
    names = model.fit_class.PARAMETER_NAMES
    theta = np.array([getattr(params, n) for n in names], dtype=float)
    return float(w @ model.terms(theta, x_, tx_, T_, False).value)


def _distinct_histories(x: FloatArray, t_x: FloatArray, T: FloatArray, k: int) -> int:
    """Distinct (x, t_x, T) rows where there are fewer than k, else a lower bound of at least k
    (the distinct values of one column): all the identification check needs to know."""
    columns = [distinct(c) for c in (x, t_x, T)]
    bound = max(c.values.size for c in columns)
    if bound >= k:
        return bound
    codes = (columns[0].index * k + columns[1].index) * k + columns[2].index
    return int(np.unique(codes).size)


def repeat_rate(x: FloatArray, T: FloatArray, w: FloatArray) -> float:
    """Repeat purchase days per day of customer age over all customers (for starting values)."""
    return max(float(w @ x), 1.0) / max(float(w @ T), 1e-9)
