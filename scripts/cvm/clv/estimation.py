"""Maximum-likelihood machinery shared by the BG/NBD and Gamma-Gamma fits.

Both models are estimated over LOG-parameters: every parameter stays positive without
constraints, the problem is invariant to the time and currency units (changing days to weeks
only shifts ln alpha), and the asymptotic normal approximation used by the CLV bootstrap is
better behaved on the log scale than on the natural one.

Procedure (:func:`maximise`); the objective is the MEAN negative log-likelihood per customer (so
that tolerances do not depend on the number of customers), with its analytic gradient and
Hessian:

1. Search: L-BFGS-B with the analytic gradient, from one or more starts, inside generous box
   bounds (``|ln theta| <= LOG_BOUND``) that only stop overflow. On large inputs it runs on a
   systematic subsample of the rows (``coarse``): its optimum is within sampling error of the
   full one, which is all a starting point for step 2 needs, at a fraction of the cost. If the
   subsample search fails, it is repeated on the full data before anything is concluded.
2. Newton's method on the full data with the analytic Hessian, from the search's end point
   (backtracking when a full step does not improve the objective or, near the optimum where the
   objective only changes at rounding level, the gradient). It converges quadratically: from
   the subsample optimum, two or three iterations bring the estimates to ~1e-12 (relative),
   so that e.g. a compressed and an expanded fit of the same customers agree to that level.
   The last step, once below ``_FINAL_STEP``, is taken without re-evaluating: its own error is
   of the order of its square, and the Hessian it came from is then that of the optimum to
   within the step.
3. Checks: gradient at the optimum, no parameter on a bound, Hessian positive definite.

The covariance is the inverse of the OBSERVED information: the Hessian of the total (weighted)
negative log-likelihood with respect to the log-parameters, from the models' analytic second
derivatives. The covariance of the natural parameters follows from the delta method,
cov(theta) = J cov(ln theta) J with J = diag(theta), which is exact to first order at the
optimum (where the gradient vanishes).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import ClassVar, NamedTuple, Protocol, TypeVar

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy import optimize

FloatArray = npt.NDArray[np.float64]


class Evaluation(NamedTuple):
    """Mean negative log-likelihood per unit weight and its derivatives (log-parameters)."""

    value: float
    gradient: FloatArray
    hessian: FloatArray | None  # only when asked for


class Objective(Protocol):
    """A model's mean negative log-likelihood as a function of its log-parameters; the Hessian
    is computed only when ``hessian`` is true (it costs about as much again)."""

    def __call__(self, log_params: FloatArray, hessian: bool = False) -> Evaluation: ...


LOG_BOUND = 25.0  # exp(25) = 7e10: far beyond any sensible shape, days or currency amount
_BOUND_MARGIN = 1e-3
# A log-scale standard error above this (a factor e^5 = 148 per standard error) means the
# estimate is not pinned down by the data.
MAX_LOG_STANDARD_ERROR = 5.0
_GRADIENT_TOLERANCE = 1e-6  # on the mean log-likelihood per customer, per unit of ln theta
_HESSIAN_STEP = 1e-5
_NEWTON_ITERATIONS = 20
# A Newton step below this (in ln theta) is taken without evaluating its end point: the error
# left is of the order of its square (~1e-12), and the Hessian at its start differs from the one
# at its end by a relative ~1e-6 at most, far below the covariance's own sampling error.
_FINAL_STEP = 1e-6


class ClvFitError(RuntimeError):
    """A CLV model could not be estimated from the data given.

    ``reason``: what went wrong; ``hint``: what a caller of the engine may try (starting values,
    iterations, data definitions); the message is both. ``estimates``: where the optimiser
    ended (natural scale), when it got that far: it tells, e.g., a boundary of the model.
    """

    def __init__(
        self, reason: str, estimates: dict[str, float] | None = None, hint: str = ""
    ) -> None:
        super().__init__(f"{reason} {hint}".strip())
        self.reason = reason
        self.estimates = estimates
        self.hint = hint


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
    PARAMS: ClassVar[type] = tuple  # the named tuple of the parameters (e.g. bootstrap draws)
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


class Distinct(NamedTuple):
    """Distinct values of one column and, per row, the index of its value."""

    values: FloatArray
    index: npt.NDArray[np.intp]


def distinct(column: FloatArray) -> Distinct:
    """Hash-based (pandas factorize): a fraction of the cost of np.unique's sort on a million
    rows. The values come in order of first appearance, which nothing here depends on."""
    index, values = pd.factorize(np.asarray(column, dtype=float))
    return Distinct(np.asarray(values, dtype=float), index.astype(np.intp, copy=False))


MAX_THREADS = 8
ROW_BLOCK = 1 << 16  # rows per block of per-row work: temporaries stay cache-sized
_Result = TypeVar("_Result")


def threads() -> int:
    """Threads for blocked array work: the machine's cores, at most MAX_THREADS."""
    return max(1, min(os.cpu_count() or 1, MAX_THREADS))


