"""The contact plan against an exact solver of the test's own: a plain dynamic programme over
integer cents, checked against brute force, then on thousands of candidates, at 50,000, and on
the plans dbt builds. Nothing of the reference comes from cvm.playbook, so a bug there (in its
cents, its reductions or its dynamic programme) cannot hide in the expected values."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from cvm import playbook
from daily_source import PUBLISHED_AS_OF
from dbt_project import copy_warehouse, query, run_dbt
from test_playbook import SEEDS, brute_force, random_case

# What the code under test reports when it proved its plan optimal.
PROVEN_OPTIMAL = {"nothing_to_do", "everything_fits", "exact_dp", "milp_optimal"}
# Contact costs of the playbook's strategies, in cents (the few distinct costs real plans have).
PLAYBOOK_COSTS = [20, 50, 100, 200, 250, 300, 600]


def cents(amount: Any) -> int:
    """An amount as whole cents, rounded half away from zero as written (str of a float is its
    shortest repr, so 1.005 counts as the half it was written as)."""
    return int((Decimal(str(amount)) * 100).to_integral_value(rounding=ROUND_HALF_UP))


def best_within_budget(values: np.ndarray, costs: np.ndarray, budget: int) -> np.ndarray:
    """best[b]: the most total value of any set of items costing at most b, for b = 0..budget.

    Hand-written: no library offers a 0/1 knapsack DP over float values and integer costs.
    One row of budget + 1 floats; the chosen set is not reconstructed (a plan under test that
    is feasible and worth best[budget] is itself an optimal set).
    """
    best = np.zeros(budget + 1)
    for value, cost in zip(values.tolist(), costs.tolist(), strict=True):
        if value > 0 and cost <= budget:
            with_item = best[: budget + 1 - cost] + value  # a copy: each item is taken once
            np.maximum(best[cost:], with_item, out=best[cost:])
    return best


def greedy_total(values: np.ndarray, costs: np.ndarray, budget: int) -> float:
    """What taking items by value per cent, best first, skipping those that no longer fit,
    is worth: an instance where this is below the optimum can tell an exact plan from greedy."""
    ratio = np.divide(values, costs, out=np.full(len(values), np.inf), where=costs > 0)
    spent, total = 0, 0.0
    for i in np.argsort(-ratio, kind="stable"):
        if values[i] > 0 and spent + costs[i] <= budget:
            spent += int(costs[i])
            total += float(values[i])
    return total


def assert_greedy_misses(optimum: float, greedy: float) -> None:
    """Greedy is worth less than the optimum by more than the comparisons' tolerance."""
    assert greedy < optimum
    assert greedy != pytest.approx(optimum, rel=1e-9)


def test_cents_round_half_away_from_zero_as_written():
    written = {1.005: 101, 0.015: 2, -0.015: -2, 0.2: 20, 2: 200, "1234.56": 123_456}
    assert {amount: cents(amount) for amount in written} == written
    assert cents(Decimal("6.00")) == 600


