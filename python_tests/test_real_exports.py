"""Real exports build out of the box, through `make build` with the default settings: the
CDNOW sample (customers and orders only), a three-customer shop, an orders-only shop of a few
thousand, an invoice-line export with credit notes through the importer, and customers who
never leave (a BG/NBD fit that cannot be identified). Expected values come from the data
(pandas) or from the literature, never from the warehouse under test."""

from __future__ import annotations

import importlib.metadata
import re
import subprocess
import sys
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from conftest import reasons_not_drawn
from cvm import build
from dbt_project import (
    lifetimes_example_orders,
    make_build,
    make_build_env,
    query,
    write_orders_and_customers,
)

pytestmark = pytest.mark.slow

# FHL 2005 (Marketing Science), CDNOW sample, calibration to 1997-09-30, time in weeks; and the
# Gamma-Gamma estimates of FHL 2005 ("RFM and CLV", JMR). Three to four significant digits.
PUBLISHED_BG_WEEKLY = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
PUBLISHED_GG = {"p": 6.25, "q": 3.74, "v": 15.44}
PUBLISHED_TOLERANCE = 0.005
CDNOW_AS_OF = "1997-09-30"
INVOICES_AS_OF = "2025-12-31"  # the last day of the generated invoice export
THRESHOLD_TIERS = {"Platinum", "Gold", "Silver", "Bronze"}


def build_into(work: Path, raw: Path, **env: str) -> tuple[subprocess.CompletedProcess, Path]:
    """`make build` of ``raw`` into a warehouse of its own under ``work``."""
    warehouse = work / "warehouse" / "cvm.duckdb"
    result = make_build(make_build_env(work, raw, warehouse) | env)
    return result, warehouse


def assert_published(result: subprocess.CompletedProcess) -> None:
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-3000:]
    assert "Warehouse built and published" in result.stdout


def margin_columns(warehouse: Path) -> list[tuple[str, str, str]]:
    return query(
        warehouse,
        "select table_schema, table_name, column_name from information_schema.columns "
        "where table_schema in ('marts', 'bi', 'snapshots') "
        "and (column_name like '%margin%' or column_name like '%cost_of_goods%') "
        "and data_type not in ('BOOLEAN', 'VARCHAR')",
    )


# --------------------------------------------------------------------------------------------
# CDNOW: customers and orders only


def cdnow_orders(master: bool = False) -> pd.DataFrame:
    """The CDNOW 1/10 sample the lifetimes wheel ships, or the full master file (``master``;
    its 23,570 customers include free orders), found without importing lifetimes, whose import
    warns under pandas 3."""
    name = "CDNOW_master.txt" if master else "CDNOW_sample.txt"
    file = importlib.metadata.distribution("lifetimes").locate_file(f"lifetimes/datasets/{name}")
    columns = ["customer_id", "date", "cds", "spend"]
    lines = pd.read_csv(
        file, sep=r"\s+", header=0 if master else None,
        names=columns if master else ["customer_id", "id", *columns[1:]],
        dtype={"customer_id": str, "date": str},
    )  # fmt: skip
    return pd.DataFrame(
        {
            "order_id": [f"o{i}" for i in range(len(lines))],
            "customer_id": lines["customer_id"],
            "ordered_at": pd.to_datetime(lines["date"], format="%Y%m%d").dt.date,
            "status": "completed",
            "order_total": lines["spend"],
        }
    )


def build_cdnow(work: Path, orders: pd.DataFrame, **env: str):
    """`make build` of CDNOW's orders and its customers (signed up at their first order)."""
    write_orders_and_customers(work / "raw", orders)
    return build_into(work, work / "raw", **env)


@pytest.fixture(scope="module")
def cdnow(tmp_path_factory) -> tuple[subprocess.CompletedProcess, Path]:
    return build_cdnow(tmp_path_factory.mktemp("cdnow"), cdnow_orders(), CVM_AS_OF_DATE=CDNOW_AS_OF)


def test_cdnow_sample_publishes_with_the_published_estimates(cdnow):
    result, warehouse = cdnow
    assert_published(result)
    assert "value:     tiers and CLV on net revenue (value_basis revenue" in result.stdout
    fitted = dict(
        ((model, parameter), value)
        for model, parameter, value in query(
            warehouse,
            "select model, parameter, value from marts.clv_model_parameters "
            "where fit_purpose = 'scoring' and fit_status = 'fitted'",
        )
    )
    weekly = {k: v for (m, k), v in fitted.items() if m == "bg_nbd"}
    weekly["alpha"] /= 7  # the warehouse measures time in days
    for name, published in PUBLISHED_BG_WEEKLY.items():
        assert weekly[name] == pytest.approx(published, rel=PUBLISHED_TOLERANCE), name
    for name, published in PUBLISHED_GG.items():
        assert fitted["gamma_gamma", name] == pytest.approx(published, rel=PUBLISHED_TOLERANCE)


