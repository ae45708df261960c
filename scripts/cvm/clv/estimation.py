"""Maximum-likelihood machinery shared by the BG/NBD and Gamma-Gamma fits.

Both models are estimated over LOG-parameters: every parameter stays positive without
constraints, the problem is invariant to the time and currency units (changing days to weeks
only shifts ln alpha), and the asymptotic normal approximation used by the CLV bootstrap is
better behaved on the log scale than on the natural one.

Procedure (:func:`maximise`):

1. L-BFGS-B on the MEAN negative log-likelihood per customer (so that tolerances do not depend
   on the number of customers) with the model's analytic gradient, from one or more starts,
   inside generous box bounds (``|ln theta| <= LOG_BOUND``) that only stop overflow.
2. Up to a few full Newton steps on the analytic gradient with the numerical Hessian (below).
   In flat directions the objective stops changing at rounding level while the estimates are
   still ~1e-6 (relative) from the optimum; the gradient is still informative there, and one
   or two Newton steps bring them to ~1e-12, so that e.g. a compressed and an
   expanded fit of the same customers agree to that level. They also leave the Hessian
   evaluated at the final point.
3. Checks: gradient at the optimum, no parameter on a bound, Hessian positive definite.

The covariance is the inverse of the OBSERVED information: the Hessian of the total (weighted)
negative log-likelihood with respect to the log-parameters, obtained by central differences of
the analytic gradient (step 1e-5 in ln theta, error O(1e-10) relative). The covariance of the
natural parameters follows from the delta method, cov(theta) = J cov(ln theta) J with
J = diag(theta), which is exact to first order at the optimum (where the gradient vanishes).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy import optimize

FloatArray = npt.NDArray[np.float64]
# (mean negative log-likelihood, its gradient) as a function of the log-parameters.
Objective = Callable[[FloatArray], tuple[float, FloatArray]]

LOG_BOUND = 25.0  # exp(25) = 7e10: far beyond any sensible shape, days or currency amount
_BOUND_MARGIN = 1e-3
# A log-scale standard error above this (a factor e^5 = 148 per standard error) means the
# estimate is not pinned down by the data.
MAX_LOG_STANDARD_ERROR = 5.0
_GRADIENT_TOLERANCE = 1e-6  # on the mean log-likelihood per customer, per unit of ln theta
_HESSIAN_STEP = 1e-5
_NEWTON_STEPS = 6


class ClvFitError(RuntimeError):
    """A CLV model could not be estimated from the data given."""


class ConvergenceError(ClvFitError):
    """The optimiser stopped without reaching a maximum of the likelihood."""


class IdentificationError(ClvFitError):
    """The data do not identify every parameter (flat or unbounded likelihood)."""


@dataclass(frozen=True, eq=False)
class Optimum:
    """Result of :func:`maximise` (log-parameter scale)."""

    log_params: FloatArray
    log_likelihood: float  # total, i.e. summed over the weights
    log_covariance: FloatArray
    iterations: int
    seconds: float
    converged: bool


class ParameterSet:
    """Mixin for the frozen fit dataclasses: vector views, covariance and a tidy table.

    Subclasses are dataclasses with one float field per name in ``PARAMETER_NAMES`` plus
    ``log_covariance`` (covariance of the log-parameters, in the same order).
    """

    PARAMETER_NAMES: ClassVar[tuple[str, ...]] = ()
    PARAMETER_UNITS: ClassVar[tuple[str, ...]] = ()
    MODEL: ClassVar[str] = ""
    # Fields every subclass defines (annotations only: the mixin itself is not a dataclass).
    log_likelihood: float
    n_customers: float
    fit_seconds: float
    converged: bool
    iterations: int
    log_covariance: FloatArray

    @property
    def estimates(self) -> FloatArray:
        """The parameter estimates as a vector, in PARAMETER_NAMES order."""
        return np.array([getattr(self, name) for name in self.PARAMETER_NAMES], dtype=float)

    @property
    def covariance(self) -> FloatArray:
        """Covariance of the natural parameters (delta method from the log scale)."""
        jacobian = np.diag(self.estimates)
        return jacobian @ self.log_covariance @ jacobian

    @property
    def standard_errors(self) -> FloatArray:
        return np.sqrt(np.diag(self.covariance))

    def to_frame(self) -> pd.DataFrame:
        """One row per parameter: model, parameter, value, standard_error, unit, diagnostics."""
        return pd.DataFrame(
            {
                "model": self.MODEL,
                "parameter": list(self.PARAMETER_NAMES),
                "value": self.estimates,
                "standard_error": self.standard_errors,
                "unit": list(self.PARAMETER_UNITS),
                "log_likelihood": self.log_likelihood,
                "n_customers": self.n_customers,
                "fit_seconds": self.fit_seconds,
                "converged": self.converged,
                "iterations": self.iterations,
            }
        )


def validate_weights(weights: npt.ArrayLike | None, n: int) -> FloatArray:
    """Customer counts per row (default 1); positive and finite."""
    if weights is None:
        return np.ones(n)
    w = np.asarray(weights, dtype=float).reshape(-1)
    if w.shape != (n,):
        raise ValueError(f"weights must have one value per row ({n}), got shape {w.shape}")
    if not np.all(np.isfinite(w)) or np.any(w <= 0):
        raise ValueError("weights (customer counts) must be finite and > 0 on every row")
    return w


def weighted_sum(weights: FloatArray, values: FloatArray) -> npt.NDArray[np.float64] | float:
    """sum_i w_i values_i over the first axis, without BLAS.

    ``weights @ values`` goes through multi-threaded BLAS, whose summation order (and so the
    last bits, hence the optimiser's path) can change from run to run, and whose thread
    hand-offs cost milliseconds per call on a busy machine. einsum's own loop is deterministic.
    """
    return np.einsum("n,n...->...", weights, values)


def numerical_hessian(gradient: Callable[[FloatArray], FloatArray], at: FloatArray) -> FloatArray:
    """Symmetrised central-difference Jacobian of an analytic gradient."""
    k = at.size
    hessian = np.empty((k, k))
    for j in range(k):
        step = np.zeros(k)
        step[j] = _HESSIAN_STEP
        hessian[:, j] = (gradient(at + step) - gradient(at - step)) / (2 * _HESSIAN_STEP)
    return (hessian + hessian.T) / 2


def _newton_polish(
    objective: Objective, at: FloatArray, value: float
) -> tuple[FloatArray, float, FloatArray]:
    """Full Newton steps on the gradient from the L-BFGS-B optimum; returns the point, its
    objective value and the Hessian recomputed there.

    A step is kept only if it reduces the largest gradient component without raising the
    objective beyond rounding. Judging by the gradient rather than by the objective matters in
    flat directions: there the objective stops changing (at rounding level) while the
    parameters are still ~sqrt(machine epsilon / curvature) away from the optimum, but the
    gradient, computed analytically, still points the way.
    """

    def gradient(theta: FloatArray) -> FloatArray:
        return objective(theta)[1]

    hessian = numerical_hessian(gradient, at)
    grad = gradient(at)
    slack = 1e-13 * max(1.0, abs(value))
    for _ in range(_NEWTON_STEPS):
        try:
            step = -np.linalg.solve(hessian, grad)
        except np.linalg.LinAlgError:
            break
        if not np.all(np.isfinite(step)) or np.max(np.abs(step)) < 1e-13:
            break
        candidate = at + step
        if np.any(np.abs(candidate) >= LOG_BOUND):
            break
        new_value, new_grad = objective(candidate)
        if not (
            np.isfinite(new_value)
            and new_value <= value + slack
            and np.max(np.abs(new_grad)) < np.max(np.abs(grad))
        ):
            break
        at, value, grad = candidate, new_value, new_grad
    return at, value, numerical_hessian(gradient, at)


def _raise_if_at_bound(log_params: FloatArray, names: Sequence[str], model: str, hint: str) -> None:
    """A parameter pushed to the box bound means the likelihood keeps rising towards 0 or
    infinity in that direction (e.g. b -> infinity when the data show no drop-out at all)."""
    at_bound = np.abs(log_params) > LOG_BOUND - _BOUND_MARGIN
    if np.any(at_bound):
        which = ", ".join(
            f"{n} = {np.exp(v):.3g}" for n, v, hit in zip(names, log_params, at_bound, strict=True)
            if hit
        )  # fmt: skip
        raise IdentificationError(
            f"{model}: {which} ran to the edge of the search space (|ln value| = {LOG_BOUND}); "
            f"the likelihood keeps improving without bound, so the data do not identify it. "
            f"{hint}"
        )


def maximise(
    objective: Objective,
    starts: Sequence[FloatArray],
    *,
    names: Sequence[str],
    model: str,
    total_weight: float,
    max_iterations: int,
    hint: str,
) -> Optimum:
    """Maximise a log-likelihood over log-parameters; see the module docstring.

    ``objective`` returns the MEAN negative log-likelihood per unit weight and its gradient;
    ``total_weight`` (number of customers) turns it back into totals for the information matrix.
    Raises :class:`ConvergenceError` or :class:`IdentificationError` with ``hint`` appended.
    """
    started = time.perf_counter()
    bounds = [(-LOG_BOUND, LOG_BOUND)] * len(names)
    attempts: list[str] = []
    best: optimize.OptimizeResult | None = None
    iterations = 0
    for start in starts:
        with np.errstate(all="ignore"):
            result = optimize.minimize(
                objective,
                np.asarray(start, dtype=float),
                jac=True,
                method="L-BFGS-B",
                bounds=bounds,
                options={"maxiter": max_iterations, "ftol": 1e-15, "gtol": 1e-10},
            )
        iterations += int(result.nit)
        _raise_if_at_bound(result.x, names, model, hint)
        # L-BFGS-B reports a line-search failure once it is at machine precision: judge
        # convergence by the gradient, not by the status message.
        grad_ok = bool(np.all(np.isfinite(result.jac))) and np.max(np.abs(result.jac)) < 1e-4
        if np.isfinite(result.fun) and grad_ok and result.nit < max_iterations:
            best = result
            break
        attempts.append(
            f"start {np.round(np.exp(start), 6).tolist()}: {result.message} after {result.nit} "
            f"iterations, max |gradient| {np.max(np.abs(result.jac)):.3g}"
        )
    if best is None:
        raise ConvergenceError(
            f"{model}: the likelihood maximisation did not converge ({'; '.join(attempts)}). {hint}"
        )

    with np.errstate(all="ignore"):
        log_params, value, hessian_mean = _newton_polish(objective, best.x, float(best.fun))
        grad = objective(log_params)[1]
    _raise_if_at_bound(log_params, names, model, hint)
    converged = bool(np.max(np.abs(grad)) < _GRADIENT_TOLERANCE)
    if not converged:
        raise ConvergenceError(
            f"{model}: the optimiser stopped with max |gradient| {np.max(np.abs(grad)):.3g} per "
            f"customer (tolerance {_GRADIENT_TOLERANCE:g}) at "
            f"{dict(zip(names, np.exp(log_params).round(6).tolist(), strict=True))}. {hint}"
        )
    information = hessian_mean * total_weight
    eigenvalues = np.linalg.eigvalsh(information)
    if not np.all(np.isfinite(information)) or eigenvalues[0] <= 1e-12 * max(eigenvalues[-1], 1):
        raise IdentificationError(
            f"{model}: the observed information is not positive definite at the optimum "
            f"(eigenvalues {eigenvalues.round(6).tolist()}): some parameter combination is not "
            f"identified by these data. {hint}"
        )
    log_covariance = np.linalg.inv(information)
    log_errors = np.sqrt(np.diag(log_covariance))
    if np.any(log_errors > MAX_LOG_STANDARD_ERROR):
        # On a flat ridge (e.g. a -> 0, b -> infinity) the optimiser may stop anywhere short of
        # the bound, depending on floating-point details; the curvature tells the same story.
        flat = ", ".join(
            f"ln {n} +/- {e:.3g}" for n, e in zip(names, log_errors, strict=True)
            if e > MAX_LOG_STANDARD_ERROR
        )  # fmt: skip
        raise IdentificationError(
            f"{model}: the likelihood is nearly flat at the optimum ({flat}, standard errors "
            f"above {MAX_LOG_STANDARD_ERROR:g} on the log scale), so the data do not identify "
            f"the estimate. {hint}"
        )
    return Optimum(
        log_params=log_params,
        log_likelihood=-value * total_weight,
        log_covariance=log_covariance,
        iterations=iterations,
        seconds=time.perf_counter() - started,
        converged=converged,
    )