@pytest.mark.parametrize("seed", SEEDS)
def test_the_reference_equals_brute_force(seed):
    """At the case's budget, at none, at a third of it and with room for everything."""
    values, costs, budget = random_case(seed)
    budgets = [0, budget // 3, budget, int(costs.sum())]
    best = best_within_budget(values, costs, max(budgets))
    for b in budgets:
        assert best[b] == pytest.approx(brute_force(values, costs, b), rel=1e-12, abs=1e-12)


def large_case(seed: int, playbook_costs: bool, share: float) -> tuple[np.ndarray, np.ndarray, int]:
    """3,000 candidates, some worth nothing and (with arbitrary costs) a few free, and a budget
    of ``share`` of what they would all cost."""
    rng = np.random.default_rng(seed)
    n = 3_000
    costs = rng.choice(PLAYBOOK_COSTS, n) if playbook_costs else rng.integers(0, 1_000, n)
    values = np.round(rng.gamma(1.2, 15.0, n) - 2.0, 6)
    return values, costs.astype(np.int64), int(share * costs.sum())


LARGE_CASES = [
    (seed, playbook_costs, share)
    for seed, (playbook_costs, share) in enumerate(
        [(True, 0.02), (True, 0.1), (True, 0.3), (False, 0.02), (False, 0.1), (False, 0.3)]
    )
]


@pytest.mark.parametrize("solver", ["dp", "milp"])
@pytest.mark.parametrize(("seed", "playbook_costs", "share"), LARGE_CASES)
def test_plans_of_thousands_equal_the_reference(seed, playbook_costs, share, solver, monkeypatch):
    """Exact on both of the plan's paths: its own dynamic programme, and HiGHS (taken when
    that programme's table would be too large)."""
    if solver == "milp":
        monkeypatch.setattr(playbook, "DP_MAX_CELLS", 0)
    values, costs, budget = large_case(seed, playbook_costs, share)
    optimum = best_within_budget(values, costs, budget)[budget]
    assert_greedy_misses(optimum, greedy_total(values, costs, budget))
    plan = playbook.plan_contacts(values, costs, budget)
    assert plan.method == {"dp": "exact_dp", "milp": "milp_optimal"}[solver]
    assert costs[plan.selected].sum() <= budget
    assert float(values[plan.selected].sum()) == pytest.approx(optimum, rel=1e-9)
    assert plan.objective == pytest.approx(optimum, rel=1e-9)
    assert plan.optimality_gap == 0
    assert plan.upper_bound == pytest.approx(optimum, rel=1e-9)


def test_a_plan_of_50_000_equals_the_reference_and_is_fast():
    """50,000 candidates with the playbook's costs, solved exactly within seconds. The reference
    counts in 10 cents (every cost and budget here is a multiple; the same problem with a table
    a tenth as wide). At 5,000.00 greedy happens to be optimal; 10 cents less it is not."""
    rng = np.random.default_rng(11)
    n = 50_000
    costs = rng.choice(PLAYBOOK_COSTS, n).astype(np.int64)
    values = rng.gamma(1.2, 15.0, n)
    budgets = [500_000, 499_990]
    unit = 10
    assert not (costs % unit).any() and not any(b % unit for b in budgets)
    best = best_within_budget(values, costs // unit, max(budgets) // unit)
    assert_greedy_misses(best[499_990 // unit], greedy_total(values, costs, 499_990))
    for budget in budgets:
        optimum = best[budget // unit]
        plan = playbook.plan_contacts(values, costs, budget)
        assert plan.method == "exact_dp"
        assert plan.seconds < 10
        assert costs[plan.selected].sum() <= budget
        assert plan.objective == pytest.approx(optimum, rel=1e-9)
        assert plan.upper_bound == pytest.approx(optimum, rel=1e-9)


@dataclass(frozen=True)
class Candidates:
    """The contact plan's candidates in a warehouse: customers of next_best_actions who may be
    contacted and have a positive priority score (the plan's objective), costs in cents."""

    customer_ids: list[str]
    values: np.ndarray
    costs: np.ndarray

    @classmethod
    def read(cls, warehouse: Path) -> Candidates:
        rows = query(
            warehouse,
            "select customer_id, priority_score, contact_cost from marts.next_best_actions "
            "where not is_do_not_contact and priority_score > 0",
        )
        return cls(
            [customer_id for customer_id, _, _ in rows],
            np.array([value for _, value, _ in rows], dtype=float),
            np.array([cents(cost) for _, _, cost in rows], dtype=np.int64),
        )


@pytest.mark.slow
def test_on_the_published_candidates_plans_at_99_budgets_are_optimal(published_build):
    """The warehouse's own candidates (its few costs, its scores) at 99 budgets, from 1% to 99%
    of what contacting all of them would cost: one reference pass gives every optimum."""
    candidates = Candidates.read(published_build.warehouse)
    values, costs = candidates.values, candidates.costs
    total = int(costs.sum())
    best = best_within_budget(values, costs, total)
    budgets = [total * share // 100 for share in range(1, 100)]
    greedy_misses = 0
    for budget in budgets:
        plan = playbook.plan_contacts(values, costs, budget)
        assert costs[plan.selected].sum() <= budget
        assert plan.objective == pytest.approx(best[budget], rel=1e-9), budget
        assert plan.optimality_gap == 0
        greedy = greedy_total(values, costs, budget)
        greedy_misses += greedy != pytest.approx(best[budget], rel=1e-9)
    assert greedy_misses >= 10  # so that the sweep can tell an exact plan from greedy


# The dbt-built plans: the published warehouse at its budget (var contact_budget, which every
# candidate fits), and copies with only the plan models rebuilt at budgets that bind: 40.00
# (a few percent of what the candidates cost) and 1234.56 (not a multiple of the costs' 10
# cents). The reference's row is at most 500,001 floats (4 MB).
REBUILT_BUDGETS = ["40", "1234.56"]


def plan_warehouse(published_build, work_dir: Path, budget: str | None) -> Path:
    """The published warehouse, or a copy with the plan models rebuilt at ``budget``."""
    if budget is None:
        return published_build.warehouse
    warehouse = copy_warehouse(published_build.warehouse, work_dir)
    result = run_dbt(
        "build",
        published_build.raw_dir,
        warehouse,
        work_dir,
        "--select",
        "int_contact_plan_optimised+",
        "--vars",
        f"{{contact_budget: {budget}}}",
        as_of=PUBLISHED_AS_OF,
    )
    assert result.returncode == 0, result.stdout[-3000:]
    return warehouse


@pytest.mark.slow
@pytest.mark.parametrize("budget", [None, *REBUILT_BUDGETS], ids=["published", *REBUILT_BUDGETS])
def test_the_dbt_plan_is_the_reference_optimum(published_build, tmp_path, budget):
    warehouse = plan_warehouse(published_build, tmp_path, budget)
    candidates = Candidates.read(warehouse)
    values, costs = candidates.values, candidates.costs
    [summary] = query(
        warehouse,
        "select contact_budget, candidate_count, contact_count, total_contact_cost, "
        "expected_net_return, plan_method, plan_upper_bound, optimality_gap "
        "from marts.contact_plan_summary",
    )
    (budget_amount, candidate_count, contact_count, spent, expected, method, bound, gap) = summary
    budget_cents = cents(budget_amount)
    optimum = float(best_within_budget(values, costs, budget_cents)[budget_cents])
    if budget is not None:  # the budget binds, and greedy would not do: the test can tell
        assert budget_cents == cents(budget)
        assert costs.sum() > budget_cents
        assert_greedy_misses(optimum, greedy_total(values, costs, budget_cents))

    # The plan model has one row per candidate; the mart lists those it selected.
    plan_rows = query(
        warehouse,
        "select customer_id, is_selected, plan_expected_return, plan_upper_bound, "
        "optimality_gap from intermediate.int_contact_plan_optimised",
    )
    assert sorted(row[0] for row in plan_rows) == sorted(candidates.customer_ids)
    assert candidate_count == len(candidates.customer_ids)
    contacted = [row[0] for row in query(warehouse, "select customer_id from marts.contact_plan")]
    assert sorted(contacted) == sorted(row[0] for row in plan_rows if row[1])
    chosen = np.isin(candidates.customer_ids, contacted)

    # Within the budget, worth the optimum, and reported as such.
    assert costs[chosen].sum() <= budget_cents
    assert float(values[chosen].sum()) == pytest.approx(optimum, rel=1e-9)
    assert contact_count == chosen.sum()
    assert cents(spent) == costs[chosen].sum()
    assert expected == pytest.approx(optimum, rel=1e-9)
    [(objective, upper_bound, plan_gap)] = {row[2:] for row in plan_rows}  # one plan, every row
    assert objective == pytest.approx(optimum, rel=1e-9)
    assert method in PROVEN_OPTIMAL
    assert gap == plan_gap == 0
    assert bound == upper_bound == pytest.approx(optimum, rel=1e-9)
