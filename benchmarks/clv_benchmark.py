"""Benchmark (outside the test suite): our CLV engine against lifetimes and pymc-marketing.

What is measured
----------------
Generated orders (:mod:`cvm.generate`, true parameters in its manifest) are summarised per
customer in DuckDB with the Fader-Hardie-Lee day-level definitions used by :mod:`cvm.clv`:
purchase events are orders whose status is not ``cancelled``, a purchase day is the order's
date, x = distinct purchase days after the first, t_x = days from the first to the last purchase
day, T = as-of date - first purchase day, m = mean over the repeat purchase days of the day's
total ``order_total`` (NaN when x = 0). The as-of date is the generator's end date; later orders
are excluded. This summary is shared input and is not part of any engine's time.

Each engine then goes from these per-customer arrays to fitted purchase-model and Gamma-Gamma
parameters AND every customer's 12-month CLV; that whole path is what is timed. The purchase
model is ``--purchase-model``: BG/NBD (default), Pareto/NBD or MBG/NBD, the same in every
engine (below, BG/NBD's classes; lifetimes' ``ParetoNBDFitter`` / ``ModifiedBetaGeoFitter`` and
pymc-marketing's ``ParetoNBDModel`` / ``ModifiedBetaGeoModel`` for the others, called the same
way). The CLV is the same quantity in all three: 12 steps of 30 days (360 days), expected
purchases per step from the purchase model's conditional expectation times the Gamma-Gamma
expected spend per purchase, margin 1 (CLV in spend), discounted at 10 % a year (effective):

* ``ours`` (:mod:`cvm.clv`), the way the warehouse runs it: compresses customers to distinct
  (x, t_x, T) with counts and the average m of each combination (what the SQL hands over; part
  of the time), weighted ML fits (BG/NBD on the combinations, Gamma-Gamma on the repeat buyers'
  (x, m) without compression: m is continuous, so distinct (x, m) are nearly as many as the
  buyers, 79 % of them at 1M), then :func:`cvm.clv.score_combinations` with the delta-method
  interval (what ``int_clv_combinations_scored`` computes: P(alive), expected purchases at 30,
  90 and 365 days, expected spend, discounted purchases, CLV and its 80 % interval, per
  combination), and finally each customer's CLV = the combination's discounted purchases times
  the customer's own expected spend (CLV is linear in m).
* ``lifetimes`` 0.11.3: ``BetaGeoFitter(penalizer_coef=0).fit(frequency, recency, T)`` on the
  per-customer rows as a typical user calls it (no compression, default tolerance),
  ``GammaGammaFitter(penalizer_coef=0)`` on the repeat buyers, then
  ``GammaGammaFitter.customer_lifetime_value(bgf, frequency, recency, T, monetary_value,
  time=12, discount_rate=(1.1)^(1/12) - 1, freq="D")`` for every customer (time in months of 30
  days with freq "D", discount rate per month).
* ``pymc-marketing``: ``BetaGeoModel`` / ``GammaGammaModel`` fitted with ``fit(method="map")``
  on the per-customer data frame, then ``GammaGammaModel.expected_customer_lifetime_value(bg,
  data, future_t=12, discount_rate=(1.1)^(1/12) - 1, time_unit="D")`` at the MAP point (same
  units as lifetimes, from which it is adapted). The BG/NBD priors are set to ``HalfFlat`` for
  r, alpha, a and b (the default is Weibull priors on r and alpha and a hierarchical
  Beta/Pareto prior on a and b); ``find_MAP`` optimises the log-posterior without the
  log-transform Jacobian, so with flat priors the MAP is the maximum-likelihood estimate, the
  same target as the other engines. The Gamma-Gamma default priors are already HalfFlat.

Discounting conventions: both references discount step k (days 30(k-1) to 30k) by
(1 + monthly rate)^-k = 1.1^(-k/12), i.e. they count a 30-day step as a twelfth of a year
(a 360-day year); ours discounts it by 1.1^(-30k/365) (:mod:`cvm.clv.lifetime_value`: effective
annual rate over 365-day years). Our CLV is therefore a little higher (by 0.13 % at most, for
purchases in the last step). The comparison separates this from everything else: it also
evaluates our CLV formula with the annual rate that gives the references' factors,
(1.1)^(365/360) - 1, at our estimates (what is left is the parameter differences) and at each
reference's own estimates (what is left is numerics).

Every engine runs in its own fresh worker process (the interpreter that runs this script) that
loads the inputs and does one untimed warm-up on 5,000 customers (imports, first calls); the
timed runs are then interleaved round-robin across the engines (run 1 of each, then run 2, ...)
so that the noise of a shared machine hits them alike, and the table shows medians. A
pymc-marketing fit on a data set of a new size compiles C code (pytensor), which the first
timed run pays and later runs find cached; the first run is therefore shown beside the median.
Our engine evaluates its purchase curves in parallel threads (:mod:`cvm.clv.lifetime_value`),
so it uses the machine's cores where the references mostly use one.
Memory is the worker's peak resident set size during a run (Linux VmHWM, reset through
/proc/self/clear_refs before each run; the baseline RSS before the run, i.e. interpreter,
libraries and input arrays, is reported beside it). Parameters are compared ours vs each
reference (relative differences) and against the generator's truth; every engine's estimates
are also scored with our log-likelihood, so that a gap can be attributed to whichever optimiser
stopped short. At ``--large-customers`` (default 10M) only our engine runs. The generator's
true parameters are BG/NBD's: with another purchase model only Gamma-Gamma has a truth.

``--selection`` also times the warehouse's model selection (var ``clv_model: auto``) at
``--customers``, in the main process: the compressed inputs of both fit purposes ('holdout':
calibration up to 182 days before the as-of date, with each customer's repeat purchase days
after it; 'scoring': up to the as-of date) are prepared in DuckDB (not timed), then
:func:`cvm.clv.warehouse.fit_models` and :func:`~cvm.clv.warehouse.score_fits` run as the four
CLV Python models call them: the holdout fits of all three purchase models and Gamma-Gamma,
the holdout scoring by each model, the scoring fits with the choice by holdout error (that is
the selection), then the scoring with the chosen model (timed beside it).

How to run
----------
lifetimes and pymc-marketing do not share the project's venv; the benchmark venv holds all three
engines (see requirements-clv-benchmark.lock):

    python3.11 -m venv .venv-clv-benchmark
    .venv-clv-benchmark/bin/pip install --no-deps -r requirements-clv-benchmark.lock
    PYTHONPATH=scripts .venv-clv-benchmark/bin/python benchmarks/clv_benchmark.py \\
        --data-dir /tmp/clvbench --reference-repeats 1

(`make benchmark-clv` does all of this, for BG/NBD and then for Pareto/NBD with
``--selection``. The project's package is put on PYTHONPATH there rather than installed: that
venv does not hold the project's own dependencies.)

Missing data are generated into ``<data-dir>/g<size>`` (e.g. g1m, g10m; about 2 minutes and
3.7 GB of Parquet at 10M). ``--engines ours lifetimes`` also runs in the project's own venv.
Output: a Markdown table on stdout, progress on stderr and a JSON file (``--json``, default
build/benchmark/clv-<purchase model>.json).
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import gc
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import numpy.typing as npt
import pandas as pd

from cvm import PROJECT_DIR, clv
from cvm.clv import gamma_gamma, purchase
from cvm.clv.warehouse import MODEL_LABELS

SCRIPTS_DIR = PROJECT_DIR / "scripts"
DEFAULT_JSON_DIR = PROJECT_DIR / "build" / "benchmark"
DEFAULT_DATA_DIR = PROJECT_DIR / "build" / "benchmark" / "clv-data"

ENGINES = ("ours", "lifetimes", "pymc-marketing")
REFERENCES = ("lifetimes", "pymc-marketing")
WARM_UP_CUSTOMERS = 5_000
# The CLV every engine computes (module docstring): 12 months of 30 days at margin 1.
CLV_MONTHS = 12
DAYS_PER_MONTH = 30  # lifetimes' and pymc-marketing's month with freq / time_unit "D"
HORIZON_DAYS = CLV_MONTHS * DAYS_PER_MONTH
ANNUAL_DISCOUNT_RATE = 0.10  # effective, per year: ours
MONTHLY_DISCOUNT_RATE = (1 + ANNUAL_DISCOUNT_RATE) ** (1 / 12) - 1  # the references'
# Our annual rate whose 30-day factors (1 + rate)^(-30 k / 365) are the references'
# (1 + monthly)^-k: (1.1)^(365/360) - 1.
MATCHED_ANNUAL_RATE = (1 + MONTHLY_DISCOUNT_RATE) ** (365 / DAYS_PER_MONTH) - 1
MARGIN = 1.0  # the references have no margin: CLV in spend
INTERVAL = 0.8  # our delta-method interval (the warehouse's default level)
GG_NAMES = ("p", "q", "v")
# The references' class for each purchase model our engine fits (--purchase-model).
LIFETIMES_FITTERS = {
    "bg_nbd": "BetaGeoFitter", "pareto_nbd": "ParetoNBDFitter", "mbg_nbd": "ModifiedBetaGeoFitter",
}  # fmt: skip
PYMC_MODELS = {
    "bg_nbd": "BetaGeoModel", "pareto_nbd": "ParetoNBDModel", "mbg_nbd": "ModifiedBetaGeoModel",
}  # fmt: skip
# How many times as fast as the faster reference ours should be (the issues that asked).
SPEEDUP_CRITERION = {"bg_nbd": 5, "pareto_nbd": 10, "mbg_nbd": 5}
HOLDOUT_DAYS = 182  # the warehouse's default var clv_holdout_days (model selection)
PACKAGES = (
    "numpy", "scipy", "pandas", "duckdb", "lifetimes", "pymc-marketing", "pymc", "pytensor",
)  # fmt: skip
_KEY_BITS = 21  # x, t_x and T packed into one int64 key (each < 2**21)

FloatArray = npt.NDArray[np.float64]


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def purchase_names(model: str) -> tuple[str, ...]:
    return purchase.FIT_CLASSES[model].PARAMETER_NAMES


def purchase_params(model: str, values: dict[str, float]) -> Any:
    return purchase.FIT_CLASSES[model].PARAMS(**values)


# --------------------------------------------------------------------------------------------
# Data


@dataclass(frozen=True)
class Inputs:
    """Per-customer summary, sorted by customer_id (m is NaN where x = 0)."""

    customer_id: npt.NDArray[np.int64]
    x: FloatArray
    t_x: FloatArray
    T: FloatArray
    m: FloatArray

    def head(self, n: int) -> Inputs:
        return Inputs(*(getattr(self, f)[:n] for f in self.__dataclass_fields__))

    def save(self, path: Path) -> None:
        np.savez(path, **{f: getattr(self, f) for f in self.__dataclass_fields__})

    @classmethod
    def load(cls, path: Path) -> Inputs:
        with np.load(path) as arrays:
            return cls(**{f: arrays[f] for f in cls.__dataclass_fields__})


# Purchase days (the FHL definitions above) up to the as-of date: shared by both summaries.
PURCHASE_DAYS_SQL = """
with purchase_days as (
    select customer_id, cast(ordered_at as date) as purchase_day, sum(order_total) as day_total
    from read_parquet($orders)
    where status <> 'cancelled' and cast(ordered_at as date) <= $as_of
    group by all
),
"""
SUMMARY_SQL = (
    PURCHASE_DAYS_SQL
    + """customers as (
    select
        customer_id,
        min(purchase_day) as first_day,
        max(purchase_day) as last_day,
        count(*) - 1 as x,
        sum(day_total) as total,
        arg_min(day_total, purchase_day) as first_day_total
    from purchase_days
    group by customer_id
)
select
    customer_id,
    x::double as x,
    (last_day - first_day)::double as t_x,
    ($as_of - first_day)::double as "T",
    case when x > 0 then (total - first_day_total) / x else 'NaN'::double end as m
