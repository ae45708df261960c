"""The mart gate: Great Expectations on what goes out to BI, after dbt runs, before publishing.

dbt's tests already assert row-level rules inside the marts (keys, P(alive) and share of
wallet in [0, 1], CLV within its interval, revenue reconciliation); this gate checks the
distributions a row-level test cannot see, and compares with the last published warehouse.
Every rule holds on real data of any size (3 customers or millions, ties, customers who never
leave, shops without costs): it judges what must be true of any correct build, not what
generated data happens to look like.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from cvm.quality.runner import Batch, GateResult, GxRunner
from cvm.relations import Relations

# Relations are placeholders, filled by cvm.relations (model name -> schema.name).
RECONCILE_SQL = """
    select '{dim_customers}' as mart, (select count(*) from {dim_customers}) as mart_rows,
           (select count(*) from {stg_shop__customers}) as staging_rows
    union all
    select '{customer_value}', (select count(*) from {customer_value}),
           (select count(*) from {stg_shop__customers})
    union all
    select '{fct_orders}', (select count(*) from {fct_orders}),
           (select count(*) from {stg_shop__orders})
"""

# RFM scores are fifths by rank with ties sharing a score (doc block rfm): a score may be empty
# (CDNOW: 59 % bought once, so frequency score 2 is), but scores must stay within 1-5, follow
# the values without overlapping (equal values, equal scores), and cannot all be one score
# unless one value is shared by more than four fifths of the customers.
SCORES = {  # score column: the value it ranks, oriented so that a higher value scores higher
    "recency_score": "-recency_days",
    "frequency_score": "frequency_lookback",
    "monetary_score": "monetary_lookback",
}
LARGEST_TIE_THAT_MAY_COLLAPSE = 0.8
SCORE_SQL = """
    with scored as (
        select {score} as score, {value} as value
        from {customer_value} where purchase_count_lifetime > 0
    ),
    bands as (
        select score, min(value) as low, max(value) as high
        from scored where score between 1 and 5 group by score
    ),
    ordered as (select low, lag(high) over (order by score) as previous_high from bands),
    ties as (select count(*) as customers from scored group by value)
    select
        (select count(*) from scored where score is null or score not between 1 and 5)
            as customers_out_of_range,
        (select count(*) from ordered where low <= previous_high) as overlapping_scores,
        (
            select case
                when count(distinct score) = 1 and count(distinct value) > 1
                    and (select max(customers) from ties) <= {largest_tie} * count(*)
                then 1 else 0 end
            from scored
        ) as collapsed
"""
TIER_SHARES_SQL = """
    select coalesce(value_tier, 'no tier') as value_tier, count(*) as customers
    from {customer_value} group by all
"""
HINTS = {
    "reconcile_rows": (
        "a model lost or duplicated rows between staging and the marts (a join that drops or "
        "fans out); run `dbt test --select <mart>` and look at its joins"
    ),
    "customers_out_of_range": (
        "scores outside 1-5 or missing for a purchasing customer are a scoring bug: check "
        "macro cvm_rank_score and int_customers_scored_rfm"
    ),
    "overlapping_scores": (
        "customers with equal values got different scores, or a higher value a lower score: "
        "the scoring is not rank-based any more (macro cvm_rank_score)"
    ),
    "collapsed": (
        "every customer got the same score although their values differ: the scoring is broken, "
        "or var lookback_days leaves most purchases outside the window"
    ),
    "mean_p_alive": (
        "a mean P(alive) near 0 or 1 usually means a wrong as-of date (CVM_AS_OF_DATE) or an "
        "export that covers too short a period; check clv_model_parameters"
    ),
    "min_share_with_clv": (
        "customers of a fitted model lack a CLV: a join bug in int_customers_clv_scored, or no "
        "known margin (set var clv_margin, or var value_basis: revenue)"
    ),
    "max_tier_share_shift": (
        "the tier mix moved more than sampling explains since the last published build: an "
        "edited value_tiers seed, a partial export, or a real shift worth a look"
    ),
}


def run_mart_gate(
    warehouse: Path,
    thresholds: dict[str, Any],
    runner: GxRunner,
    previous: Path | None = None,
) -> GateResult:
    """Validate the marts of ``warehouse``; ``previous`` is the last published warehouse."""
    with duckdb.connect(str(warehouse), read_only=True) as con:
        batches = mart_batches(con, Relations(con), thresholds)
        if previous is not None and previous.exists():
            rule = thresholds["marts"]["max_tier_share_shift"]
            batches += tier_shift_batches(con, previous, rule)
    return runner.validate("marts", batches, GateResult("marts"))


def mart_batches(con: Any, relations: Relations, thresholds: dict[str, Any]) -> list[Batch]:
    """The gate's batches of one build: row counts, RFM scores, P(alive) and CLV coverage.
    ``con`` is a DuckDB connection, or cvm.spark_warehouse's (the SQL is portable)."""
    import great_expectations.expectations as gxe

    settings = thresholds["marts"]
    customer_value = relations["customer_value"]
    rule = settings["reconcile_rows"]
    batches = [
        Batch(
            "row counts",
            con.execute(RECONCILE_SQL.format_map(relations)).df(),
            [
                gxe.ExpectColumnPairValuesToBeEqual(
                    column_A="mart_rows",
                    column_B="staging_rows",
                    meta=meta(rule, "reconcile_rows"),
                )
            ],
        )
    ]
    batches += score_batches(con, settings["rfm_scores"], customer_value)
    fits = fit_statuses(con, relations["clv_model_parameters"])
    if any(status == "fitted" for model, status in fits.items() if model != "gamma_gamma"):
        # Only customers with a P(alive): a skipped or failed fit leaves it null on purpose.
        p_alive = settings["mean_p_alive"]
        batches.append(
            Batch(
                f"{customer_value} (customers with a P(alive))",
                con.execute(
                    f"select avg(p_alive) as mean_p_alive from {customer_value} "
                    "where p_alive is not null"
                ).df(),
                [
                    gxe.ExpectColumnValuesToBeBetween(
                        column="mean_p_alive",
                        min_value=p_alive["min"],
                        max_value=p_alive["max"],
                        meta=meta(p_alive, "mean_p_alive", unit="share"),
                    )
                ],
            )
        )
    if set(fits.values()) == {"fitted"}:
        # Coverage among the customers whose fit ran: every purchasing customer is in it.
        with_clv = settings["min_share_with_clv"]
        batches.append(
            Batch(
                f"{customer_value} (purchasing customers)",
                con.execute(
                    f"select count(clv) / count(*) as share_with_clv from {customer_value} "
                    "where purchase_count_lifetime > 0"
                ).df(),
                [
                    gxe.ExpectColumnValuesToBeBetween(
                        column="share_with_clv",
                        min_value=with_clv["value"],
                        meta=meta(with_clv, "min_share_with_clv", unit="share"),
                    )
                ],
            )
        )
    return batches


