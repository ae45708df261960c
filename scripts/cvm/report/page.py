"""The report page: every chart in order, each with its title, the as-of date, its sources and
the sentence that reads it; Vega's JavaScript and every style inlined, so that the page opens
from file:// without a network (its Content-Security-Policy forbids any request); a PNG of each
chart beside it. Written into a fresh directory that replaces the old one when complete."""

from __future__ import annotations

import html
import json
import os
import shutil
import textwrap
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import altair as alt
import vl_convert

from cvm import PROJECT_DIR
from cvm.report import charts, queries
from cvm.report.queries import Found, Missing, Warehouse

DEFAULT_REPORT_DIR = PROJECT_DIR / "build" / "report"
# vl-convert bundles Vega, Vega-Lite and vega-embed in about a second; the bundle only changes
# with vl-convert's version, so it is kept here between reports (not committed).
BUNDLE_CACHE_DIR = PROJECT_DIR / "build" / "cache"
VEGA_LITE_VERSION = ".".join(alt.SCHEMA_VERSION.lstrip("v").split(".")[:2])
PNG_SCALE = 2
CONTENT_SECURITY_POLICY = (
    # Vega compiles its expressions with Function(): 'unsafe-eval'. Nothing may be fetched.
    "default-src 'none'; script-src 'unsafe-inline' 'unsafe-eval'; "
    "style-src 'unsafe-inline'; img-src data:"
)


def report_dir(env: Mapping[str, str]) -> Path:
    """CVM_REPORT_DIR, else build/report."""
    configured = env.get("CVM_REPORT_DIR", "").strip()
    return Path(configured).resolve() if configured else DEFAULT_REPORT_DIR


@dataclass(frozen=True)
class Figure:
    name: str
    title: str
    sources: tuple[str, ...]
    query: Callable[[Warehouse], Found | Missing]
    draw: Callable[[Found, Warehouse], alt.TopLevelMixin]


def figure(name: str, title: str, *sources: str) -> Figure:
    """A chart whose query and drawing functions share its name."""
    return Figure(name, title, sources, getattr(queries, name), getattr(charts, name))


# The questions of the report, in the order of issue 17.
SECTIONS: tuple[tuple[str, tuple[Figure, ...]], ...] = (
    (
        "Who is valuable, and how that changed",
        (
            figure(
                "tier_flow",
                "Value tiers now and twelve months ago",
                "marts.fct_customer_tier_months",
            ),
            figure(
                "downgrades",
                "Who moved down a tier in the latest month",
                "marts.tier_migration_matrix",
                "marts.tier_downgrade_alerts",
            ),
        ),
    ),
    (
        "RFM",
        (
            figure(
                "rfm_grid",
                "The RFM grid: customers and revenue per cell",
                "marts.customer_value",
                "reference.rfm_segments",
            ),
        ),
    ),
    (
        "Which cohorts stay",
        (
            figure("cohort_retention", "Cohort retention", "marts.cohort_retention"),
            figure("cohort_revenue", "Revenue per customer by cohort", "marts.cohort_retention"),
        ),
    ),
    (
        "Lifetime value",
        (
            figure(
                "p_alive_matrix",
                "P(alive) by recency and frequency",
                "marts.customer_value",
            ),
            figure(
                "clv_by_tier",
                "CLV by tier, with its interval",
                "marts.customer_value",
                "marts.clv_model_parameters",
            ),
        ),
    ),
    (
        "Can the lifetime-value model be trusted?",
        (
            figure(
                "holdout_by_frequency",
                "Holdout check: actual and predicted repeat purchases by calibration frequency",
                "marts.clv_holdout_report",
            ),
            figure(
                "holdout_over_time",
                "Holdout check over time",
                "marts.clv_holdout_report",
                "marts.clv_model_parameters",
                "marts.fct_orders",
            ),
        ),
    ),
    (
        "Wallet and satisfaction",
        (
            figure(
                "share_of_wallet",
                "Share of wallet and headroom by tier",
                "bi.share_of_wallet_by_tier",
            ),
            figure("satisfaction", "NPS and complaints by tier", "bi.satisfaction_by_tier"),
        ),
    ),
    (
        "Lost customers, and whom to contact",
        (
            figure("lost_reasons", "Lost customers by reason", "marts.lost_customer_reasons"),
            figure(
                "contact_plan",
                "The contact plan: budget, expected return, customers per strategy",
                "marts.contact_plan_summary",
                "marts.contact_plan",
            ),
        ),
    ),
)
FIGURES = tuple(fig for _, figures in SECTIONS for fig in figures)