from customers
order by customer_id
"""
)


def size_label(customers: int) -> str:
    for unit, suffix in ((1_000_000, "m"), (1_000, "k")):
        if customers % unit == 0:
            return f"{customers // unit}{suffix}"
    return str(customers)


def ensure_data(data_dir: Path, customers: int) -> Path:
    """Generated raw data for `customers` in <data_dir>/g<size>; generated when missing."""
    out = data_dir / f"g{size_label(customers)}"
    manifest = out / "generator_manifest.json"
    if manifest.is_file() and (out / "orders.parquet").is_file():
        found = json.loads(manifest.read_text())["args"]["customers"]
        if found != customers:
            sys.exit(f"{out} holds {found:,} customers, not {customers:,}; use another --data-dir")
        return out
    log(f"generating {customers:,} customers into {out} ...")
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "cvm.generate", "--customers", str(customers), "--out", str(out),
         "--quiet"],
        check=True, env=_worker_env(),
    )  # fmt: skip
    log(f"  generated in {time.perf_counter() - started:.0f} s")
    return out


def summarise(raw_dir: Path) -> tuple[Inputs, dict[str, Any]]:
    """The per-customer summary (DuckDB) and facts about it."""
    manifest = json.loads((raw_dir / "generator_manifest.json").read_text())
    as_of = manifest["end_date"]
    started = time.perf_counter()
    with duckdb.connect() as con:
        arrays = con.execute(
            SUMMARY_SQL, {"orders": str(raw_dir / "orders.parquet"), "as_of": as_of}
        ).fetchnumpy()
        orders = con.execute(
            "select count(*), count(*) filter (where status <> 'cancelled') "
            "from read_parquet($orders)",
            {"orders": str(raw_dir / "orders.parquet")},
        ).fetchone()
    seconds = time.perf_counter() - started
    data = Inputs(
        customer_id=np.asarray(arrays["customer_id"], dtype=np.int64),
        **{k: np.asarray(arrays[k], dtype=float) for k in ("x", "t_x", "T", "m")},
    )
    repeat = data.x > 0
    distinct = len(pd.DataFrame({"x": data.x, "t_x": data.t_x, "T": data.T}).drop_duplicates())
    distinct_m = len(pd.DataFrame({"x": data.x[repeat], "m": data.m[repeat]}).drop_duplicates())
    facts = {
        "raw_dir": str(raw_dir),
        "generated_customers": manifest["args"]["customers"],
        "as_of_date": as_of,
        "orders": int(orders[0]),
        "purchase_orders": int(orders[1]),
        "buyers": int(data.x.size),
        "repeat_buyers": int(repeat.sum()),
        "distinct_x_tx_T": int(distinct),
        "distinct_x_m": distinct_m,
        "max_x": int(data.x.max()),
        "summary_seconds": seconds,
        "truth": manifest["parameters"],
    }
    return data, facts


# --------------------------------------------------------------------------------------------
# Engines: per-customer arrays -> parameters and per-customer predictions


@dataclass
class EngineRun:
    params: dict[str, dict[str, float]]
    predictions: dict[str, FloatArray]
    stages: dict[str, float] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)


class Stopwatch:
    def __init__(self) -> None:
        self.stages: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.stages[name] = now - self._last
        self._last = now


def run_ours(data: Inputs, model: str) -> EngineRun:
    clock = Stopwatch()
    mask = (1 << _KEY_BITS) - 1
    parts = [v.astype(np.int64) for v in (data.x, data.t_x, data.T)]
    if max(int(p.max()) for p in parts) > mask:
        raise ValueError(f"x, t_x or T >= 2**{_KEY_BITS}: cannot pack the compression key")
    key = (parts[0] << (2 * _KEY_BITS)) | (parts[1] << _KEY_BITS) | parts[2]
    codes, keys = pd.factorize(key)
    counts = np.bincount(codes).astype(float)
    x = (keys >> (2 * _KEY_BITS)).astype(float)
    t_x = ((keys >> _KEY_BITS) & mask).astype(float)
    T = (keys & mask).astype(float)
    repeat = data.x > 0
    # The combinations' average m (NaN where x = 0), as int_clv_inputs_compressed carries it.
    m_sum = np.bincount(codes, weights=np.where(repeat, data.m, 0.0))
    with np.errstate(invalid="ignore"):
        m = np.where(x > 0, m_sum / counts, np.nan)
    clock.lap("compress")
    fit = purchase.fit(model, x, t_x, T, counts)
    clock.lap("fit_purchase")
    gg = clv.fit_gamma_gamma(data.x[repeat], data.m[repeat])
    clock.lap("fit_gamma_gamma")
    combinations = pd.DataFrame(
        {"x": x, "t_x": t_x, "T": T, "n_customers": counts, "m": m}, copy=False
    )
    scores = clv.score_combinations(
        fit, gg, combinations, horizon_days=HORIZON_DAYS, margin=MARGIN,
        annual_discount_rate=ANNUAL_DISCOUNT_RATE, interval=INTERVAL, interval_method="delta",
    )  # fmt: skip
    # CLV is linear in m: a customer's is the combination's discounted purchases times the
    # customer's own expected spend.
    purchases = scores[f"discounted_expected_purchases_{HORIZON_DAYS}d"].to_numpy()[codes]
    customer_clv = MARGIN * purchases * clv.conditional_expected_spend(gg, data.x, data.m)
    clock.lap("clv")
    return EngineRun(
        params={
            model: {n: getattr(fit, n) for n in purchase_names(model)},
            "gamma_gamma": {n: getattr(gg, n) for n in GG_NAMES},
        },
        predictions={"clv": customer_clv},
        stages=clock.stages,
        info={
            "rows_purchase": len(keys),
            "iterations": {"purchase": fit.iterations, "gamma_gamma": gg.iterations},
            # Time inside the optimiser (search, Newton steps, Hessian); the rest of a fit is
            # input validation, the identification checks and the per-fit preparation.
            "optimiser_seconds": {"purchase": fit.fit_seconds, "gamma_gamma": gg.fit_seconds},
        },
    )


def run_lifetimes(data: Inputs, model: str) -> EngineRun:
    import lifetimes
    from lifetimes import GammaGammaFitter

    clock = Stopwatch()
    fitter = getattr(lifetimes, LIFETIMES_FITTERS[model])(penalizer_coef=0.0)
    fitted = fitter.fit(data.x, data.t_x, data.T)
    clock.lap("fit_purchase")
    repeat = data.x > 0
    ggf = GammaGammaFitter(penalizer_coef=0.0).fit(data.x[repeat], data.m[repeat])
    clock.lap("fit_gamma_gamma")
    # time in months (30 days each with freq "D"), discount rate per month; m = 0 for x = 0:
    # the weight on m is zero there and the expected spend is the population mean.
    index = pd.RangeIndex(data.x.size)
    customer_clv = ggf.customer_lifetime_value(
        fitted, pd.Series(data.x, index), pd.Series(data.t_x, index), pd.Series(data.T, index),
        pd.Series(np.where(repeat, data.m, 0.0), index), time=CLV_MONTHS,
        discount_rate=MONTHLY_DISCOUNT_RATE, freq="D",
    )  # fmt: skip
    clock.lap("clv")
    return EngineRun(
        params={
            model: {n: float(fitted.params_[n]) for n in purchase_names(model)},
            "gamma_gamma": {n: float(ggf.params_[n]) for n in GG_NAMES},
        },
        predictions={"clv": np.asarray(customer_clv, dtype=float)},
        stages=clock.stages,
    )


def _point(result: Any, customer_id: npt.NDArray[np.int64]) -> FloatArray:
    """The MAP draw of a pymc-marketing prediction, in the order of `customer_id`."""
    point = result.isel(chain=0, draw=0)
    if not np.array_equal(point["customer_id"].to_numpy(), customer_id):
        point = point.sel(customer_id=customer_id)
    return np.asarray(point.to_numpy(), dtype=float)


def run_pymc_marketing(data: Inputs, model: str) -> EngineRun:
    import pymc_marketing.clv
    from pymc_extras.prior import Prior
    from pymc_marketing.clv import GammaGammaModel

    clock = Stopwatch()
    frame = pd.DataFrame(
        {"customer_id": data.customer_id, "frequency": data.x, "recency": data.t_x, "T": data.T}
    )
    # Flat priors: find_MAP leaves out the Jacobian of the log transform, so MAP = ML here.
    names = purchase_names(model)
    transactions = getattr(pymc_marketing.clv, PYMC_MODELS[model])(
        model_config={name: Prior("HalfFlat") for name in names}
    )
    transactions.fit(frame, method="map", progressbar=False)
    clock.lap("fit_purchase")
    repeat = data.x > 0
    spend_frame = frame.assign(monetary_value=np.where(repeat, data.m, 0.0))
    gg = GammaGammaModel(model_config={name: Prior("HalfFlat") for name in GG_NAMES})
    gg.fit(spend_frame[repeat], method="map", progressbar=False)
    clock.lap("fit_gamma_gamma")
    # future_t in months (30 days each with time_unit "D"), discount rate per month; it writes
    # the expected spend into the frame it is given (a column "future_spend").
    customer_clv = _point(
        gg.expected_customer_lifetime_value(
            transactions, spend_frame, future_t=CLV_MONTHS, discount_rate=MONTHLY_DISCOUNT_RATE,
            time_unit="D",
        ),
        data.customer_id,
    )  # fmt: skip
    clock.lap("clv")
    point, gg_point = transactions.fit_result, gg.fit_result
    return EngineRun(
        params={
            model: {n: float(point[n].to_numpy().squeeze()) for n in names},
            "gamma_gamma": {n: float(gg_point[n].to_numpy().squeeze()) for n in GG_NAMES},
        },
        predictions={"clv": customer_clv},
        stages=clock.stages,
    )


RUNNERS: dict[str, Callable[[Inputs, str], EngineRun]] = {
    "ours": run_ours,
    "lifetimes": run_lifetimes,
    "pymc-marketing": run_pymc_marketing,
}


# --------------------------------------------------------------------------------------------
# Worker process: one engine, timed runs, peak memory


def _status_kb(field_name: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    raise KeyError(field_name)


def _reset_peak_rss() -> bool:
    """Resets VmHWM (Linux >= 4.0); False where that is not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
    except OSError:
        return False
    return True


