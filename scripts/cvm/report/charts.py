"""How each chart of the report is drawn (Altair, i.e. Vega-Lite): one function per chart, given
what :mod:`cvm.report.queries` found. Titles, the as-of date and the reading sentence are added
by :mod:`cvm.report.page`; axes here say what they measure and in which unit."""

from __future__ import annotations

import altair as alt

from cvm.report.queries import NO_PURCHASE, NOT_YET_A_CUSTOMER, Found, Warehouse

WIDTH, HEIGHT = 460, 260
# Colours people read tiers by; a tier named otherwise in the value_tiers seed gets the next of
# FALLBACK_COLOURS.
TIER_COLOURS = {
    "Platinum": "#5b4b8a",
    "Gold": "#c9a227",
    "Silver": "#8c9aa6",
    "Bronze": "#a86b3c",
    "New": "#4c9f70",
    "Inactive": "#bdbdbd",
    "Unrated": "#d4b9da",
    NO_PURCHASE: "#e8e8e8",
}
FALLBACK_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b")
SERIES = ["actual", "predicted"]
SERIES_COLOURS = alt.Scale(domain=SERIES, range=["#1f4e79", "#e07b39"])
CURRENCY = "currency units"


def tier_scale(tiers: list[str]) -> alt.Scale:
    fallback = iter(FALLBACK_COLOURS * 3)
    return alt.Scale(domain=tiers, range=[TIER_COLOURS.get(t) or next(fallback) for t in tiers])


def present_tiers(wh: Warehouse, column) -> list[str]:
    """The tiers in their order, those that occur in ``column`` only."""
    seen = set(column)
    return [tier for tier in wh.tier_order if tier in seen]


