"""The CLV engine as the warehouse's dbt Python models call it.

Two models per fit purpose, so that each fit runs once and its result is a table of its own:

* ``int_clv_holdout_models_fitted`` and ``int_clv_models_fitted`` (published together as
  ``clv_model_parameters``) = :func:`fit_models` on ``int_clv_inputs_compressed`` and
  ``int_clv_repeat_spend_compressed``: the candidate purchase models and Gamma-Gamma per fit
  purpose ('holdout': up to the holdout's calibration end; 'scoring': up to the as-of date),
  one row per parameter with its standard error, interval and fit diagnostics, plus the row of
  the log-parameter covariance the scoring step needs for its interval (``log_covariance_row``,
  JSON). The holdout fit tries every purchase model; the scoring fit tries var ``clv_model``,
  or with ``auto`` every model, and chooses (:func:`choose_model`): the lowest holdout error,
  else the lowest BIC.
* ``int_clv_holdout_combinations_scored`` and ``int_clv_combinations_scored`` =
  :func:`score_fits`: every (x, t_x, T) combination scored without refitting, by every fitted
  model (holdout) or by the chosen one (scoring).

Frames use the warehouse's column names (:data:`INPUT_COLUMNS`); conversion between the
engine's frame type and pandas is :mod:`cvm.frames`' job, not this module's.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import norm

from cvm.clv import covariates, gamma_gamma, purchase
from cvm.clv.bg_nbd import BgNbdFit
from cvm.clv.covariates import CovariateFit
from cvm.clv.estimation import ClvFitError, ConvergenceError, FloatArray, ParameterSet
from cvm.clv.gamma_gamma import GammaGammaFit
from cvm.clv.lifetime_value import (
    PURCHASE_HORIZONS_DAYS,
    discounted_expected_purchases,
    score_combinations,
)

# Warehouse column -> engine name (FHL notation, see cvm.clv.bg_nbd).
INPUT_COLUMNS = {
    "repeat_purchase_days": "x",
    "recency_days": "t_x",
    "age_days": "T",
    "customer_count": "n_customers",
    "avg_repeat_spend": "m",
    # Holdout rows only: the sums over the combination's customers of their actual repeat
    # purchase days in the holdout period and of their squares (the holdout error needs both).
    "holdout_purchase_days": "holdout_y",
    "holdout_purchase_days_squared": "holdout_y2",
}
KEY_COLUMNS = (
    "fit_purpose", "model", "covariates", "repeat_purchase_days", "recency_days", "age_days",
)  # fmt: skip
FIT_PURPOSES = ("scoring", "holdout")
# The models' names as people write them (build summary, report, messages).
MODEL_LABELS = {
    "bg_nbd": "BG/NBD", "pareto_nbd": "Pareto/NBD", "mbg_nbd": "MBG/NBD",
    "gamma_gamma": "Gamma-Gamma",
}  # fmt: skip
PURCHASE_MODELS = purchase.MODELS  # in order of preference on ties: bg_nbd first
CLV_MODEL_CHOICES = ("auto", *PURCHASE_MODELS)
_FIT_CLASSES: dict[str, type[ParameterSet]] = {
    **purchase.FIT_CLASSES,
    GammaGammaFit.MODEL: GammaGammaFit,
}
PARAMETER_COLUMNS = [
    "fit_purpose", "model", "parameter", "value", "standard_error", "interval_level", "lower",
    "upper", "unit", "log_likelihood", "customer_count", "fit_seconds", "converged", "iterations",
    "fit_status", "fit_message", "chosen", "holdout_rmse", "bic", "choice_reason",
    "log_covariance_row",
]  # fmt: skip
# fit_status: fitted; skipped (too few repeat customers, not attempted); not_identified or
# not_converged (attempted; the data do not pin the parameters down, or the optimiser failed).
FITTED, SKIPPED = "fitted", "skipped"
# Below this mean drop-out probability per purchase, a / (a + b), a BG/NBD or MBG/NBD estimate
# is on the model's no-drop-out boundary (a -> 0, b -> infinity): customers who never leave.
NO_DROPOUT_SHARE = 1e-4
# Below this mean drop-out rate per day, s / beta, a Pareto/NBD estimate is on its no-drop-out
# boundary (mean lifetime above 2,700 years).
NO_DROPOUT_RATE = 1e-6
# Above this q, customers' spend rates nu ~ Gamma(q, v) vary by less than 1/sqrt(q) = 3 %: the
# Gamma-Gamma estimate is on its no-heterogeneity boundary (q, v -> infinity, q / v fixed).
SAME_SPEND_Q = 1e3
# Above this p, the value of a customer's purchase days varies around the customer's own mean by
# less than 1/sqrt(p) = 1 %: the Gamma-Gamma estimate is on its fixed-price boundary (p ->
# infinity, v -> 0, p v fixed), as in a shop whose orders all cost the same.
FIXED_PRICE_P = 1e4


class StrictFitError(ClvFitError):
    """The scoring fit failed and var clv_strict_fit asks for the build to stop."""


@dataclass(frozen=True)
class FitOutcome:
    """A model that was not fitted: the fit_status and, in plain words, why."""

    status: str
    message: str


def _engine_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Engine names, and float64 with NaN for missing values (frames from Arrow arrive with
    pandas' nullable Int64 / Float64 dtypes)."""
    present = {k: v for k, v in INPUT_COLUMNS.items() if k in frame.columns}
    return frame.rename(columns=present).astype({v: "float64" for v in present.values()})


