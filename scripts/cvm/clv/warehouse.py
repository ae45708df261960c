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

import numpy as np
import pandas as pd
from scipy.stats import norm

from cvm.clv import bg_nbd, gamma_gamma
from cvm.clv.bg_nbd import BgNbdFit
from cvm.clv.estimation import ClvFitError, ParameterSet
from cvm.clv.gamma_gamma import GammaGammaFit
from cvm.clv.lifetime_value import score_combinations

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
    "upper", "unit", "log_likelihood", "n_customers", "fit_seconds", "converged", "iterations",
    "fit_status", "log_covariance_row",
]  # fmt: skip
_HOLDOUT_HINT = " For the holdout fit, a shorter var clv_holdout_days (or 0 to skip it) may help."


def _engine_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Engine names, and float64 with NaN for missing values (frames from Arrow arrive with
    pandas' nullable Int64 / Float64 dtypes)."""
    present = {k: v for k, v in INPUT_COLUMNS.items() if k in frame.columns}
    return frame.rename(columns=present).astype({v: "float64" for v in present.values()})


def _fit_one(purpose: str, inputs: pd.DataFrame, spend: pd.DataFrame) -> list[ParameterSet]:
    if inputs.empty:
        raise ClvFitError(
            f"{purpose} fit: no customer has a purchase before its calibration end date; "
            "check var clv_purchase_statuses and the as-of date."
            + (_HOLDOUT_HINT if purpose == "holdout" else "")
        )
    try:
        bg_fit = bg_nbd.fit_bg_nbd(
            inputs["x"], inputs["t_x"], inputs["T"], inputs["n_customers"].to_numpy(float)
        )
        gg_fit = gamma_gamma.fit_gamma_gamma(
            spend["x"], spend["m"], spend["n_customers"].to_numpy(float)
        )
    except ClvFitError as error:
        hint = _HOLDOUT_HINT if purpose == "holdout" else ""
        raise type(error)(f"{purpose} fit: {error}{hint}") from error
    return [bg_fit, gg_fit]


def _parameter_rows(purpose: str, fit: ParameterSet, interval: float) -> pd.DataFrame:
    """fit.to_frame() with a log-normal interval (from the log-scale covariance the fit
    estimated) and the covariance rows that let :func:`fits_from_parameters` rebuild the fit."""
    frame = fit.to_frame()
    z = norm.ppf((1 + interval) / 2)
    log_errors = np.sqrt(np.diag(fit.log_covariance))
    frame.insert(0, "fit_purpose", purpose)
    frame.insert(frame.columns.get_loc("unit"), "interval_level", interval)
    frame.insert(frame.columns.get_loc("unit"), "lower", fit.estimates * np.exp(-z * log_errors))
    frame.insert(frame.columns.get_loc("unit"), "upper", fit.estimates * np.exp(z * log_errors))
    frame["log_covariance_row"] = [json.dumps(row.tolist()) for row in fit.log_covariance]
    return frame


def _skipped_rows(purpose: str, reason: str, interval: float) -> pd.DataFrame:
    """Parameter rows without values for a fit that was not attempted, saying why."""
    rows = [
        {"fit_purpose": purpose, "model": cls.MODEL, "parameter": name, "unit": unit}
        for cls in (BgNbdFit, GammaGammaFit)
        for name, unit in zip(cls.PARAMETER_NAMES, cls.PARAMETER_UNITS, strict=True)
    ]
    frame = pd.DataFrame(rows).reindex(columns=PARAMETER_COLUMNS)
    numeric = ["value", "standard_error", "lower", "upper", "log_likelihood", "n_customers"]
    frame[[*numeric, "fit_seconds"]] = np.nan
    return frame.assign(
        interval_level=interval, converged=False, iterations=0, fit_status=f"skipped: {reason}",
        log_covariance_row=pd.Series([None] * len(frame), dtype="str"),
    )  # fmt: skip


def fit_models(
    inputs: pd.DataFrame,
    repeat_spend: pd.DataFrame,
    *,
    purpose: str,
    interval: float,
    min_repeat_customers: int,
) -> pd.DataFrame:
    """BG/NBD and Gamma-Gamma on the rows of one fit purpose.

    ``inputs``: int_clv_inputs_compressed (fit_purpose, repeat_purchase_days, recency_days,
    age_days, customer_count, ...); ``repeat_spend``: int_clv_repeat_spend_compressed
    (fit_purpose, repeat_purchase_days, avg_repeat_spend, customer_count).
    A fit with fewer than ``min_repeat_customers`` repeat customers is not attempted (too little
    data to estimate drop-out and spend): its rows carry no values and a ``fit_status`` saying
    so, and the customers get no CLV. A fit that is attempted and fails raises. A holdout fit
    without rows (clv_holdout_days = 0) gives no rows.
    """
    if purpose not in FIT_PURPOSES:
        raise ValueError(f"purpose must be one of {FIT_PURPOSES}, got {purpose!r}")
    if not 0 < interval < 1:
        raise ValueError(f"var clv_interval_level must be in (0, 1), got {interval}")
    inputs, repeat_spend = _engine_frame(inputs), _engine_frame(repeat_spend)
    mine = inputs[inputs["fit_purpose"] == purpose]
    if purpose == "holdout" and mine.empty:
        # No holdout fit asked for: no rows, but columns of the types the other fit has.
        return _skipped_rows(purpose, "", interval).reindex(columns=PARAMETER_COLUMNS).iloc[:0]
    spend = repeat_spend[repeat_spend["fit_purpose"] == purpose]
    repeaters = int(spend["n_customers"].sum())
    if repeaters < min_repeat_customers:
        reason = (
            f"{repeaters} repeat customer(s), fewer than var clv_min_repeat_customers "
            f"({min_repeat_customers})"
        )
        return _skipped_rows(purpose, reason, interval).reindex(columns=PARAMETER_COLUMNS)
    frames = [
        _parameter_rows(purpose, fit, interval).assign(fit_status="fitted")
        for fit in _fit_one(purpose, mine, spend)
    ]
    return pd.concat(frames, ignore_index=True).reindex(columns=PARAMETER_COLUMNS)


def fitted_purposes(parameters: pd.DataFrame) -> set[str]:
    return set(parameters.loc[parameters["fit_status"] == "fitted", "fit_purpose"])


def fits_from_parameters(parameters: pd.DataFrame, purpose: str) -> tuple[BgNbdFit, GammaGammaFit]:
    """Rebuilds the fitted models of one purpose from the rows :func:`fit_models` wrote."""
    fits = []
    for model in (BgNbdFit.MODEL, GammaGammaFit.MODEL):
        cls = _FIT_CLASSES[model]
        rows = parameters[(parameters["fit_purpose"] == purpose) & (parameters["model"] == model)]
        rows = rows.set_index("parameter").loc[list(cls.PARAMETER_NAMES)]
        first = rows.iloc[0]
        fits.append(
            cls(
                **{name: float(rows.loc[name, "value"]) for name in cls.PARAMETER_NAMES},
                log_likelihood=float(first["log_likelihood"]),
                n_customers=float(first["n_customers"]),
                fit_seconds=float(first["fit_seconds"]),
                converged=bool(first["converged"]),
                iterations=int(first["iterations"]),
                log_covariance=np.array([json.loads(r) for r in rows["log_covariance_row"]]),
            )
        )
    bg_fit, gg_fit = fits
    assert isinstance(bg_fit, BgNbdFit) and isinstance(gg_fit, GammaGammaFit)
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
        if mine.empty or purpose not in fitted_purposes(parameters):
            continue
        bg_fit, gg_fit = fits_from_parameters(parameters, purpose)
        if purpose == "scoring":
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
            scored = mine.copy()
            x, t_x, T = (mine[c].to_numpy(float) for c in ("x", "t_x", "T"))
            scored["p_alive"] = bg_nbd.probability_alive(bg_fit, x, t_x, T)
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