def _return_free_memory() -> None:
    """Gives freed heap pages back to the OS (glibc), so that the RSS before a run does not
    carry the previous run's garbage."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def _versions() -> dict[str, str | None]:
    found: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found


def _timed_run(
    runner: Callable[[Inputs, str], EngineRun], data: Inputs, model: str
) -> tuple[dict, EngineRun]:
    """One timed run with its peak RSS (see the module docstring) and the warnings it raised."""
    gc.collect()
    _return_free_memory()
    exact_peak = _reset_peak_rss()
    baseline = _status_kb("VmRSS")
    load = os.getloadavg()[0]
    started = time.perf_counter()
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        run = runner(data, model)
    seconds = time.perf_counter() - started
    peak = _status_kb("VmHWM") if exact_peak else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    record = {
        "seconds": seconds,
        "peak_rss_mb": peak / 1024,
        "rss_before_run_mb": baseline / 1024,
        "memory_method": MEMORY_METHODS[exact_peak],
        "load_average_1min_before": load,
        "stages": run.stages,
        "warnings": sorted({f"{w.category.__name__}: {str(w.message)[:300]}" for w in seen}),
    }
    return record, run


MEMORY_METHODS = {
    True: "peak RSS of the worker process during the run (VmHWM, reset through "
    "/proc/self/clear_refs just before it)",
    False: "ru_maxrss of the worker process (peak since it started, warm-up included)",
}


def worker(engine: str, model: str, inputs: Path, output: Path, save_predictions: bool) -> int:
    """Engine process driven by :class:`Worker`: one JSON line answers each command on stdin
    ("run", then "finish"). Libraries' own prints go to stderr, stdout carries the protocol."""
    protocol = os.fdopen(os.dup(sys.stdout.fileno()), "w")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())

    def reply(message: dict[str, Any]) -> None:
        protocol.write(json.dumps(message, default=float) + "\n")
        protocol.flush()

    try:
        data = Inputs.load(inputs)
        runner = RUNNERS[engine]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            runner(data.head(WARM_UP_CUSTOMERS), model)
        reply({"ready": True})
        run: EngineRun | None = None
        for line in sys.stdin:
            if line.strip() == "run":
                run = None  # the previous run's outputs are not part of the next one's memory
                record, run = _timed_run(runner, data, model)
                reply(record)
            elif line.strip() == "finish" and run is not None:
                if save_predictions:
                    np.savez(output / f"{engine}.npz", **run.predictions)
                reply(
                    {
                        "versions": _versions(),
                        "customers": int(data.x.size),
                        "params": run.params,
                        "info": run.info,
                        "non_finite_predictions": {
                            k: int((~np.isfinite(v)).sum()) for k, v in run.predictions.items()
                        },
                    }
                )
                break
    except Exception:
        reply({"error": traceback.format_exc()})
        return 1
    return 0