def failure_outcome(model: str, error: ClvFitError) -> FitOutcome:
    """The status and the plain-words reason of a fit that raised; the two boundaries real
    data reach most often are named for what they mean. On a boundary the likelihood is flat
    along a ridge, and where the optimiser stops on it (short of the bound, or not converged)
    depends on the order of the rows: the status is not_identified either way."""
    status = "not_converged" if isinstance(error, ConvergenceError) else "not_identified"
    estimates = error.estimates or {}
    a, b, p, q, v, s, beta = (
        estimates.get(name) for name in ("a", "b", "p", "q", "v", "s", "beta")
    )
    if model in purchase.MODELS:
        name = MODEL_LABELS[model]
        edge = None
        if a is not None and b is not None and a / (a + b) < NO_DROPOUT_SHARE:
            edge = (
                f"a = {a:.2g} -> 0, b = {b:.3g} -> infinity; mean drop-out probability per "
                f"purchase {a / (a + b):.1e}"
            )
        elif s is not None and beta is not None and s / beta < NO_DROPOUT_RATE:
            edge = f"s / beta = {s / beta:.1e} per day -> 0: lifetimes without end"
        if edge is not None:
            return FitOutcome(
                "not_identified",
                f"almost nobody drops out in these data: the {name} estimate runs to the edge "
                f"of the model ({edge}), where it turns into a model in which every customer "
                "stays active, so P(alive) and lifetime value cannot be estimated. Common with "
                "regular or subscription-like buyers and short histories; a longer history, "
                "with some customers lapsing, identifies it.",
            )
    if model == GammaGammaFit.MODEL and p is not None and v is not None and p > FIXED_PRICE_P:
        return FitOutcome(
            "not_identified",
            "a customer's purchases are worth (almost) the same every time: the Gamma-Gamma "
            f"estimate runs to the edge of the model (p = {p:.3g} -> infinity, v = {v:.2g} -> "
            "0), where a purchase's value does not vary around its customer's mean, so spend "
            "cannot be estimated. Common with fixed prices (one product at one price, "
            "subscriptions).",
        )
    if model == GammaGammaFit.MODEL and q is not None and v is not None and q > SAME_SPEND_Q:
        return FitOutcome(
            "not_identified",
            "customers' average spend per purchase differs hardly more than chance would make "
            f"it: the Gamma-Gamma estimate runs to the edge of the model (q = {q:.3g}, "
            f"v = {v:.3g} -> infinity), where every customer has the same expected spend, so "
            "spend cannot be told apart by customer. Common with fixed prices (subscriptions).",
        )
    return FitOutcome(status, error.reason.removeprefix(f"{model}: "))