def meta(rule: dict[str, Any], name: str, unit: str | None = None) -> dict[str, Any]:
    return {"severity": rule["severity"], "hint": HINTS[name], **({"unit": unit} if unit else {})}


def fit_statuses(con: duckdb.DuckDBPyConnection, parameters: str) -> dict[str, str]:
    """The scoring fit's status (fitted, skipped, not_identified, not_converged) of the chosen
    purchase model and of Gamma-Gamma, from ``parameters`` (the relation of
    clv_model_parameters); candidates auto did not choose do not count."""
    rows = con.execute(
        f"select model, max(fit_status) from {parameters} "
        "where fit_purpose = 'scoring' and chosen group by model"
    ).fetchall()
    return dict(rows)


def score_batches(
    con: duckdb.DuckDBPyConnection, rule: dict[str, Any], customer_value: str
) -> list[Batch]:
    """Per RFM score: customers out of range, overlapping score bands, a collapse to one score
    (``customer_value``: that mart's relation)."""
    import great_expectations.expectations as gxe

    batches = []
    for score, value in SCORES.items():
        facts = con.execute(
            SCORE_SQL.format(
                score=score,
                value=value,
                largest_tie=LARGEST_TIE_THAT_MAY_COLLAPSE,
                customer_value=customer_value,
            )
        ).df()
        batches.append(
            Batch(
                f"{customer_value}.{score}",
                facts,
                [
                    gxe.ExpectColumnValuesToBeBetween(
                        column=column, max_value=0, meta=meta(rule, column)
                    )
                    for column in ("customers_out_of_range", "overlapping_scores", "collapsed")
                ],
            )
        )
    return batches


def tier_shift_batches(
    con: duckdb.DuckDBPyConnection, previous: Path, rule: dict[str, Any]
) -> list[Batch]:
    """Each tier's share of customers now against the last published warehouse, when both
    measure value on the same basis (tiers of two bases do not compare). A move is flagged when
    it exceeds both the rule's points and three standard errors of the difference of two shares,
    so that a shop of a few customers, where one customer moves a share by points, is judged by
    what sampling allows."""
    import great_expectations.expectations as gxe

    path = str(previous).replace("'", "''")
    this_build = con.execute("select current_database()").fetchone()[0]
    con.execute(f"attach '{path}' as previous_build (read_only)")
    try:
        now, then = Relations(con, this_build), Relations(con, "previous_build")
        if value_basis(con, now) != value_basis(con, then):
            return []
        current = con.execute(TIER_SHARES_SQL.format_map(now)).df()
        before = con.execute(TIER_SHARES_SQL.format_map(then)).df()
    finally:
        con.execute("detach previous_build")
    tiers = current.merge(before, on="value_tier", how="outer", suffixes=("", "_before"))
    tiers = tiers.fillna(0.0)
    n_now, n_before = tiers["customers"].sum(), tiers["customers_before"].sum()
    if not (n_now and n_before):
        return []
    batches = []
    for row in tiers.itertuples():
        share, share_before = row.customers / n_now, row.customers_before / n_before
        pooled = (row.customers + row.customers_before) / (n_now + n_before)
        noise = 3 * math.sqrt(pooled * (1 - pooled) * (1 / n_now + 1 / n_before))
        batches.append(
            Batch(
                f"{now['customer_value']} tier {row.value_tier} vs the last published build "
                f"({share_before:.1%} -> {share:.1%})",
                pd.DataFrame({"share_shift": [abs(share - share_before)]}),
                [
                    gxe.ExpectColumnValuesToBeBetween(
                        column="share_shift",
                        max_value=max(rule["value"], noise),
                        meta=meta(rule, "max_tier_share_shift", unit="share"),
                    )
                ],
            )
        )
    return batches


def value_basis(con: duckdb.DuckDBPyConnection, relations: Relations) -> str:
    """The value basis of a warehouse's customer_value (builds before the basis existed
    measured on gross margin)."""
    customer_value = relations["customer_value"]
    columns = con.execute(f"select * from {customer_value} limit 0").description
    if "value_basis" not in {column[0] for column in columns}:
        return "gross_margin"
    row = con.execute(f"select min(value_basis) from {customer_value}").fetchone()
    return row[0] or "gross_margin"