@dataclass(frozen=True)
class Report:
    index: Path
    drawn: tuple[str, ...]
    missing: Mapping[str, str]
    seconds: float

    def summary_line(self) -> str:
        """The build summary's line: where the page is and which charts it could not draw."""
        not_drawn = f", not drawn: {', '.join(self.missing)}" if self.missing else ""
        return (
            f"  report:      {self.index.as_uri()} ({len(self.drawn)} charts{not_drawn}; "
            f"{self.seconds:.1f} s)"
        )


def configured(chart: alt.TopLevelMixin) -> dict:
    return chart.configure(
        font="DejaVu Sans, Helvetica, Arial, sans-serif",
        view=alt.ViewConfig(stroke=None),
        axis=alt.AxisConfig(labelFontSize=11, titleFontSize=12, titleFontWeight="normal"),
        legend=alt.LegendConfig(labelFontSize=11, titleFontSize=11),
    ).to_dict()


def titled(spec: dict, fig: Figure, reading: str, stamp: str) -> dict:
    """The chart as a PNG shows it: titled, with its reading and the as-of date underneath.
    The page's spec with a title: altair does not build and validate the chart again."""
    subtitle = [*textwrap.wrap(reading, 110), stamp]
    title = alt.TitleParams(fig.title, subtitle=subtitle, anchor="start", fontSize=15, offset=12)
    return {**spec, "title": title.to_dict()}


def png_of(spec: dict) -> bytes:
    return vl_convert.vegalite_to_png(spec, vl_version=VEGA_LITE_VERSION, scale=PNG_SCALE)


def vega_bundle() -> str:
    """Vega, Vega-Lite and vega-embed as one script, from the cache when it is there."""
    cached = BUNDLE_CACHE_DIR / f"vega-vlc{vl_convert.__version__}-vl{VEGA_LITE_VERSION}.js"
    if cached.is_file():
        return cached.read_text()
    bundle = vl_convert.javascript_bundle(vl_version=VEGA_LITE_VERSION)
    BUNDLE_CACHE_DIR.mkdir(parents=True, exist_ok=True)
    partial = cached.with_name(f"{cached.name}.{os.getpid()}")
    partial.write_text(bundle)
    partial.replace(cached)
    return bundle


def write_report(warehouse: Path, out_dir: Path = DEFAULT_REPORT_DIR) -> Report:
    """Query every chart from ``warehouse`` (read-only), draw it, and write ``out_dir``:
    index.html and <chart>.png for each chart drawn."""
    started = time.perf_counter()
    with queries.open_warehouse(warehouse) as wh:
        found = {fig.name: fig.query(wh) for fig in FIGURES}
        customers = wh.row("select count(*) from marts.customer_value")[0]
        drawn = {
            fig.name: fig.draw(result, wh)
            for fig in FIGURES
            if isinstance(result := found[fig.name], Found)
        }
    stamp = f"As of {wh.as_of}"
    building = out_dir.with_name(f".{out_dir.name}.{os.getpid()}.partial")
    shutil.rmtree(building, ignore_errors=True)
    building.mkdir(parents=True)
    specs = {name: configured(chart) for name, chart in drawn.items()}
    for fig in FIGURES:
        if fig.name in drawn:
            sources = ", ".join(fig.sources)
            reading = found[fig.name].reading
            spec = titled(specs[fig.name], fig, reading, f"{stamp} · {sources}")
            (building / f"{fig.name}.png").write_bytes(png_of(spec))
    header = (
        f"As of <strong>{wh.as_of}</strong> · value on {wh.value_label} · "
        f"{customers:,} customers · {html.escape(warehouse.name)}"
    )
    page = render_page(header, found, specs, stamp, vega_bundle())
    (building / "index.html").write_text(page)
    replace_directory(building, out_dir)
    return Report(
        out_dir / "index.html",
        tuple(drawn),
        {name: r.reason for name, r in found.items() if isinstance(r, Missing)},
        time.perf_counter() - started,
    )


def replace_directory(new: Path, old: Path) -> None:
    """Swap ``new`` in for ``old``: a reader sees the old report or the new one, whole."""
    retired = old.with_name(f".{old.name}.{os.getpid()}.old")
    if old.exists():
        old.rename(retired)
    new.rename(old)
    shutil.rmtree(retired, ignore_errors=True)