def tier_bars(data, wh: Warehouse, field: str, title: str, axis_format: str = ",") -> alt.Chart:
    """Horizontal bars, one per tier in tier order, in the tier's colour."""
    tiers = present_tiers(wh, data["value_tier"])
    return (
        alt.Chart(data)
        .mark_bar()
        .encode(
            x=alt.X(f"{field}:Q", title=title, axis=alt.Axis(format=axis_format)),
            y=alt.Y("value_tier:N", sort=tiers, title="value tier"),
            color=alt.Color("value_tier:N", scale=tier_scale(tiers), legend=None),
            tooltip=["value_tier", alt.Tooltip(f"{field}:Q", format=axis_format)],
        )
        .properties(width=WIDTH // 2 - 20, height=alt.Step(22))
    )


def tier_flow(found: Found, wh: Warehouse) -> alt.TopLevelMixin:
    then, now = found.labels["then"], found.labels["now"]
    rows = [*present_tiers(wh, found.data["tier_then"]), NOT_YET_A_CUSTOMER]
    base = alt.Chart(found.data).encode(
        x=alt.X(
            "tier_now:N",
            sort=present_tiers(wh, found.data["tier_now"]),
            title=f"tier in {now} (customers per cell)",
            axis=alt.Axis(labelAngle=0, orient="top"),
        ),
        y=alt.Y("tier_then:N", sort=rows, title=f"tier in {then}"),
    )
    cells = base.mark_rect().encode(
        color=alt.Color(
            "share_of_then:Q",
            title=f"share of the {then} tier",
            scale=alt.Scale(scheme="blues", domain=[0, 1]),
            legend=alt.Legend(format=".0%"),
        ),
        tooltip=[
            "tier_then",
            "tier_now",
            alt.Tooltip("customers:Q", format=","),
            alt.Tooltip("share_of_then:Q", format=".1%"),
        ],
    )
    numbers = base.mark_text(fontSize=11).encode(
        text=alt.Text("customers:Q", format=","),
        color=alt.condition("datum.share_of_then > 0.5", alt.value("white"), alt.value("#222")),
    )
    return (cells + numbers).properties(width=WIDTH, height=HEIGHT)


def downgrades(found: Found, wh: Warehouse) -> alt.TopLevelMixin:
    month = found.labels["month"]
    to_tiers = present_tiers(wh, found.data["to_tier"])
    shares = (
        alt.Chart(found.data)
        .mark_bar()
        .encode(
            x=alt.X(
                "sum(transition_probability):Q",
                title=f"share of the tier that moved down in {month}",
                axis=alt.Axis(format=".0%", tickCount=5),
            ),
            y=alt.Y("from_tier:N", sort=list(wh.threshold_tiers), title="tier the month before"),
            color=alt.Color("to_tier:N", title="moved to", scale=tier_scale(to_tiers)),
            order=alt.Order("to_rank:Q"),
            tooltip=[
                "from_tier",
                "to_tier",
                alt.Tooltip("customers:Q", format=","),
                alt.Tooltip("transition_probability:Q", format=".1%"),
            ],
        )
        .properties(width=WIDTH // 2 + 40, height=alt.Step(26))
    )
    alerts = found.panel
    if alerts is None or alerts.empty:
        return shares
    alerts = alerts.assign(move=alerts["from_tier"] + " → " + alerts["to_tier"])
    alert_bars = (
        alt.Chart(alerts)
        .mark_bar(color="#b03a2e")
        .encode(
            x=alt.X("alerts:Q", title="downgrade alerts (customers)", axis=alt.Axis(tickCount=4)),
            y=alt.Y("move:N", sort="-x", title="move"),
            tooltip=["move", alt.Tooltip("alerts:Q", format=",")],
        )
        .properties(width=WIDTH // 2 - 40, height=alt.Step(20))
    )
    return alt.hconcat(shares, alert_bars).resolve_scale(color="independent")


def rfm_grid(found: Found, wh: Warehouse) -> alt.TopLevelMixin:
    lookback = found.labels["lookback_days"]
    scores = list(range(1, 6))

    def panel(field: str, title: str, number_format: str) -> alt.LayerChart:
        base = alt.Chart(found.data).encode(
            x=alt.X("recency_score:O", sort=scores, title="recency score (5 = most recent)"),
            y=alt.Y(
                "frequency_monetary_score:O",
                sort=scores[::-1],
                title="frequency-monetary score (5 = most)",
            ),
        )
        cells = base.mark_rect(stroke="white").encode(
            color=alt.Color(f"{field}:Q", title=title, scale=alt.Scale(scheme="greens")),
            tooltip=[
                "rfm_segment",
                alt.Tooltip("customers:Q", format=","),
                alt.Tooltip("revenue:Q", format=",.0f"),
            ],
        )
        names = base.mark_text(fontSize=9, dy=-7).encode(text="rfm_segment:N")
        numbers = base.mark_text(fontSize=10, dy=7).encode(
            text=alt.Text(f"{field}:Q", format=number_format)
        )
        return (cells + names + numbers).properties(width=WIDTH + 60, height=HEIGHT)

    # One above the other: the segment names need the width.
    return alt.vconcat(
        panel("customers", "customers", ","),
        panel("revenue", f"net revenue, last {lookback} days ({CURRENCY})", ",.3~s"),
    ).resolve_scale(color="independent")


def cohort_axis() -> dict:
    """The cohort axis of both cohort charts, labelled at each January."""
    return {
        "field": "cohort",
        "type": "ordinal",
        "title": "cohort (month of the first purchase)",
        "axis": alt.Axis(labelExpr="slice(datum.label, 5) === '01' ? datum.label : ''"),
    }


def cohort_retention(found: Found, wh: Warehouse) -> alt.TopLevelMixin:
    later = found.data[found.data["months"] > 0]["retention_rate"]
    top = float(later.max()) if not later.empty else 1.0
    return (
        alt.Chart(found.data)
        .mark_rect()
        .encode(
            x=alt.X(
                "months:O",
                title="months since the first purchase month",
                axis=alt.Axis(labelExpr="datum.value % 6 === 0 ? datum.label : ''"),
            ),
            y=alt.Y(**cohort_axis()),
            # Month 0 is 100 % by definition: the scale spans the later months.
            color=alt.Color(
                "retention_rate:Q",
                title="share buying",
                scale=alt.Scale(scheme="viridis", domain=[0, top], clamp=True),
                legend=alt.Legend(format=".0%"),
            ),
            tooltip=[
                "cohort",
                "months",
                alt.Tooltip("cohort_customers:Q", format=","),
                alt.Tooltip("retention_rate:Q", format=".1%"),
            ],
        )
        .properties(width=alt.Step(8), height=alt.Step(7))
    )


def cohort_revenue(found: Found, wh: Warehouse) -> alt.TopLevelMixin:
    horizon = found.labels["horizon"]
    return (
        alt.Chart(found.data)
        .mark_bar(color="#2e6f9e")
        .encode(
            x=alt.X(**cohort_axis()),
            y=alt.Y(
                "revenue_per_customer:Q",
                title=f"net revenue per customer by month {horizon} ({CURRENCY})",
                axis=alt.Axis(format=",.0f"),
            ),
            tooltip=[
                "cohort",
                alt.Tooltip("cohort_customers:Q", format=","),
                alt.Tooltip("revenue_per_customer:Q", format=",.2f"),
            ],
        )
        .properties(width=WIDTH, height=HEIGHT)
    )


def p_alive_matrix(found: Found, wh: Warehouse) -> alt.TopLevelMixin:
    recency = found.data.sort_values("recency_bin")["recency"].drop_duplicates().tolist()
    frequency = found.data.sort_values("purchases")["frequency"].drop_duplicates().tolist()
    base = alt.Chart(found.data).encode(
        x=alt.X("recency:O", sort=recency, title="days since the last purchase"),
        y=alt.Y("frequency:O", sort=frequency[::-1], title="completed purchases (lifetime)"),
    )
    cells = base.mark_rect().encode(
        color=alt.Color(
            "p_alive:Q",
            title="mean P(alive)",
            scale=alt.Scale(scheme="redyellowgreen", domain=[0, 1]),
        ),
        tooltip=[
            "recency",
            "frequency",
            alt.Tooltip("customers:Q", format=","),
            alt.Tooltip("p_alive:Q", format=".2f"),
        ],
    )
    numbers = base.mark_text(fontSize=9).encode(text=alt.Text("p_alive:Q", format=".2f"))
    return (cells + numbers).properties(width=WIDTH, height=HEIGHT)


def clv_by_tier(found: Found, wh: Warehouse) -> alt.TopLevelMixin:
    labels = found.labels
    tiers = present_tiers(wh, found.data["value_tier"])
    title = f"CLV per customer ({labels['basis']}, {CURRENCY})"
    # The key to the marks, where a legend would need a field per mark.
    key = (
        f"value tier · next {labels['horizon']} days · box 25-75 %, whiskers 10-90 %, "
        f"line: median · ◆ mean, with its {labels['level']} interval"
    )
    x = alt.X("value_tier:N", sort=tiers, title=key, axis=alt.Axis(labelAngle=0))
    base = alt.Chart(found.data).encode(x=x)
    tooltip = [
        "value_tier",
        alt.Tooltip("customers:Q", format=","),
        *(alt.Tooltip(f"{c}:Q", format=",.0f") for c in ("p10", "p25", "p50", "p75", "p90")),
        alt.Tooltip("mean:Q", format=",.0f"),
        alt.Tooltip("mean_lower:Q", format=",.0f", title=f"interval ({labels['level']}) from"),
        alt.Tooltip("mean_upper:Q", format=",.0f", title="to"),
    ]
    whiskers = base.mark_rule(color="#666").encode(y=alt.Y("p10:Q", title=title), y2="p90:Q")
    boxes = base.mark_bar(size=26).encode(
        y="p25:Q",
        y2="p75:Q",
        color=alt.Color("value_tier:N", scale=tier_scale(tiers), legend=None),
        tooltip=tooltip,
    )
    medians = base.mark_tick(color="white", size=26, thickness=2).encode(y="p50:Q")
    interval = base.mark_rule(color="#b03a2e", strokeWidth=3, xOffset=20).encode(
        y="mean_lower:Q", y2="mean_upper:Q"
    )
    means = base.mark_point(color="#b03a2e", filled=True, shape="diamond", xOffset=20).encode(
        y="mean:Q", tooltip=tooltip
    )
    return (whiskers + boxes + medians + interval + means).properties(width=WIDTH, height=HEIGHT)


def holdout_by_frequency(found: Found, wh: Warehouse) -> alt.TopLevelMixin:
    buckets = found.data.sort_values("bucket_order")["bucket"].drop_duplicates().tolist()
    return (
        alt.Chart(found.data)
        .mark_bar()
        .encode(
            x=alt.X(
                "bucket:N",
                sort=buckets,
                title="repeat purchase days in the calibration period",
                axis=alt.Axis(labelAngle=0),
            ),
            xOffset=alt.XOffset("series:N", sort=SERIES),
            y=alt.Y(
                "per_customer:Q",
                title=f"repeat purchase days per customer, {found.labels['days']} holdout days",
            ),
            color=alt.Color("series:N", title=None, scale=SERIES_COLOURS),
            tooltip=[
                "bucket",
                "series",
                alt.Tooltip("customers:Q", format=","),
                alt.Tooltip("per_customer:Q", format=".3f"),
            ],
        )
        .properties(width=WIDTH, height=HEIGHT)
    )


def holdout_over_time(found: Found, wh: Warehouse) -> alt.TopLevelMixin:
    return (
        alt.Chart(found.data)
        .mark_line(point=True)
        .encode(
            x=alt.X(
                "day:Q",
                title=f"days after {found.labels['end']}",
                scale=alt.Scale(domain=[0, found.labels["days"]], nice=False),
            ),
            y=alt.Y(
                "purchase_days:Q",
                title="cumulative repeat purchase days",
                axis=alt.Axis(format=","),
            ),
            color=alt.Color("series:N", title=None, scale=SERIES_COLOURS, sort=SERIES),
            strokeDash=alt.StrokeDash("series:N", legend=None, sort=SERIES),
            tooltip=["series", "day", alt.Tooltip("purchase_days:Q", format=",.0f")],
        )
        .properties(width=WIDTH, height=HEIGHT)
    )


def share_of_wallet(found: Found, wh: Warehouse) -> alt.TopLevelMixin:
    return alt.hconcat(
        tier_bars(found.data, wh, "average_share_of_wallet", "average share of wallet", ".0%"),
        tier_bars(found.data, wh, "wallet_headroom", f"wallet headroom ({CURRENCY})", ",.0f"),
    )


def satisfaction(found: Found, wh: Warehouse) -> alt.TopLevelMixin:
    panels = []
    if found.labels["has_surveys"]:
        panels.append(
            tier_bars(
                found.data.dropna(subset=["nps"]),
                wh,
                "nps",
                "Net Promoter Score (-100 to 100)",
                "d",
            )
        )
    if found.labels["has_complaints"]:
        panels.append(
            tier_bars(found.data, wh, "complaints_per_1000_orders", "complaints per 1,000 orders")
        )
    return panels[0] if len(panels) == 1 else alt.hconcat(*panels)


def lost_reasons(found: Found, wh: Warehouse) -> alt.TopLevelMixin:
    base = alt.Chart(found.data).encode(
        # Most lost first (the query's order); a sort by "-x" would differ between the layers.
        y=alt.Y("lapse_reason:N", sort=found.data["lapse_reason"].tolist(), title="lapse reason"),
        x=alt.X("lost_customers:Q", title="lost customers"),
    )
    bars = base.mark_bar(color="#7f7f7f").encode(
        tooltip=[
            "lapse_reason",
            alt.Tooltip("lost_customers:Q", format=","),
            alt.Tooltip("share_of_lost_customers:Q", format=".1%"),
        ]
    )
    shares = base.mark_text(align="left", dx=4, fontSize=10).encode(
        text=alt.Text("share_of_lost_customers:Q", format=".1%")
    )
    return (bars + shares).properties(width=WIDTH - 80, height=alt.Step(22))


def contact_plan(found: Found, wh: Warehouse) -> alt.TopLevelMixin:
    def bars(field: str, title: str) -> alt.Chart:
        return (
            alt.Chart(found.data)
            .mark_bar(color="#2e6f9e")
            .encode(
                x=alt.X(f"{field}:Q", title=title, axis=alt.Axis(format=",.0f")),
                y=alt.Y("strategy:N", sort=found.data["strategy"].tolist(), title="strategy"),
                tooltip=[
                    "strategy",
                    alt.Tooltip("contacts:Q", format=","),
                    alt.Tooltip("cost:Q", format=",.2f"),
                    alt.Tooltip("expected_net_return:Q", format=",.0f"),
                ],
            )
            .properties(width=WIDTH // 2 - 30, height=alt.Step(22))
        )

    return alt.hconcat(
        bars("contacts", "customers to contact"),
        bars("expected_net_return", f"expected net return ({CURRENCY})"),
    )
