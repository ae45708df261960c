"""The report as a person sees it: headless Chromium (Debian's chromium and chromium-driver,
which .ci/run installs) opens the page `make build` wrote, from file://, with every host name
unresolvable and a proxy to nowhere. Checked: no console error, no request but the page itself,
marks drawn in every chart (SVG marks counted), and each chart's sentence against the marts,
recomputed here in SQL without the report's code. A screenshot of each page is kept in
build/report-screenshots/ (a CI artefact)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import duckdb
import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.support.ui import WebDriverWait

from cvm import build
from cvm.build import PROJECT_DIR

pytestmark = pytest.mark.slow

# Debian's packages by default; CI elsewhere may name another Chromium build and its driver.
CHROMIUM = os.environ.get("CVM_CHROMIUM") or shutil.which("chromium")
CHROMEDRIVER = os.environ.get("CVM_CHROMEDRIVER") or shutil.which("chromedriver")
SCREENSHOTS = PROJECT_DIR / "build" / "report-screenshots"
CHARTS = (
    "tier_flow",
    "downgrades",
    "rfm_grid",
    "cohort_retention",
    "cohort_revenue",
    "p_alive_matrix",
    "clv_by_tier",
    "holdout_by_frequency",
    "holdout_over_time",
    "share_of_wallet",
    "satisfaction",
    "lost_reasons",
    "contact_plan",
)
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
# What the page itself knows of each chart once Vega has drawn it: its sentence or its reason,
# and how many marks its SVG holds (Vega gives data marks the class role-mark; axes, legends and
# titles have roles of their own).
PAGE_STATE = """
return [...document.querySelectorAll("figure.chart")].map((figure) => ({
  name: figure.dataset.chart,
  reading: figure.querySelector(".reading")?.textContent ?? null,
  missing: figure.querySelector(".missing-reason")?.textContent ?? null,
  drawn: figure.querySelector(".view")?.dataset.drawn ?? null,
  svgs: figure.querySelectorAll(".view svg").length,
  marks: figure.querySelectorAll(".view svg g.role-mark > *").length,
}));
"""


@dataclass(frozen=True)
class Page:
    charts: dict[str, dict[str, Any]]
    console: list[dict[str, Any]]
    requests: list[str]
    url: str


@pytest.fixture(scope="module")
def browser() -> webdriver.Chrome:
    """Headless Chromium that cannot reach any network: every host name resolves to nothing,
    and whatever bypassed that would go to a proxy on a closed local port. Its console and
    every request it makes (CDP Network events, the performance log) are recorded."""
    assert CHROMIUM and CHROMEDRIVER, (
        "the report's browser test needs Chromium and chromedriver: apt-get install chromium "
        "chromium-driver (.ci/run does), or set CVM_CHROMIUM and CVM_CHROMEDRIVER"
    )
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new",
        "--no-sandbox",  # root on CI
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1400,1000",
        "--host-resolver-rules=MAP * ~NOTFOUND",
        "--proxy-server=127.0.0.1:9",
        "--proxy-bypass-list=<-loopback>",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    yield driver
    driver.quit()


def open_page(driver: webdriver.Chrome, path: Path, wait: bool = True) -> Page:
    """Load ``path`` from file://, wait until every chart has drawn (or failed), and return
    what the page shows, what its console said and every request it made."""
    driver.get_log("browser")  # drop what earlier pages left in the logs
    driver.get_log("performance")
    driver.get(path.as_uri())
    if wait:
        WebDriverWait(driver, 60).until(
            lambda d: d.execute_script(
                "return [...document.querySelectorAll('.view')].every((v) => v.dataset.drawn)"
            )
        )
    charts = {chart["name"]: chart for chart in driver.execute_script(PAGE_STATE)}
    events = [json.loads(entry["message"])["message"] for entry in driver.get_log("performance")]
    requests = [
        event["params"]["request"]["url"]
        for event in events
        if event["method"] == "Network.requestWillBeSent"
    ]
    return Page(charts, driver.get_log("browser"), requests, path.as_uri())


def screenshot(driver: webdriver.Chrome, name: str) -> Path:
    """The whole page as a PNG, for the CI artefact (and a look by a person)."""
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(1400, min(height, 16000))
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    driver.save_screenshot(str(path))
    driver.set_window_size(1400, 1000)
    return path


def assert_offline_and_quiet(page: Page) -> None:
    assert page.console == [], page.console
    # The page itself is requested (so the recording works); nothing else is.
    assert page.url in page.requests, page.requests
    assert {url for url in page.requests if not url.startswith("data:")} == {page.url}


def assert_drawn(page: Page, name: str, at_least: int = 5) -> None:
    chart = page.charts[name]
    assert chart["drawn"] == "true" and chart["svgs"] == 1, chart
    assert chart["marks"] >= at_least, chart
    assert chart["missing"] is None, chart


# --------------------------------------------------------------------------------------------
# The harness itself: it sees a request that tries to leave and an error in the console.


def test_the_browser_harness_sees_requests_and_console_errors(browser, tmp_path):
    page_file = tmp_path / "leaky.html"
    page_file.write_text(
        "<!DOCTYPE html><html><body>"
        '<img src="http://report-test.invalid/pixel.png">'
        "<script>console.error('planted error')</script>"
        "</body></html>"
    )
    page = open_page(browser, page_file, wait=False)
    assert "http://report-test.invalid/pixel.png" in page.requests
    assert any("planted error" in entry["message"] for entry in page.console)
    with pytest.raises(AssertionError):
        assert_offline_and_quiet(page)


# --------------------------------------------------------------------------------------------
# The report of the published build (3,000 generated customers, every optional file)


@pytest.fixture(scope="module")
def published_page(browser, published_build) -> Page:
    page = open_page(browser, published_build.report_dir / "index.html")
    screenshot(browser, "report")
    return page


def test_make_build_writes_the_report_and_names_it_in_its_summary(published_build):
    index = published_build.report_dir / "index.html"
    assert f"report:      {index.as_uri()} (13 charts; " in published_build.stdout
    for name in CHARTS:
        png = (published_build.report_dir / f"{name}.png").read_bytes()
        assert png.startswith(PNG_MAGIC) and len(png) > 10_000, name
    # Self-contained: no element of the page loads a script, style or image from elsewhere.
    assert fetched_by_elements(index.read_text()) == []


class ElementFetches(HTMLParser):
    """The addresses a page's elements load by themselves (src of any element, href of a link
    element); a script's text is not markup, so what the Vega bundle writes is not counted."""

    def __init__(self) -> None:
        super().__init__()
        self.addresses: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name == "src" or (tag == "link" and name == "href"):
                self.addresses.append(value or "")