def _worker_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(SCRIPTS_DIR), env.get("PYTHONPATH", "")) if p
    )
    return env


class Worker:
    """A fresh process for one engine: it loads the inputs and warms up once, then times runs on
    request, so that the engines' runs can be interleaved (machine noise hits them alike)."""

    def __init__(
        self, engine: str, model: str, inputs: Path, work: Path, *, save_predictions: bool
    ) -> None:
        self.engine = engine
        self.runs: list[dict[str, Any]] = []
        self.error: str | None = None
        command = [
            sys.executable, str(Path(__file__).resolve()), "--worker", engine,
            "--purchase-model", model, "--inputs", str(inputs), "--worker-output", str(work),
        ]  # fmt: skip
        if save_predictions:
            command.append("--save-predictions")
        self.process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=_worker_env()
        )

    def _ask(self, command: str | None) -> dict[str, Any] | None:
        assert self.process.stdin is not None and self.process.stdout is not None
        if self.error is not None:
            return None
        if command is not None:
            self.process.stdin.write(command + "\n")
            self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            self.error = f"worker exited with code {self.process.wait()}"
        else:
            answer = json.loads(line)
            self.error = answer.get("error")
            if self.error is None:
                return answer
        log(f"  {self.engine} FAILED:\n{self.error}")
        return None

    def wait_ready(self) -> None:
        self._ask(None)

    def run(self, number: int, repeats: int) -> None:
        record = self._ask("run")
        if record is not None:
            self.runs.append(record)
            above = record["peak_rss_mb"] - record["rss_before_run_mb"]
            log(
                f"  {self.engine} run {number}/{repeats}: {record['seconds']:.2f} s "
                f"(peak RSS {record['peak_rss_mb']:,.0f} MB, {above:,.0f} MB above the "
                f"{record['rss_before_run_mb']:,.0f} MB before the run; load average "
                f"{record['load_average_1min_before']:.2f})"
            )

    def finish(self) -> dict[str, Any]:
        final = self._ask("finish") if self.runs else None
        if self.process.stdin is not None:
            self.process.stdin.close()
        self.process.wait()
        if final is None:
            return {"engine": self.engine, "error": self.error or "no run"}
        seconds = [r["seconds"] for r in self.runs]
        return {
            "engine": self.engine,
            **final,
            "repeats": len(self.runs),
            "seconds": seconds,
            "median_seconds": statistics.median(seconds),
            "first_run_seconds": seconds[0],
            "stages_median_seconds": {
                k: statistics.median(r["stages"][k] for r in self.runs)
                for k in self.runs[0]["stages"]
            },
            "peak_rss_mb": [r["peak_rss_mb"] for r in self.runs],
            "rss_before_run_mb": [r["rss_before_run_mb"] for r in self.runs],
            "memory_method": self.runs[0]["memory_method"],
            "load_average_1min_before": [r["load_average_1min_before"] for r in self.runs],
            "warnings": sorted({w for r in self.runs for w in r["warnings"]}),
        }


