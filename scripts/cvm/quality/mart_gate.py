"""The mart gate: Great Expectations on what goes out to BI, after dbt runs, before publishing.

dbt's tests already assert row-level rules inside the marts (keys, P(alive) and share of
wallet in [0, 1], CLV within its interval, revenue reconciliation); this gate checks the
distributions a row-level test cannot see, and compares with the last published warehouse.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb

from cvm.quality.runner import Batch, GateResult, GxRunner

RECONCILE_SQL = """
    select 'marts.dim_customers' as mart, (select count(*) from marts.dim_customers) as mart_rows,
           (select count(*) from staging.stg_shop__customers) as staging_rows
    union all
    select 'marts.customer_value', (select count(*) from marts.customer_value),
           (select count(*) from staging.stg_shop__customers)
    union all
    select 'marts.fct_orders', (select count(*) from marts.fct_orders),
           (select count(*) from staging.stg_shop__orders)
"""
TIER_SHARES_SQL = """
    select coalesce(value_tier, 'no tier') as value_tier, count(*) / sum(count(*)) over () as share
    from {database}.marts.customer_value group by all
"""


def run_mart_gate(
    warehouse: Path,
    thresholds: dict[str, Any],
    runner: GxRunner,
    previous: Path | None = None,
) -> GateResult:
    """Validate the marts of ``warehouse``; ``previous`` is the last published warehouse."""
    import great_expectations.expectations as gxe

    settings = thresholds["marts"]
    batches: list[Batch] = []
    with duckdb.connect(str(warehouse), read_only=True) as con:
        rule = settings["reconcile_rows"]
        batches.append(
            Batch(
                "row counts",
                con.execute(RECONCILE_SQL).df(),
                [
                    gxe.ExpectColumnPairValuesToBeEqual(
                        column_A="mart_rows",
                        column_B="staging_rows",
                        meta={"severity": rule["severity"]},
                    )
                ],
            )
        )
        scores = con.execute(
            "select recency_score, frequency_score, monetary_score, p_alive "
            "from marts.customer_value"
        ).df()
        rfm, mean_p_alive = settings["rfm_scores_present"], settings["mean_p_alive"]
        batches.append(
            Batch(
                "marts.customer_value",
                scores,
                [
                    gxe.ExpectColumnDistinctValuesToEqualSet(
                        column=column,
                        value_set=[1, 2, 3, 4, 5],
                        meta={"severity": rfm["severity"]},
                    )
                    for column in ("recency_score", "frequency_score", "monetary_score")
                ]
                + [
                    gxe.ExpectColumnMeanToBeBetween(
                        column="p_alive",
                        min_value=mean_p_alive["min"],
                        max_value=mean_p_alive["max"],
                        meta={"severity": mean_p_alive["severity"]},
                    )
                ],
            )
        )
        # A skipped fit (too few repeat customers) leaves CLV null on purpose: checked only
        # when the scoring fit ran.
        fitted = con.execute(
            "select count(*) from marts.clv_model_parameters "
            "where fit_purpose = 'scoring' and fit_status = 'fitted'"
        ).fetchone()[0]
        if fitted:
            with_clv = settings["min_share_with_clv"]
            batches.append(
                Batch(
                    "marts.customer_value (purchasing customers)",
                    con.execute(
                        "select count(clv) / count(*) as share_with_clv from marts.customer_value "
                        "where purchase_count_lifetime > 0"
                    ).df(),
                    [
                        gxe.ExpectColumnValuesToBeBetween(
                            column="share_with_clv",
                            min_value=with_clv["value"],
                            meta={"severity": with_clv["severity"]},
                        )
                    ],
                )
            )
        if previous is not None and previous.exists():
            batches.append(tier_shift_batch(con, previous, settings["max_tier_share_shift"]))
    return runner.validate("marts", batches, GateResult("marts"))


def tier_shift_batch(con: duckdb.DuckDBPyConnection, previous: Path, rule: dict[str, Any]) -> Batch:
    """Each tier's share of customers now and in the last published warehouse."""
    import great_expectations.expectations as gxe

    path = str(previous).replace("'", "''")
    this_build = con.execute("select current_database()").fetchone()[0]
    con.execute(f"attach '{path}' as previous_build (read_only)")
    try:
        current = con.execute(TIER_SHARES_SQL.format(database=this_build)).df()
        before = con.execute(TIER_SHARES_SQL.format(database="previous_build")).df()
    finally:
        con.execute("detach previous_build")
    shares = current.merge(before, on="value_tier", how="outer", suffixes=("", "_before"))
    shares = shares.fillna(0.0)
    shares["share_shift"] = (shares["share"] - shares["share_before"]).abs()
    return Batch(
        "marts.customer_value tier mix vs the last published build",
        shares,
        [
            gxe.ExpectColumnValuesToBeBetween(
                column="share_shift", max_value=rule["value"], meta={"severity": rule["severity"]}
            )
        ],
    )
