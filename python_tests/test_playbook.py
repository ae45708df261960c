"""The contact plan's knapsack (cvm.playbook) against brute force, and its dbt glue."""

from __future__ import annotations

import itertools
from types import SimpleNamespace

import duckdb
import numpy as np
import pandas as pd
import pytest

from cvm import playbook
from cvm.frames import in_engine, to_pandas
from cvm.playbook import (
    contact_plan,
    greedy_by_ratio,
    knapsack_dp,
    lp_bound,
    plan_contacts,
    to_cents,
)


def brute_force(values: np.ndarray, costs: np.ndarray, budget: int) -> float:
    """The best total value over all 2^n subsets within the budget."""
    n = len(values)
    masks = (np.arange(2**n)[:, np.newaxis] >> np.arange(n)) & 1
    feasible = masks @ costs <= budget
    return float(np.max(np.where(feasible, masks @ values, 0.0)))


def random_case(seed: int) -> tuple[np.ndarray, np.ndarray, int]:
    """12-15 items; odd seeds use the playbook's few distinct costs, even seeds any cost."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(12, 16))
    if seed % 2:
        costs = rng.choice([20, 50, 100, 200, 250, 300, 600], n)
    else:
        costs = rng.integers(1, 1_000, n)
    values = np.round(rng.gamma(1.5, 20.0, n) - 3.0, 4)  # some values are not positive
    budget = int(rng.uniform(0.2, 0.6) * costs.sum())
    return values, costs.astype(np.int64), budget


def assert_optimal(plan, values, costs, budget) -> None:
    optimum = brute_force(values, costs, budget)
    assert plan.selected.dtype == bool
    assert costs[plan.selected].sum() <= budget
    assert (values[plan.selected] > 0).all()
    assert plan.objective == pytest.approx(optimum, rel=1e-12, abs=1e-9)
    assert float(values[plan.selected].sum()) == pytest.approx(plan.objective, rel=1e-12)


SEEDS = range(40)


@pytest.mark.parametrize("seed", SEEDS)
def test_plan_equals_brute_force(seed):
    values, costs, budget = random_case(seed)
    plan = plan_contacts(values, costs, budget)
    assert_optimal(plan, values, costs, budget)
    assert plan.optimality_gap == 0


def test_the_random_cases_include_some_where_greedy_is_not_optimal():
    """Otherwise the brute-force comparison above could not tell an exact method from greedy."""
    worse = 0
    for seed in SEEDS:
        values, costs, budget = random_case(seed)
        greedy = greedy_by_ratio(values, costs, budget)
        worse += values[greedy].sum() < brute_force(values, costs, budget) - 1e-9
    assert worse >= 5


def test_greedy_by_ratio_is_not_optimal_here_but_the_plan_is():
    # Budget 10: the best ratio (7 / 6) leaves no room for a second item, 5 + 5 is better.
    values, costs, budget = np.array([7.0, 5.0, 5.0]), np.array([6, 5, 5]), 10
    greedy = greedy_by_ratio(values, costs, budget)
    assert values[greedy].sum() == 7.0
    plan = plan_contacts(values, costs, budget)
    assert plan.objective == 10.0
    assert plan.selected.tolist() == [False, True, True]
    assert lp_bound(values, costs, budget) == pytest.approx(7 + 5 * 4 / 5)


@pytest.mark.parametrize("seed", range(12))
def test_the_solver_path_is_exact_too(seed, monkeypatch):
    """Without the dynamic programme (table too large), HiGHS solves the whole problem."""
    monkeypatch.setattr(playbook, "DP_MAX_CELLS", 0)
    values, costs, budget = random_case(seed)
    plan = plan_contacts(values, costs, budget)
    assert plan.method in ("milp_optimal", "everything_fits", "nothing_to_do")
    assert_optimal(plan, values, costs, budget)


def test_a_solver_time_out_falls_back_to_greedy_with_a_valid_bound(monkeypatch):
    monkeypatch.setattr(playbook, "DP_MAX_CELLS", 0)
    monkeypatch.setattr(
        playbook, "milp", lambda **_: SimpleNamespace(status=1, x=None, mip_dual_bound=None)
    )
    for seed in range(10):
        values, costs, budget = random_case(seed)
        plan = plan_contacts(values, costs, budget)
        if plan.method in ("everything_fits", "nothing_to_do"):
            continue
        assert plan.method == "greedy_fallback"
        greedy = greedy_by_ratio(values, costs, budget)
        assert plan.objective == pytest.approx(values[greedy].sum())
        optimum = brute_force(values, costs, budget)
        assert plan.upper_bound >= optimum - 1e-9
        assert plan.optimality_gap == pytest.approx(plan.upper_bound - plan.objective)


def test_knapsack_dp_alone_equals_brute_force():
    for seed in range(10):
        values, costs, budget = random_case(seed)
        positive = values > 0
        chosen = knapsack_dp(values[positive], costs[positive], budget)
        total = values[positive][chosen].sum()
        assert costs[positive][chosen].sum() <= budget
        assert total == pytest.approx(brute_force(values, costs, budget), rel=1e-12)


def test_edge_cases():
    # Everything fits; a free item is always taken; nothing of value is never taken.
    plan = plan_contacts([3.0, 2.0, -1.0, 0.0], [10, 0, 5, 5], 100)
    assert plan.method == "everything_fits"
    assert plan.selected.tolist() == [True, True, False, False]
    assert plan_contacts([-1.0], [5], 100).method == "nothing_to_do"
    assert plan_contacts([], [], 100).objective == 0
    # An item dearer than the whole budget never fits.
    assert not plan_contacts([100.0, 1.0], [101, 1], 100).selected[0]
    with pytest.raises(ValueError, match="negative"):
        plan_contacts([1.0], [-1], 10)
    with pytest.raises(ValueError, match="shape"):
        plan_contacts([1.0, 2.0], [1], 10)


def test_to_cents_rounds_half_away_from_zero():
    assert to_cents([1.005, 0.5, 2.0, 0.015]).tolist() == [101, 50, 200, 2]


def test_contact_plan_takes_only_contactable_positive_candidates():
    actions = pd.DataFrame(
        {
            "customer_id": ["a", "b", "c", "d", "e"],
            "is_do_not_contact": [False, False, True, False, False],
            "priority_score": [7.0, 5.0, 50.0, 5.0, -1.0],
            "contact_cost": [6.0, 5.0, 1.0, 5.0, 1.0],
        }
    )
    out = contact_plan(None, actions, budget="10", time_limit="5")
    assert out["customer_id"].tolist() == ["a", "b", "d"]  # c: do not contact; e: no return
    assert out["is_selected"].tolist() == [False, True, True]
    assert set(out["plan_method"]) == {"exact_dp"}
    assert out["plan_expected_return"].iloc[0] == 10.0
    assert out["contact_budget"].iloc[0] == 10.0
    assert list(out.columns) == list(playbook.PLAN_COLUMNS)


def test_the_plan_does_not_depend_on_the_row_order_of_its_input():
    """Ties (equal return, equal cost) leave several optimal plans: the one chosen must not
    change with the order in which the engine hands over the rows."""
    rng = np.random.default_rng(3)
    n = 400
    actions = pd.DataFrame(
        {
            "customer_id": [f"c{i:04d}" for i in range(n)],
            "is_do_not_contact": False,
            "priority_score": rng.choice([2.0, 3.0, 5.0], n),  # many ties
            "contact_cost": rng.choice([1.0, 2.5], n),
        }
    )
    plans = [
        contact_plan(None, actions.sample(frac=1, random_state=seed), budget=90, time_limit=5)
        for seed in range(4)
    ]
    chosen = [set(p.loc[p["is_selected"], "customer_id"]) for p in plans]
    assert all(c == chosen[0] for c in chosen) and 0 < len(chosen[0]) < n


def test_brute_force_helper_is_right_on_a_hand_case():
    values, costs = np.array([4.0, 3.0, 2.0]), np.array([3, 2, 2])
    best = max(
        sum(values[list(s)])
        for r in range(4)
        for s in itertools.combinations(range(3), r)
        if sum(costs[list(s)]) <= 4
    )
    assert brute_force(values, costs, 4) == best == 5.0


def test_an_empty_plan_keeps_its_column_types():
    """No candidate (all not to be contacted): an empty frame whose text columns stay text, so
    the SQL marts on top keep their contracts."""
    actions = pd.DataFrame(
        {
            "customer_id": ["a"],
            "is_do_not_contact": [True],
            "priority_score": [5.0],
            "contact_cost": [1.0],
        }
    )
    out = contact_plan(None, actions, budget=100, time_limit=5)
    assert len(out) == 0
    assert str(out["customer_id"].dtype) == "string"
    assert str(out["plan_method"].dtype) == "string"
    assert out["is_selected"].dtype == bool


def candidate_actions(n: int = 2_000) -> pd.DataFrame:
    """Customers of whom only every tenth may be contacted, with other columns besides."""
    rng = np.random.default_rng(5)
    return pd.DataFrame(
        {
            "customer_id": [f"c{i:05d}" for i in range(n)],
            "is_do_not_contact": np.arange(n) % 10 != 0,
            "priority_score": rng.uniform(-1.0, 9.0, n),
            "contact_cost": rng.choice([0.5, 1.0, 2.5], n),
            "reason_text": "a column the plan never reads",
        }
    )


def test_only_candidates_leave_the_engine_and_the_plan_is_the_same(spark):
    """The contact plan filters and cuts its input inside DuckDB or Spark (10M customers never
    reach pandas), and plans exactly as on the whole frame in pandas."""

    actions = candidate_actions()
    expected = contact_plan(None, actions, budget=60, time_limit=5)
    with duckdb.connect() as con:
        relation = con.from_df(actions)
        cut = in_engine(relation, playbook.CANDIDATE_COLUMNS, playbook.CANDIDATES)
        assert cut.columns == list(playbook.CANDIDATE_COLUMNS)
        assert len(cut.fetchall()) == len(expected) < len(actions) / 10
        from_duckdb = contact_plan(None, relation, budget=60, time_limit=5)
    spark_actions = spark.createDataFrame(actions)
    spark_cut = in_engine(spark_actions, playbook.CANDIDATE_COLUMNS, playbook.CANDIDATES)
    assert spark_cut.columns == list(playbook.CANDIDATE_COLUMNS)
    assert spark_cut.count() == len(expected)
    for plan in (
        from_duckdb,
        to_pandas(contact_plan(spark, spark_actions, budget=60, time_limit=5)),
    ):
        pd.testing.assert_frame_equal(
            plan.drop(columns="solve_seconds").reset_index(drop=True),
            expected.drop(columns="solve_seconds").reset_index(drop=True),
            check_dtype=False,
        )