def _too_few(
    customers: int, minimum: int, counted: str, estimated: str, measured_on: str
) -> FitOutcome:
    """A fit not attempted: ``customers`` (``counted``: who they are), fewer than var
    clv_min_repeat_customers, or none at all (``measured_on``: why none is too few)."""
    fewer = (
        f"fewer than var clv_min_repeat_customers ({minimum:,})"
        if minimum > customers
        else f"and {measured_on}"
    )
    return FitOutcome(
        SKIPPED,
        f"{customers:,} {counted}, {fewer}: too few to estimate {estimated}, "
        "so the fit was not attempted",
    )


def _fit_model(model: str, fit: Callable[[], ParameterSet]) -> ParameterSet | FitOutcome:
    try:
        return fit()
    except ClvFitError as error:
        return failure_outcome(model, error)


Fit = ParameterSet | CovariateFit


def bic(fit: Fit) -> float:
    """Bayesian information criterion, k ln n - 2 ln L (n customers, k parameters)."""
    return len(fit.estimates) * float(np.log(fit.n_customers)) - 2 * fit.log_likelihood


def _parameter_rows(purpose: str, fit: Fit, interval: float) -> pd.DataFrame:
    """fit.to_frame() with an interval (log-normal for the parameters fitted in logs, normal
    for covariate coefficients) and the covariance rows that let :func:`fitted_model` rebuild
    the fit."""
    # The engine's customer weights are whole customers: an integer count in the warehouse, named
    # as in the fits' inputs.
    frame = fit.to_frame().rename(columns={"n_customers": "customer_count"})
    frame["customer_count"] = frame["customer_count"].astype("Int64")
    z = norm.ppf((1 + interval) / 2)
    errors = np.sqrt(np.diag(fit.log_covariance))
    logs = getattr(fit, "log_scale", np.ones(errors.size, dtype=bool))
    lower = np.where(logs, fit.estimates * np.exp(-z * errors), fit.estimates - z * errors)
    upper = np.where(logs, fit.estimates * np.exp(z * errors), fit.estimates + z * errors)
    frame.insert(0, "fit_purpose", purpose)
    frame.insert(frame.columns.get_loc("unit"), "interval_level", interval)
    frame.insert(frame.columns.get_loc("unit"), "lower", lower)
    frame.insert(frame.columns.get_loc("unit"), "upper", upper)
    frame["log_covariance_row"] = [json.dumps(row.tolist()) for row in fit.log_covariance]
    frame["bic"] = bic(fit)
    message = pd.Series([None] * len(frame), dtype="str")  # text even when all null
    return frame.assign(fit_status=FITTED, fit_message=message).reindex(columns=PARAMETER_COLUMNS)


def _unfitted_rows(
    purpose: str, model: type[ParameterSet], outcome: FitOutcome, interval: float
) -> pd.DataFrame:
    """Parameter rows without values for a model that was not fitted, saying why."""
    rows = [
        {"fit_purpose": purpose, "model": model.MODEL, "parameter": name, "unit": unit}
        for name, unit in zip(model.PARAMETER_NAMES, model.PARAMETER_UNITS, strict=True)
    ]
    frame = pd.DataFrame(rows).reindex(columns=PARAMETER_COLUMNS)
    numeric = ["value", "standard_error", "lower", "upper", "log_likelihood", "bic"]
    frame[[*numeric, "fit_seconds"]] = np.nan
    frame["customer_count"] = pd.array([pd.NA] * len(frame), dtype="Int64")
    return frame.assign(
        interval_level=interval, converged=False, iterations=0, fit_status=outcome.status,
        fit_message=outcome.message, log_covariance_row=pd.Series([None] * len(frame), dtype="str"),
    )  # fmt: skip