def run_engines(
    engines: dict[str, int], model: str, inputs: Path, work: Path, *, save_predictions: bool
) -> dict[str, dict[str, Any]]:
    """Runs engine -> repeats, round-robin: run i of every engine before run i + 1 of any."""
    log(f"starting {', '.join(engines)} on {model} (fresh processes, untimed warm-up) ...")
    workers = {
        e: Worker(e, model, inputs, work, save_predictions=save_predictions) for e in engines
    }
    for w in workers.values():
        w.wait_ready()
    for i in range(max(engines.values())):
        for engine, repeats in engines.items():
            if i < repeats:
                workers[engine].run(i + 1, repeats)
    return {engine: w.finish() for engine, w in workers.items()}


# --------------------------------------------------------------------------------------------
# Comparisons


def relative_difference(value: float, reference: float) -> float:
    return (value - reference) / abs(reference)


def log_likelihoods(
    data: Inputs, model: str, params: dict[str, dict[str, float]]
) -> dict[str, float]:
    """Our log-likelihoods at an engine's estimates, summed over customers."""
    repeat = data.x > 0
    return {
        "purchase": purchase.MODULES[model].log_likelihood(
            purchase_params(model, params[model]), data.x, data.t_x, data.T
        ),
        "gamma_gamma": gamma_gamma.log_likelihood(
            clv.GammaGammaParams(**params["gamma_gamma"]), data.x[repeat], data.m[repeat]
        ),
    }


def our_clv(
    data: Inputs, model: str, params: dict[str, dict[str, float]], annual_rate: float
) -> FloatArray:
    """Every customer's CLV by our formula at the given estimates and annual discount rate."""
    return clv.customer_lifetime_value(
        purchase_params(model, params[model]), clv.GammaGammaParams(**params["gamma_gamma"]),
        data.x, data.t_x, data.T, data.m, horizon_days=HORIZON_DAYS, margin=MARGIN,
        annual_discount_rate=annual_rate,
    )  # fmt: skip


def relative_differences(values: FloatArray, reference: FloatArray) -> dict[str, float | None]:
    """Median and maximum of |values / reference - 1| over the customers where both are finite
    and the reference is not 0."""
    ok = np.isfinite(values) & np.isfinite(reference) & (reference != 0)
    if not np.any(ok):
        return {"median": None, "max": None}
    diff = np.abs(values[ok] - reference[ok]) / np.abs(reference[ok])
    return {"median": float(np.median(diff)), "max": float(np.max(diff))}


def compare(
    data: Inputs, model: str, results: dict[str, dict[str, Any]], work: Path,
    truth: dict[str, Any],
) -> dict[str, Any]:  # fmt: skip
    ok = {k: v for k, v in results.items() if "error" not in v}
    out: dict[str, Any] = {"log_likelihood": {}, "references": {}, "truth": {}}
    for engine, result in ok.items():
        out["log_likelihood"][engine] = log_likelihoods(data, model, result["params"])
    if "ours" not in ok:
        return out
    ours = ok["ours"]
    fitted = ((model, purchase_names(model)), ("gamma_gamma", GG_NAMES))
    # The generator's truth is BG/NBD's and Gamma-Gamma's: another purchase model has none.
    for name, names in fitted:
        if name not in truth:
            continue
        out["truth"][name] = {
            n: {
                "truth": truth[name][n],
                "ours": ours["params"][name][n],
                "rel_diff": relative_difference(ours["params"][name][n], truth[name][n]),
            }
            for n in names
        }
    our_saved = work / "ours.npz"
    for engine in REFERENCES:
        if engine not in ok:
            continue
        ref = ok[engine]
        entry: dict[str, Any] = {
            "speedup": ref["median_seconds"] / ours["median_seconds"],
            "params": {
                name: {
                    n: {
                        "ours": ours["params"][name][n],
                        "reference": ref["params"][name][n],
                        "rel_diff": relative_difference(
                            ours["params"][name][n], ref["params"][name][n]
                        ),
                    }
                    for n in names
                }
                for name, names in fitted
            },
            "log_likelihood_minus_ours": {
                m: out["log_likelihood"][engine][m] - out["log_likelihood"]["ours"][m]
                for m in ("purchase", "gamma_gamma")
            },
        }
        saved = work / f"{engine}.npz"
        if saved.is_file() and our_saved.is_file():
            with np.load(saved) as theirs, np.load(our_saved) as mine:
                reference = theirs["clv"]
                entry["clv"] = {
                    # As run: our estimates, our discounting (365-day years).
                    "as_run": relative_differences(mine["clv"], reference),
                    # Our estimates, the reference's discount factors: parameter differences.
                    "same_discounting": relative_differences(
                        our_clv(data, model, ours["params"], MATCHED_ANNUAL_RATE), reference
                    ),
                    # The reference's estimates and discount factors: numerics only.
                    "same_parameters_and_discounting": relative_differences(
                        our_clv(data, model, ref["params"], MATCHED_ANNUAL_RATE), reference
                    ),
                    # Over the finite values (lifetimes' Pareto/NBD CLV is NaN for some).
                    "median_clv": {"ours": float(np.nanmedian(mine["clv"])),
                                   "reference": float(np.nanmedian(reference))},
                }  # fmt: skip
        out["references"][engine] = entry
    return out


# --------------------------------------------------------------------------------------------
# Model selection (clv_model: auto), as the warehouse's four CLV Python models run it