def test_cdnow_every_buyer_has_p_alive_and_a_clv_on_revenue(cdnow):
    _, warehouse = cdnow
    buyers = cdnow_orders()
    buyers = buyers[pd.to_datetime(buyers["ordered_at"]) <= pd.Timestamp(CDNOW_AS_OF)]
    ((customers, with_p_alive, with_clv, bases),) = query(
        warehouse,
        "select count(*), count(p_alive), count(clv), list(distinct clv_basis) "
        "from marts.customer_value where purchase_count_lifetime > 0",
    )
    assert customers == with_p_alive == with_clv == buyers["customer_id"].nunique() == 2357
    assert bases == ["revenue"]


def test_the_full_cdnow_file_publishes_and_scores_free_repeat_orders(tmp_path):
    """All 23,570 CDNOW customers with the default as-of date (the last order). One customer's
    only repeat purchase was free (m = 0), which the Gamma-Gamma fit cannot take: it is left
    out of the fit and scored from it, with a spend per purchase below the population's."""
    orders = cdnow_orders(master=True)
    totals = orders.groupby(["customer_id", "ordered_at"])["order_total"].sum().reset_index()
    firsts = totals.groupby("customer_id")["ordered_at"].transform("min")
    repeat_spend = totals[totals["ordered_at"] > firsts].groupby("customer_id")["order_total"]
    free_repeaters = sorted(repeat_spend.sum()[lambda s: s == 0].index)
    assert free_repeaters == ["10244"]  # the data, read with pandas
    result, warehouse = build_cdnow(tmp_path, orders)
    assert_published(result)
    ((customers, scored, repeaters_fitted),) = query(
        warehouse,
        "select count(*), count(clv) filter (where clv_status = 'scored'), "
        "(select max(customer_count) from marts.clv_model_parameters "
        " where fit_purpose = 'scoring' and model = 'gamma_gamma') "
        "from marts.customer_value",
    )
    assert customers == scored == orders["customer_id"].nunique() == 23570
    repeaters = int((repeat_spend.size() > 0).sum())
    assert repeaters_fitted == repeaters - len(free_repeaters)
    ((clv,),) = query(warehouse, "select clv from marts.customer_value where customer_id = '10244'")
    assert clv > 0


def test_cdnow_gets_tiers_a_tier_history_and_migrations(cdnow):
    _, warehouse = cdnow
    tiers = {
        tier for (tier,) in query(warehouse, "select distinct value_tier from marts.customer_value")
    }
    assert len(tiers & THRESHOLD_TIERS) >= 3, tiers
    assert "Unrated" not in tiers
    for table in ("fct_customer_tier_months", "fct_tier_migrations", "tier_migration_matrix"):
        ((rows,),) = query(warehouse, f"select count(*) from marts.{table}")
        assert rows > 0, table
    # Tiers on net revenue, reconciled with the orders in pandas: a customer's window value
    # reaches the revenue thresholds of the seed.
    orders = cdnow_orders()
    orders = orders[pd.to_datetime(orders["ordered_at"]) <= pd.Timestamp(CDNOW_AS_OF)]
    revenue = orders.groupby("customer_id")["order_total"].sum().round(2)
    mart = pd.DataFrame(
        query(
            warehouse, "select customer_id, value_lookback, value_tier from marts.customer_value"
        ),
        columns=["customer_id", "value_lookback", "value_tier"],
    ).set_index("customer_id")
    assert np.allclose(
        mart["value_lookback"].astype(float), revenue.reindex(mart.index), atol=0.005
    )
    gold = mart[
        (mart["value_lookback"].astype(float) >= 750)
        & (mart["value_lookback"].astype(float) < 1750)
    ]
    assert set(gold["value_tier"]) == {"Gold"}


def test_orders_only_margins_are_null_never_zero(cdnow):
    """Without cost data no margin or cost is known: every such column of every mart, bi table
    and snapshot is null (CDNOW has no cancelled orders; the orders-only shop below has)."""
    _, warehouse = cdnow
    assert_no_margin_is_made_up(warehouse)


