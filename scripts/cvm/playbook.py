"""The retention playbook's contact plan: which customers to contact within a budget.

A 0/1 knapsack: choose the customers that maximise the sum of their expected net returns
(``priority_score`` of ``int_customer_strategies_chosen``, as in ``next_best_actions``) with
the sum of their contact costs within the budget. :func:`plan_contacts` solves it exactly,
costs in whole cents so that the constraint is exact: the greedy selection (by return per cost)
gives a lower bound, reduced-cost fixing with the LP relaxation's multiplier then decides every
item whose exclusion (or inclusion) provably costs more than the gap to the LP bound, and the
small core that is left is solved by dynamic programming over the budget. Only if that table
would be too large is the whole problem given to HiGHS (``scipy.optimize.milp``, zero relative
gap); if HiGHS stops at its time limit, the plan is the better of its best solution and the
greedy one and carries a proven upper bound on the optimum, so the optimality gap is known.
:func:`contact_plan` is what the dbt Python model ``int_contact_plan_optimised`` calls."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.optimize import Bounds, LinearConstraint, milp

from cvm.frames import in_engine, to_engine, to_pandas

FloatArray = np.ndarray
IntArray = np.ndarray
BoolArray = np.ndarray


@dataclass(frozen=True)
class Plan:
    """A knapsack solution: which items, their total value, and a bound on the optimum."""

    selected: BoolArray
    objective: float
    upper_bound: float  # no feasible selection is worth more (equal to objective when optimal)
    method: str  # nothing_to_do, everything_fits, exact_dp, milp_optimal, milp_time_limit, ...
    seconds: float

    @property
    def optimality_gap(self) -> float:
        """How much the optimum can exceed this plan's objective (0 when proven optimal)."""
        return max(0.0, self.upper_bound - self.objective)


def to_cents(amounts: Any) -> IntArray:
    """Currency amounts as whole cents, rounded half away from zero (a decimal such as 1.005,
    which binary floats hold as 1.00499..., counts as the half it was written as)."""
    values = np.asarray(amounts, dtype=float)
    return (np.sign(values) * np.floor(np.abs(values) * 100 + 0.5 + 1e-6)).astype(np.int64)


def greedy_by_ratio(values: FloatArray, costs: IntArray, budget: int) -> BoolArray:
    """Take items by value per cost, highest first, skipping those that no longer fit."""
    values, costs = np.asarray(values, dtype=float), np.asarray(costs, dtype=np.int64)
    selected = np.zeros(len(values), dtype=bool)
    ratio = np.where(costs > 0, values / np.maximum(costs, 1), np.inf)
    spent = 0
    for i in np.argsort(-ratio, kind="stable"):
        if values[i] > 0 and spent + costs[i] <= budget:
            selected[i] = True
            spent += costs[i]
    return selected


def lp_bound(values: FloatArray, costs: IntArray, budget: int) -> float:
    """The LP relaxation's optimum (Dantzig): items by ratio, the last one fractionally."""
    values, costs = np.asarray(values, dtype=float), np.asarray(costs, dtype=np.int64)
    keep = values > 0
    values, costs = values[keep], costs[keep]
    free = costs <= 0
    bound = float(values[free].sum())
    values, costs = values[~free], costs[~free]
    order = np.argsort(-(values / costs), kind="stable")
    cumulative = np.cumsum(costs[order])
    whole = int(np.searchsorted(cumulative, budget, side="right"))
    bound += float(values[order][:whole].sum())
    if whole < len(order):
        left = budget - (int(cumulative[whole - 1]) if whole else 0)
        bound += float(values[order][whole]) * left / float(costs[order][whole])
    return bound


DP_MAX_CELLS = 1_000_000_000  # items x budget units of the dynamic programme (one bit each)