# int_clv_inputs_compressed and int_clv_repeat_spend_compressed from the raw orders, for both
# fit purposes: 'scoring' up to the as-of date, 'holdout' up to HOLDOUT_DAYS before it, with
# each customer's repeat purchase days after that calibration end (holdout_y).
SELECTION_CUSTOMERS_SQL = (
    ("create temp table selection_customers as\n" + PURCHASE_DAYS_SQL)
    + """purposes as (
    select 'scoring' as fit_purpose, $as_of::date as calibration_end
    union all
    select 'holdout', $as_of::date - $holdout_days
),
customers as (
    select
        p.fit_purpose,
        count(*) filter (where d.purchase_day <= p.calibration_end) - 1 as x,
        max(d.purchase_day) filter (where d.purchase_day <= p.calibration_end)
            - min(d.purchase_day) as t_x,
        p.calibration_end - min(d.purchase_day) as "T",
        sum(d.day_total) filter (where d.purchase_day <= p.calibration_end)
            - arg_min(d.day_total, d.purchase_day) as repeat_total,
        count(*) filter (where d.purchase_day > p.calibration_end) as holdout_y
    from purchase_days as d cross join purposes as p
    group by p.fit_purpose, p.calibration_end, d.customer_id
    having min(d.purchase_day) <= p.calibration_end
)
select
    fit_purpose,
    x,
    t_x,
    "T",
    case when x > 0 then repeat_total / x end as m,
    case when fit_purpose = 'holdout' then holdout_y end as holdout_y
from customers
"""
)
SELECTION_INPUTS_SQL = """
select
    fit_purpose, '' as covariates, x as repeat_purchase_days, t_x as recency_days,
    "T" as age_days, count(*) as customer_count, avg(m) as avg_repeat_spend,
    sum(holdout_y) as holdout_purchase_days,
    sum(holdout_y * holdout_y) as holdout_purchase_days_squared
from selection_customers
group by all
"""
SELECTION_SPEND_SQL = """
select
    fit_purpose, x as repeat_purchase_days, m as avg_repeat_spend, count(*) as customer_count
from selection_customers
where x > 0
group by all
"""
SELECTION_SETTINGS = {
    "horizon_days": 365, "annual_discount_rate": ANNUAL_DISCOUNT_RATE, "interval": INTERVAL,
    "interval_method": "delta", "draws": 200, "holdout_days": HOLDOUT_DAYS,
}  # fmt: skip
# The warehouse's stages: its models int_clv_holdout_models_fitted,
# int_clv_holdout_combinations_scored, int_clv_models_fitted (the choice) and, after the
# selection, int_clv_combinations_scored.
SELECTION_STAGES = ("holdout fits", "holdout scoring", "scoring fits and choice")


def bench_selection(raw_dir: Path, repeats: int) -> dict[str, Any]:
    """Times cvm.clv.warehouse's fit_models / score_fits on both fit purposes, as the warehouse
    calls them with clv_model auto (its defaults: 182 holdout days, delta interval), in this
    process; inputs are prepared in DuckDB first (not timed)."""
    from cvm.clv.warehouse import fit_models, score_fits

    manifest = json.loads((raw_dir / "generator_manifest.json").read_text())
    log(f"model selection: preparing the compressed inputs of both fit purposes ({raw_dir}) ...")
    with duckdb.connect() as con:
        con.execute(
            SELECTION_CUSTOMERS_SQL,
            {"orders": str(raw_dir / "orders.parquet"), "as_of": manifest["end_date"],
             "holdout_days": HOLDOUT_DAYS},
        )  # fmt: skip
        inputs = con.execute(SELECTION_INPUTS_SQL).df()
        repeat_spend = con.execute(SELECTION_SPEND_SQL).df()
    runs = []
    for i in range(repeats):
        gc.collect()
        clock = Stopwatch()
        holdout = fit_models(
            inputs, repeat_spend, purpose="holdout", interval=INTERVAL, min_repeat_customers=50
        )
        clock.lap("holdout fits")
        holdout_scores = score_fits(
            inputs[inputs["fit_purpose"] == "holdout"], holdout, **SELECTION_SETTINGS
        )
        clock.lap("holdout scoring")
        scoring = fit_models(
            inputs, repeat_spend, purpose="scoring", interval=INTERVAL, min_repeat_customers=50,
            holdout_scores=holdout_scores,
        )  # fmt: skip
        clock.lap("scoring fits and choice")
        score_fits(inputs[inputs["fit_purpose"] == "scoring"], scoring, **SELECTION_SETTINGS)
        clock.lap("scoring with the chosen model")
        selection = sum(clock.stages[k] for k in SELECTION_STAGES)
        runs.append({"selection_seconds": selection, "stages": clock.stages})
        log(f"  selection run {i + 1}/{repeats}: {selection:.2f} s ({clock.stages})")
    models = scoring.drop_duplicates("model").set_index("model")
    fit_seconds = {
        purpose: frame.drop_duplicates("model").set_index("model")["fit_seconds"].to_dict()
        for purpose, frame in (("holdout", holdout), ("scoring", scoring))
    }
    rows = inputs.groupby("fit_purpose")["customer_count"].agg(["size", "sum"])
    return {
        "rows": {k: int(v) for k, v in rows["size"].items()},
        "customers": {k: int(v) for k, v in rows["sum"].items()},
        "repeats": repeats,
        "selection_seconds": [r["selection_seconds"] for r in runs],
        "median_selection_seconds": statistics.median(r["selection_seconds"] for r in runs),
        "stages_median_seconds": {
            k: statistics.median(r["stages"][k] for r in runs) for k in runs[0]["stages"]
        },
        "fit_seconds_last_run": fit_seconds,
        "chosen": str(models.index[models["chosen"].astype(bool)][0]),
        "fit_status": models["fit_status"].to_dict(),
        "holdout_rmse": models["holdout_rmse"].to_dict(),
        "choice_reason": models["choice_reason"].to_dict(),
    }


def _selection_report(found: dict[str, Any]) -> list[str]:
    stages = found["stages_median_seconds"]
    lines = [
        "",
        f"## Model selection (clv_model: auto) at {found['customers']['scoring']:,} buyers",
        "",
        f"What the warehouse's CLV Python models do with auto, on {found['rows']['holdout']:,} "
        f"holdout and {found['rows']['scoring']:,} scoring combinations (holdout "
        f"{HOLDOUT_DAYS} days): three purchase models and Gamma-Gamma fitted per purpose, every "
        "holdout combination scored by each model, the holdout errors and the choice. Median of "
        f"{found['repeats']} runs (criterion: under 30 s):",
        "",
        "| stage | median s |",
        "|---|---:|",
        *(f"| {k} | {v:.2f} |" for k, v in stages.items() if k in SELECTION_STAGES),
        f"| **model selection** | **{found['median_selection_seconds']:.2f}** |",
        f"| then: scoring with the chosen model | {stages['scoring with the chosen model']:.2f} |",
        "",
        "| model | holdout fit s | scoring fit s | fit status | holdout RMSE | chosen |",
        "|---|---:|---:|---|---:|---|",
    ]
    for model, status in found["fit_status"].items():
        seconds = found["fit_seconds_last_run"]
        lines.append(
            f"| {MODEL_LABELS[model]} | {_fmt(seconds['holdout'].get(model))} | "
            f"{_fmt(seconds['scoring'].get(model))} | {status} | "
            f"{_fmt(found['holdout_rmse'].get(model), 6)} | "
            f"{'yes' if model == found['chosen'] else ''} |"
        )
    lines += ["", f"Reason: {found['choice_reason'][found['chosen']]}"]
    return lines


# --------------------------------------------------------------------------------------------
# Report