# What holdout_errors reads of int_clv_holdout_combinations_scored (the rest stays in the engine).
HOLDOUT_SCORE_COLUMNS = (
    "fit_purpose", "model", "covariates", "repeat_purchase_days", "recency_days", "age_days",
    "expected_purchases_holdout",
)  # fmt: skip


def holdout_errors(inputs: pd.DataFrame, holdout_scores: pd.DataFrame) -> dict[str, float]:
    """Root-mean-squared error per customer of each purchase model's holdout prediction:
    sqrt(mean over the holdout fit's customers of (predicted - actual repeat purchase days in
    the holdout period)^2), for every model that scored every holdout combination.

    The models predict each customer's EXPECTED purchases, and the squared error is the proper
    score for an expectation (it is smallest for the true conditional mean; the absolute error
    rewards the median instead). Per combination of n customers with actual purchases y_i and
    one prediction p, sum (p - y_i)^2 = n p^2 - 2 p sum y_i + sum y_i^2, so the compressed
    inputs' sums are enough.
    """
    actual = _engine_frame(inputs)
    actual = actual[actual["fit_purpose"] == "holdout"]
    scores = _engine_frame(holdout_scores)
    keys = ["x", "t_x", "T", *(["covariates"] if "covariates" in actual.columns else [])]
    errors: dict[str, float] = {}
    if actual.empty or scores.empty:
        return errors
    for model, predicted in scores.groupby("model", sort=False):
        both = actual.merge(predicted[[*keys, "expected_purchases_holdout"]], on=keys, how="left")
        p = both["expected_purchases_holdout"].to_numpy(float)
        if len(predicted) != len(actual) or not np.all(np.isfinite(p)):
            continue  # not every customer has a prediction: no comparable score
        n, y, y2 = (both[c].to_numpy(float) for c in ("n_customers", "holdout_y", "holdout_y2"))
        squared = n * p**2 - 2 * p * y + y2
        errors[str(model)] = float(np.sqrt(max(squared.sum(), 0.0) / n.sum()))
    return errors


@dataclass(frozen=True)
class Choice:
    """The purchase model the warehouse scores with, and per candidate why (not)."""

    model: str
    reasons: dict[str, str]


def choose_model(
    fits: dict[str, ParameterSet | FitOutcome], errors: dict[str, float], clv_model: str
) -> Choice:
    """Which candidate scores the customers. A named ``clv_model`` is used as it is. ``auto``
    takes, among the candidates fitted on the scoring data, the one with the lowest holdout
    error (:func:`holdout_errors`); when none has one (var clv_holdout_days = 0, or no
    candidate could be fitted on the holdout period), the lowest BIC (all candidates have four
    parameters, so this is the highest likelihood); when none was fitted, the first candidate,
    whose fit message then tells the customers why they have no CLV. Ties go to the earlier
    candidate (bg_nbd, pareto_nbd, mbg_nbd)."""
    if clv_model != "auto":
        return Choice(clv_model, {clv_model: f"var clv_model is {clv_model}"})
    fitted = {m: f for m, f in fits.items() if not isinstance(f, FitOutcome)}
    scored = {m: errors[m] for m in fitted if m in errors}

    def listed(values: dict[str, float], skip: str) -> str:
        others = [f"{m} {v:.6g}" for m, v in values.items() if m != skip]
        return f" (others: {', '.join(others)})" if others else ""

    reasons: dict[str, str] = {}
    if scored:
        chosen = min(scored, key=lambda m: (scored[m], PURCHASE_MODELS.index(m)))
        reasons[chosen] = (
            f"lowest holdout error: root-mean-squared error {scored[chosen]:.6g} repeat purchase "
            f"days per customer{listed(scored, chosen)}"
        )
        for m in fits:
            if m == chosen:
                continue
            if m in scored:
                reasons[m] = f"holdout error {scored[m]:.6g}, above {chosen}'s {scored[chosen]:.6g}"
            elif m in fitted:
                reasons[m] = "no holdout error (not fitted on the holdout period)"
            else:
                reasons[m] = "not fitted on the scoring data"
        return Choice(chosen, reasons)
    if fitted:
        criteria = {m: bic(f) for m, f in fitted.items()}
        chosen = min(criteria, key=lambda m: (criteria[m], PURCHASE_MODELS.index(m)))
        reasons[chosen] = (
            f"lowest BIC {criteria[chosen]:.8g}{listed(criteria, chosen)}: no candidate has a "
            "holdout error (var clv_holdout_days is 0, or none could be fitted on the holdout "
            "period)"
        )
        for m in fits:
            if m != chosen:
                reasons[m] = (
                    f"BIC {criteria[m]:.8g}, above {chosen}'s" if m in criteria
                    else "not fitted on the scoring data"
                )  # fmt: skip
        return Choice(chosen, reasons)
    first = next(iter(fits))
    return Choice(
        first,
        {m: "no candidate could be fitted on the scoring data" for m in fits},
    )