def render_page(
    header: str,
    found: Mapping[str, Found | Missing],
    specs: Mapping[str, dict],
    stamp: str,
    bundle: str,
) -> str:
    sections = []
    for number, (question, figures) in enumerate(SECTIONS, start=1):
        blocks = "".join(render_figure(fig, found[fig.name], stamp) for fig in figures)
        sections.append(
            f'<section class="topic"><h2>{number}. {html.escape(question)}</h2>'
            f'<div class="grid">{blocks}</div></section>'
        )
    contents = "".join(
        f'<li><a href="#{fig.name}">{html.escape(fig.title)}</a></li>' for fig in FIGURES
    )
    # "</" would end the script element early; in JSON and JS strings "<\/" means the same.
    spec_json = json.dumps(specs, separators=(",", ":"), default=str).replace("</", "<\\/")
    return PAGE.format(
        csp=CONTENT_SECURITY_POLICY,
        stamp=html.escape(stamp),
        style=STYLE,
        header=header,
        contents=contents,
        sections="".join(sections),
        bundle=bundle,
        specs=spec_json,
        embed=EMBED_SCRIPT,
    )


def render_figure(fig: Figure, result: Found | Missing, stamp: str) -> str:
    sources = ", ".join(fig.sources)
    if isinstance(result, Missing):
        body = f'<p class="missing-reason">Not drawn: {html.escape(result.reason)}.</p>'
        link = ""
    else:
        body = (
            f'<p class="reading">{html.escape(result.reading)}</p>'
            f'<div class="view" id="view-{fig.name}"></div>'
        )
        link = f' · <a href="{fig.name}.png">PNG</a>'
    state = "missing" if isinstance(result, Missing) else "drawn"
    return (
        f'<figure class="chart {state}" id="{fig.name}" data-chart="{fig.name}">'
        f"<h3>{html.escape(fig.title)}</h3>{body}"
        f"<figcaption>{html.escape(stamp)} · {html.escape(sources)}{link}</figcaption></figure>"
    )


STYLE = """
body { font-family: "DejaVu Sans", Helvetica, Arial, sans-serif; margin: 0; color: #222;
       background: #f6f6f4; }
header { background: #1f3b57; color: #fff; padding: 18px 32px; }
header h1 { margin: 0 0 6px; font-size: 24px; }
header p { margin: 0; }
nav ol { columns: 2; margin: 12px 0 0; padding-left: 20px; font-size: 13px; }
nav a { color: #cfe3f5; }
main { padding: 8px 32px 32px; }
h2 { font-size: 19px; margin: 28px 0 10px; }
.grid { display: flex; flex-wrap: wrap; gap: 18px; align-items: flex-start; }
/* A figure is as wide as its chart; its text wraps to that width (width 0, min-width 100%). */
figure.chart { background: #fff; margin: 0; padding: 14px 18px; border-radius: 6px;
               box-shadow: 0 1px 3px rgba(0, 0, 0, .12); width: fit-content; min-width: 26em;
               max-width: 100%; overflow-x: auto; }
figure.chart h3, p.reading, p.missing-reason, figcaption { width: 0; min-width: 100%;
                                                           box-sizing: border-box; }
figure.chart h3 { margin: 0 0 6px; font-size: 16px; }
p.reading { margin: 0 0 10px; font-size: 14px; }
p.missing-reason { margin: 12px 0; padding: 14px; background: #fff4e5;
                   border-left: 4px solid #e0a030; font-size: 14px; }
figcaption { color: #666; font-size: 12px; margin-top: 6px; }
figcaption a { color: #1f5f99; }
"""

EMBED_SCRIPT = """
const specs = JSON.parse(document.getElementById("chart-specs").textContent);
for (const [name, spec] of Object.entries(specs)) {
  const view = document.getElementById("view-" + name);
  vegaEmbed(view, spec, {renderer: "svg", actions: false})
    .then(() => { view.dataset.drawn = "true"; })
    .catch((error) => { view.dataset.drawn = "failed"; console.error("chart " + name, error); });
}
"""

PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{csp}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>Customer value report ({stamp})</title>
<style>{style}</style>
</head>
<body>
<header><h1>Customer value report</h1><p>{header}</p><nav><ol>{contents}</ol></nav></header>
<main>{sections}</main>
<script>{bundle}</script>
<script type="application/json" id="chart-specs">{specs}</script>
<script>{embed}</script>
</body>
</html>
"""
