"""The purchase models by name, and their predictions for whichever model a fit is of.

Every purchase model (BG/NBD, MBG/NBD, Pareto/NBD) gives P(alive | x, t_x, T) and the expected
purchases of a customer alive at T, G(t | x, T), which does not depend on t_x; the conditional
expectation is their product in all three. That is all :mod:`cvm.clv.lifetime_value` and the
warehouse need, so they call the functions here, which find the model from the type of the
parameters (a fit, or the ``PARAMS`` named tuple of parameter draws).
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

import numpy as np
import numpy.typing as npt

from cvm.clv import bg_nbd, mbg_nbd, pareto_nbd
from cvm.clv.estimation import FloatArray, ParameterSet

MODULES: dict[str, ModuleType] = {
    bg_nbd.MODEL: bg_nbd,
    pareto_nbd.MODEL: pareto_nbd,
    mbg_nbd.MODEL: mbg_nbd,
}
MODELS = tuple(MODULES)
FIT_CLASSES: dict[str, type[ParameterSet]] = {
    bg_nbd.MODEL: bg_nbd.BgNbdFit,
    pareto_nbd.MODEL: pareto_nbd.ParetoNbdFit,
    mbg_nbd.MODEL: mbg_nbd.MbgNbdFit,
}
FITTERS: dict[str, Callable[..., ParameterSet]] = {
    bg_nbd.MODEL: bg_nbd.fit_bg_nbd,
    pareto_nbd.MODEL: pareto_nbd.fit_pareto_nbd,
    mbg_nbd.MODEL: mbg_nbd.fit_mbg_nbd,
}
_BY_TYPE: dict[type, ModuleType] = {}
for _name, _cls in FIT_CLASSES.items():
    _BY_TYPE[_cls] = _BY_TYPE[_cls.PARAMS] = MODULES[_name]


def module_of(params: Any) -> ModuleType:
    """The model module of a fit or of its ``PARAMS`` tuple."""
    try:
        return _BY_TYPE[type(params)]
    except KeyError:
        raise TypeError(
            f"not the parameters of a purchase model ({', '.join(MODELS)}): {type(params).__name__}"
        ) from None


def model_name(params: Any) -> str:
    return str(module_of(params).MODEL)


def fit(
    model: str, x: npt.ArrayLike, t_x: npt.ArrayLike, T: npt.ArrayLike,
    weights: npt.ArrayLike | None = None,
) -> ParameterSet:  # fmt: skip
    """Maximum-likelihood fit of the named purchase model."""
    if model not in FITTERS:
        raise ValueError(f"unknown purchase model {model!r}; one of {', '.join(MODELS)}")
    return FITTERS[model](x, t_x, T, weights)


def parameter_shape(params: Any) -> tuple[int, ...]:
    """Shape the parameters broadcast to: () for a fit, (draws, 1) for parameter draws."""
    names = FIT_CLASSES[model_name(params)].PARAMETER_NAMES
    return np.broadcast(*(np.asarray(getattr(params, n)) for n in names)).shape


def probability_alive(params: Any, x: Any, t_x: Any, T: Any) -> FloatArray:
    return module_of(params).probability_alive(params, x, t_x, T)


def probability_alive_log_gradient(params: Any, x: Any, t_x: Any, T: Any) -> FloatArray:
    """d ln P(alive) / d ln theta, shape (parameters, n), for a fit."""
    return module_of(params).probability_alive_log_gradient(params, x, t_x, T)


def expected_purchases_if_alive(params: Any, t: Any, x: Any, T: Any) -> FloatArray:
    return module_of(params).expected_purchases_if_alive(params, t, x, T)


def conditional_expected_purchases(params: Any, t: Any, x: Any, t_x: Any, T: Any) -> FloatArray:
    return module_of(params).conditional_expected_purchases(params, t, x, t_x, T)