def _fmt(value: float | None, digits: int = 4) -> str:
    return "n/a" if value is None else f"{value:.{digits}g}"


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:+.4f} %"


def _our_breakdown(res: dict[str, Any], label: str) -> str:
    stages, info = res["stages_median_seconds"], res["info"]
    return (
        f"ours (last run): compression to {info['rows_purchase']:,} rows "
        f"{stages['compress']:.2f} s (median); optimiser time inside the fits "
        f"{info['optimiser_seconds']['purchase']:.2f} s {label} "
        f"({info['iterations']['purchase']} iterations: L-BFGS-B on a subsample, then Newton), "
        f"{info['optimiser_seconds']['gamma_gamma']:.2f} s Gamma-Gamma "
        f"({info['iterations']['gamma_gamma']}); the rest of each fit is input checks and "
        "preparation. CLV: scoring every combination with the delta-method interval, then "
        "every customer."
    )


def _acceptance(comparison: dict[str, Any], model: str) -> list[str]:
    """The acceptance criterion in one line: speed against the faster reference, parameters."""
    refs = comparison["references"]
    if not refs:
        return []
    faster = min(refs, key=lambda e: refs[e]["speedup"])  # the reference with the least time
    worst = {
        engine: max(
            abs(p["rel_diff"]) for model in entry["params"].values() for p in model.values()
        )
        for engine, entry in refs.items()
    }
    return [
        "",
        f"Ours is {refs[faster]['speedup']:.2f} times as fast as the faster reference "
        f"({faster}, median against median; criterion: at least {SPEEDUP_CRITERION[model]}). "
        "Largest parameter "
        "difference: "
        + ", ".join(f"{_pct(v).lstrip('+')} vs {e}" for e, v in worst.items())
        + " (criterion: within 0.1 %).",
    ]