def assert_no_margin_is_made_up(warehouse: Path) -> None:
    columns = margin_columns(warehouse)
    assert {(t, c) for _, t, c in columns} >= {
        ("fct_orders", "gross_margin"),
        ("customer_value", "gross_margin_lookback"),
        ("fct_customer_tier_months", "gross_margin_window"),
        ("revenue_and_margin_by_tier_month", "gross_margin"),
    }
    for schema, table, column in columns:
        ((known,),) = query(warehouse, f'select count("{column}") from "{schema}"."{table}"')
        assert known == 0, f"{schema}.{table}.{column} holds {known} values without cost data"
    ((rows,),) = query(warehouse, "select count(*) from bi.revenue_and_margin_by_tier_month")
    assert rows > 0  # the scan looked at a table with rows


def test_a_log_of_free_orders_publishes_with_p_alive_and_without_clv(tmp_path):
    """lifetimes' example transactions with every order worth 0 (a log of visits or free
    orders): the purchase models are fitted on the repeat purchases, the spend model has none
    to learn from, so every customer has P(alive) and expected purchases, no CLV, and an empty
    share of wallet (nobody spent anything). It stopped at the raw gate (a 90-day baseline took
    the shrinking cohort for a half-loaded export), then at the share-of-wallet test."""
    write_orders_and_customers(tmp_path / "raw", lifetimes_example_orders(0.0))
    result, warehouse = build_into(tmp_path, tmp_path / "raw")
    assert_published(result)
    assert "Gamma-Gamma skipped" in result.stdout and "BG/NBD fitted on 5,000" in result.stdout
    ((customers, with_p_alive, with_clv, with_share),) = query(
        warehouse,
        "select count(*), count(p_alive), count(clv), count(share_of_wallet_modelled) "
        "from marts.customer_value",
    )
    assert (customers, with_p_alive, with_clv, with_share) == (5000, 5000, 0, 0)


# --------------------------------------------------------------------------------------------
# A three-customer shop and an orders-only shop of a few thousand


def test_a_three_customer_shop_publishes(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "customers.csv").write_text(
        "customer_id,signup_date\nc1,2025-01-05\nc2,2025-03-10\nc3,2025-06-01\n"
    )
    (raw / "orders.csv").write_text(
        "order_id,customer_id,ordered_at,status,order_total\n"
        "o1,c1,2025-01-05 10:00:00,completed,120.00\n"
        "o2,c1,2025-04-12 09:30:00,completed,80.50\n"
        "o3,c1,2025-11-20 18:00:00,completed,45.00\n"
        "o4,c2,2025-03-10 12:00:00,completed,300.00\n"
        "o5,c2,2025-03-28 12:00:00,cancelled,50.00\n"
        "o6,c3,2025-06-01 08:00:00,completed,25.00\n"
        "o7,c3,2025-09-15 08:00:00,returned,25.00\n"
        # One order exported twice: one row in eight is staging's to quarantine, not a reason
        # for the raw gate to stop (its 0.1 % duplicate threshold is for files of thousands).
        "o6,c3,2025-06-01 08:00:00,completed,25.00\n"
    )
    # A small machine's settings: DuckDB gets what the environment gives it.
    result, warehouse = build_into(
        tmp_path, raw, CVM_DUCKDB_MEMORY_LIMIT="2GiB", CVM_DUCKDB_THREADS="1"
    )
    assert_published(result)
    assert re.search(r"orders +duplicate_key +1\n", result.stdout), result.stdout[-3000:]
    assert "DuckDB resources: memory_limit 2.0 GiB, threads 1," in result.stdout
    assert (
        "scoring fit (BG/NBD and Gamma-Gamma) skipped: 1 repeat customer(s), "
        "fewer than var clv_min_repeat_customers (50)" in result.stdout
    )
    rows = query(
        warehouse,
        "select customer_id, value_basis, value_lookback, value_tier, clv_status "
        "from marts.customer_value order by 1",
    )
    # As of 2025-11-20: c1 bought 245.50 in the window, c2 300 (its cancelled order is no
    # purchase), c3 25 (its returned order neither); all first purchases more than 90 days back.
    assert [(c, b, float(v), t, s) for c, b, v, t, s in rows] == [
        ("c1", "revenue", 245.5, "Bronze", "fit_skipped"),
        ("c2", "revenue", 300.0, "Silver", "fit_skipped"),
        ("c3", "revenue", 25.0, "Bronze", "fit_skipped"),
    ]
    assert_no_margin_is_made_up(warehouse)
    # The report says why its lifetime-value charts are empty instead of drawing empty frames.
    not_drawn = reasons_not_drawn(tmp_path / "report" / "index.html")
    for chart in ("p_alive_matrix", "clv_by_tier"):
        assert not_drawn[chart].startswith(
            "Not drawn: the scoring fit (BG/NBD and Gamma-Gamma) skipped: 1 repeat customer(s)"
        ), not_drawn
    for chart in ("holdout_by_frequency", "holdout_over_time"):
        assert not_drawn[chart].startswith("Not drawn: the holdout fit"), not_drawn


