"""What the dbt Python models of models/intermediate/clv/ do, one function per kind of model.

Each fit purpose has its own pair of models (fitted, scored) so that the holdout fit, which
only the holdout report needs, runs beside the SQL of the rest of the build instead of on the
path to customer_value. The model files stay thin: dbt.config(), dbt.config.get() and dbt.ref()
are called there (dbt reads a Python model's file to find its parents and the config keys it
uses), the work is here, and cvm.frames converts between the engine's frames (DuckDB or
Spark) and pandas.
"""

from __future__ import annotations

from typing import Any

from cvm.clv.warehouse import HOLDOUT_SCORE_COLUMNS, fit_models, score_fits
from cvm.frames import in_engine, to_engine, to_pandas


def _of_purpose(relation: Any, purpose: str, columns: tuple[str, ...] | None = None):
    """The rows of one fit purpose as pandas, cut by the engine (at 10M customers the other
    purpose's rows and the unused columns would be gigabytes in pandas)."""
    frame = to_pandas(in_engine(relation, columns, f"fit_purpose = '{purpose}'"))
    return frame[frame["fit_purpose"] == purpose]


def fit(
    session: Any, purpose: str, inputs: Any, repeat_spend: Any, *, interval: Any,
    min_repeat_customers: Any, strict: Any = False, clv_model: Any = "auto",
    holdout_scores: Any = None,
) -> Any:  # fmt: skip
    """Parameter rows of the fits of one purpose (see cvm.clv.warehouse.fit_models), from
    int_clv_inputs_compressed and int_clv_repeat_spend_compressed; the scoring fit also gets
    int_clv_holdout_combinations_scored (``holdout_scores``) to choose its model. Settings may
    arrive as strings (model config rendered from vars)."""
    # The scoring fit also reads the holdout rows of the inputs: their actual holdout purchases
    # score the holdout predictions that choose the model.
    parameters = fit_models(
        to_pandas(inputs) if purpose == "scoring" else _of_purpose(inputs, purpose),
        _of_purpose(repeat_spend, purpose),
        purpose=purpose,
        interval=float(interval),
        min_repeat_customers=int(min_repeat_customers),
        strict=as_bool(strict, "clv_strict_fit"),
        clv_model=str(clv_model).strip(),
        holdout_scores=(
            None
            if holdout_scores is None
            else _of_purpose(holdout_scores, "holdout", HOLDOUT_SCORE_COLUMNS)
        ),
    )
    return to_engine(parameters, session)


def as_bool(value: Any, name: str) -> bool:
    """A boolean var as the model config renders it ('True', 'false', ...)."""
    text = str(value).strip().lower()
    if text in {"true", "1", "yes"}:
        return True
    if text in {"false", "0", "no", "none", ""}:
        return False
    raise ValueError(f"var {name} must be true or false, got {value!r}")


SCORE_SETTINGS = {  # model config key -> type (configs are rendered from the clv_* vars)
    "clv_horizon_days": int,
    "clv_annual_discount_rate": float,
    "clv_interval_level": float,
    "clv_interval_method": str,
    "clv_bootstrap_draws": int,
    "clv_holdout_days": int,
}


def score(session: Any, purpose: str, inputs: Any, fitted: Any, settings: dict) -> Any:
    """Every combination of one purpose in int_clv_inputs_compressed (``inputs``) scored with
    the fits in ``fitted``; ``settings``: the SCORE_SETTINGS keys from the model config."""
    missing = sorted(set(SCORE_SETTINGS) - {k for k, v in settings.items() if v is not None})
    if missing:
        raise ValueError(f"model config lacks {missing}; set them from the clv_* vars")
    value = {key: cast(settings[key]) for key, cast in SCORE_SETTINGS.items()}
    scores = score_fits(
        _of_purpose(inputs, purpose),
        to_pandas(fitted),
        horizon_days=value["clv_horizon_days"],
        annual_discount_rate=value["clv_annual_discount_rate"],
        interval=value["clv_interval_level"],
        interval_method=value["clv_interval_method"],
        draws=value["clv_bootstrap_draws"],
        holdout_days=value["clv_holdout_days"],
    )
    return to_engine(scores, session)
