"""Customer lifetime value engine: BG/NBD + Gamma-Gamma on compressed (x, t_x, T) data.

Modules
-------
* :mod:`cvm.clv.bg_nbd` - BG/NBD fit (weighted ML) and predictions: P(alive), conditional and
  unconditional expected purchases.
* :mod:`cvm.clv.gamma_gamma` - Gamma-Gamma fit and expected spend per transaction.
* :mod:`cvm.clv.lifetime_value` - discounted CLV, bootstrap intervals and :func:`fit_and_score`.
* :mod:`cvm.clv.estimation` - shared maximum-likelihood machinery and the fit exceptions.

All times are in DAYS; see :mod:`cvm.clv.bg_nbd` for the data definitions.
"""

from cvm.clv.bg_nbd import (
    BgNbdFit,
    BgNbdParams,
    conditional_expected_purchases,
    expected_purchases,
    fit_bg_nbd,
    probability_alive,
)
from cvm.clv.estimation import ClvFitError, ConvergenceError, IdentificationError
from cvm.clv.gamma_gamma import (
    GammaGammaFit,
    GammaGammaParams,
    conditional_expected_spend,
    fit_gamma_gamma,
)
from cvm.clv.lifetime_value import (
    ClvScores,
    clv_interval,
    clv_interval_delta,
    customer_lifetime_value,
    discounted_expected_purchases,
    fit_and_score,
    score_combinations,
)

__all__ = [
    "BgNbdFit",
    "BgNbdParams",
    "ClvFitError",
    "ClvScores",
    "ConvergenceError",
    "GammaGammaFit",
    "GammaGammaParams",
    "IdentificationError",
    "clv_interval",
    "clv_interval_delta",
    "conditional_expected_purchases",
    "conditional_expected_spend",
    "customer_lifetime_value",
    "discounted_expected_purchases",
    "expected_purchases",
    "fit_and_score",
    "fit_bg_nbd",
    "fit_gamma_gamma",
    "probability_alive",
    "score_combinations",
]