def test_an_orders_only_shop_gets_the_full_product(orders_only):
    warehouse = orders_only.warehouse
    assert_published(orders_only.result)
    tiers = {t for (t,) in query(warehouse, "select distinct value_tier from marts.customer_value")}
    assert len(tiers & THRESHOLD_TIERS) >= 3 and "Unrated" not in tiers
    ((scored, buyers),) = query(
        warehouse,
        "select count(clv), count(*) from marts.customer_value where purchase_count_lifetime > 0",
    )
    assert scored == buyers > 2000
    for table in ("fct_tier_migrations", "tier_downgrade_alerts", "contact_plan"):
        ((rows,),) = query(warehouse, f"select count(*) from marts.{table}")
        assert rows > 0, table
    strategies = {
        s for (s,) in query(warehouse, "select primary_strategy from marts.next_best_actions")
    }
    assert len(strategies - {"no_action"}) >= 3, strategies
    ((predicted,),) = query(
        warehouse, "select count(predicted_value_tier) from marts.customer_value"
    )
    assert predicted == buyers


def test_orders_only_margins_with_cancelled_orders_are_null_never_zero(orders_only):
    """Cancelled and returned orders of a shop without costs used to carry a margin of 0, so
    sums showed 0.00 where the margin is unknown."""
    warehouse = orders_only.warehouse
    statuses = pd.read_csv(orders_only.raw_dir / "orders.csv")["status"].str.lower().value_counts()
    assert statuses.get("cancelled", 0) + statuses.get("canceled", 0) > 0
    assert statuses.get("returned", 0) > 0
    assert_no_margin_is_made_up(warehouse)