def row_blocks(n: int, size: int | None = None) -> list[slice]:
    """Consecutive slices of ``size`` rows (default ROW_BLOCK) covering n rows."""
    size = size or ROW_BLOCK
    return [slice(start, start + size) for start in range(0, n, size)]


def map_blocks(
    func: Callable[[slice], _Result], blocks: Sequence[slice], *, parallel: bool = True
) -> list[_Result]:
    """``func`` on every block, in parallel threads when there are several blocks (numpy's
    and scipy.special's loops run without the GIL), results in block order. Work that is
    elementwise within a block, or whose per-block sums are combined in block order over blocks
    that depend only on the data, gives results that do not depend on the number of threads."""
    workers = min(threads(), len(blocks)) if parallel else 1
    if workers <= 1:
        return [func(block) for block in blocks]
    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(func, blocks))


def objective_value(
    ll: float, grad: FloatArray, hess: FloatArray | None, total: float
) -> Evaluation:
    """A total log-likelihood and its log-parameter derivatives -> the objective (the mean
    negative log-likelihood per unit weight); a non-finite value becomes +inf, which the
    optimisers treat as a point to back away from."""
    value = -float(ll) / total
    if not np.isfinite(value):
        return Evaluation(np.inf, np.zeros_like(grad), None if hess is None else hess * np.nan)
    return Evaluation(value, -grad / total, None if hess is None else -hess / total)


def log_scale_derivatives(
    theta: FloatArray, gradient: FloatArray, hessian: FloatArray | None
) -> tuple[FloatArray, FloatArray | None]:
    """Gradient and Hessian w.r.t. ln theta from those w.r.t. theta (chain rule):
    g_j theta_j and H_jk theta_j theta_k + [j = k] g_j theta_j."""
    log_gradient = gradient * theta
    if hessian is None:
        return log_gradient, None
    return log_gradient, hessian * np.outer(theta, theta) + np.diag(log_gradient)


