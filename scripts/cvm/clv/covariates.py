"""Pareto/NBD with time-invariant covariates on the purchase and the drop-out process.

As in CLVTools' ``pnbd`` with static covariates (Bachmann, Meierer & Naef 2021): customer i's
purchase-rate scale and lifetime scale depend on her covariates z_i (dummies of categories such
as acquisition channel or country, the most frequent level of each left out as the reference):

    alpha_i = alpha exp(-gamma_purchase' z_i),   beta_i = beta exp(-gamma_dropout' z_i),

so E[lambda_i] = (r / alpha) exp(gamma_purchase' z_i) and E[mu_i] = (s / beta)
exp(gamma_dropout' z_i): a coefficient is the log of the rate ratio against the reference level
(positive: buys more often, or drops out sooner). alpha and beta are the reference customer's.

The likelihood is the Pareto/NBD's per row (:func:`cvm.clv.pareto_nbd._terms`, which takes one
alpha and beta per row) in the parameters eta = (ln r, ln alpha, ln s, ln beta, gamma_purchase,
gamma_dropout): each row's (ln r, ln alpha_i, ln s, ln beta_i) is linear in eta, D_i eta, so the
gradient is sum_i w_i D_i' g_i and the Hessian sum_i w_i D_i' H_i D_i with g_i, H_i the row's
derivatives on the log scale. The fit starts from the fit without covariates at gamma = 0 and
runs the same optimiser (:mod:`cvm.clv.estimation`); the covariance of eta is the inverse
observed information, so a coefficient's standard error comes straight from it.

Customers with the same covariates share (alpha_i, beta_i): :meth:`CovariateFit.pattern_fit`
gives them as a plain :class:`~cvm.clv.pareto_nbd.ParetoNbdFit` whose covariance is eta's
projected onto (ln r, ln alpha_i, ln s, ln beta_i) (exact: the predictions depend on eta only
through those), so P(alive), CLV and both interval methods work per pattern unchanged.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from cvm.clv import pareto_nbd
from cvm.clv.bg_nbd import validate_rfm
from cvm.clv.estimation import (
    ClvFitError,
    Evaluation,
    FloatArray,
    map_blocks,
    maximise,
    objective_value,
    row_blocks,
    systematic_sample,
    validate_weights,
)
from cvm.clv.pareto_nbd import ParetoNbdFit
from cvm.clv.row_models import SEARCH_ROWS

BASE_NAMES = pareto_nbd.PARAMETER_NAMES  # r, alpha, s, beta: the reference customer's
PROCESSES = ("purchase", "dropout")
COEFFICIENT_UNIT = "log rate ratio"
_BLOCK_ROWS = 1 << 12


MISSING = "(missing)"
KEY_SEPARATOR, VALUE_SEPARATOR = "|", "="


def parse_keys(keys: pd.Series) -> pd.DataFrame:
    """The warehouse's covariate keys ("channel=email|country=DE", '' without covariates) as
    one column per covariate."""
    distinct = pd.Series(keys.unique())
    parsed = pd.DataFrame(
        [
            dict(part.split(VALUE_SEPARATOR, 1) for part in key.split(KEY_SEPARATOR) if part)
            for key in distinct.fillna("")
        ],
        index=distinct.fillna(""),
    )
    return parsed.reindex(keys.fillna("").to_numpy()).reset_index(drop=True)


def covariate_matrix(
    frame: pd.DataFrame, columns: list[str], weights: npt.ArrayLike | None = None
) -> tuple[FloatArray, list[str]]:
    """Dummies of the categorical ``columns`` (missing values are a level of their own), each
    column's most frequent level (by ``weights``, customers per row) left out as the
    reference. Names are "column=level"."""
    w = np.ones(len(frame)) if weights is None else np.asarray(weights, dtype=float)
    names = []
    for column in columns:
        values = frame[column].astype("string").fillna(MISSING)
        counts = pd.Series(w).groupby(values.to_numpy()).sum().sort_values(ascending=False)
        names += [f"{column}{VALUE_SEPARATOR}{level}" for level in sorted(counts.index[1:])]
    return design(frame, names), names


def design(frame: pd.DataFrame, names: list[str] | tuple[str, ...]) -> FloatArray:
    """The dummies ``names`` ("column=level") of the rows of ``frame``."""
    columns = []
    for name in names:
        column, level = name.split(VALUE_SEPARATOR, 1)
        values = frame[column].astype("string").fillna(MISSING)
        columns.append((values == level).to_numpy(dtype=float))
    return np.column_stack(columns) if columns else np.zeros((len(frame), 0))


class _Likelihood:
    """The objective over eta (module docstring), with analytic gradient and Hessian."""

    def __init__(self, x: FloatArray, t_x: FloatArray, T: FloatArray, w: FloatArray,
                 z: FloatArray) -> None:  # fmt: skip
        self.x, self.t_x, self.T, self.w, self.z = x, t_x, T, w, z
        self.total = float(w.sum())
        self.m = z.shape[1]
        self.blocks = row_blocks(x.size, _BLOCK_ROWS)

    def design(self, rows: slice) -> FloatArray:
        """D_i per row, (n, 4, 4 + 2m): d (ln r, ln alpha_i, ln s, ln beta_i) / d eta."""
        z, m = self.z[rows], self.m
        d = np.zeros((z.shape[0], 4, 4 + 2 * m))
        d[:, [0, 1, 2, 3], [0, 1, 2, 3]] = 1.0
        d[:, 1, 4 : 4 + m] = -z
        d[:, 3, 4 + m :] = -z
        return d

    def __call__(self, eta: FloatArray, hessian: bool = False) -> Evaluation:
        r, alpha, s, beta = np.exp(eta[:4])
        purchase, dropout = eta[4 : 4 + self.m], eta[4 + self.m :]

        def block(rows: slice) -> tuple[float, FloatArray, FloatArray | None]:
            z = self.z[rows]
            alpha_i, beta_i = alpha * np.exp(-z @ purchase), beta * np.exp(-z @ dropout)
            with np.errstate(all="ignore"):
                terms = pareto_nbd._terms(
                    (r, alpha_i, s, beta_i), self.x[rows], self.t_x[rows], self.T[rows], hessian
                )
            theta = np.column_stack(
                [np.full(alpha_i.size, r), alpha_i, np.full(alpha_i.size, s), beta_i]
            )
            g_log = terms.gradient * theta
            d, w = self.design(rows), self.w[rows]
            grad = np.einsum("n,na,nak->k", w, g_log, d)
            h = None
            if terms.hessian is not None:
                h_log = terms.hessian * theta[:, :, None] * theta[:, None, :]
                h_log[:, [0, 1, 2, 3], [0, 1, 2, 3]] += g_log
                h = np.einsum("n,nak,nal->kl", w, d, np.matmul(h_log, d))
            return float(w @ terms.value), grad, h

        parts = map_blocks(block, self.blocks)
        ll = float(np.sum([p[0] for p in parts]))
        grad = np.sum([p[1] for p in parts], axis=0)
        hess = np.sum([p[2] for p in parts], axis=0) if hessian else None
        return objective_value(ll, grad, hess, self.total)


@dataclass(frozen=True, eq=False)
class CovariateFit:
    """A Pareto/NBD fit with covariates. ``estimates``: r, alpha, s, beta (the reference
    customer's; natural scale), then the purchase and the drop-out coefficients; ``covariance``:
    of eta (ln r, ln alpha, ln s, ln beta, coefficients)."""

    MODEL = pareto_nbd.MODEL
    covariates: tuple[str, ...]
    estimates: FloatArray
    covariance: FloatArray
    log_likelihood: float
    n_customers: float
    fit_seconds: float
    converged: bool
    iterations: int

    @property
    def parameter_names(self) -> list[str]:
        return [
            *BASE_NAMES, *(f"{process}: {name}" for process in PROCESSES
                           for name in self.covariates),
        ]  # fmt: skip

    @property
    def log_scale(self) -> npt.NDArray[np.bool_]:
        """Which estimates the optimiser worked on in logs (the scales and shapes)."""
        return np.arange(self.estimates.size) < 4

    @property
    def log_covariance(self) -> FloatArray:
        """The covariance of eta (logs of the first four, the coefficients as they are)."""
        return self.covariance

    def to_frame(self) -> pd.DataFrame:
        """One row per parameter, as :meth:`cvm.clv.estimation.ParameterSet.to_frame`."""
        units = [*ParetoNbdFit.PARAMETER_UNITS, *[COEFFICIENT_UNIT] * (self.estimates.size - 4)]
        return pd.DataFrame(
            {
                "model": self.MODEL, "parameter": self.parameter_names, "value": self.estimates,
                "standard_error": self.standard_errors, "unit": units,
                "log_likelihood": self.log_likelihood, "n_customers": self.n_customers,
                "fit_seconds": self.fit_seconds, "converged": self.converged,
                "iterations": self.iterations,
            }
        )  # fmt: skip

    @classmethod
    def from_rows(cls, rows: pd.DataFrame, covariance: FloatArray) -> CovariateFit:
        """The fit from :meth:`to_frame`'s rows (in order) and eta's covariance."""
        names = list(rows["parameter"])
        prefix = f"{PROCESSES[0]}: "
        first = rows.iloc[0]
        return cls(
            covariates=tuple(n.removeprefix(prefix) for n in names if n.startswith(prefix)),
            estimates=rows["value"].to_numpy(dtype=float),
            covariance=covariance,
            log_likelihood=float(first["log_likelihood"]),
            n_customers=float(first["customer_count"]),
            fit_seconds=float(first["fit_seconds"]),
            converged=bool(first["converged"]),
            iterations=int(first["iterations"]),
        )

    @property
    def coefficients(self) -> dict[str, FloatArray]:
        m = len(self.covariates)
        return {"purchase": self.estimates[4 : 4 + m], "dropout": self.estimates[4 + m :]}

    @property
    def standard_errors(self) -> FloatArray:
        """Of the natural parameters (delta method for the four scales and shapes) and of the
        coefficients (directly)."""
        errors = np.sqrt(np.diag(self.covariance))
        errors[:4] *= self.estimates[:4]
        return errors

    def pattern_fit(self, z: npt.ArrayLike) -> ParetoNbdFit:
        """The plain fit of the customers with covariates ``z`` (see the module docstring)."""
        z_ = np.asarray(z, dtype=float).reshape(-1)
        m = len(self.covariates)
        jacobian = np.zeros((4, 4 + 2 * m))
        jacobian[[0, 1, 2, 3], [0, 1, 2, 3]] = 1.0
        jacobian[1, 4 : 4 + m] = -z_
        jacobian[3, 4 + m :] = -z_
        r, alpha, s, beta = self.estimates[:4]
        return ParetoNbdFit(
            r=float(r),
            alpha=float(alpha * np.exp(-z_ @ self.coefficients["purchase"])),
            s=float(s),
            beta=float(beta * np.exp(-z_ @ self.coefficients["dropout"])),
            log_likelihood=self.log_likelihood,
            n_customers=self.n_customers,
            fit_seconds=self.fit_seconds,
            converged=self.converged,
            iterations=self.iterations,
            log_covariance=jacobian @ self.covariance @ jacobian.T,
        )


def fit_pareto_nbd_covariates(
    x: npt.ArrayLike,
    t_x: npt.ArrayLike,
    T: npt.ArrayLike,
    z: npt.ArrayLike,
    covariates: list[str],
    weights: npt.ArrayLike | None = None,
    *,
    max_iterations: int = 1000,
) -> CovariateFit:
    """Maximum-likelihood Pareto/NBD with covariates ``z`` (n, m) named ``covariates``; errors
    as :func:`cvm.clv.pareto_nbd.fit_pareto_nbd`, plus a ValueError for a covariate that is the
    same for every customer (its coefficient is not identified)."""
    started = time.perf_counter()
    x_, tx_, T_ = validate_rfm(x, t_x, T)
    w = validate_weights(weights, x_.size)
    z_ = np.asarray(z, dtype=float).reshape(x_.size, -1)
    if z_.shape[1] != len(covariates):
        raise ValueError(f"z has {z_.shape[1]} columns for {len(covariates)} covariate names")
    constant = [n for n, col in zip(covariates, z_.T, strict=True) if np.ptp(col) == 0]
    if constant:
        raise ValueError(f"covariates without variation (not identified): {constant}")
    plain = pareto_nbd.fit_pareto_nbd(x_, tx_, T_, w)
    m = z_.shape[1]
    start = np.concatenate([np.log(plain.estimates), np.zeros(2 * m)])
    likelihood = _Likelihood(x_, tx_, T_, w, z_)
    sample = systematic_sample(x_.size, SEARCH_ROWS)
    coarse = (
        None if sample is None
        else _Likelihood(x_[sample], tx_[sample], T_[sample], w[sample], z_[sample])
    )  # fmt: skip
    names = [*BASE_NAMES, *(f"{p}: {c}" for p in PROCESSES for c in covariates)]
    opt = maximise(
        likelihood, [start], names=names, model=pareto_nbd.MODEL, total_weight=likelihood.total,
        max_iterations=max_iterations, hint=pareto_nbd.FIT_HINT, coarse=coarse,
    )  # fmt: skip
    estimates = opt.log_params.copy()
    estimates[:4] = np.exp(estimates[:4])
    if not np.all(np.isfinite(estimates)):
        raise ClvFitError(f"{pareto_nbd.MODEL}: the fit with covariates has no finite estimates")
    return CovariateFit(
        covariates=tuple(covariates),
        estimates=estimates,
        covariance=opt.log_covariance,
        log_likelihood=opt.log_likelihood,
        n_customers=likelihood.total,
        fit_seconds=time.perf_counter() - started,
        converged=opt.converged,
        iterations=opt.iterations,
    )