def reduce_by_reduced_costs(
    values: FloatArray, costs: IntArray, budget: int, lower_bound: float
) -> tuple[BoolArray, BoolArray, float]:
    """Reduced-cost fixing with the LP relaxation's multiplier (Dantzig's break ratio).

    For any multiplier lam >= 0 and any feasible selection x, sum(v x) <= lam * budget +
    sum(max(d, 0)) with d = v - lam * c (Lagrangian bound U). An item with d > 0 left out, or
    one with d < 0 taken, caps the selection at U - |d|; when that is below ``lower_bound`` (the
    value of a known feasible selection) no optimal selection does it, so the item is fixed.
    Returns (fixed in, fixed out, U); every optimal selection takes all of the first, none of
    the second. ``costs`` must be positive.
    """
    ratio = values / costs
    order = np.argsort(-ratio, kind="stable")
    cumulative = np.cumsum(costs[order])
    brk = int(np.searchsorted(cumulative, budget, side="right"))
    lam = float(ratio[order][min(brk, len(order) - 1)])
    reduced = values - lam * costs
    upper = lam * budget + float(np.maximum(reduced, 0).sum())
    margin = 1e-9 * max(1.0, abs(lower_bound))
    decided = upper - np.abs(reduced) < lower_bound - margin
    return decided & (reduced > 0), decided & (reduced < 0), upper