def systematic_sample(n: int, target: int) -> slice | None:
    """Every k-th row, k such that about ``target`` rows remain; None when n is small enough
    to use whole (below 2 * target)."""
    if n < 2 * target:
        return None
    return slice(None, None, -(-n // target))


def numerical_hessian(gradient: Callable[[FloatArray], FloatArray], at: FloatArray) -> FloatArray:
    """Symmetrised central-difference Jacobian of an analytic gradient (checks the analytic
    Hessians in the tests; error O(1e-10) relative with step 1e-5 in ln theta)."""
    k = at.size
    hessian = np.empty((k, k))
    for j in range(k):
        step = np.zeros(k)
        step[j] = _HESSIAN_STEP
        hessian[:, j] = (gradient(at + step) - gradient(at - step)) / (2 * _HESSIAN_STEP)
    return (hessian + hessian.T) / 2


class _NewtonResult(NamedTuple):
    log_params: FloatArray
    value: float
    gradient: FloatArray
    hessian: FloatArray
    iterations: int
    converged: bool  # the step became negligible (else: stopped making progress)


def _newton(objective: Objective, at: FloatArray, max_iterations: int) -> _NewtonResult:
    """Newton's method with the analytic Hessian from ``at`` (see the module docstring).

    A trial point is accepted if it lowers the objective by a fraction of the predicted
    decrease (Armijo) or, in the rounding-level end game where the objective cannot tell points
    apart, if it does not raise the objective beyond rounding and reduces the largest gradient
    component; otherwise the step is halved (up to 30 times). Stops without convergence when the
    Hessian is not positive definite or no trial point is accepted; the caller's checks then say
    why.
    """
    current = objective(at, hessian=True)
    iterations = 0
    while iterations < max_iterations and current.hessian is not None:
        grad, hess = current.gradient, current.hessian
        try:
            np.linalg.cholesky(hess)  # positive definite: a descent direction
            step = -np.linalg.solve(hess, grad)
        except np.linalg.LinAlgError:
            break
        if not np.all(np.isfinite(step)):
            break
        iterations += 1
        if np.max(np.abs(step)) < _FINAL_STEP:
            # Objective at the Newton step: value + g.s + s'Hs/2 = value + g.s/2.
            value = current.value + 0.5 * float(grad @ step)
            return _NewtonResult(at + step, value, grad, hess, iterations, True)
        slack = 1e-13 * max(1.0, abs(current.value))
        scale = 1.0
        for _ in range(30):
            candidate = at + scale * step
            if np.all(np.abs(candidate) < LOG_BOUND):
                trial = objective(candidate, hessian=True)
                if np.isfinite(trial.value) and (
                    trial.value <= current.value + 1e-4 * scale * float(grad @ step)
                    or (
                        trial.value <= current.value + slack
                        and np.max(np.abs(trial.gradient)) < np.max(np.abs(grad))
                    )
                ):
                    break
            scale /= 2
        else:
            break
        at, current = candidate, trial
    hessian = current.hessian if current.hessian is not None else np.full((at.size,) * 2, np.nan)
    return _NewtonResult(at, current.value, current.gradient, hessian, iterations, False)


def _estimates(names: Sequence[str], log_params: FloatArray) -> dict[str, float]:
    return {name: float(np.exp(v)) for name, v in zip(names, log_params, strict=True)}


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
            f"the likelihood keeps improving without bound, so the data do not identify it.",
            _estimates(names, log_params),
            hint,
        )


def _search(
    objective: Objective,
    starts: Sequence[FloatArray],
    max_iterations: int,
    *,
    check: Callable[[FloatArray], None] | None = None,
    tight: bool = False,
) -> tuple[optimize.OptimizeResult | None, list[str], int]:
    """Step 1: L-BFGS-B from each start in turn until one ends with a small gradient; returns
    that result (or None), a note per failed start and the iterations used. ``check`` sees
    every end point (it raises when one is on a bound).

    It stops at a gradient of 1e-6 per customer rather than running into the rounding-level end
    game, where L-BFGS-B spends as many iterations again: Newton's method (step 2) takes over
    from there and converges in one or two steps. ``tight`` runs that end game all the same, for
    when Newton's method could not finish.
    """
    bounds = [(-LOG_BOUND, LOG_BOUND)] * len(starts[0])
    tolerances = {"ftol": 1e-15, "gtol": 1e-10} if tight else {"ftol": 1e-12, "gtol": 1e-6}
    attempts: list[str] = []
    iterations = 0
    for start in starts:
        with np.errstate(all="ignore"):
            result = optimize.minimize(
                lambda p: objective(p)[:2],
                np.asarray(start, dtype=float),
                jac=True,
                method="L-BFGS-B",
                bounds=bounds,
                options={"maxiter": max_iterations, **tolerances},
            )
        iterations += int(result.nit)
        if check is not None:
            check(result.x)
        # L-BFGS-B reports a line-search failure once it is at machine precision: judge
        # convergence by the gradient, not by the status message.
        grad_ok = bool(np.all(np.isfinite(result.jac))) and np.max(np.abs(result.jac)) < 1e-4
        if np.isfinite(result.fun) and grad_ok and result.nit < max_iterations:
            return result, attempts, iterations
        attempts.append(
            f"start {np.round(np.exp(start), 6).tolist()}: {result.message} after {result.nit} "
            f"iterations, max |gradient| {np.max(np.abs(result.jac)):.3g}"
        )
    return None, attempts, iterations


def _at_bound(log_params: FloatArray) -> bool:
    return bool(np.any(np.abs(log_params) > LOG_BOUND - _BOUND_MARGIN))


def maximise(
    objective: Objective,
    starts: Sequence[FloatArray],
    *,
    names: Sequence[str],
    model: str,
    total_weight: float,
    max_iterations: int,
    hint: str,
    coarse: Objective | None = None,
) -> Optimum:
    """Maximise a log-likelihood over log-parameters; see the module docstring.

    ``objective`` returns the MEAN negative log-likelihood per unit weight and its derivatives;
    ``total_weight`` (number of customers) turns it back into totals for the information matrix.
    ``coarse``, the same on a subsample, is used for the search (step 1) when given.
    Raises :class:`ConvergenceError` or :class:`IdentificationError` with ``hint`` appended.
    """
    started = time.perf_counter()
    iterations = 0
    newton: _NewtonResult | None = None
    if coarse is not None:
        found, _, used = _search(coarse, starts, max_iterations)
        iterations += used
        if found is not None and not _at_bound(found.x):
            with np.errstate(all="ignore"):
                newton = _newton(objective, found.x, _NEWTON_ITERATIONS)
            iterations += newton.iterations
    if newton is None or not newton.converged:
        # No subsample, or its optimum did not lead to the full one: search on the full data.
        def check(log_params: FloatArray) -> None:
            _raise_if_at_bound(log_params, names, model, hint)

        found, attempts, used = _search(objective, starts, max_iterations, check=check)
        iterations += used
        if found is None:
            raise ConvergenceError(
                f"{model}: the likelihood maximisation did not converge ({'; '.join(attempts)}).",
                hint=hint,
            )
        with np.errstate(all="ignore"):
            newton = _newton(objective, found.x, _NEWTON_ITERATIONS)
        iterations += newton.iterations
        if not newton.converged:
            # Newton's method could not finish (e.g. on a flat ridge, where the Hessian is not
            # positive definite): L-BFGS-B goes as far as rounding allows before the checks.
            found, _, used = _search(objective, [found.x], max_iterations, check=check, tight=True)
            iterations += used
            if found is not None:
                with np.errstate(all="ignore"):
                    newton = _newton(objective, found.x, _NEWTON_ITERATIONS)
                iterations += newton.iterations
    assert newton is not None
    log_params, value, grad = newton.log_params, newton.value, newton.gradient
    _raise_if_at_bound(log_params, names, model, hint)
    # A converged Newton run ends at a stationary point (to the square of its last step);
    # otherwise the gradient where it stopped decides.
    converged = newton.converged or bool(np.max(np.abs(grad)) < _GRADIENT_TOLERANCE)
    if not converged:
        raise ConvergenceError(
            f"{model}: the optimiser stopped with max |gradient| {np.max(np.abs(grad)):.3g} per "
            f"customer (tolerance {_GRADIENT_TOLERANCE:g}) at "
            f"{dict(zip(names, np.exp(log_params).round(6).tolist(), strict=True))}.",
            _estimates(names, log_params),
            hint,
        )
    hessian_mean = newton.hessian
    information = hessian_mean * total_weight
    eigenvalues = np.linalg.eigvalsh(information)
    if not np.all(np.isfinite(information)) or eigenvalues[0] <= 1e-12 * max(eigenvalues[-1], 1):
        raise IdentificationError(
            f"{model}: the observed information is not positive definite at the optimum "
            f"(eigenvalues {eigenvalues.round(6).tolist()}): some parameter combination is not "
            f"identified by these data.",
            _estimates(names, log_params),
            hint,
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
            f"the estimate.",
            _estimates(names, log_params),
            hint,
        )
    return Optimum(
        log_params=log_params,
        log_likelihood=-value * total_weight,
        log_covariance=log_covariance,
        iterations=iterations,
        seconds=time.perf_counter() - started,
        converged=converged,
    )