def fetched_by_elements(page: str) -> list[str]:
    parser = ElementFetches()
    parser.feed(page)
    return [address for address in parser.addresses if not address.startswith("data:")]


def test_the_report_renders_offline_with_marks_in_every_chart(published_page):
    assert_offline_and_quiet(published_page)
    assert list(published_page.charts) == list(CHARTS)
    for name in CHARTS:
        assert_drawn(published_page, name)


def numbers_in(text: str) -> list[float]:
    return [float(n.replace(",", "")) for n in re.findall(r"[-+]?\d[\d,]*(?:\.\d+)?", text)]


def assert_reads(text: str, value: float, decimals: int = 0, percent: bool = False) -> None:
    """``text`` shows ``value`` (a share, when ``percent``) rounded to ``decimals``."""
    shown = value * 100 if percent else value
    tolerance = 0.5 * 10**-decimals + 1e-9
    assert any(abs(n - shown) <= tolerance for n in numbers_in(text)), (
        f"{shown:,.{decimals}f} is not read out in: {text}"
    )


def month(day) -> str:
    return day.strftime("%B %Y")


def who(tier: str) -> str:
    """How a sentence names a tier's customers."""
    return "customers without a purchase" if tier == "no purchase" else f"{tier} customers"


@pytest.fixture(scope="module")
def marts(published_build):
    with duckdb.connect(str(published_build.warehouse), read_only=True) as con:
        yield con


