"""The CLV engine as the warehouse's dbt Python models call it.

Two models, so that the fit runs once and its result is a table of its own:

* ``int_clv_models_fitted`` (published as ``clv_model_parameters``) = :func:`fit_models` on
  ``int_clv_inputs_compressed`` and ``int_clv_repeat_spend_compressed``: BG/NBD and
  Gamma-Gamma per fit purpose ('scoring': up to the as-of date; 'holdout': up to the holdout's
  calibration end), one row per parameter with its standard error, interval and fit
  diagnostics, plus the row of the log-parameter covariance the scoring step needs for its
  interval (``log_covariance_row``, JSON).
* ``int_clv_combinations_scored`` = :func:`score_fits`: every (x, t_x, T) combination scored
  with the fitted models, without refitting.

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

from cvm.clv import bg_nbd, gamma_gamma
from cvm.clv.bg_nbd import BgNbdFit
from cvm.clv.estimation import ClvFitError, ConvergenceError, ParameterSet
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
}
KEY_COLUMNS = ("fit_purpose", "repeat_purchase_days", "recency_days", "age_days")
FIT_PURPOSES = ("scoring", "holdout")
_FIT_CLASSES: dict[str, type[BgNbdFit] | type[GammaGammaFit]] = {
    BgNbdFit.MODEL: BgNbdFit,
    GammaGammaFit.MODEL: GammaGammaFit,
}
PARAMETER_COLUMNS = [
    "fit_purpose", "model", "parameter", "value", "standard_error", "interval_level", "lower",
    "upper", "unit", "log_likelihood", "customer_count", "fit_seconds", "converged", "iterations",
    "fit_status", "fit_message", "log_covariance_row",
]  # fmt: skip
# fit_status: fitted; skipped (too few repeat customers, not attempted); not_identified or
# not_converged (attempted; the data do not pin the parameters down, or the optimiser failed).
FITTED, SKIPPED = "fitted", "skipped"
# Below this mean drop-out probability per repeat purchase, a / (a + b), the BG/NBD estimate is
# on the model's no-drop-out boundary (a -> 0, b -> infinity): customers who never leave.
NO_DROPOUT_SHARE = 1e-4
# Above this q, customers' spend rates nu ~ Gamma(q, v) vary by less than 1/sqrt(q) = 3 %: the
# Gamma-Gamma estimate is on its no-heterogeneity boundary (q, v -> infinity, q / v fixed).
SAME_SPEND_Q = 1e3


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
    a, b, q, v = (estimates.get(name) for name in ("a", "b", "q", "v"))
    no_dropout = a is not None and b is not None and a / (a + b) < NO_DROPOUT_SHARE
    if model == BgNbdFit.MODEL and no_dropout:
        return FitOutcome(
            "not_identified",
            "almost nobody drops out in these data: the BG/NBD estimate runs to the edge of the "
            f"model (a = {a:.2g} -> 0, b = {b:.3g} -> infinity; mean drop-out probability per "
            f"repeat purchase {a / (a + b):.1e}), where it turns into a model in which every "
            "customer stays active, so P(alive) and lifetime value cannot be estimated. Common "
            "with regular or subscription-like buyers and short histories; a longer history, "
            "with some customers lapsing, identifies it.",
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


def _fit_model(model: str, fit: Callable[[], ParameterSet]) -> ParameterSet | FitOutcome:
    try:
        return fit()
    except ClvFitError as error:
        return failure_outcome(model, error)


def _parameter_rows(purpose: str, fit: ParameterSet, interval: float) -> pd.DataFrame:
    """fit.to_frame() with a log-normal interval (from the log-scale covariance the fit
    estimated) and the covariance rows that let :func:`fitted_model` rebuild the fit."""
    # The engine's customer weights are whole customers: an integer count in the warehouse, named
    # as in the fits' inputs.
    frame = fit.to_frame().rename(columns={"n_customers": "customer_count"})
    frame["customer_count"] = frame["customer_count"].astype("Int64")
    z = norm.ppf((1 + interval) / 2)
    log_errors = np.sqrt(np.diag(fit.log_covariance))
    frame.insert(0, "fit_purpose", purpose)
    frame.insert(frame.columns.get_loc("unit"), "interval_level", interval)
    frame.insert(frame.columns.get_loc("unit"), "lower", fit.estimates * np.exp(-z * log_errors))
    frame.insert(frame.columns.get_loc("unit"), "upper", fit.estimates * np.exp(z * log_errors))
    frame["log_covariance_row"] = [json.dumps(row.tolist()) for row in fit.log_covariance]
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
    numeric = ["value", "standard_error", "lower", "upper", "log_likelihood"]
    frame[[*numeric, "fit_seconds"]] = np.nan
    frame["customer_count"] = pd.array([pd.NA] * len(frame), dtype="Int64")
    return frame.assign(
        interval_level=interval, converged=False, iterations=0, fit_status=outcome.status,
        fit_message=outcome.message, log_covariance_row=pd.Series([None] * len(frame), dtype="str"),
    )  # fmt: skip


def fit_models(
    inputs: pd.DataFrame,
    repeat_spend: pd.DataFrame,
    *,
    purpose: str,
    interval: float,
    min_repeat_customers: int,
    strict: bool = False,
) -> pd.DataFrame:
    """BG/NBD and Gamma-Gamma on the rows of one fit purpose, one row per parameter.

    ``inputs``: int_clv_inputs_compressed (fit_purpose, repeat_purchase_days, recency_days,
    age_days, customer_count, ...); ``repeat_spend``: int_clv_repeat_spend_compressed
    (fit_purpose, repeat_purchase_days, avg_repeat_spend, customer_count).
    A fit with fewer than ``min_repeat_customers`` repeat customers is not attempted (too little
    data to estimate drop-out and spend): fit_status 'skipped'. A model whose fit fails (not
    identified, not converged) is a finding, not an error: its rows carry no values, the
    fit_status and a fit_message in plain words, and its customers get no CLV; with ``strict``
    a failed scoring fit raises :class:`StrictFitError` instead. A holdout fit without rows
    (clv_holdout_days = 0) gives no rows.
    """
    if purpose not in FIT_PURPOSES:
        raise ValueError(f"purpose must be one of {FIT_PURPOSES}, got {purpose!r}")
    if not 0 < interval < 1:
        raise ValueError(f"var clv_interval_level must be in (0, 1), got {interval}")
    inputs, repeat_spend = _engine_frame(inputs), _engine_frame(repeat_spend)
    # Sorted, so that a build fits the same rows in the same order whatever order the engine
    # returned them in: sums in another order differ in the last bits, and where the likelihood
    # is flat (a boundary) that moves where the optimiser stops.
    mine = inputs[inputs["fit_purpose"] == purpose].sort_values(["x", "t_x", "T"], kind="stable")
    if purpose == "holdout" and mine.empty:
        # No holdout fit asked for: no rows, but columns of the types the other fit has.
        empty = FitOutcome(SKIPPED, "")
        return _unfitted_rows(purpose, BgNbdFit, empty, interval).iloc[:0]
    spend = repeat_spend[repeat_spend["fit_purpose"] == purpose].sort_values(
        ["x", "m"], kind="stable"
    )
    repeaters = int(spend["n_customers"].sum())
    if mine.empty or repeaters < max(min_repeat_customers, 1):  # spend needs a repeater
        fewer = (
            f"fewer than var clv_min_repeat_customers ({min_repeat_customers:,})"
            if min_repeat_customers > repeaters
            else "and drop-out and spend are measured on repeat purchases"
        )
        skipped = FitOutcome(
            SKIPPED,
            f"{repeaters:,} repeat customer(s), {fewer}: too few to estimate drop-out and "
            "spend, so the fit was not attempted",
        )
        outcomes: list[ParameterSet | FitOutcome] = [skipped, skipped]
    else:
        outcomes = [
            _fit_model(BgNbdFit.MODEL, lambda: bg_nbd.fit_bg_nbd(
                mine["x"], mine["t_x"], mine["T"], mine["n_customers"].to_numpy(float)
            )),
            _fit_model(GammaGammaFit.MODEL, lambda: gamma_gamma.fit_gamma_gamma(
                spend["x"], spend["m"], spend["n_customers"].to_numpy(float)
            )),
        ]  # fmt: skip
    frames = []
    for model, outcome in zip((BgNbdFit, GammaGammaFit), outcomes, strict=True):
        if isinstance(outcome, FitOutcome):
            if strict and purpose == "scoring" and outcome.status != SKIPPED:
                raise StrictFitError(
                    f"The scoring fit of {model.MODEL} is {outcome.status.replace('_', ' ')} "
                    f"and var clv_strict_fit is true: {outcome.message}"
                )
            frames.append(_unfitted_rows(purpose, model, outcome, interval))
        else:
            frames.append(_parameter_rows(purpose, outcome, interval))
    return pd.concat(frames, ignore_index=True).reindex(columns=PARAMETER_COLUMNS)


def fitted_model(parameters: pd.DataFrame, purpose: str, model: str) -> ParameterSet | None:
    """The fitted model of one purpose rebuilt from the rows :func:`fit_models` wrote, or
    None when it was not fitted."""
    cls = _FIT_CLASSES[model]
    rows = parameters[(parameters["fit_purpose"] == purpose) & (parameters["model"] == model)]
    if rows.empty or (rows["fit_status"] != FITTED).any():
        return None
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


def fits_from_parameters(parameters: pd.DataFrame, purpose: str) -> tuple[BgNbdFit, GammaGammaFit]:
    """Both fitted models of one purpose; raises when either was not fitted."""
    bg_fit = fitted_model(parameters, purpose, BgNbdFit.MODEL)
    gg_fit = fitted_model(parameters, purpose, GammaGammaFit.MODEL)
    if not (isinstance(bg_fit, BgNbdFit) and isinstance(gg_fit, GammaGammaFit)):
        raise ValueError(f"the {purpose} fit has no fitted BG/NBD and Gamma-Gamma models")
    return bg_fit, gg_fit


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
    """One row per input combination (key columns kept).

    'scoring' rows: p_alive, expected_purchases_{30,90,365}d, expected_avg_spend (for the
    combination's average m), discounted_expected_purchases and discounted_expected_spend with
    its interval (_lower, _upper) over ``horizon_days``: CLV at a margin of 1, which SQL
    multiplies by the margin (var clv_margin, or the observed one). 'holdout' rows: p_alive and
    expected_purchases_holdout, the conditional expectation of repeat purchase days in the
    ``holdout_days`` after the calibration end.
    """
    engine = _engine_frame(inputs)
    out = []
    for purpose in FIT_PURPOSES:
        mine = engine[engine["fit_purpose"] == purpose]
        bg_fit = fitted_model(parameters, purpose, BgNbdFit.MODEL)
        if mine.empty or not isinstance(bg_fit, BgNbdFit):
            continue  # no BG/NBD fit: nothing to score (clv_model_parameters says why)
        gg_fit = fitted_model(parameters, purpose, GammaGammaFit.MODEL)
        if purpose == "scoring" and isinstance(gg_fit, GammaGammaFit):
            scored = score_combinations(
                bg_fit, gg_fit, mine, horizon_days=horizon_days, margin=1.0,
                annual_discount_rate=annual_discount_rate, interval=interval,
                interval_method=interval_method, draws=draws,
            )  # fmt: skip
            label = f"{horizon_days:g}d"
            scored = scored.rename(
                columns={
                    f"discounted_expected_purchases_{label}": "discounted_expected_purchases",
                    f"clv_{label}": "discounted_expected_spend",
                    f"clv_{label}_lower": "discounted_expected_spend_lower",
                    f"clv_{label}_upper": "discounted_expected_spend_upper",
                }
            )
        else:
            # The purchase model alone: P(alive) and expected purchases, no spend (the holdout
            # report needs no more; a scoring fit without Gamma-Gamma has no CLV).
            scored = mine.copy()
            x, t_x, T = (mine[c].to_numpy(float) for c in ("x", "t_x", "T"))
            scored["p_alive"] = bg_nbd.probability_alive(bg_fit, x, t_x, T)
            if purpose == "scoring":
                for days in PURCHASE_HORIZONS_DAYS:
                    scored[f"expected_purchases_{days}d"] = bg_nbd.conditional_expected_purchases(
                        bg_fit, days, x, t_x, T
                    )
                scored["discounted_expected_purchases"] = discounted_expected_purchases(
                    bg_fit, x, t_x, T, horizon_days=horizon_days,
                    annual_discount_rate=annual_discount_rate,
                )  # fmt: skip
            else:
                scored["expected_purchases_holdout"] = bg_nbd.conditional_expected_purchases(
                    bg_fit, holdout_days, x, t_x, T
                )
        out.append(scored)
    columns = [
        *KEY_COLUMNS, "p_alive", "expected_purchases_30d", "expected_purchases_90d",
        "expected_purchases_365d", "expected_avg_spend", "discounted_expected_purchases",
        "discounted_expected_spend", "discounted_expected_spend_lower",
        "discounted_expected_spend_upper", "expected_purchases_holdout",
    ]  # fmt: skip
    if not out:  # no fit: an empty table with the columns and types
        out.append(engine.iloc[:0])
    scored = pd.concat(out, ignore_index=True).rename(
        columns={v: k for k, v in INPUT_COLUMNS.items()}
    )
    return scored.reindex(columns=columns).astype({c: float for c in columns[4:]})