def test_a_var_given_to_make_build_changes_the_result(orders_only, tmp_path):
    """`make build VARS=...` passes dbt vars: clv_margin turns the revenue CLV into a margin
    CLV of exactly that share, customer by customer."""
    warehouse = orders_only.warehouse
    env = make_build_env(tmp_path, orders_only.raw_dir, tmp_path / "warehouse" / "cvm.duckdb")
    result = subprocess.run(
        ["make", "--no-print-directory", "build", "VARS={clv_margin: 0.35}"],
        cwd=build.PROJECT_DIR, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert_published(result)
    with duckdb.connect() as con:
        con.execute(f"attach '{warehouse}' as revenue_build (read_only)")
        con.execute(f"attach '{tmp_path / 'warehouse' / 'cvm.duckdb'}' as margin_build (read_only)")
        ((customers, worst, bases),) = con.execute(
            "select count(*), max(abs(m.clv / r.clv - 0.35)), list(distinct m.clv_basis) "
            "from revenue_build.marts.customer_value as r "
            "join margin_build.marts.customer_value as m using (customer_id) where r.clv > 0"
        ).fetchall()
    assert customers > 2000 and worst < 1e-9 and bases == ["gross_margin"]


def test_an_unknown_var_stops_make_build_with_the_known_ones(orders_only, tmp_path):
    env = make_build_env(tmp_path, orders_only.raw_dir, tmp_path / "warehouse" / "cvm.duckdb")
    result = subprocess.run(
        ["make", "--no-print-directory", "build", "VARS={clv_margn: 0.35}"],
        cwd=build.PROJECT_DIR, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode != 0
    assert "unknown var(s) clv_margn" in result.stderr and "clv_margin" in result.stderr
    assert not (tmp_path / "warehouse" / "cvm.duckdb").exists()


# --------------------------------------------------------------------------------------------
# An invoice-line export with credit notes, through the importer


def invoice_export(seed: int = 3) -> tuple[pd.DataFrame, pd.DataFrame]:
    """An export shaped like the public online-retail logs: one row per invoice line, US-style
    timestamps, credit invoices prefixed C, a few credits as negative quantities on plain
    invoice numbers, lines without customer, and credits for purchases older than the export.
    Returns the export and, per customer, what the credit notes truly refund (by construction:
    each matchable credit refunds part of one earlier line of that customer and product)."""
    rng = np.random.default_rng(seed)
    prices = np.round(rng.uniform(0.5, 25, 80), 2)
    start, end = pd.Timestamp("2025-01-01 08:00"), pd.Timestamp(f"{INVOICES_AS_OF} 23:59")
    lines, refunds = [], []
    invoice_number = 500000
    for customer in range(800):
        customer_id = "" if customer % 25 == 0 else str(12000 + customer)
        for _ in range(rng.integers(1, 12)):
            invoice_number += 1
            at = start + pd.Timedelta(minutes=int(rng.integers(0, 364 * 24 * 60)))
            bought = []
            for product in rng.choice(80, size=rng.integers(1, 6), replace=False):
                quantity = int(rng.integers(1, 13))
                lines.append(
                    (
                        str(invoice_number),
                        f"P{product:03d}",
                        quantity,
                        at,
                        prices[product],
                        customer_id,
                    )
                )
                bought.append((product, quantity))
            if customer_id and rng.random() < 0.1:  # a later credit note for part of a line
                product, quantity = bought[int(rng.integers(len(bought)))]
                back = int(rng.integers(1, quantity + 1))
                later = min(at + pd.Timedelta(days=int(rng.integers(0, 20)), minutes=5), end)
                invoice_number += 1
                prefixed = rng.random() < 0.8
                number = f"C{invoice_number}" if prefixed else str(invoice_number)
                lines.append(
                    (number, f"P{product:03d}", -back, later, prices[product], customer_id)
                )
                refunds.append((customer_id, round(back * prices[product], 2)))
        if customer_id and customer % 7 == 0:  # the refund of a purchase before the export
            invoice_number += 1
            product = int(rng.integers(80))
            lines.append(
                (
                    f"C{invoice_number}",
                    f"Q{product:03d}",
                    -2,
                    start + pd.Timedelta(days=3),
                    prices[product],
                    customer_id,
                )
            )
    export = pd.DataFrame(
        lines,
        columns=["InvoiceNo", "StockCode", "Quantity", "InvoiceDate", "UnitPrice", "CustomerID"],
    )
    export = export.sort_values("InvoiceDate", kind="stable")
    export["InvoiceDate"] = export["InvoiceDate"].map(
        lambda t: f"{t.month}/{t.day}/{t.year} {t.hour}:{t.minute:02d}"
    )
    export.insert(2, "Description", "ITEM " + export["StockCode"])
    export["Country"] = "United Kingdom"
    return export, pd.DataFrame(refunds, columns=["customer_id", "refund"])


def test_an_invoice_line_export_with_credit_notes_publishes_with_net_revenue(tmp_path):
    export, refunds = invoice_export()
    source = tmp_path / "Online Retail.csv"
    export.to_csv(source, index=False)
    raw = tmp_path / "raw"
    imported = subprocess.run(
        [sys.executable, "-m", "cvm.importers", "invoice-lines", str(source), "--out", str(raw)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert imported.returncode == 0, imported.stderr
    result, warehouse = build_into(tmp_path, raw, CVM_AS_OF_DATE=INVOICES_AS_OF)
    assert_published(result)

    # Net revenue per customer in plain pandas: what they paid for their purchase lines, minus
    # what the credit notes against those purchases refunded.
    lines = export[export["CustomerID"] != ""]
    purchases = lines[~lines["InvoiceNo"].str.startswith("C") & (lines["Quantity"] > 0)]
    paid = (purchases["Quantity"] * purchases["UnitPrice"]).groupby(purchases["CustomerID"]).sum()
    expected = paid.sub(refunds.groupby("customer_id")["refund"].sum(), fill_value=0).round(2)
    mart = (
        pd.DataFrame(
            query(
                warehouse, "select customer_id, sum(net_revenue) from marts.fct_orders group by 1"
            ),
            columns=["customer_id", "net_revenue"],
        )
        .set_index("customer_id")["net_revenue"]
        .astype(float)
    )
    assert len(mart) == len(expected) > 700
    assert np.allclose(mart.reindex(expected.index), expected, atol=0.01)
    assert mart.sum() == pytest.approx(expected.sum(), abs=0.01)
    # Every refund was netted once; the refunds of purchases before the export are
    # quarantined with their reason, not netted and not dropped.
    ((credited,),) = query(warehouse, "select sum(credited_amount) from marts.fct_orders")
    assert float(credited) == pytest.approx(refunds["refund"].sum(), abs=0.01)
    unmatched = query(
        warehouse,
        "select count(*) from staging.stg_shop__quarantined_rows "
        "where source_table = 'credit_notes' and quarantine_reason = 'unmatched_credit_note'",
    )[0][0]
    older = export[export["StockCode"].str.startswith("Q") & (export["CustomerID"] != "")]
    assert unmatched == older["InvoiceNo"].nunique() > 0
    # Lines without a customer were set aside by the importer, with their values.
    set_aside = pd.read_csv(raw / "unattributed_lines.csv", dtype=str)
    assert len(set_aside) == (export["CustomerID"] == "").sum() > 0


# --------------------------------------------------------------------------------------------
# Customers who never leave: the BG/NBD fit cannot be identified


def regular_buyers(raw: Path, customers: int = 2000, seed: int = 5) -> None:
    """Customers buying regularly, every 20-60 days, from their first purchase to the end:
    nobody drops out, so the BG/NBD drop-out parameters run to the model's boundary."""
    rng = np.random.default_rng(seed)
    end = pd.Timestamp("2025-12-31")
    first = end - pd.to_timedelta(rng.integers(200, 900, customers), unit="D")
    rows = []
    for i, day in enumerate(first):
        gap = rng.uniform(20, 60)
        while day <= end:
            rows.append((f"c{i}", day, round(float(rng.gamma(8, 6)), 2)))
            day += pd.Timedelta(days=max(1, int(rng.gamma(9, gap / 9))))
    orders = pd.DataFrame(rows, columns=["customer_id", "ordered_at", "order_total"])
    orders.insert(0, "order_id", [f"o{i}" for i in range(len(orders))])
    orders.insert(3, "status", "completed")
    raw.mkdir(parents=True)
    orders.to_csv(raw / "orders.csv", index=False)
    pd.DataFrame(
        {"customer_id": [f"c{i}" for i in range(customers)], "signup_date": first.date}
    ).to_csv(raw / "customers.csv", index=False)


def test_a_fit_that_cannot_be_identified_is_a_finding_and_strict_stops(tmp_path):
    raw = tmp_path / "raw"
    regular_buyers(raw)
    result, warehouse = build_into(tmp_path, raw)
    assert_published(result)
    assert "scoring fit (BG/NBD) not identified: almost nobody drops out" in result.stdout
    assert "2,000 customers have no CLV (fit_not_identified)" in result.stdout
    statuses = dict(
        query(
            warehouse,
            "select fit_purpose || ' ' || model, max(fit_status) from marts.clv_model_parameters "
            "group by 1",
        )
    )
    assert statuses["scoring bg_nbd"] == statuses["holdout bg_nbd"] == "not_identified"
    # Every candidate of auto's choice is on its no-drop-out boundary: none is chosen by
    # a score, the first carries the customers' reason, and the choice says why.
    for model in ("pareto_nbd", "mbg_nbd"):
        assert statuses[f"scoring {model}"] == "not_identified", statuses
    ((chosen, reason),) = query(
        warehouse,
        "select distinct model, choice_reason from marts.clv_model_parameters "
        "where fit_purpose = 'scoring' and chosen and model != 'gamma_gamma'",
    )
    assert (chosen, reason) == ("bg_nbd", "no candidate could be fitted on the scoring data")
    ((customers, without_clv, reasons),) = query(
        warehouse,
        "select count(*), count(*) filter (where clv is null and p_alive is null), "
        "list(distinct clv_status_reason) from marts.customer_value",
    )
    assert customers == without_clv == 2000
    assert len(reasons) == 1 and "almost nobody drops out" in reasons[0]
    ((reported,),) = query(
        warehouse,
        "select count(*) from marts.clv_holdout_report "
        "where fit_status = 'not_identified' and predicted_purchase_days is null "
        "and actual_purchase_days > 0",
    )
    assert reported > 0  # the holdout report keeps what customers did, without predictions

    before = warehouse.read_bytes()
    strict, _ = build_into(tmp_path, raw, CVM_VARS="{clv_strict_fit: true}")
    assert strict.returncode != 0
    assert "var clv_strict_fit is true: almost nobody drops out" in strict.stdout + strict.stderr
    assert "is unchanged" in strict.stderr
    assert warehouse.read_bytes() == before


def test_no_third_party_warnings_in_a_build(cdnow):
    result, _ = cdnow
    assert "Warning:" not in result.stdout + result.stderr
    assert "np.float64" not in result.stdout + result.stderr
