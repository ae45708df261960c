"""What each chart of the report shows, read from the published warehouse: one function per
chart returning its data and the sentence that reads it out, or :class:`Missing` with the reason
the chart cannot be drawn (no surveys, a lifetime-value fit skipped, ...).

Sentences are computed here from the marts and the `bi` exports, never typed by hand, so the
page and the warehouse cannot disagree; python_tests/test_report.py recomputes each one in SQL.
Numbers are written as the issue's example reads: "7.5 %", "4,741", "239,080".
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from cvm.clv.purchase import FIT_CLASSES, conditional_expected_purchases
from cvm.clv.warehouse import MODEL_LABELS

# Tiers besides the value_tiers seed's thresholds (doc block value_tier), in the order charts
# list them; customers without a completed purchase have no tier.
OTHER_TIERS = ("New", "Inactive", "Unrated")
NO_PURCHASE = "no purchase"
NOT_YET_A_CUSTOMER = "not yet a customer"
# The tier comparison of chart 1 and the horizon of the cohort charts: a year back or ahead.
MONTHS_BACK = 12
RECENT_DAYS, LAPSED_DAYS = 90, 365  # the two recency groups the P(alive) sentence compares
RECENCY_BIN_DAYS, RECENCY_BINS, PURCHASE_BINS = (
    30,
    12,
    10,
)  # the P(alive) grid's last bins: 360+, 10+
OVER_TIME_STEP_DAYS = 7


@dataclass(frozen=True)
class Found:
    """A chart's data (``data``, and ``panel`` for a second panel), the sentence that reads
    it, and labels the drawing needs (units, the interval level, ...)."""

    reading: str
    data: pd.DataFrame
    panel: pd.DataFrame | None = None
    labels: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Missing:
    """Why a chart is not drawn; the page shows this in its place."""

    reason: str


@dataclass(frozen=True)
class Warehouse:
    """A read-only connection and what every chart shares: the as-of date, the value basis and
    the tiers in order."""

    con: duckdb.DuckDBPyConnection
    as_of: dt.date
    value_basis: str
    threshold_tiers: tuple[str, ...]

    @property
    def tier_order(self) -> list[str]:
        return [*self.threshold_tiers, *OTHER_TIERS, NO_PURCHASE]

    @property
    def value_label(self) -> str:
        return "gross margin" if self.value_basis == "gross_margin" else "net revenue"

    def frame(self, sql: str, params: Sequence[Any] = ()) -> pd.DataFrame:
        return self.con.execute(sql, list(params)).df()

    def row(self, sql: str, params: Sequence[Any] = ()) -> tuple:
        return self.con.execute(sql, list(params)).fetchone()


@contextmanager
def open_warehouse(path: Path) -> Iterator[Warehouse]:
    """The published warehouse, read-only: BI readers and a running build are not disturbed."""
    if not path.is_file():
        raise FileNotFoundError(f"No warehouse at {path}: run `make build` first")
    with duckdb.connect(str(path), read_only=True) as con:
        as_of, basis = con.execute(
            "select max(as_of_date), coalesce(any_value(value_basis), 'revenue') "
            "from marts.customer_value"
        ).fetchone()
        if as_of is None:
            raise ValueError(f"{path} has no customers (marts.customer_value is empty)")
        tiers = con.execute(
            "select value_tier from reference.value_tiers where value_basis = ? order by tier_rank",
            [basis],
        ).fetchall()
        yield Warehouse(con, as_of, basis, tuple(tier for (tier,) in tiers))


# --------------------------------------------------------------------------------------------
# How numbers read


def percent(share: float) -> str:
    return f"{share * 100:.1f} %"


def signed_percent(share: float) -> str:
    return f"{share * 100:+.1f} %"


def count(number: float) -> str:
    return f"{number:,.0f}"


def month_name(day: dt.date) -> str:
    return day.strftime("%B %Y")


def months_before(day: dt.date, months: int) -> dt.date:
    """The first of the month ``months`` before ``day``'s month."""
    index = day.year * 12 + day.month - 1 - months
    return dt.date(index // 12, index % 12 + 1, 1)


def humanise(name: str) -> str:
    return name.replace("_", " ")


def sentence(text: str) -> str:
    return text[:1].upper() + text[1:]


def tier_customers(tier: str) -> str:
    """A tier's customers in a sentence: "Gold customers", "customers without a purchase"."""
    return "customers without a purchase" if tier == NO_PURCHASE else f"{tier} customers"


def _lookback_days(wh: Warehouse) -> int:
    return int(wh.row("select max(lookback_days) from marts.customer_value")[0])


def _has_feedback(wh: Warehouse) -> tuple[bool, bool]:
    """Whether the data has survey answers to the recommend question, and complaints."""
    surveys, complaints = wh.row(
        "select (select count(nps_score) from marts.fct_survey_responses), "
        "(select count(*) from marts.fct_complaints)"
    )
    return surveys > 0, complaints > 0


def _fit_problem(wh: Warehouse, purpose: str) -> str | None:
    """Why the lifetime-value fit of ``purpose`` has no estimates, in the fit's own words (the
    chosen purchase model and Gamma-Gamma: candidates auto did not choose may fail)."""
    problems = wh.con.execute(
        "select model, max(fit_status), max(fit_message) from marts.clv_model_parameters "
        "where fit_purpose = ? and chosen and fit_status <> 'fitted' group by 1 order by 1",
        [purpose],
    ).fetchall()
    if not problems:
        return None
    models = " and ".join(MODEL_LABELS.get(model, model) for model, _, _ in problems)
    _, status, message = problems[0]
    return f"the {purpose} fit ({models}) {humanise(status)}: {message}"


# --------------------------------------------------------------------------------------------
# 1. Value tiers now and twelve months ago; the moves and downgrade alerts of the latest month


def tier_flow(wh: Warehouse) -> Found | Missing:
    first, latest = wh.row(
        "select min(period_month), max(period_month) from marts.fct_customer_tier_months"
    )
    if latest is None:
        return Missing("the tier history is empty: no customer has a completed purchase")
    earlier = max(first, months_before(latest, MONTHS_BACK))
    if earlier == latest:
        return Missing(f"the tier history holds one month ({month_name(latest)}) only")
    flows = wh.frame(
        """
        select coalesce(earlier.value_tier, ?) as tier_then, latest.value_tier as tier_now,
            count(*) as customers
        from marts.fct_customer_tier_months as latest
        left join marts.fct_customer_tier_months as earlier
            on earlier.customer_id = latest.customer_id and earlier.period_month = ?
        where latest.period_month = ?
        group by all
        """,
        [NOT_YET_A_CUSTOMER, earlier, latest],
    )
    flows["share_of_then"] = flows["customers"] / flows.groupby("tier_then")["customers"].transform(
        "sum"
    )
    top = list(wh.threshold_tiers[:2])
    now_top = flows.loc[flows["tier_now"].isin(top), "customers"].sum()
    from_top = flows[flows["tier_then"].isin(top)]
    then_top = from_top["customers"].sum()
    reading = (
        f"{' and '.join(top)}: {count(now_top)} customers in {month_name(latest)} against "
        f"{count(then_top)} in {month_name(earlier)}"
    )
    if then_top:
        kept = from_top.loc[from_top["tier_now"].isin(top), "customers"].sum()
        lapsed = from_top.loc[from_top["tier_now"] == "Inactive", "customers"].sum()
        reading += (
            f"; {percent(kept / then_top)} of those of {month_name(earlier)} are still "
            f"{' or '.join(top)}, {percent(lapsed / then_top)} are Inactive."
        )
    else:
        reading += "."
    labels = {"then": month_name(earlier), "now": month_name(latest)}
    return Found(reading, flows, labels=labels)


def downgrades(wh: Warehouse) -> Found | Missing:
    moves = wh.frame(
        """
        select from_period_month, to_period_month, from_tier, to_tier, customers,
            transition_probability,
            sum(customers) over (partition by from_tier) as from_tier_customers
        from marts.tier_migration_matrix
        where to_period_month = (select max(to_period_month) from marts.tier_migration_matrix)
        """
    )
    if moves.empty:
        return Missing("no tier moves yet: the tier history holds one month only")
    rank = {tier: position for position, tier in enumerate(wh.threshold_tiers)}
    down = moves[
        [
            frm in rank and (to == "Inactive" or rank.get(to, -1) > rank[frm])
            for frm, to in zip(moves["from_tier"], moves["to_tier"], strict=True)
        ]
    ].copy()
    alerts = wh.frame(
        "select from_tier, to_tier, count(*) as alerts "
        "from marts.tier_downgrade_alerts group by all"
    )
    month = month_name(moves["to_period_month"].iloc[0])
    alert_count = int(alerts["alerts"].sum())
    if down.empty:
        return Missing(f"no customer moved down a tier in {month}")
    down = down.merge(alerts, on=["from_tier", "to_tier"], how="left").fillna({"alerts": 0})
    down["from_rank"] = down["from_tier"].map(rank)
    down["to_rank"] = down["to_tier"].map(rank).fillna(len(rank))
    # The move read out: the one with the most alerts, else the most customers.
    quoted = down.sort_values(
        ["alerts", "customers", "from_rank", "to_rank"], ascending=[False, False, True, True]
    ).iloc[0]
    alerted = " and ".join(t for t in wh.threshold_tiers if t in set(alerts["from_tier"]))
    reading = (
        f"{percent(quoted['transition_probability'])} of {quoted['from_tier']} customers moved "
        f"to {quoted['to_tier']} in {month} ({count(quoted['customers'])} of "
        f"{count(quoted['from_tier_customers'])}); {count(alert_count)} downgrade alerts"
        + (f" for {alerted} customers who moved down." if alerted else ".")
    )
    return Found(reading, down, alerts, labels={"month": month})


# --------------------------------------------------------------------------------------------
# 2. The RFM grid


def rfm_grid(wh: Warehouse) -> Found | Missing:
    cells = wh.frame(
        """
        select seg.recency_score, seg.frequency_monetary_score, seg.rfm_segment,
            count(cv.customer_id) as customers,
            coalesce(sum(cv.monetary_lookback), 0)::double as revenue
        from reference.rfm_segments as seg
        left join marts.customer_value as cv
            on cv.recency_score = seg.recency_score
            and cv.frequency_monetary_score = seg.frequency_monetary_score
        group by all
        """
    )
    customers, revenue = cells["customers"].sum(), cells["revenue"].sum()
    if customers == 0:
        return Missing("no customer has a completed purchase, so nobody has RFM scores")
    segments = cells.groupby("rfm_segment")[["customers", "revenue"]].sum()
    top = segments["revenue"].idxmax() if revenue else segments["customers"].idxmax()
    lookback = _lookback_days(wh)
    revenue_share = segments.loc[top, "revenue"] / revenue if revenue else 0.0
    reading = (
        f"{top}: {percent(segments.loc[top, 'customers'] / customers)} of the customers with a "
        f"purchase bring {percent(revenue_share)} of the net revenue of the last {lookback} days."
    )
    return Found(reading, cells, labels={"lookback_days": lookback})


# --------------------------------------------------------------------------------------------
# 3. Cohort retention, and revenue per customer by cohort


def _cohorts(wh: Warehouse) -> tuple[pd.DataFrame, int, pd.DataFrame] | Missing:
    """marts.cohort_retention, the month the cohort sentences read (12, or the latest any cohort
    has reached in a shorter history), and that month's row of each cohort that reached it,
    oldest first."""
    cells = wh.frame(
        """
        select strftime(cohort_month, '%Y-%m') as cohort, cohort_month,
            months_since_first_purchase as months, cohort_customers, purchasing_customers,
            retention_rate, cumulative_net_revenue_per_customer::double as revenue_per_customer
        from marts.cohort_retention
        """
    )
    if cells.empty:
        return Missing("no cohorts: no customer has a completed purchase")
    horizon = min(MONTHS_BACK, int(cells["months"].max()))
    if horizon == 0:
        return Missing("the history holds one month: no cohort has come back yet")
    return cells, horizon, cells[cells["months"] == horizon].sort_values("cohort_month")


def cohort_retention(wh: Warehouse) -> Found | Missing:
    cohorts = _cohorts(wh)
    if isinstance(cohorts, Missing):
        return cohorts
    cells, horizon, reached = cohorts
    latest = reached.iloc[-1]
    overall = reached["purchasing_customers"].sum() / reached["cohort_customers"].sum()
    reading = (
        f"{percent(latest['retention_rate'])} of the customers acquired in "
        f"{month_name(latest['cohort_month'])} bought in month {horizon} after their first "
        f"purchase; {percent(overall)} over all {count(len(reached))} cohorts that have "
        f"reached month {horizon}."
    )
    return Found(reading, cells.drop(columns="cohort_month"), labels={"horizon": horizon})


def cohort_revenue(wh: Warehouse) -> Found | Missing:
    cohorts = _cohorts(wh)
    if isinstance(cohorts, Missing):
        return cohorts
    _, horizon, reached = cohorts
    latest = reached.iloc[-1]
    best = reached.loc[reached["revenue_per_customer"].idxmax()]
    reading = (
        f"Customers acquired in {month_name(latest['cohort_month'])} had spent "
        f"{count(latest['revenue_per_customer'])} each by month {horizon}; "
        + (
            "no earlier cohort spent more."
            if best["cohort"] == latest["cohort"]
            else f"the best cohort, {month_name(best['cohort_month'])}, "
            f"{count(best['revenue_per_customer'])}."
        )
    )
    data = reached[["cohort", "cohort_customers", "revenue_per_customer"]]
    return Found(reading, data, labels={"horizon": horizon})


# --------------------------------------------------------------------------------------------
# 4. P(alive) by recency and frequency; CLV by tier with its interval


def p_alive_matrix(wh: Warehouse) -> Found | Missing:
    cells = wh.frame(
        f"""
        select least(recency_days // {RECENCY_BIN_DAYS}, {RECENCY_BINS}) as recency_bin,
            least(purchase_count_lifetime, {PURCHASE_BINS}) as purchases,
            count(*) as customers, avg(p_alive) as p_alive
        from marts.customer_value
        where p_alive is not null
        group by all
        """
    )
    if cells.empty:
        return Missing(_fit_problem(wh, "scoring") or "no customer has a P(alive)")
    recent, lapsed = wh.row(
        f"""
        select avg(p_alive) filter (where recency_days <= {RECENT_DAYS}),
            avg(p_alive) filter (where recency_days > {LAPSED_DAYS})
        from marts.customer_value
        where p_alive is not null
        """
    )
    recently = f"customers who bought in the last {RECENT_DAYS} days"
    long_ago = f"those whose last purchase is more than {LAPSED_DAYS} days back"
    parts = [
        f"{recently} are alive with probability {recent:.2f} on average"
        if recent is not None
        else f"there are no {recently}",
        f"{long_ago}, {lapsed:.2f}" if lapsed is not None else f"there are none of {long_ago}",
    ]
    cells["recency"] = [
        f"{RECENCY_BINS * RECENCY_BIN_DAYS}+"
        if b == RECENCY_BINS
        else f"{b * RECENCY_BIN_DAYS}-{(b + 1) * RECENCY_BIN_DAYS - 1}"
        for b in cells["recency_bin"]
    ]
    cells["frequency"] = [f"{n}+" if n == PURCHASE_BINS else str(n) for n in cells["purchases"]]
    return Found(sentence("; ".join(parts) + "."), cells)


def clv_by_tier(wh: Warehouse) -> Found | Missing:
    tiers = wh.frame(
        f"""
        select coalesce(value_tier, '{NO_PURCHASE}') as value_tier, count(*) as customers,
            quantile_cont(clv, 0.1) as p10, quantile_cont(clv, 0.25) as p25,
            quantile_cont(clv, 0.5) as p50, quantile_cont(clv, 0.75) as p75,
            quantile_cont(clv, 0.9) as p90, avg(clv) as mean, avg(clv_lower) as mean_lower,
            avg(clv_upper) as mean_upper
        from marts.customer_value
        where clv is not null
        group by 1
        """
    )
    if tiers.empty:
        return Missing(_fit_problem(wh, "scoring") or "no customer has a CLV")
    basis, horizon = wh.row(
        "select any_value(clv_basis), max(clv_horizon_days) from marts.customer_value "
        "where clv is not null"
    )
    (level,) = wh.row(
        "select max(interval_level) from marts.clv_model_parameters where fit_purpose = 'scoring'"
    )
    order = {tier: position for position, tier in enumerate(wh.tier_order)}
    tiers = tiers.sort_values("value_tier", key=lambda s: s.map(order).fillna(len(order)))
    best = tiers.iloc[0]
    reading = (
        f"A {best['value_tier']} customer's CLV over the next {horizon} days averages "
        f"{count(best['mean'])} (its {level * 100:.0f} % interval from "
        f"{count(best['mean_lower'])} to {count(best['mean_upper'])} on average); half of them "
        f"are worth more than {count(best['p50'])}."
    )
    labels = {"basis": humanise(basis), "horizon": horizon, "level": f"{level * 100:.0f} %"}
    return Found(reading, tiers, labels=labels)


# --------------------------------------------------------------------------------------------
# 5. The holdout check: by calibration frequency and over time


def _holdout(wh: Warehouse) -> pd.DataFrame | Missing:
    report = wh.frame(
        """
        select bucket_order, calibration_repeat_purchase_days as bucket, calibration_end_date,
            holdout_days, customers, actual_purchase_days, predicted_purchase_days,
            actual_per_customer, predicted_per_customer, relative_error, fit_status, model
        from marts.clv_holdout_report
        where chosen
        order by bucket_order
        """
    )
    if report.empty:
        return Missing("no holdout fit: var clv_holdout_days is 0")
    report["calibration_end_date"] = pd.to_datetime(report["calibration_end_date"]).dt.date
    if (report["fit_status"] != "fitted").any() or report["predicted_purchase_days"].isna().any():
        return Missing(_fit_problem(wh, "holdout") or "the holdout fit has no predictions")
    return report


def _holdout_reading(total: pd.Series) -> str:
    end = total["calibration_end_date"]
    return (
        f"In the {total['holdout_days']} days after {end}, the {count(total['customers'])} "
        f"customers of the holdout fit made {count(total['actual_purchase_days'])} repeat "
        f"purchase days; the {MODEL_LABELS.get(total['model'], total['model'])} model "
        f"(the one customer value is scored with) fitted up to {end} predicted "
        f"{count(total['predicted_purchase_days'])} ({signed_percent(total['relative_error'])})."
    )


def holdout_by_frequency(wh: Warehouse) -> Found | Missing:
    report = _holdout(wh)
    if isinstance(report, Missing):
        return report
    total = report[report["bucket"] == "total"].iloc[0]
    buckets = report[report["bucket"] != "total"]
    long = buckets.melt(
        id_vars=["bucket_order", "bucket", "customers"],
        value_vars=["actual_per_customer", "predicted_per_customer"],
        var_name="series",
        value_name="per_customer",
    )
    long["series"] = long["series"].str.removesuffix("_per_customer")
    return Found(_holdout_reading(total), long, labels={"days": int(total["holdout_days"])})


def holdout_over_time(wh: Warehouse) -> Found | Missing:
    """Cumulative repeat purchase days after the holdout fit's calibration end: the actual ones
    from the orders, the predicted ones from the fit's parameters (sum of each customer's
    E[Y(t) | x, t_x, T]); at the end they are the holdout report's totals."""
    report = _holdout(wh)
    if isinstance(report, Missing):
        return report
    total = report[report["bucket"] == "total"].iloc[0]
    end, days = total["calibration_end_date"], int(total["holdout_days"])
    actual = wh.frame(
        """
        select purchase.order_date - ?::date as day, count(*) as purchase_days
        from (
            select distinct customer_id, order_date from marts.fct_orders
            where status = 'completed' and order_date > ?::date
        ) as purchase
        inner join intermediate.int_customers_summarised_for_clv as fitted
            on fitted.customer_id = purchase.customer_id and fitted.fit_purpose = 'holdout'
        where purchase.order_date - ?::date <= ?
        group by 1
        """,
        [end, end, end, days],
    )
    by_day = actual.set_index("day")["purchase_days"].reindex(range(days + 1), fill_value=0)
    cumulative = by_day.cumsum()
    if cumulative.iloc[-1] != total["actual_purchase_days"]:
        return Missing(
            "the holdout counts purchases of other statuses than completed "
            "(var clv_purchase_statuses), so its purchases cannot be dated from the orders here"
        )
    model = str(total["model"])
    parameters = dict(
        wh.con.execute(
            "select parameter, value from marts.clv_model_parameters "
            "where fit_purpose = 'holdout' and model = ?",
            [model],
        ).fetchall()
    )
    cls = FIT_CLASSES[model]
    fit = cls.PARAMS(*(parameters[name] for name in cls.PARAMETER_NAMES))
    histories = wh.con.execute(
        """
        select repeat_purchase_days::double, recency_days::double, age_days::double,
            count(*)::double
        from intermediate.int_customers_summarised_for_clv
        where fit_purpose = 'holdout'
        group by all
        """
    ).fetchnumpy()
    x, t_x, age, customers = histories.values()
    steps = sorted({*range(0, days, OVER_TIME_STEP_DAYS), days})
    predicted = [
        float(np.sum(customers * conditional_expected_purchases(fit, t, x, t_x, age)))
        for t in steps
    ]
    curves = pd.concat(
        [
            pd.DataFrame({"day": steps, "series": "actual", "purchase_days": cumulative[steps]}),
            pd.DataFrame({"day": steps, "series": "predicted", "purchase_days": predicted}),
        ],
        ignore_index=True,
    )
    middle = days // 2
    reading = (
        f"Cumulative repeat purchase days after {end}: {count(cumulative[middle])} by day "
        f"{middle} and {count(cumulative[days])} by day {days}; the model's curve ends at "
        f"{count(predicted[-1])} ({signed_percent(predicted[-1] / cumulative[days] - 1)})."
    )
    return Found(reading, curves, labels={"end": str(end), "days": days})


# --------------------------------------------------------------------------------------------
# 6. Share of wallet and headroom by tier; NPS and complaints by tier (the bi exports)


def share_of_wallet(wh: Warehouse) -> Found | Missing:
    tiers = wh.frame(
        f"""
        select coalesce(customer__value_tier, '{NO_PURCHASE}') as value_tier, customers,
            average_share_of_wallet, wallet_headroom::double as wallet_headroom
        from bi.share_of_wallet_by_tier
        """
    )
    tiers = tiers.dropna(subset=["average_share_of_wallet"])
    if tiers.empty:
        return Missing("no customer has a share of wallet")
    roomiest = tiers.loc[tiers["wallet_headroom"].idxmax()]
    loyalest = tiers.loc[tiers["average_share_of_wallet"].idxmax()]
    reading = (
        f"{tier_customers(roomiest['value_tier'])} have the most headroom: "
        f"{count(roomiest['wallet_headroom'])} more to win in our categories; "
        f"{tier_customers(loyalest['value_tier'])} already buy "
        f"{percent(loyalest['average_share_of_wallet'])} of their wallet here, the most of "
        "any tier."
    )
    return Found(sentence(reading), tiers)


def satisfaction(wh: Warehouse) -> Found | Missing:
    has_surveys, has_complaints = _has_feedback(wh)
    if not has_surveys and not has_complaints:
        return Missing(
            "the data has no survey answers and no complaints (the optional raw files surveys "
            "and complaints): there is no NPS or complaint rate to show by tier"
        )
    tiers = wh.frame(
        f"""
        select coalesce(customer__value_tier, '{NO_PURCHASE}') as value_tier, nps,
            nps_respondents, complaints, complaints_per_1000_orders
        from bi.satisfaction_by_tier
        """
    )
    parts = []
    if has_surveys:
        rated = tiers.dropna(subset=["nps"])
        low, high = rated.loc[rated["nps"].idxmin()], rated.loc[rated["nps"].idxmax()]
        parts.append(
            f"NPS runs from {low['nps']:+.0f} ({low['value_tier']}) to {high['nps']:+.0f} "
            f"({high['value_tier']})"
        )
    else:
        parts.append("No survey answers in the data, so no NPS")
    if has_complaints:
        worst = tiers.loc[tiers["complaints_per_1000_orders"].idxmax()]
        parts.append(
            f"{tier_customers(worst['value_tier'])} complain most, "
            f"{worst['complaints_per_1000_orders']:.1f} times per 1,000 orders"
        )
    else:
        parts.append("no complaints in the data")
    labels = {"has_surveys": has_surveys, "has_complaints": has_complaints}
    return Found("; ".join(parts) + ".", tiers, labels=labels)


# --------------------------------------------------------------------------------------------
# 7. Lost customers by reason; the contact plan


def lost_reasons(wh: Warehouse) -> Found | Missing:
    reasons = wh.frame(
        "select lapse_reason, lost_customers, share_of_lost_customers "
        "from marts.lost_customer_reasons order by lost_customers desc"
    )
    lookback = _lookback_days(wh)
    lost = int(reasons["lost_customers"].sum())
    if lost == 0:
        return Missing(
            f"no lost customers: everyone with a purchase bought in the last {lookback} days"
        )
    if not any(_has_feedback(wh)):
        return Missing(
            "lapse reasons come from complaints and survey answers, and the data has neither: "
            f"all {count(lost)} lost customers read 'no signal'"
        )
    named = reasons[reasons["lapse_reason"] != "no signal"]
    silent = reasons.loc[reasons["lapse_reason"] == "no signal", "share_of_lost_customers"].sum()
    reading = (
        f"{count(lost)} customers are lost (a purchase, but none in the last {lookback} days); "
    )
    if named.empty:
        reading += "none complained or answered a survey unhappily before they lapsed."
    else:
        top = named.iloc[0]
        reading += (
            f"the most common reason named is '{top['lapse_reason']}' "
            f"({percent(top['share_of_lost_customers'])}), and {percent(silent)} left no signal."
        )
    return Found(reading, reasons, labels={"lookback_days": lookback})


def contact_plan(wh: Warehouse) -> Found | Missing:
    summary = wh.frame("select * from marts.contact_plan_summary").iloc[0]
    if summary["contact_count"] == 0:
        return Missing(
            f"no contact is worth its cost within the budget of "
            f"{count(summary['contact_budget'])} ({count(summary['candidate_count'])} candidates)"
        )
    strategies = wh.frame(
        """
        select primary_strategy, count(*) as contacts, sum(contact_cost)::double as cost,
            sum(expected_net_return) as expected_net_return
        from marts.contact_plan
        group by 1
        order by contacts desc, primary_strategy
        """
    )
    strategies["strategy"] = strategies["primary_strategy"].map(humanise)
    most = strategies.iloc[0]
    reading = (
        f"Within the budget of {count(summary['contact_budget'])}, the plan contacts "
        f"{count(summary['contact_count'])} of {count(summary['candidate_count'])} candidates "
        f"for {count(summary['total_contact_cost'])} and expects a net return of "
        f"{count(summary['expected_net_return'])} "
        f"({summary['expected_return_on_cost']:.1f} per unit spent); {most['strategy']} has "
        f"the most contacts ({count(most['contacts'])})."
    )
    return Found(reading, strategies)