def one(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> tuple:
    return con.execute(sql, params or []).fetchone()


def test_tier_sentences_match_the_tier_history_and_the_migration_matrix(published_page, marts):
    (first, latest), top = (
        one(
            marts, "select min(period_month), max(period_month) from marts.fct_customer_tier_months"
        ),
        [
            t
            for (t,) in marts.execute(
                "select value_tier from reference.value_tiers where tier_rank <= 2 and "
                "value_basis = (select any_value(value_basis) from marts.customer_value) "
                "order by tier_rank"
            ).fetchall()
        ],
    )
    earlier = one(
        marts, "select greatest(?::date, ?::date - interval 12 month)::date", [first, latest]
    )[0]
    now_top, then_top, kept, lapsed = one(
        marts,
        """
        select count(*) filter (where l.value_tier in ?),
            count(*) filter (where e.value_tier in ?),
            count(*) filter (where e.value_tier in ? and l.value_tier in ?),
            count(*) filter (where e.value_tier in ? and l.value_tier = 'Inactive')
        from marts.fct_customer_tier_months as l
        left join marts.fct_customer_tier_months as e
            on e.customer_id = l.customer_id and e.period_month = ?
        where l.period_month = ?
        """,
        [top, top, top, top, top, earlier, latest],
    )
    reading = published_page.charts["tier_flow"]["reading"]
    assert reading.startswith(f"{' and '.join(top)}: {now_top:,} customers in {month(latest)}")
    assert f"against {then_top:,} in {month(earlier)}" in reading
    assert_reads(reading, kept / then_top, 1, percent=True)
    assert_reads(reading, lapsed / then_top, 1, percent=True)

    # The move read out is the one with the most downgrade alerts; its share is the matrix's.
    quoted = one(
        marts,
        """
        with alerts as (
            select from_tier, to_tier, count(*) as alerts
            from marts.tier_downgrade_alerts group by all
        )
        select m.from_tier, m.to_tier, m.to_period_month, m.customers, m.transition_probability,
            (select sum(customers) from marts.tier_migration_matrix as f
             where f.to_period_month = m.to_period_month and f.from_tier = m.from_tier),
            (select count(*) from marts.tier_downgrade_alerts)
        from alerts
        inner join marts.tier_migration_matrix as m
            on m.from_tier = alerts.from_tier and m.to_tier = alerts.to_tier
            and m.to_period_month = (select max(to_period_month) from marts.tier_migration_matrix)
        order by alerts.alerts desc, m.customers desc
        limit 1
        """,
    )
    from_tier, to_tier, moved_in, customers, share, from_total, alerts = quoted
    assert share == pytest.approx(customers / from_total)
    reading = published_page.charts["downgrades"]["reading"]
    assert f"of {from_tier} customers moved to {to_tier} in {month(moved_in)}" in reading
    assert_reads(reading, share, 1, percent=True)
    assert f"({customers:,} of {from_total:,}); {alerts:,} downgrade alerts" in reading


def test_rfm_and_cohort_sentences_match_the_marts(published_page, marts):
    segment, customers_share, revenue_share, lookback = one(
        marts,
        """
        select rfm_segment, count(*) / sum(count(*)) over (),
            sum(monetary_lookback) / sum(sum(monetary_lookback)) over (), any_value(lookback_days)
        from marts.customer_value where rfm_segment is not null
        group by 1 order by 3 desc limit 1
        """,
    )
    reading = published_page.charts["rfm_grid"]["reading"]
    assert reading.startswith(f"{segment}: ") and f"last {lookback} days" in reading
    assert_reads(reading, float(customers_share), 1, percent=True)
    assert_reads(reading, float(revenue_share), 1, percent=True)

    horizon = one(
        marts, "select least(12, max(months_since_first_purchase)) from marts.cohort_retention"
    )[0]
    cohort, rate, spent, overall, cohorts = one(
        marts,
        """
        select max_by(cohort_month, cohort_month), max_by(retention_rate, cohort_month),
            max_by(cumulative_net_revenue_per_customer, cohort_month),
            sum(purchasing_customers) / sum(cohort_customers), count(*)
        from marts.cohort_retention where months_since_first_purchase = ?
        """,
        [horizon],
    )
    reading = published_page.charts["cohort_retention"]["reading"]
    assert f"acquired in {month(cohort)} bought in month {horizon}" in reading
    assert f"over all {cohorts:,} cohorts" in reading
    assert_reads(reading, rate, 1, percent=True)
    assert_reads(reading, float(overall), 1, percent=True)
    best, best_spent = one(
        marts,
        "select arg_max(cohort_month, cumulative_net_revenue_per_customer), "
        "max(cumulative_net_revenue_per_customer) from marts.cohort_retention "
        "where months_since_first_purchase = ?",
        [horizon],
    )
    reading = published_page.charts["cohort_revenue"]["reading"]
    assert f"acquired in {month(cohort)} had spent" in reading
    assert_reads(reading, float(spent))
    if best != cohort:
        assert f"the best cohort, {month(best)}" in reading
        assert_reads(reading, float(best_spent))


def test_lifetime_value_sentences_match_the_marts(published_page, marts):
    recent, lapsed = one(
        marts,
        "select avg(p_alive) filter (where recency_days <= 90), "
        "avg(p_alive) filter (where recency_days > 365) from marts.customer_value",
    )
    reading = published_page.charts["p_alive_matrix"]["reading"]
    assert_reads(reading, recent, 2)
    assert_reads(reading, lapsed, 2)

    tier, mean, lower, upper, median, level = one(
        marts,
        """
        select cv.value_tier, avg(clv), avg(clv_lower), avg(clv_upper), median(clv),
            (select max(interval_level) from marts.clv_model_parameters)
        from marts.customer_value as cv
        inner join reference.value_tiers as t
            on t.value_tier = cv.value_tier and t.value_basis = cv.value_basis
        where clv is not null
        group by cv.value_tier, t.tier_rank order by t.tier_rank limit 1
        """,
    )
    reading = published_page.charts["clv_by_tier"]["reading"]
    assert reading.startswith(f"A {tier} customer's CLV")
    assert f"its {level * 100:.0f} % interval" in reading
    for value in (mean, lower, upper, median):
        assert_reads(reading, value)


def test_holdout_sentences_match_the_orders(published_page, marts):
    """The holdout's actual purchases recounted from the orders: purchase days after the
    holdout fit's calibration end of the customers who had bought by then."""
    end, days, predicted = one(
        marts,
        "select any_value(calibration_end_date), any_value(holdout_days), "
        "sum(predicted_purchase_days) from marts.clv_holdout_report "
        "where bucket_order < 99 and chosen",
    )
    customers, by_middle, by_end = one(
        marts,
        """
        with purchase_days as (
            select distinct customer_id, order_date from marts.fct_orders
            where status = 'completed'
        ),
        holdout_customers as (
            select customer_id from purchase_days group by 1 having min(order_date) <= ?::date
        )
        select (select count(*) from holdout_customers),
            count(*) filter (where order_date - ?::date <= ?),
            count(*) filter (where order_date - ?::date <= ?)
        from purchase_days inner join holdout_customers using (customer_id)
        where order_date > ?::date
        """,
        [end, end, days // 2, end, days, end],
    )
    reading = published_page.charts["holdout_by_frequency"]["reading"]
    assert f"In the {days} days after {end}, the {customers:,} customers" in reading
    assert f"made {by_end:,} repeat purchase days" in reading
    assert_reads(reading, predicted)
    assert_reads(reading, predicted / by_end - 1, 1, percent=True)
    reading = published_page.charts["holdout_over_time"]["reading"]
    assert f"{by_middle:,} by day {days // 2} and {by_end:,} by day {days}" in reading
    assert_reads(reading, predicted)


def test_wallet_and_satisfaction_sentences_match_the_marts(published_page, marts):
    tiers = marts.execute(
        "select coalesce(value_tier, 'no purchase'), avg(share_of_wallet_modelled), "
        "sum(wallet_headroom_modelled) from marts.customer_value group by 1"
    ).fetchall()
    roomiest = max(tiers, key=lambda t: t[2])
    loyalest = max(tiers, key=lambda t: t[1])
    reading = published_page.charts["share_of_wallet"]["reading"]
    roomy = f"{who(roomiest[0])} have the most headroom"
    assert reading.startswith(roomy[0].upper() + roomy[1:])
    assert_reads(reading, float(roomiest[2]))
    assert f"{who(loyalest[0])} already buy" in reading
    assert_reads(reading, loyalest[1], 1, percent=True)

    nps = marts.execute(
        """
        select coalesce(cv.value_tier, 'no purchase'),
            100.0 * (count(*) filter (where s.nps_score >= 9)
                     - count(*) filter (where s.nps_score <= 6)) / count(*)
        from marts.fct_survey_responses as s
        inner join marts.customer_value as cv using (customer_id)
        where s.nps_score is not null
        group by 1
        """
    ).fetchall()
    complaints = marts.execute(
        """
        with orders as (
            select coalesce(cv.value_tier, 'no purchase') as tier, count(*) as n
            from marts.fct_orders inner join marts.customer_value as cv using (customer_id)
            group by 1
        ),
        complaints as (
            select coalesce(cv.value_tier, 'no purchase') as tier, count(*) as n
            from marts.fct_complaints inner join marts.customer_value as cv using (customer_id)
            group by 1
        )
        select tier, 1000.0 * coalesce(complaints.n, 0) / orders.n
        from orders left join complaints using (tier)
        """
    ).fetchall()
    low, high = min(nps, key=lambda t: t[1]), max(nps, key=lambda t: t[1])
    worst = max(complaints, key=lambda t: t[1])
    reading = published_page.charts["satisfaction"]["reading"]
    assert f"({low[0]}) to" in reading and f"({high[0]})" in reading
    assert_reads(reading, low[1])
    assert_reads(reading, high[1])
    assert f"{who(worst[0])} complain most" in reading
    assert_reads(reading, worst[1], 1)


def test_lost_customer_and_contact_plan_sentences_match_the_marts(published_page, marts):
    lost, reason, share, silent = one(
        marts,
        """
        with reasons as (
            select lapse_reason, count(*) as n from marts.lost_customers group by 1
        )
        select (select count(*) from marts.lost_customers),
            arg_max(lapse_reason, n) filter (where lapse_reason <> 'no signal'),
            max(n) filter (where lapse_reason <> 'no signal') / sum(n),
            sum(n) filter (where lapse_reason = 'no signal') / sum(n)
        from reasons
        """,
    )
    reading = published_page.charts["lost_reasons"]["reading"]
    assert reading.startswith(f"{lost:,} customers are lost")
    assert f"the most common reason named is '{reason}'" in reading
    assert_reads(reading, share, 1, percent=True)
    assert_reads(reading, silent, 1, percent=True)

    budget, candidates = one(
        marts, "select contact_budget, candidate_count from marts.contact_plan_summary"
    )
    contacts, spend, net_return, per_unit = one(
        marts,
        "select count(*), sum(contact_cost), sum(expected_net_return), "
        "sum(expected_gain) / sum(contact_cost) from marts.contact_plan",
    )
    strategy, most = one(
        marts,
        "select primary_strategy, count(*) from marts.contact_plan group by 1 "
        "order by 2 desc, 1 limit 1",
    )
    reading = published_page.charts["contact_plan"]["reading"]
    assert f"the plan contacts {contacts:,} of {candidates:,} candidates" in reading
    for value in (budget, spend, net_return):
        assert_reads(reading, float(value))
    assert_reads(reading, float(per_unit), 1)
    assert f"{strategy.replace('_', ' ')} has the most contacts ({most:,})" in reading


# --------------------------------------------------------------------------------------------
# An orders-only shop: no costs, complaints, surveys or contacts


def test_an_orders_only_report_renders_and_says_what_it_cannot_show(browser, orders_only):
    assert orders_only.result.returncode == 0, orders_only.result.stderr[-3000:]
    page = open_page(browser, orders_only.report_dir / "index.html")
    screenshot(browser, "report-orders-only")
    assert_offline_and_quiet(page)
    cannot = {"satisfaction", "lost_reasons"}
    for name in set(CHARTS) - cannot:
        assert_drawn(page, name)
    assert "no survey answers and no complaints" in page.charts["satisfaction"]["missing"]
    assert "all " in page.charts["lost_reasons"]["missing"]
    assert "'no signal'" in page.charts["lost_reasons"]["missing"]
    for name in cannot:
        chart = page.charts[name]
        assert chart["reading"] is None and chart["svgs"] == 0, chart
        assert not (orders_only.report_dir / f"{name}.png").exists()
    text = (orders_only.report_dir / "index.html").read_text()
    assert "value on net revenue" in text  # no costs: value and CLV on revenue, and it says so


# --------------------------------------------------------------------------------------------
# make report, on its own


def test_make_report_reads_the_published_warehouse_beside_a_reader(published_build, tmp_path):
    """`make report` opens the warehouse read-only: a BI reader stays connected meanwhile and
    the file is not changed."""
    warehouse = published_build.copy_to(tmp_path / "warehouse")
    before = warehouse.read_bytes()
    env = published_build.env | {
        "CVM_DUCKDB_PATH": str(warehouse),
        "CVM_REPORT_DIR": str(tmp_path / "report"),
    }
    with duckdb.connect(str(warehouse), read_only=True) as reader:
        result = subprocess.run(
            ["make", "--no-print-directory", "report"],
            cwd=PROJECT_DIR, env=env, capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert reader.execute("select count(*) from bi.share_of_wallet_by_tier").fetchone()[0]
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "report" / "index.html").as_uri() in result.stdout
    assert warehouse.read_bytes() == before


def test_a_report_that_cannot_be_written_is_a_failed_step_with_its_reason(tmp_path):
    """make build's report step returns its failure (the build then exits 1 after publishing)
    instead of raising: here the warehouse it should chart does not exist."""
    line, reason = build.write_build_report(tmp_path / "nowhere.duckdb", tmp_path / "report")
    assert reason.startswith("FileNotFoundError: No warehouse at") and "make build" in reason
    assert line == f"  report:      FAILED ({reason})"
    assert not (tmp_path / "report").exists()