def _covariates(rows: pd.DataFrame, weights: FloatArray) -> tuple[FloatArray, list[str]]:
    """The dummies of the rows' covariate keys (var clv_covariates) and their names; none
    without covariates. Pareto/NBD takes them (cvm.clv.covariates)."""
    if "covariates" not in rows.columns or not (rows["covariates"].fillna("") != "").any():
        return np.zeros((len(rows), 0)), []
    frame = covariates.parse_keys(rows["covariates"])
    return covariates.covariate_matrix(frame, list(frame.columns), weights)


def _candidates(purpose: str, clv_model: str) -> tuple[str, ...]:
    """The holdout fit tries every purchase model (clv_holdout_report compares them); the
    scoring fit the one var clv_model names, or with auto all of them."""
    if clv_model not in CLV_MODEL_CHOICES:
        raise ValueError(f"var clv_model must be one of {CLV_MODEL_CHOICES}, got {clv_model!r}")
    if purpose == "holdout" or clv_model == "auto":
        return PURCHASE_MODELS
    return (clv_model,)


def fit_models(
    inputs: pd.DataFrame,
    repeat_spend: pd.DataFrame,
    *,
    purpose: str,
    interval: float,
    min_repeat_customers: int,
    strict: bool = False,
    clv_model: str = "auto",
    holdout_scores: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """The candidate purchase models and Gamma-Gamma on the rows of one fit purpose, one row
    per parameter.

    ``inputs``: int_clv_inputs_compressed (fit_purpose, repeat_purchase_days, recency_days,
    age_days, customer_count, ...); ``repeat_spend``: int_clv_repeat_spend_compressed
    (fit_purpose, repeat_purchase_days, avg_repeat_spend, customer_count); ``holdout_scores``
    (scoring only): int_clv_holdout_combinations_scored, for the holdout errors that choose the
    model (:func:`choose_model`; columns chosen, holdout_rmse, bic, choice_reason).
    A fit with fewer than ``min_repeat_customers`` repeat customers is not attempted (too little
    data to estimate drop-out and spend): fit_status 'skipped'. A model whose fit fails (not
    identified, not converged) is a finding, not an error: its rows carry no values, the
    fit_status and a fit_message in plain words, and when it is the chosen purchase model (or
    Gamma-Gamma) its customers get no CLV; with ``strict`` a failed chosen scoring fit raises
    :class:`StrictFitError` instead. A holdout fit without rows (clv_holdout_days = 0) gives no
    rows.
    """
    if purpose not in FIT_PURPOSES:
        raise ValueError(f"purpose must be one of {FIT_PURPOSES}, got {purpose!r}")
    if not 0 < interval < 1:
        raise ValueError(f"var clv_interval_level must be in (0, 1), got {interval}")
    candidates = _candidates(purpose, clv_model)
    inputs, repeat_spend = _engine_frame(inputs), _engine_frame(repeat_spend)
    # Sorted, so that a build fits the same rows in the same order whatever order the engine
    # returned them in: sums in another order differ in the last bits, and where the likelihood
    # is flat (a boundary) that moves where the optimiser stops.
    mine = inputs[inputs["fit_purpose"] == purpose].sort_values(["x", "t_x", "T"], kind="stable")
    if purpose == "holdout" and mine.empty:
        # No holdout fit asked for: no rows, but columns of the types the other fit has.
        empty = FitOutcome(SKIPPED, "")
        return _typed(_unfitted_rows(purpose, BgNbdFit, empty, interval).iloc[:0])
    spend = repeat_spend[repeat_spend["fit_purpose"] == purpose].sort_values(
        ["x", "m"], kind="stable"
    )
    # Drop-out is measured on repeat purchases, spend on the repeat purchases worth more than
    # 0 (the Gamma-Gamma rows): a log of free orders has the first without the second.
    repeaters = int(mine.loc[mine["x"] > 0, "n_customers"].sum())
    spenders = int(spend["n_customers"].sum())
    models: dict[str, ParameterSet | FitOutcome] = {}
    if mine.empty or repeaters < max(min_repeat_customers, 1):
        skipped = _too_few(
            repeaters,
            min_repeat_customers,
            "repeat customer(s)",
            "drop-out and spend",
            "drop-out and spend are measured on repeat purchases",
        )
        models = {m: skipped for m in (*candidates, GammaGammaFit.MODEL)}
    else:
        x, t_x, T, n = (mine[c].to_numpy(float) for c in ("x", "t_x", "T", "n_customers"))
        z, names = _covariates(mine, n)
        for model in candidates:
            if model == CovariateFit.MODEL and names:
                fit = lambda: covariates.fit_pareto_nbd_covariates(x, t_x, T, z, names, n)  # noqa: E731
            else:
                fit = lambda m=model: purchase.fit(m, x, t_x, T, n)  # noqa: E731
            models[model] = _fit_model(model, fit)
        models[GammaGammaFit.MODEL] = (
            _fit_model(
                GammaGammaFit.MODEL,
                lambda: gamma_gamma.fit_gamma_gamma(
                    spend["x"], spend["m"], spend["n_customers"].to_numpy(float)
                ),
            )
            if spenders >= max(min_repeat_customers, 1)
            else _too_few(
                spenders,
                min_repeat_customers,
                "repeat customer(s) with repeat purchases worth more than 0",
                "spend",
                "spend is measured on repeat purchases worth more than 0",
            )
        )
    purchase_fits = {m: models[m] for m in candidates}
    if purpose == "scoring":
        errors = holdout_errors(inputs, holdout_scores) if holdout_scores is not None else {}
        choice = choose_model(purchase_fits, errors, clv_model)
    else:
        errors, choice = {}, None
    frames = []
    for model, outcome in models.items():
        chosen = choice is not None and model in (choice.model, GammaGammaFit.MODEL)
        if isinstance(outcome, FitOutcome):
            if strict and chosen and outcome.status != SKIPPED:
                raise StrictFitError(
                    f"The scoring fit of {model} is {outcome.status.replace('_', ' ')} "
                    f"and var clv_strict_fit is true: {outcome.message}"
                )
            rows = _unfitted_rows(purpose, _FIT_CLASSES[model], outcome, interval)
        else:
            rows = _parameter_rows(purpose, outcome, interval)
        reason = None if choice is None else choice.reasons.get(model)
        frames.append(
            rows.assign(
                chosen=chosen if choice is not None else None,
                holdout_rmse=errors.get(model, np.nan),
                choice_reason=pd.Series([reason] * len(rows), dtype="str"),
            )
        )
    return _typed(pd.concat(frames, ignore_index=True))


def _typed(frame: pd.DataFrame) -> pd.DataFrame:
    """PARAMETER_COLUMNS with the choice columns typed even when empty or all null, so that
    both fits' tables have the same column types."""
    frame = frame.reindex(columns=PARAMETER_COLUMNS)
    return frame.astype(
        {"chosen": "boolean", "holdout_rmse": float, "bic": float, "choice_reason": "str"}
    )


def fitted_model(parameters: pd.DataFrame, purpose: str, model: str) -> Fit | None:
    """The fitted model of one purpose rebuilt from the rows :func:`fit_models` wrote, or
    None when it was not fitted."""
    cls = _FIT_CLASSES[model]
    rows = parameters[(parameters["fit_purpose"] == purpose) & (parameters["model"] == model)]
    if rows.empty or (rows["fit_status"] != FITTED).any():
        return None
    if len(rows) > len(cls.PARAMETER_NAMES):  # Pareto/NBD with covariate coefficients
        covariance = np.array([json.loads(r) for r in rows["log_covariance_row"]])
        return CovariateFit.from_rows(rows, covariance)
    rows = rows.set_index("parameter").loc[list(cls.PARAMETER_NAMES)]
    first = rows.iloc[0]
    return cls(
        **{name: float(rows.loc[name, "value"]) for name in cls.PARAMETER_NAMES},
        log_likelihood=float(first["log_likelihood"]),
        n_customers=float(first["customer_count"]),
        fit_seconds=float(first["fit_seconds"]),
        converged=bool(first["converged"]),
        iterations=int(first["iterations"]),
        log_covariance=np.array([json.loads(r) for r in rows["log_covariance_row"]]),
    )


def chosen_model(parameters: pd.DataFrame) -> str | None:
    """The purchase model the scoring fit chose (None when the frame has no scoring rows)."""
    rows = parameters[
        (parameters["fit_purpose"] == "scoring")
        & parameters["model"].isin(PURCHASE_MODELS)
        & parameters["chosen"].fillna(False).astype(bool)
    ]
    return None if rows.empty else str(rows["model"].iloc[0])


def fits_from_parameters(
    parameters: pd.DataFrame, purpose: str
) -> tuple[ParameterSet, GammaGammaFit]:
    """The chosen purchase model and Gamma-Gamma of one purpose; raises when either was not
    fitted."""
    model = chosen_model(parameters) or "bg_nbd"
    purchase_fit = fitted_model(parameters, purpose, model)
    gg_fit = fitted_model(parameters, purpose, GammaGammaFit.MODEL)
    if purchase_fit is None or not isinstance(gg_fit, GammaGammaFit):
        raise ValueError(f"the {purpose} fit has no fitted {model} and Gamma-Gamma models")
    return purchase_fit, gg_fit


def _purchase_only(
    mine: pd.DataFrame, fit: ParameterSet, purpose: str, *, horizon_days: int,
    annual_discount_rate: float, holdout_days: int,
) -> pd.DataFrame:  # fmt: skip
    """The purchase model alone: P(alive) and expected purchases, no spend (the holdout report
    needs no more; a scoring fit without Gamma-Gamma has no CLV)."""
    scored = mine.copy()
    x, t_x, T = (mine[c].to_numpy(float) for c in ("x", "t_x", "T"))
    # P(alive) once: every conditional expectation is P(alive) times the curve of the alive
    # (cvm.clv.purchase).
    p_alive = scored["p_alive"] = purchase.probability_alive(fit, x, t_x, T)
    if purpose == "scoring":
        for days in PURCHASE_HORIZONS_DAYS:
            scored[f"expected_purchases_{days}d"] = p_alive * purchase.expected_purchases_if_alive(
                fit, days, x, T
            )
        scored["discounted_expected_purchases"] = discounted_expected_purchases(
            fit, x, t_x, T, horizon_days=horizon_days, annual_discount_rate=annual_discount_rate,
        )  # fmt: skip
    else:
        scored["expected_purchases_holdout"] = p_alive * purchase.expected_purchases_if_alive(
            fit, holdout_days, x, T
        )
    return scored


def _score(
    mine: pd.DataFrame, fit: ParameterSet, gg_fit: Fit | None, purpose: str, *,
    horizon_days: int, annual_discount_rate: float, interval: float, interval_method: str,
    draws: int, holdout_days: int,
) -> pd.DataFrame:  # fmt: skip
    """The rows of one purpose scored with one purchase model (see :func:`score_fits`)."""
    if purpose == "scoring" and isinstance(gg_fit, GammaGammaFit):
        scored = score_combinations(
            fit, gg_fit, mine, horizon_days=horizon_days, margin=1.0,
            annual_discount_rate=annual_discount_rate, interval=interval,
            interval_method=interval_method, draws=draws,
        )  # fmt: skip
        label = f"{horizon_days:g}d"
        return scored.rename(
            columns={
                f"discounted_expected_purchases_{label}": "discounted_expected_purchases",
                f"clv_{label}": "discounted_expected_spend",
                f"clv_{label}_lower": "discounted_expected_spend_lower",
                f"clv_{label}_upper": "discounted_expected_spend_upper",
            }
        )
    return _purchase_only(
        mine, fit, purpose, horizon_days=horizon_days,
        annual_discount_rate=annual_discount_rate, holdout_days=holdout_days,
    )  # fmt: skip


def score_fits(
    inputs: pd.DataFrame,
    parameters: pd.DataFrame,
    *,
    horizon_days: int,
    annual_discount_rate: float,
    interval: float,
    interval_method: str,
    draws: int,
    holdout_days: int,
) -> pd.DataFrame:
    """One row per input combination and purchase model (key columns kept).

    'scoring' rows, by the chosen purchase model: p_alive, expected_purchases_{30,90,365}d,
    expected_avg_spend (for the combination's average m), discounted_expected_purchases and
    discounted_expected_spend with its interval (_lower, _upper) over ``horizon_days``: CLV at a
    margin of 1, which SQL multiplies by the margin (var clv_margin, or the observed one).
    'holdout' rows, by every fitted purchase model: p_alive and expected_purchases_holdout, the
    conditional expectation of repeat purchase days in the ``holdout_days`` after the
    calibration end.
    """
    engine = _engine_frame(inputs)
    out = []
    for purpose in FIT_PURPOSES:
        mine = engine[engine["fit_purpose"] == purpose]
        if mine.empty:
            continue
        models = [chosen_model(parameters)] if purpose == "scoring" else list(PURCHASE_MODELS)
        for model in models:
            fit = None if model is None else fitted_model(parameters, purpose, model)
            if fit is None:
                continue  # not fitted: nothing to score (clv_model_parameters says why)
            gg_fit = fitted_model(parameters, purpose, GammaGammaFit.MODEL)
            settings = {
                "horizon_days": horizon_days, "annual_discount_rate": annual_discount_rate,
                "interval": interval, "interval_method": interval_method, "draws": draws,
                "holdout_days": holdout_days,
            }  # fmt: skip
            if isinstance(fit, CovariateFit):
                # One plain fit per covariate pattern (cvm.clv.covariates).
                for key, rows in mine.groupby("covariates", sort=False):
                    pattern = covariates.design(
                        covariates.parse_keys(pd.Series([key])), fit.covariates
                    )[0]
                    out.append(
                        _score(rows, fit.pattern_fit(pattern), gg_fit, purpose, **settings)
                        .assign(model=model)
                    )  # fmt: skip
            else:
                out.append(_score(mine, fit, gg_fit, purpose, **settings).assign(model=model))
    columns = [
        *KEY_COLUMNS, "p_alive", "expected_purchases_30d", "expected_purchases_90d",
        "expected_purchases_365d", "expected_avg_spend", "discounted_expected_purchases",
        "discounted_expected_spend", "discounted_expected_spend_lower",
        "discounted_expected_spend_upper", "expected_purchases_holdout",
    ]  # fmt: skip
    if not out:  # no fit: an empty table with the columns and types
        out.append(engine.iloc[:0].assign(model=pd.Series(dtype="str")))
    scored = pd.concat(out, ignore_index=True).rename(
        columns={v: k for k, v in INPUT_COLUMNS.items()}
    )
    return scored.reindex(columns=columns).astype({c: float for c in columns[5:]})