def knapsack_dp(values: FloatArray, costs: IntArray, budget: int) -> BoolArray:
    """Exact 0/1 knapsack by dynamic programming over the budget (costs and budget integers,
    divided by their greatest common divisor first). Memory: one bit per item and budget unit."""
    unit = int(np.gcd.reduce(np.append(costs, budget))) or 1
    units, capacity = costs // unit, budget // unit
    best = np.zeros(capacity + 1)  # best[b]: the most value within b units
    took = np.zeros((len(values), (capacity + 8) // 8), dtype=np.uint8)  # packed: item i improved b
    row = np.zeros(capacity + 1, dtype=bool)
    for i, (value, size) in enumerate(zip(values, units, strict=True)):
        if size > capacity:
            continue
        candidate = best[: capacity + 1 - size] + value
        better = candidate > best[size:]
        row[:size] = False
        row[size:] = better
        took[i] = np.packbits(row)
        best[size:] = np.where(better, candidate, best[size:])
    selected = np.zeros(len(values), dtype=bool)
    left = capacity
    for i in range(len(values) - 1, -1, -1):
        if (took[i, left >> 3] >> (7 - (left & 7))) & 1:
            selected[i] = True
            left -= units[i]
    return selected


def plan_contacts(values: Any, costs: Any, budget: int, *, time_limit: float = 60.0) -> Plan:
    """Maximise sum(values[selected]) subject to sum(costs[selected]) <= budget.

    ``costs`` and ``budget`` are whole cents (see :func:`to_cents`); items with a value of
    zero or less are never selected. Exact: reduced-cost fixing around the greedy selection
    leaves a small core, solved by dynamic programming (or, if that table would be too large,
    by HiGHS branch and bound with zero gap, unless it needs more than ``time_limit`` seconds).
    """
    started = time.perf_counter()
    values = np.asarray(values, dtype=float)
    costs = np.asarray(costs, dtype=np.int64)
    if values.shape != costs.shape:
        raise ValueError(f"values and costs differ in shape: {values.shape} vs {costs.shape}")
    if (costs < 0).any():
        raise ValueError("contact costs must not be negative")
    budget = int(budget)
    selected = np.zeros(len(values), dtype=bool)
    useful = (values > 0) & (costs <= budget)
    free = useful & (costs == 0)
    selected[free] = True
    items = np.flatnonzero(useful & ~free)

    def done(method: str, bound: float | None = None) -> Plan:
        objective = float(values[selected].sum())
        return Plan(
            selected,
            objective,
            objective if bound is None else max(bound, objective),
            method,
            time.perf_counter() - started,
        )

    if len(items) == 0:
        return done("nothing_to_do" if not free.any() else "everything_fits")
    if costs[items].sum() <= budget:
        selected[items] = True
        return done("everything_fits")

    v, c = values[items], costs[items]
    greedy = greedy_by_ratio(v, c, budget)
    fixed_in, fixed_out, upper = reduce_by_reduced_costs(v, c, budget, float(v[greedy].sum()))
    core = np.flatnonzero(~fixed_in & ~fixed_out)
    left = budget - int(c[fixed_in].sum())
    base = float(values[free].sum())
    if left >= 0 and len(core) * (left + 1) / max(1, np.gcd.reduce(c[core])) <= DP_MAX_CELLS:
        chosen = np.zeros(len(items), dtype=bool)
        chosen[fixed_in] = True
        chosen[core[knapsack_dp(v[core], c[core], left)]] = True
        selected[items[chosen]] = True
        return done("exact_dp")

    if left < 0:  # cannot happen with exact arithmetic; then solve the whole problem
        fixed_in[:], core, left = False, np.arange(len(items)), budget
    # The core is too large for the table: HiGHS branch and bound on it.
    result = milp(
        c=-v[core],
        integrality=np.ones(len(core)),
        bounds=Bounds(0, 1),
        constraints=LinearConstraint(c[core].astype(float)[np.newaxis, :], -np.inf, left),
        options={"time_limit": float(time_limit), "mip_rel_gap": 0.0, "presolve": True},
    )
    fixed_value = float(v[fixed_in].sum())
    if result.status == 0:
        chosen = fixed_in.copy()
        chosen[core[result.x > 0.5]] = True
        if c[chosen].sum() > budget:  # never seen; a guard against a tolerance slip
            raise RuntimeError("the MILP solution exceeds the budget")
        selected[items[chosen]] = True
        return done("milp_optimal")
    # Time limit (or another stop): the better of the solver's incumbent and the greedy plan,
    # with the tighter of the solver's dual bound and the LP relaxation as the bound.
    bound = upper
    dual = getattr(result, "mip_dual_bound", None)
    if dual is not None and math.isfinite(dual):
        bound = min(bound, fixed_value - float(dual))
    if result.x is not None:
        incumbent = fixed_in.copy()
        incumbent[core[result.x > 0.5]] = True
        if c[incumbent].sum() <= budget and v[incumbent].sum() >= v[greedy].sum():
            selected[items[incumbent]] = True
            return done("milp_time_limit", base + bound)
    selected[items[greedy]] = True
    return done("greedy_fallback", base + bound)


# Who may be in the plan (the same rule in SQL for the engine and in pandas below).
CANDIDATES = "not is_do_not_contact and priority_score > 0"
CANDIDATE_COLUMNS = ("customer_id", "is_do_not_contact", "priority_score", "contact_cost")
PLAN_COLUMNS = {  # string dtypes: an empty plan still reaches the engine as text columns
    "customer_id": "string",
    "is_selected": "bool",
    "priority_score": "float64",
    "contact_cost": "float64",
    "contact_budget": "float64",
    "plan_method": "string",
    "plan_expected_return": "float64",
    "plan_upper_bound": "float64",
    "optimality_gap": "float64",
    "solve_seconds": "float64",
}


def contact_plan(
    session: Any, actions: Any, *, budget: Any, time_limit: Any
) -> Any:  # fmt: skip
    """One row per contact candidate of ``int_customer_strategies_chosen`` (may be contacted,
    positive priority score) with ``is_selected`` and the plan's method, objective, bound and time.
    ``budget`` in currency units; settings may arrive as strings (rendered from vars)."""
    # Only candidates leave the engine: a customer table of 10M rows never reaches pandas.
    frame = to_pandas(in_engine(actions, CANDIDATE_COLUMNS, CANDIDATES))
    budget_value = float(budget)
    candidates = frame[~frame["is_do_not_contact"].astype(bool) & (frame["priority_score"] > 0)]
    # In customer order: among equally good plans (customers of equal return and cost) the
    # solver's choice follows the input order, which the engine does not fix.
    candidates = candidates.sort_values("customer_id", kind="stable")
    plan = plan_contacts(
        candidates["priority_score"].to_numpy(dtype=float),
        to_cents(candidates["contact_cost"].to_numpy(dtype=float)),
        int(to_cents([budget_value])[0]),
        time_limit=float(time_limit),
    )
    out = pd.DataFrame(
        {
            "customer_id": candidates["customer_id"].astype(str).to_numpy(),
            "is_selected": plan.selected,
            "priority_score": candidates["priority_score"].to_numpy(dtype=float),
            "contact_cost": candidates["contact_cost"].to_numpy(dtype=float),
        }
    )
    out["contact_budget"] = budget_value
    out["plan_method"] = plan.method
    out["plan_expected_return"] = plan.objective
    out["plan_upper_bound"] = plan.upper_bound
    out["optimality_gap"] = plan.optimality_gap
    out["solve_seconds"] = plan.seconds
    return to_engine(out.astype(PLAN_COLUMNS), session)