def report(out: dict[str, Any]) -> str:
    main, settings = out["main"], out["settings"]
    facts, results, comparison = main["data"], main["engines"], main["comparison"]
    model = settings["purchase_model"]
    label = MODEL_LABELS[model]
    lines = [
        f"## CLV engines ({label} + Gamma-Gamma) on {facts['generated_customers']:,} generated "
        "customers",
        "",
        f"As of {facts['as_of_date']}: {facts['purchase_orders']:,} non-cancelled orders of "
        f"{facts['orders']:,}; {facts['buyers']:,} buyers, {facts['repeat_buyers']:,} repeat "
        f"buyers, {facts['distinct_x_tx_T']:,} distinct (x, t_x, T), "
        f"{facts['distinct_x_m']:,} distinct (x, m), max x {facts['max_x']}. DuckDB summary "
        f"(shared input, not timed below): {facts['summary_seconds']:.1f} s.",
        f"{settings['cpu_count']} cores, Python {settings['python']}; "
        + ", ".join(f"{k} {v}" for k, v in settings["versions"].items() if v),
        "",
        "| engine | runs | median s | 1st run s | median / ours' median | compress s "
        f"| {label} fit s | Gamma-Gamma fit s | CLV s | peak RSS MB (before run) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for engine, res in results.items():
        if "error" in res:
            lines.append(f"| {engine} | failed: {res['error'].strip().splitlines()[-1]} |")
            continue
        stages = res["stages_median_seconds"]
        speedup = comparison["references"].get(engine, {}).get("speedup")
        compress = f"{stages['compress']:.2f}" if "compress" in stages else "-"
        lines.append(
            f"| {engine} | {res['repeats']} | {res['median_seconds']:.2f} | "
            f"{res['first_run_seconds']:.2f} | "
            f"{'-' if engine == 'ours' else _fmt(speedup, 3) + 'x'} | "
            f"{compress} | "
            f"{stages['fit_purchase']:.2f} | {stages['fit_gamma_gamma']:.2f} | "
            f"{stages['clv']:.2f} | {statistics.median(res['peak_rss_mb']):,.0f} "
            f"({statistics.median(res['rss_before_run_mb']):,.0f}) |"
        )
    lines += _acceptance(comparison, model)
    if "ours" in results and "error" not in results["ours"]:
        lines += ["", _our_breakdown(results["ours"], label)]
    loads = [v for r in results.values() for v in r.get("load_average_1min_before", [])]
    if loads:
        lines.append(
            f"1-minute load average before the runs: {min(loads):.2f} to {max(loads):.2f}."
        )

    refs = [e for e in REFERENCES if e in comparison["references"]]
    ours_params = results.get("ours", {}).get("params")
    if ours_params:
        header = "| model | parameter | truth | ours | ours vs truth |"
        rule = "|---|---|---:|---:|---:|"
        for engine in refs:
            header += f" {engine} | ours vs {engine} |"
            rule += "---:|---:|"
        lines += [
            "",
            f"Parameters ({label} rates in days; relative differences; the generator's truth is "
            "BG/NBD's):",
            "",
            header,
            rule,
        ]
        for name, values in ours_params.items():
            for n, value in values.items():
                t = comparison["truth"].get(name, {}).get(n)
                row = (
                    f"| {name} | {n} | {t['truth']:g} | {value:.6g} | {_pct(t['rel_diff'])} |"
                    if t else f"| {name} | {n} | - | {value:.6g} | - |"
                )  # fmt: skip
                for engine in refs:
                    p = comparison["references"][engine]["params"][name][n]
                    row += f" {p['reference']:.6g} | {_pct(p['rel_diff'])} |"
                lines.append(row)
    if comparison["log_likelihood"]:
        lines += [
            "",
            "Log-likelihood at each engine's estimates (our likelihood, summed over customers):",
            "",
            f"| engine | {label} | minus ours | Gamma-Gamma | minus ours |",
            "|---|---:|---:|---:|---:|",
        ]
        base = comparison["log_likelihood"].get("ours")
        for engine, ll in comparison["log_likelihood"].items():
            d_bg = ll["purchase"] - base["purchase"] if base else None
            d_gg = ll["gamma_gamma"] - base["gamma_gamma"] if base else None
            lines.append(
                f"| {engine} | {ll['purchase']:.6f} | {_fmt(d_bg, 3)} | {ll['gamma_gamma']:.6f} "
                f"| {_fmt(d_gg, 3)} |"
            )
    rows = [e for e in refs if "clv" in comparison["references"][e]]
    if rows:
        lines += [
            "",
            f"CLV per customer ({CLV_MONTHS} x {DAYS_PER_MONTH} days, margin {MARGIN:g}, "
            f"{ANNUAL_DISCOUNT_RATE:.0%} a year), ours vs each reference, relative difference "
            "median / max over customers: as run (our estimates, our discounting); with the "
            f"reference's discount factors (our formula at annual rate {MATCHED_ANNUAL_RATE:.5%}: "
            "what is left are the parameter differences); at the reference's estimates as well "
            "(numerics only). Non-finite values in the reference:",
            "",
            "| engine | as run | same discounting | same estimates and discounting "
            "| median CLV ours / reference | non-finite |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for engine in rows:
            c = comparison["references"][engine]["clv"]
            cells = [
                f"{_fmt(c[k]['median'], 2)} / {_fmt(c[k]['max'], 2)}"
                for k in ("as_run", "same_discounting", "same_parameters_and_discounting")
            ]
            bad = sum(results[engine]["non_finite_predictions"].values())
            lines.append(
                f"| {engine} | " + " | ".join(cells) + f" | {c['median_clv']['ours']:.4f} / "
                f"{c['median_clv']['reference']:.4f} | {bad:,} |"
            )
    for engine, res in results.items():
        for w in res.get("warnings", []):
            lines.append(f"\nwarning ({engine}): {w}")

    if "selection" in main:
        lines += _selection_report(main["selection"])
    large = out.get("large")
    if large:
        res = large["engine"]
        lines += ["", f"## Our engine alone on {large['data']['generated_customers']:,} customers"]
        if "error" in res:
            lines.append(f"failed: {res['error'].strip().splitlines()[-1]}")
        else:
            stages = res["stages_median_seconds"]
            above = np.subtract(res["peak_rss_mb"], res["rss_before_run_mb"])
            lines += [
                "",
                f"{large['data']['buyers']:,} buyers, {large['data']['repeat_buyers']:,} repeat, "
                f"{res['info']['rows_purchase']:,} distinct (x, t_x, T); DuckDB summary "
                f"{large['data']['summary_seconds']:.1f} s (not timed).",
                "",
                f"| runs | median s | compress s | {label} fit s | Gamma-Gamma fit s | CLV s "
                "| peak RSS MB | RSS before run MB | peak above it MB |",
                "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
                f"| {res['repeats']} | {res['median_seconds']:.2f} | {stages['compress']:.2f} | "
                f"{stages['fit_purchase']:.2f} | {stages['fit_gamma_gamma']:.2f} | "
                f"{stages['clv']:.2f} | {statistics.median(res['peak_rss_mb']):,.0f} | "
                f"{statistics.median(res['rss_before_run_mb']):,.0f} | "
                f"{statistics.median(above):,.0f} |",
                "",
                f"Memory: {res['memory_method']}.",
                _our_breakdown(res, label),
            ]
            truth = large["truth"]
            lines.append(
                "Recovery vs truth: "
                + ", ".join(
                    f"{n} {v['ours']:.4g} ({_pct(v['rel_diff'])})"
                    for model in truth.values()
                    for n, v in model.items()
                )
            )
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# Main


def bench(
    customers: int, engines: list[str], args: argparse.Namespace, work: Path, *, compare_all: bool
) -> dict[str, Any]:
    model = args.purchase_model
    raw_dir = ensure_data(args.data_dir, customers)
    log(f"summarising {raw_dir} in DuckDB ...")
    data, facts = summarise(raw_dir)
    log(f"  {facts['buyers']:,} buyers, {facts['summary_seconds']:.1f} s")
    inputs = work / "inputs.npz"
    data.save(inputs)
    results = run_engines(
        {e: args.repeats if e == "ours" else args.reference_repeats for e in engines},
        model,
        inputs,
        work,
        save_predictions=compare_all and len(engines) > 1,
    )
    inputs.unlink()
    log("comparing ...")
    comparison = compare(data, model, results, work, facts["truth"])
    found: dict[str, Any] = {"data": facts, "engines": results, "comparison": comparison}
    if compare_all and args.selection:
        found["selection"] = bench_selection(raw_dir, args.repeats)
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--customers", type=int, default=1_000_000, help="size compared across engines"
    )
    parser.add_argument(
        "--large-customers", type=int, default=10_000_000, help="our engine alone; 0 to skip"
    )
    parser.add_argument(
        "--data-dir", type=Path, default=DEFAULT_DATA_DIR,
        help="generated data in <dir>/g<size> (e.g. g1m), generated when missing "
        "(default build/benchmark/clv-data)",
    )  # fmt: skip
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of our engine")
    parser.add_argument(
        "--reference-repeats", type=int, default=None, help="timed runs of each reference "
        "(default: --repeats)"
    )  # fmt: skip
    parser.add_argument("--engines", nargs="+", choices=ENGINES, default=list(ENGINES))
    parser.add_argument(
        "--purchase-model", choices=purchase.MODELS, default="bg_nbd",
        help="the purchase model every engine fits (default bg_nbd)",
    )  # fmt: skip
    parser.add_argument(
        "--selection", action="store_true",
        help="also time the warehouse's model selection (clv_model: auto) at --customers",
    )  # fmt: skip
    parser.add_argument(
        "--json", type=Path, default=None,
        help="default build/benchmark/clv-<purchase model>.json",
    )  # fmt: skip
    parser.add_argument("--worker", choices=ENGINES, help=argparse.SUPPRESS)
    parser.add_argument("--inputs", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--worker-output", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--save-predictions", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return worker(
            args.worker, args.purchase_model, args.inputs, args.worker_output,
            args.save_predictions,
        )  # fmt: skip
    if args.json is None:
        args.json = DEFAULT_JSON_DIR / f"clv-{args.purchase_model}.json"
    if args.reference_repeats is None:
        args.reference_repeats = args.repeats
    if args.repeats < 1 or args.reference_repeats < 1:
        parser.error("--repeats and --reference-repeats must be >= 1")
    args.data_dir = args.data_dir.resolve()

    out: dict[str, Any] = {
        "settings": {
            "customers": args.customers,
            "large_customers": args.large_customers,
            "repeats": args.repeats,
            "reference_repeats": args.reference_repeats,
            "engines": args.engines,
            "purchase_model": args.purchase_model,
            "horizon_days": HORIZON_DAYS,
            "clv": {
                "months": CLV_MONTHS,
                "days_per_month": DAYS_PER_MONTH,
                "margin": MARGIN,
                "annual_discount_rate": ANNUAL_DISCOUNT_RATE,
                "monthly_discount_rate": MONTHLY_DISCOUNT_RATE,
                "matched_annual_rate": MATCHED_ANNUAL_RATE,
                "interval": INTERVAL,
            },
            "cpu_count": os.cpu_count(),
            "python": platform.python_version(),
            "versions": _versions(),
        }
    }
    with tempfile.TemporaryDirectory(prefix="clv-benchmark-") as tmp:
        work = Path(tmp)
        main_dir = work / "main"
        main_dir.mkdir()
        out["main"] = bench(args.customers, args.engines, args, main_dir, compare_all=True)
        if args.large_customers > 0:
            large_dir = work / "large"
            large_dir.mkdir()
            large = bench(args.large_customers, ["ours"], args, large_dir, compare_all=False)
            out["large"] = {
                "data": large["data"],
                "engine": large["engines"]["ours"],
                "truth": large["comparison"].get("truth", {}),
            }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(out, indent=2, default=float))
    print(report(out))
    log(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
