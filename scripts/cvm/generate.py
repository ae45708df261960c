"""Seeded, vectorised generator of raw data for the Customer Value Warehouse.

Run it as ``PYTHONPATH=scripts python -m cvm.generate --customers 100000 --out data/raw`` or call
:func:`generate`. It writes one file per table (``<name>.parquet`` and/or ``<name>.csv``) plus
``generator_manifest.json`` with the true process parameters, row counts and injected bad rows.

Processes (all vectorised with numpy; customers are simulated in chunks to bound memory)
----------------------------------------------------------------------------------------
* Signups: customer ids are 1..N in signup order. Signup dates cover ``--years`` years up to
  ``--end-date`` with exponential growth (``SIGNUP_GROWTH_PER_YEAR``); customer i gets the
  quantile (i + U)/N of that distribution, so ids stay in signup order across chunks.
* First order: with probability ``FIRST_ORDER_PROB`` a customer orders a few days after signup
  (exponential lag); the others, and those whose first order would fall after the end of the
  window, never order.
* Repeat purchases follow BG/NBD (Fader, Hardie & Lee 2005) in continuous time in DAYS, from the
  first order (time 0) to the end of the window (``end-date`` 24:00), T days later:
  lambda ~ Gamma(shape=r, rate=alpha), p ~ Beta(a, b); repeat purchases are a Poisson(lambda)
  process and after every repeat purchase the customer drops out with probability p. Hence
  x = min(N, D) with N ~ Poisson(lambda T) and D ~ Geometric(p) on {1, 2, ...}; the repeat times
  are the first x of N uniform order statistics on [0, T], drawn through exponential spacings
  (U_(j) = S_j / S_(N+1), S_(N+1) = S_x + Gamma(N + 1 - x)), so no customer needs N draws.
  Times are floored to whole seconds; there is no time-of-day or weekday pattern (that would
  break the Poisson process the parameters describe).
* Order values follow Gamma-Gamma (Fader, Hardie & Lee 2005, "RFM and CLV"; Colombo & Jiang
  1999): nu ~ Gamma(shape=q, rate=v) per customer and every order's value z ~ Gamma(shape=p,
  rate=nu) (first and repeat orders alike). ``order_total`` is z rounded to cents.
* The BG/NBD and Gamma-Gamma parameters describe ALL placed orders: the status (completed,
  cancelled, returned) is drawn independently of both processes afterwards.
* Order lines: 1 + Poisson line count, the order's gross amount (total / (1 - promo rate)) split
  with a floored Dirichlet, a skewed quantity per line, and the product whose list price is
  nearest to the per-unit amount (with a little noise) in a price-sorted catalogue. unit_price is
  that per-unit amount, within a few percent of the list price. A promo order (5-30 %) discounts
  every line; the line with the smallest quantity absorbs the rounding so that the lines' net
  amounts (quantity * unit_price - discount_amount) sum exactly to order_total. That line may
  therefore carry a discount of a few cents (< its quantity) on orders without a promo.
* Complaints are much more likely for customers who drop out in the window (around their last
  orders) than for customers still active; surveys are answered by about a fifth of customers,
  and churners give lower NPS and CSAT. Neither is ever after the end of ``end-date``.
* Contacts (retention campaigns) reach ``CONTACT_PROB_BUYER`` of the buyers, 1 + Poisson(1)
  times each, uniformly over the last ``CONTACT_HISTORY_DAYS`` days (never before the first
  order). Every customer has a favourite channel that most of their contacts use; a random
  ``HOLDOUT_SHARE`` of contacts is a holdout (selected, deliberately not sent: ``responded`` is
  empty). Responses depend on the strategy and on whether the channel is the favourite;
  ``converted`` (a purchase within ``ATTRIBUTION_DAYS``) is the customer's own chance to buy
  in that time (1 - exp(-30 lambda) while alive) for everyone, plus, for treated contacts that
  responded, a strategy-specific conversion. The conversions that contacts add are not fed back
  into the orders. Contacts use a random stream of their own (a seventh stream per chunk and
  their own bad-row stream), so the other files are byte-identical to a run without them.

Raw file contract
-----------------
customers(customer_id, signup_date, email, first_name, country, acquisition_channel),
orders(order_id, customer_id, ordered_at, status, order_total),
order_items(order_item_id, order_id, product_id, quantity, unit_price, discount_amount),
products(product_id, product_name, category, list_price, unit_cost),
complaints(complaint_id, customer_id, order_id, opened_at, resolved_at, category, severity,
compensation_amount), surveys(response_id, customer_id, responded_at, nps_score, csat_score,
share_of_wallet_pct), contacts(contact_id, customer_id, sent_at, channel, strategy, is_holdout,
responded, converted). Timestamps are naive, second precision; money has 2 decimals.

Reproducibility: ``np.random.SeedSequence(seed).spawn`` gives independent streams to the product
catalogue, the bad rows and each chunk (and, inside a chunk, to each component), so the same
arguments and seed give byte-identical files. The chunk size is one of those arguments: another
chunk size gives another (equally valid) sample. Memory grows with the chunk size (about 1.5 GB
peak at the default 250,000 customers), not with the number of customers.

``--inject-bad-rows`` appends, as a last row group, extra rows with exactly one defect each
(``BAD_ROW_KINDS``; counts in the manifest under ``bad_rows``). Clean rows are untouched, injected
rows get fresh ids (or ids far beyond every real id for unknown references) and nothing refers to
them. In that mode date and timestamp columns are strings in Parquet as well.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from tqdm import tqdm

GENERATOR_VERSION = "1.0.0"
MANIFEST_NAME = "generator_manifest.json"
TABLES = ("customers", "orders", "order_items", "products", "complaints", "surveys", "contacts")
FORMATS = ("parquet", "csv")
DAY_S = 86_400
EPOCH = date(1970, 1, 1)
FloatArray = np.ndarray
IntArray = np.ndarray
BoolArray = np.ndarray


@dataclass(frozen=True)
class BgNbdParams:
    """BG/NBD purchase process; ``alpha`` is a rate in days."""

    r: float
    alpha: float
    a: float
    b: float


@dataclass(frozen=True)
class GammaGammaParams:
    """Gamma-Gamma order value process: z ~ Gamma(p, nu), nu ~ Gamma(q, v) (rates)."""

    p: float
    q: float
    v: float


# r < 1: a long-tailed purchase rate (mean r / alpha = 0.0375 orders a day, about 14 a year);
# E[p] = a / (a + b) = 0.057. With the default signup curve: about 10 orders per customer.
DEFAULT_BG_NBD = BgNbdParams(r=0.9, alpha=24.0, a=1.5, b=25.0)
# Mean order value p * v / (q - 1) = 6 * 33 / 2.5 = 79.2; q > 2 so customer means have finite var.
DEFAULT_GAMMA_GAMMA = GammaGammaParams(p=6.0, q=3.5, v=33.0)

SIGNUP_GROWTH_PER_YEAR = 1.5  # signups per day grow by 50 % a year
FIRST_ORDER_PROB = 0.9
FIRST_ORDER_LAG_MEAN_DAYS = 2.5
STATUSES = ("completed", "cancelled", "returned")
STATUS_PROBS = (0.90, 0.04, 0.06)
EXTRA_LINES_MEAN = 0.8  # lines per order = 1 + Poisson(0.8), capped by order size
MAX_LINES = 12
MIN_LINE_CENTS = 300  # an order gets at most total / 3.00 lines
QUANTITY_PROBS = (0.62, 0.22, 0.09, 0.045, 0.025)  # quantity 1..5
PRODUCT_PICK_NOISE = 0.03  # sd of log price noise when matching a product to a per-unit amount
PROMO_PROB = 0.15
PROMO_RATES = (0.05, 0.10, 0.15, 0.20, 0.25, 0.30)
N_PRODUCTS = 2_000
MAX_YEARS = 100

COUNTRIES = ("US", "GB", "DE", "FR", "NL", "ES", "IT", "SE", "PL", "CA")
COUNTRY_PROBS = (0.30, 0.14, 0.12, 0.09, 0.07, 0.07, 0.06, 0.05, 0.05, 0.05)
CHANNELS = (
    "organic_search",
    "paid_search",
    "social",
    "referral",
    "email",
    "marketplace",
    "direct",
)
CHANNEL_PROBS = (0.28, 0.20, 0.15, 0.10, 0.08, 0.09, 0.10)
# fmt: off
FIRST_NAMES = (
    "Emma", "Liam", "Olivia", "Noah", "Ava", "Lucas", "Mia", "Leon", "Sofia", "Elias", "Hannah",
    "Mateo", "Chloe", "Hugo", "Alice", "Oscar", "Julia", "Louis", "Zoe", "Jan", "Anna", "Finn",
    "Lea", "Marco", "Sara", "Pablo", "Ella", "Tom", "Nora", "Ben", "Maja", "Luca", "Ines", "Karl",
    "Eva", "Adam", "Ida", "Jonas", "Lena", "Omar"
)
LAST_NAMES = (
    "smith", "jones", "brown", "muller", "schmidt", "martin", "bernard", "garcia", "rossi",
    "russo", "jansen", "devries", "nowak", "kowalski", "andersson", "johansson", "wilson",
    "taylor", "dubois", "moreau", "lopez", "sanchez", "ferrari", "bakker", "visser", "lee",
    "walker", "wright", "fischer", "weber", "meyer", "wagner", "ricci", "novak", "nilsson",
    "clark", "hall", "young", "king", "scott"
)
# fmt: on
EMAIL_DOMAINS = ("example.com", "example.org", "example.net")
EMAIL_DOMAIN_PROBS = (0.6, 0.25, 0.15)

# name, share of catalogue, list price range, unit cost / list price, product nouns
CATEGORIES: tuple[tuple[str, float, float, float, float, tuple[str, ...]], ...] = (
    ("electronics", 0.12, 10.0, 900.0, 0.78, ("Headphones", "Speaker", "Charger", "Monitor")),
    ("home_kitchen", 0.12, 5.0, 400.0, 0.55, ("Kettle", "Pan", "Knife Set", "Blender")),
    ("fashion", 0.13, 8.0, 300.0, 0.40, ("Jacket", "Sneakers", "Scarf", "Jeans")),
    ("beauty", 0.08, 4.0, 120.0, 0.35, ("Serum", "Lipstick", "Shampoo", "Face Cream")),
    ("sports_outdoors", 0.09, 6.0, 500.0, 0.60, ("Yoga Mat", "Tent", "Bottle", "Racket")),
    ("toys_games", 0.08, 5.0, 200.0, 0.50, ("Puzzle", "Board Game", "Robot Kit", "Plush")),
    ("books_media", 0.09, 5.0, 60.0, 0.65, ("Novel", "Cookbook", "Vinyl", "Atlas")),
    ("grocery", 0.10, 2.0, 40.0, 0.72, ("Coffee", "Olive Oil", "Tea", "Chocolate")),
    ("garden", 0.06, 5.0, 400.0, 0.52, ("Hose", "Planter", "Shears", "Lantern")),
    ("pet_supplies", 0.07, 3.0, 150.0, 0.58, ("Dog Bed", "Cat Tree", "Leash", "Pet Food")),
    ("health", 0.06, 3.0, 90.0, 0.45, ("Vitamins", "Thermometer", "First Aid Kit", "Massager")),
)
# fmt: off
ADJECTIVES = (
    "Classic", "Compact", "Deluxe", "Eco", "Essential", "Premium", "Smart", "Urban", "Vintage",
    "Pro", "Lite", "Nordic", "Everyday", "Signature", "Travel", "Organic"
)
# fmt: on

COMPLAINT_CATEGORIES = (
    "delivery",
    "product_quality",
    "billing",
    "customer_service",
    "returns_refunds",
)
COMPLAINT_CATEGORY_PROBS = (0.30, 0.25, 0.12, 0.18, 0.15)
SEVERITIES = ("low", "medium", "high", "critical")
SEVERITY_PROBS_ACTIVE = (0.45, 0.35, 0.15, 0.05)
SEVERITY_PROBS_CHURNER = (0.20, 0.35, 0.30, 0.15)
COMPENSATION_PROB_BY_SEVERITY = np.array([0.05, 0.15, 0.40, 0.70])
# Complaint propensity: churners (dropped out in the window) vs active buyers vs never ordered.
COMPLAINT_PROB_CHURNER = 0.30
COMPLAINT_PROB_ACTIVE = 0.04
COMPLAINT_PROB_NO_ORDER = 0.01
COMPLAINT_NO_ORDER_REF_PROB = 0.15
SURVEY_PROB_BUYER = 0.22
SURVEY_PROB_NO_ORDER = 0.05
# Retention contacts: who is contacted, how often, when, through which channel, with which
# strategy (the playbook's names), and how they react.
CONTACT_PROB_BUYER = 0.4
CONTACTS_EXTRA_MEAN = 1.0  # contacts per contacted customer = 1 + Poisson(1)
CONTACT_HISTORY_DAYS = 365
HOLDOUT_SHARE = 0.1
ATTRIBUTION_DAYS = 30
CONTACT_CHANNELS = ("email", "sms", "phone", "direct_mail")
CONTACT_CHANNEL_PROBS = (0.55, 0.20, 0.10, 0.15)
FAVOURITE_CHANNEL_PROB = 0.7  # share of a customer's contacts on their favourite channel
# Response probability multiplier on the favourite channel and on any other.
RESPONSE_FACTOR_FAVOURITE = 1.5
RESPONSE_FACTOR_OTHER = 0.5
CONTACT_STRATEGIES = (
    "cross_sell",
    "up_sell",
    "down_sell",
    "usage_stimulation",
    "customer_education",
    "save_win_back",
    "reward_recognition",
    "needs_migration",
)
CONTACT_STRATEGY_PROBS = (0.22, 0.12, 0.06, 0.16, 0.12, 0.12, 0.12, 0.08)
RESPONSE_PROB_BY_STRATEGY = np.array([0.12, 0.08, 0.10, 0.14, 0.18, 0.09, 0.25, 0.07])
CONVERSION_GIVEN_RESPONSE_BY_STRATEGY = np.array([0.45, 0.40, 0.50, 0.35, 0.20, 0.30, 0.30, 0.25])

# Bad rows: file -> reason codes (the staging layer's codes).
BAD_ROW_KINDS: dict[str, tuple[str, ...]] = {
    "customers": ("null_key", "duplicate_key", "unparseable_date", "future_date"),
    "orders": (
        "null_key",
        "duplicate_key",
        "negative_amount",
        "unknown_customer",
        "unparseable_date",
        "future_date",
        "invalid_status",
    ),
    "order_items": ("null_key", "duplicate_key", "negative_amount", "unknown_order"),
    "products": ("null_key", "duplicate_key", "negative_amount"),
    "complaints": (
        "null_key",
        "duplicate_key",
        "unknown_customer",
        "unparseable_date",
        "future_date",
    ),
    "surveys": (
        "null_key",
        "duplicate_key",
        "unknown_customer",
        "unparseable_date",
        "future_date",
        "out_of_range",
    ),
    "contacts": (
        "null_key",
        "duplicate_key",
        "unknown_customer",
        "unparseable_date",
        "future_date",
    ),
}
UNKNOWN_ID_BASE = 1_000_000_000_000  # references to ids that no row has
FUTURE_YEARS = 50
BAD_DATES = ("2024-02-30", "not a date", "31/12/2024", "2023-13-01")
BAD_TIMESTAMPS = ("2024-02-30 10:00:00", "not a date", "31/12/2024 10:00", "2023-13-01 08:00:00")
INVALID_STATUSES = ("shipped", "COMPLETE?", "pending", "on_hold")

KEY_COLUMNS = {
    "customers": "customer_id",
    "orders": "order_id",
    "order_items": "order_item_id",
    "products": "product_id",
    "complaints": "complaint_id",
    "surveys": "response_id",
    "contacts": "contact_id",
}
DATE_COLUMNS = {
    "customers": "signup_date",
    "orders": "ordered_at",
    "complaints": "opened_at",
    "surveys": "responded_at",
    "contacts": "sent_at",
}
TS = pa.timestamp("s")
SCHEMAS: dict[str, pa.Schema] = {
    "customers": pa.schema(
        [
            ("customer_id", pa.int64()),
            ("signup_date", pa.date32()),
            ("email", pa.string()),
            ("first_name", pa.string()),
            ("country", pa.string()),
            ("acquisition_channel", pa.string()),
        ]
    ),
    "orders": pa.schema(
        [
            ("order_id", pa.int64()),
            ("customer_id", pa.int64()),
            ("ordered_at", TS),
            ("status", pa.string()),
            ("order_total", pa.float64()),
        ]
    ),
    "order_items": pa.schema(
        [
            ("order_item_id", pa.int64()),
            ("order_id", pa.int64()),
            ("product_id", pa.int64()),
            ("quantity", pa.int32()),
            ("unit_price", pa.float64()),
            ("discount_amount", pa.float64()),
        ]
    ),
    "products": pa.schema(
        [
            ("product_id", pa.int64()),
            ("product_name", pa.string()),
            ("category", pa.string()),
            ("list_price", pa.float64()),
            ("unit_cost", pa.float64()),
        ]
    ),
    "complaints": pa.schema(
        [
            ("complaint_id", pa.int64()),
            ("customer_id", pa.int64()),
            ("order_id", pa.int64()),
            ("opened_at", TS),
            ("resolved_at", TS),
            ("category", pa.string()),
            ("severity", pa.string()),
            ("compensation_amount", pa.float64()),
        ]
    ),
    "surveys": pa.schema(
        [
            ("response_id", pa.int64()),
            ("customer_id", pa.int64()),
            ("responded_at", TS),
            ("nps_score", pa.int32()),
            ("csat_score", pa.int32()),
            ("share_of_wallet_pct", pa.int32()),
        ]
    ),
    "contacts": pa.schema(
        [
            ("contact_id", pa.int64()),
            ("customer_id", pa.int64()),
            ("sent_at", TS),
            ("channel", pa.string()),
            ("strategy", pa.string()),
            ("is_holdout", pa.bool_()),
            ("responded", pa.bool_()),
            ("converted", pa.bool_()),
        ]
    ),
}


# --------------------------------------------------------------------------------------------
# Small vectorised helpers
# --------------------------------------------------------------------------------------------
def _choice(rng: np.random.Generator, probs: Sequence[float], size: int) -> IntArray:
    """Category indices drawn with the given probabilities (inverse CDF, vectorised)."""
    cdf = np.cumsum(probs)
    idx = np.searchsorted(cdf / cdf[-1], rng.random(size), side="right")
    return np.minimum(idx, len(probs) - 1)


def _labels(values: Sequence[str], idx: IntArray) -> pa.Array:
    """A string column from label indices, built in Arrow (no Python string per row)."""
    return pa.array(values, pa.string()).take(pa.array(idx, pa.int32()))


def _segment_starts(counts: IntArray) -> IntArray:
    """Start offset of each segment in a flat array holding ``counts[i]`` items per segment."""
    return np.cumsum(counts) - counts


def _position_in_segment(counts: IntArray) -> IntArray:
    """0, 1, ..., counts[i]-1 for every segment, flattened."""
    total = int(counts.sum())
    return np.arange(total, dtype=np.int64) - np.repeat(_segment_starts(counts), counts)


def _cents_to_money(cents: IntArray) -> pa.Array:
    return pa.array(np.asarray(cents, dtype=np.int64) / 100.0, pa.float64())


def _timestamps(seconds: IntArray, mask: BoolArray | None = None) -> pa.Array:
    """Epoch seconds -> timestamp[s]; ``mask`` marks nulls."""
    return pa.array(np.asarray(seconds, dtype=np.int64), pa.int64(), mask=mask).cast(TS)


def _nullable_int(values: IntArray, null: BoolArray, typ: pa.DataType) -> pa.Array:
    return pa.array(np.where(null, 0, values), typ, mask=null)


def _gather(values: np.ndarray, rows: IntArray) -> np.ndarray:
    """``values[rows]`` where ``rows >= 0``, else 0 (also when ``values`` is empty)."""
    if len(values) == 0:
        return np.zeros(len(rows), dtype=values.dtype)
    return np.where(rows >= 0, values[np.maximum(rows, 0)], 0)


def _epoch_day(d: date) -> int:
    return (d - EPOCH).days


# --------------------------------------------------------------------------------------------
# Time window and latents
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Window:
    """History window: ``n_days`` whole days ending with ``end_date`` (inclusive)."""

    end_date: date
    years: float

    @property
    def n_days(self) -> int:
        return max(1, round(365.25 * self.years))

    @property
    def start_date(self) -> date:
        return self.end_date - timedelta(days=self.n_days - 1)

    @property
    def start_day(self) -> int:
        return _epoch_day(self.start_date)

    @property
    def end_s(self) -> int:
        """End of the window (exclusive): midnight after ``end_date``, in epoch seconds."""
        return (_epoch_day(self.end_date) + 1) * DAY_S


@dataclass(frozen=True)
class Latents:
    """Per-customer latent draws of the two processes."""

    lam: FloatArray  # purchase rate per day
    p: FloatArray  # dropout probability after each repeat purchase
    nu: FloatArray  # Gamma-Gamma rate of the order values


def draw_latents(
    rng: np.random.Generator,
    n: int,
    bg: BgNbdParams = DEFAULT_BG_NBD,
    gg: GammaGammaParams = DEFAULT_GAMMA_GAMMA,
) -> Latents:
    """lambda ~ Gamma(r, rate alpha), p ~ Beta(a, b), nu ~ Gamma(q, rate v)."""
    lam = rng.gamma(bg.r, 1.0 / bg.alpha, n)
    # Geometric draws need p > 0; Beta can underflow to 0 for small a.
    p = np.clip(rng.beta(bg.a, bg.b, n), 1e-12, 1.0)
    nu = rng.gamma(gg.q, 1.0 / gg.v, n)
    return Latents(lam=lam, p=p, nu=nu)


def draw_signup_days(
    rng: np.random.Generator, first_index: int, n: int, n_total: int, window: Window
) -> IntArray:
    """Signup day (epoch days) of customers ``first_index .. first_index + n - 1`` of ``n_total``.

    Stratified quantiles (i + U) / n_total of an exponentially growing density keep ids in signup
    order and make the dates independent of the chunking.
    """
    u = (np.arange(first_index, first_index + n, dtype=np.float64) + rng.random(n)) / n_total
    k = math.log(SIGNUP_GROWTH_PER_YEAR) * window.years
    y = np.log1p(u * math.expm1(k)) / k if k > 0 else u
    offset = np.minimum((y * window.n_days).astype(np.int64), window.n_days - 1)
    return window.start_day + offset


@dataclass(frozen=True)
class Purchases:
    """Per-customer purchase histories, flattened to one row per order (customer-major)."""

    ordering: BoolArray  # customer placed a first order inside the window
    x: IntArray  # repeat purchases
    died: BoolArray  # dropped out inside the window (after its last repeat purchase)
    n_orders: IntArray  # 1 + x for ordering customers, else 0
    order_customer: IntArray  # index of the customer of each order
    order_s: IntArray  # order time, epoch seconds


def simulate_purchases(
    rng: np.random.Generator, latents: Latents, first_s: IntArray, ordering: BoolArray, end_s: int
) -> Purchases:
    """BG/NBD repeat purchases after each ordering customer's first order at ``first_s``."""
    n = len(first_s)
    t_sec = np.where(ordering, end_s - first_s, 0)  # T in seconds
    n_poisson = rng.poisson(latents.lam * (t_sec / DAY_S))
    d_geom = rng.geometric(latents.p)
    x = np.where(ordering, np.minimum(n_poisson, d_geom), 0)
    died = ordering & (d_geom <= n_poisson)
    n_orders = ordering.astype(np.int64) + x

    # Repeat times: first x of N uniform order statistics via exponential spacings.
    spacings = np.cumsum(rng.standard_exponential(int(x.sum())))
    rep_customer = np.repeat(np.arange(n), x)
    seg_end = np.cumsum(x)  # one past each customer's last spacing
    before = np.concatenate(([0.0], spacings))[seg_end - x]  # cumsum before the segment
    s_j = spacings - before[rep_customer]
    has_rep = x > 0
    s_x = np.zeros(n)
    s_x[has_rep] = spacings[seg_end[has_rep] - 1] - before[has_rep]
    s_total = s_x.copy()
    s_total[has_rep] += rng.standard_gamma((n_poisson - x + 1)[has_rep])
    frac = s_j / s_total[rep_customer]
    rep_offset = np.minimum((frac * t_sec[rep_customer]).astype(np.int64), t_sec[rep_customer] - 1)

    order_customer = np.repeat(np.arange(n), n_orders)
    order_s = first_s[order_customer].astype(np.int64)
    order_s[_position_in_segment(n_orders) > 0] += rep_offset
    return Purchases(ordering, x, died, n_orders, order_customer, order_s)


# --------------------------------------------------------------------------------------------
# Products and order lines
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Catalogue:
    table: pa.Table
    sorted_log_price: FloatArray  # log list price (cents), ascending
    sorted_product_id: IntArray
    min_price_c: int
    max_price_c: int


def build_catalogue(rng: np.random.Generator, n_products: int = N_PRODUCTS) -> Catalogue:
    """Products with log-uniform list prices per category and category cost ratios."""
    cat = _choice(rng, [c[1] for c in CATEGORIES], n_products)
    lo = np.log(np.array([c[2] for c in CATEGORIES]))[cat]
    hi = np.log(np.array([c[3] for c in CATEGORIES]))[cat]
    price = np.exp(lo + (hi - lo) * rng.random(n_products))
    # Half the prices end in .99 (charm pricing), the rest are rounded to cents.
    charm = rng.random(n_products) < 0.5
    price_c = np.where(charm, np.ceil(price) * 100 - 1, np.rint(price * 100)).astype(np.int64)
    cost_c = np.rint(price_c * np.array([c[4] for c in CATEGORIES])[cat]).astype(np.int64)
    product_id = np.arange(1, n_products + 1, dtype=np.int64)
    adjective = rng.integers(0, len(ADJECTIVES), n_products)
    noun = rng.integers(0, 4, n_products)
    # 2,000 names once per run: a plain loop is clearer than Arrow string kernels here.
    names = [
        f"{ADJECTIVES[a]} {CATEGORIES[c][5][k]} {CATEGORIES[c][0][:2].upper()}-{i:05d}"
        for a, c, k, i in zip(adjective, cat, noun, product_id, strict=True)
    ]
    table = pa.Table.from_arrays(
        [
            pa.array(product_id),
            pa.array(names, pa.string()),
            _labels([c[0] for c in CATEGORIES], cat),
            _cents_to_money(price_c),
            _cents_to_money(cost_c),
        ],
        schema=SCHEMAS["products"],
    )
    order = np.argsort(price_c, kind="stable")
    return Catalogue(
        table=table,
        sorted_log_price=np.log(price_c[order].astype(np.float64)),
        sorted_product_id=product_id[order],
        min_price_c=int(price_c.min()),
        max_price_c=int(price_c.max()),
    )


def _nearest_product(catalogue: Catalogue, log_price: FloatArray) -> IntArray:
    """Index into the price-sorted catalogue of the product nearest to ``log_price``."""
    prices = catalogue.sorted_log_price
    hi = np.clip(np.searchsorted(prices, log_price), 0, len(prices) - 1)
    lo = np.maximum(hi - 1, 0)
    return np.where(np.abs(prices[hi] - log_price) < np.abs(log_price - prices[lo]), hi, lo)


@dataclass(frozen=True)
class Lines:
    order_index: IntArray
    product_id: IntArray
    quantity: IntArray
    unit_c: IntArray
    discount_c: IntArray


def split_orders_into_lines(
    rng: np.random.Generator, total_c: IntArray, catalogue: Catalogue
) -> Lines:
    """Order lines whose net amounts sum exactly to ``total_c`` (cents) per order.

    Temporaries are deleted early: this is the widest step (about 1.8 lines per order).
    """
    n = len(total_c)
    promo = np.where(
        rng.random(n) < PROMO_PROB, np.asarray(PROMO_RATES)[_choice(rng, [1] * 6, n)], 0.0
    )
    k = 1 + rng.poisson(EXTRA_LINES_MEAN, n)
    k = np.clip(k, 1, np.clip(total_c // MIN_LINE_CENTS, 1, MAX_LINES))
    starts = _segment_starts(k)
    order_index = np.repeat(np.arange(n), k)
    n_lines = len(order_index)

    # Floored Dirichlet(2) shares of the gross amount: every line gets at least half its fair
    # share, so the rounding of the other lines can never exhaust the line that absorbs it.
    target = rng.standard_gamma(2.0, n_lines)
    target /= np.add.reduceat(target, starts)[order_index]
    target *= 0.5
    target += (0.5 / k)[order_index]
    target *= (total_c / (1.0 - promo))[order_index]
    qty = 1 + _choice(rng, QUANTITY_PROBS, n_lines)
    np.minimum(qty, np.maximum(1, target // catalogue.min_price_c).astype(np.int64), out=qty)
    np.maximum(qty, np.ceil(target / catalogue.max_price_c).astype(np.int64), out=qty)
    target /= qty  # now the amount per unit
    noisy = np.log(target)
    noisy += rng.normal(0.0, PRODUCT_PICK_NOISE, n_lines)
    product_id = catalogue.sorted_product_id[_nearest_product(catalogue, noisy)]
    del noisy
    unit_c = np.maximum(1, np.rint(target)).astype(np.int64)
    del target
    discount_c = np.rint(qty * unit_c * promo[order_index]).astype(np.int64)

    # The line with the smallest quantity (the last one on ties) absorbs the rounding residual.
    key = qty * n_lines - np.arange(n_lines)
    adjust = key == np.minimum.reduceat(key, starts)[order_index]
    del key
    net = qty * unit_c
    net -= discount_c
    net[adjust] = 0
    rest = total_c - np.add.reduceat(net, starts)
    del net
    q_adj = qty[adjust]
    # Smallest unit price whose discounted gross covers the rest; the excess is the discount.
    unit_adj = np.maximum(1, np.ceil(rest / ((1.0 - promo) * q_adj) - 1e-9)).astype(np.int64)
    unit_c[adjust] = unit_adj
    discount_c[adjust] = q_adj * unit_adj - rest
    return Lines(order_index, product_id, qty, unit_c, discount_c)


# --------------------------------------------------------------------------------------------
# Complaints and surveys
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ChunkContext:
    """What complaints and surveys need to know about a chunk's customers and orders."""

    customer_id: IntArray
    signup_s: IntArray
    purchases: Purchases
    order_start: IntArray  # first order row of each customer
    order_id: IntArray
    order_total_c: IntArray
    lam_rel: FloatArray  # purchase rate relative to the population mean
    end_s: int


def _event_times_after_orders(
    rng: np.random.Generator,
    ctx: ChunkContext,
    cust: IntArray,
    order_pos: IntArray,
    lag_s: IntArray,
) -> tuple[IntArray, IntArray]:
    """(order row or -1, event time) for events of customers ``cust``.

    Buyers' events follow the order at ``order_pos`` by ``lag_s``; events of customers who never
    ordered are uniform between signup and the end of the window.
    """
    has_orders = ctx.purchases.n_orders[cust] > 0
    order_row = np.where(has_orders, ctx.order_start[cust] + order_pos, -1)
    signup = ctx.signup_s[cust]
    uniform = signup + (rng.random(len(cust)) * (ctx.end_s - signup)).astype(np.int64)
    at = np.where(has_orders, _gather(ctx.purchases.order_s, order_row) + lag_s, uniform)
    return order_row, at


def make_complaints(rng: np.random.Generator, ctx: ChunkContext, first_id: int) -> pa.Table:
    """Complaints, concentrated around the last orders of customers who drop out."""
    pur = ctx.purchases
    n = len(ctx.customer_id)
    prob = np.where(
        pur.died,
        COMPLAINT_PROB_CHURNER,
        np.where(pur.ordering, COMPLAINT_PROB_ACTIVE, COMPLAINT_PROB_NO_ORDER),
    )
    count = np.where(pur.died, 1 + rng.poisson(0.4, n), 1 + rng.poisson(0.1, n))
    count = np.where(rng.random(n) < prob, count, 0)
    cust = np.repeat(np.arange(n), count)
    m = len(cust)
    n_ord = pur.n_orders[cust]
    churner = pur.died[cust]
    # Churners complain about one of their last orders (0 = the last), others about any order.
    back = np.minimum(rng.geometric(0.6, m) - 1, np.maximum(n_ord - 1, 0))
    any_pos = (rng.random(m) * n_ord).astype(np.int64)
    pos = np.where(churner, n_ord - 1 - back, any_pos)
    lag = (rng.gamma(1.5, 1.2, m) * DAY_S).astype(np.int64)  # mean 1.8 days after the order
    order_row, opened = _event_times_after_orders(rng, ctx, cust, pos, lag)

    resolve_s = (rng.lognormal(math.log(18 * 3600), 1.2, m)).astype(np.int64)
    resolved = opened + resolve_s
    open_null = (rng.random(m) < 0.03) | (resolved >= ctx.end_s)
    severity = np.where(
        churner,
        _choice(rng, SEVERITY_PROBS_CHURNER, m),
        _choice(rng, SEVERITY_PROBS_ACTIVE, m),
    )
    compensated = rng.random(m) < COMPENSATION_PROB_BY_SEVERITY[severity]
    order_value = _gather(ctx.order_total_c, order_row)
    share = rng.uniform(0.1, 0.5, m)
    flat = np.asarray([500, 1000, 1500, 2500])[_choice(rng, [0.4, 0.3, 0.2, 0.1], m)]
    comp_c = np.where(order_row >= 0, np.rint(order_value * share), flat).astype(np.int64)
    comp_c = np.where(compensated, comp_c, 0)
    no_ref = (order_row < 0) | (rng.random(m) < COMPLAINT_NO_ORDER_REF_PROB)
    category = _choice(rng, COMPLAINT_CATEGORY_PROBS, m)

    keep = opened < ctx.end_s
    order_key = np.lexsort((opened[keep], cust[keep]))
    sel = np.flatnonzero(keep)[order_key]
    k = len(sel)
    return pa.Table.from_arrays(
        [
            pa.array(np.arange(first_id, first_id + k, dtype=np.int64)),
            pa.array(ctx.customer_id[cust[sel]]),
            _nullable_int(_gather(ctx.order_id, order_row[sel]), no_ref[sel], pa.int64()),
            _timestamps(opened[sel]),
            _timestamps(resolved[sel], mask=open_null[sel]),
            _labels(COMPLAINT_CATEGORIES, category[sel]),
            _labels(SEVERITIES, severity[sel]),
            _cents_to_money(comp_c[sel]),
        ],
        schema=SCHEMAS["complaints"],
    )


def make_surveys(rng: np.random.Generator, ctx: ChunkContext, first_id: int) -> pa.Table:
    """Post-purchase surveys of a minority of customers; churners are less satisfied."""
    pur = ctx.purchases
    n = len(ctx.customer_id)
    prob = np.where(pur.ordering, SURVEY_PROB_BUYER, SURVEY_PROB_NO_ORDER)
    count = np.where(rng.random(n) < prob, 1 + rng.poisson(0.5, n), 0)
    satisfaction = rng.normal(0.0, 1.0, n) - 1.0 * pur.died
    cust = np.repeat(np.arange(n), count)
    m = len(cust)
    pos = (rng.random(m) * pur.n_orders[cust]).astype(np.int64)
    lag = (rng.uniform(0.5, 10.0, m) * DAY_S).astype(np.int64)
    _, responded = _event_times_after_orders(rng, ctx, cust, pos, lag)
    mood = 0.8 * satisfaction[cust]
    nps = np.clip(np.rint(7.4 + 2.0 * (mood + 0.6 * rng.normal(size=m))), 0, 10)
    csat = np.clip(np.rint(3.8 + 0.9 * (mood + 0.6 * rng.normal(size=m))), 1, 5)
    # Share of wallet rises with the purchase rate (logistic in log relative rate).
    logit = 0.3 + 0.8 * np.log(np.maximum(ctx.lam_rel[cust], 1e-9)) + rng.normal(0.0, 0.8, m)
    sow = np.clip(np.rint(100.0 / (1.0 + np.exp(-logit))), 0, 100)
    csat_null = rng.random(m) < 0.25
    nps_null = (rng.random(m) < 0.08) & ~csat_null  # every response has a score
    sow_null = rng.random(m) >= 0.35

    keep = responded < ctx.end_s
    sel = np.flatnonzero(keep)[np.lexsort((responded[keep], cust[keep]))]
    k = len(sel)
    return pa.Table.from_arrays(
        [
            pa.array(np.arange(first_id, first_id + k, dtype=np.int64)),
            pa.array(ctx.customer_id[cust[sel]]),
            _timestamps(responded[sel]),
            _nullable_int(nps[sel].astype(np.int32), nps_null[sel], pa.int32()),
            _nullable_int(csat[sel].astype(np.int32), csat_null[sel], pa.int32()),
            _nullable_int(sow[sel].astype(np.int32), sow_null[sel], pa.int32()),
        ],
        schema=SCHEMAS["surveys"],
    )


def make_contacts(
    rng: np.random.Generator, ctx: ChunkContext, lam: FloatArray, first_id: int
) -> pa.Table:
    """Retention contacts of buyers in the last CONTACT_HISTORY_DAYS, with a random holdout."""
    pur = ctx.purchases
    n = len(ctx.customer_id)
    favourite = _choice(rng, CONTACT_CHANNEL_PROBS, n)
    first_row = np.where(pur.ordering, ctx.order_start, -1)
    first_s = np.where(pur.ordering, _gather(pur.order_s, first_row), ctx.end_s)
    last_s = _gather(pur.order_s, np.where(pur.ordering, first_row + pur.n_orders - 1, -1))
    start_s = np.maximum(first_s, ctx.end_s - CONTACT_HISTORY_DAYS * DAY_S)
    contacted = pur.ordering & (start_s < ctx.end_s) & (rng.random(n) < CONTACT_PROB_BUYER)
    count = np.where(contacted, 1 + rng.poisson(CONTACTS_EXTRA_MEAN, n), 0)
    cust = np.repeat(np.arange(n), count)
    m = len(cust)
    sent = start_s[cust] + (rng.random(m) * (ctx.end_s - start_s[cust])).astype(np.int64)
    on_favourite = rng.random(m) < FAVOURITE_CHANNEL_PROB
    channel = np.where(on_favourite, favourite[cust], _choice(rng, CONTACT_CHANNEL_PROBS, m))
    strategy = _choice(rng, CONTACT_STRATEGY_PROBS, m)
    holdout = rng.random(m) < HOLDOUT_SHARE
    factor = np.where(channel == favourite[cust], RESPONSE_FACTOR_FAVOURITE, RESPONSE_FACTOR_OTHER)
    responded = ~holdout & (rng.random(m) < RESPONSE_PROB_BY_STRATEGY[strategy] * factor)
    # Dropouts leave right after their last purchase: no organic purchase after that.
    alive = ~pur.died[cust] | (sent < last_s[cust])
    organic = alive & (rng.random(m) < -np.expm1(-lam[cust] * ATTRIBUTION_DAYS))
    persuaded = responded & (rng.random(m) < CONVERSION_GIVEN_RESPONSE_BY_STRATEGY[strategy])
    converted = organic | persuaded

    sel = np.lexsort((sent, cust))
    return pa.Table.from_arrays(
        [
            pa.array(np.arange(first_id, first_id + m, dtype=np.int64)),
            pa.array(ctx.customer_id[cust[sel]]),
            _timestamps(sent[sel]),
            _labels(CONTACT_CHANNELS, channel[sel]),
            _labels(CONTACT_STRATEGIES, strategy[sel]),
            pa.array(holdout[sel]),
            pa.array(responded[sel], mask=holdout[sel]),
            pa.array(converted[sel]),
        ],
        schema=SCHEMAS["contacts"],
    )


# --------------------------------------------------------------------------------------------
# One chunk of customers
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class IdStart:
    """First id of each table in a chunk (ids are sequential over the chunks)."""

    customer: int = 1
    order: int = 1
    order_item: int = 1
    complaint: int = 1
    response: int = 1
    contact: int = 1


@dataclass(frozen=True)
class ChunkResult:
    tables: dict[str, pa.Table]
    latents: Latents
    purchases: Purchases
    next_ids: IdStart


def _customers_table(
    rng: np.random.Generator, customer_id: IntArray, signup_day: IntArray
) -> pa.Table:
    n = len(customer_id)
    first = rng.integers(0, len(FIRST_NAMES), n)
    last = rng.integers(0, len(LAST_NAMES), n)
    domain = _choice(rng, EMAIL_DOMAIN_PROBS, n)
    # Unique by construction: the local part ends with the customer id.
    email = pc.binary_join_element_wise(
        _labels([f.lower() for f in FIRST_NAMES], first),
        ".",
        _labels(LAST_NAMES, last),
        pc.cast(pa.array(customer_id), pa.string()),
        "@",
        _labels(EMAIL_DOMAINS, domain),
        "",
    )
    return pa.Table.from_arrays(
        [
            pa.array(customer_id),
            pa.array(signup_day.astype(np.int32), pa.int32()).cast(pa.date32()),
            email,
            _labels(FIRST_NAMES, first),
            _labels(COUNTRIES, _choice(rng, COUNTRY_PROBS, n)),
            _labels(CHANNELS, _choice(rng, CHANNEL_PROBS, n)),
        ],
        schema=SCHEMAS["customers"],
    )


def _orders_table(
    order_id: IntArray, customer_id: IntArray, at_s: IntArray, status: IntArray, total_c: IntArray
) -> pa.Table:
    return pa.Table.from_arrays(
        [
            pa.array(order_id),
            pa.array(customer_id),
            _timestamps(at_s),
            _labels(STATUSES, status),
            _cents_to_money(total_c),
        ],
        schema=SCHEMAS["orders"],
    )


def _order_items_table(first_id: int, order_id: IntArray, lines: Lines) -> pa.Table:
    n_lines = len(lines.order_index)
    return pa.Table.from_arrays(
        [
            pa.array(np.arange(first_id, first_id + n_lines, dtype=np.int64)),
            pa.array(order_id[lines.order_index]),
            pa.array(lines.product_id),
            pa.array(lines.quantity.astype(np.int32)),
            _cents_to_money(lines.unit_c),
            _cents_to_money(lines.discount_c),
        ],
        schema=SCHEMAS["order_items"],
    )


def simulate_chunk(
    seed_seq: np.random.SeedSequence,
    n: int,
    *,
    n_total: int,
    window: Window,
    catalogue: Catalogue,
    ids: IdStart,
    bg: BgNbdParams = DEFAULT_BG_NBD,
    gg: GammaGammaParams = DEFAULT_GAMMA_GAMMA,
) -> ChunkResult:
    """Simulate ``n`` customers (ids from ``ids.customer``) and everything they do."""
    # One stream per component: changing one component does not shift the draws of the others
    # (contacts, added later, took a seventh: the first six children are the same).
    rng_lat, rng_cust, rng_pur, rng_line, rng_comp, rng_surv, rng_contact = (
        np.random.default_rng(s) for s in seed_seq.spawn(7)
    )
    latents = draw_latents(rng_lat, n, bg, gg)
    customer_id = np.arange(ids.customer, ids.customer + n, dtype=np.int64)
    signup_day = draw_signup_days(rng_cust, ids.customer - 1, n, n_total, window)
    signup_s = signup_day * DAY_S
    lag_s = (rng_cust.exponential(FIRST_ORDER_LAG_MEAN_DAYS, n) * DAY_S).astype(np.int64)
    first_s = signup_s + rng_cust.integers(0, DAY_S, n) + lag_s
    ordering = (rng_cust.random(n) < FIRST_ORDER_PROB) & (first_s < window.end_s)
    customers = _customers_table(rng_cust, customer_id, signup_day)

    pur = simulate_purchases(rng_pur, latents, first_s, ordering, window.end_s)
    n_ord = len(pur.order_s)
    z = rng_pur.standard_gamma(gg.p, n_ord) / latents.nu[pur.order_customer]
    total_c = np.maximum(1, np.rint(z * 100.0)).astype(np.int64)
    order_id = np.arange(ids.order, ids.order + n_ord, dtype=np.int64)
    # The status is independent of both processes (they describe all placed orders).
    status = _choice(rng_pur, STATUS_PROBS, n_ord)
    orders = _orders_table(order_id, customer_id[pur.order_customer], pur.order_s, status, total_c)
    lines = split_orders_into_lines(rng_line, total_c, catalogue)
    n_lines = len(lines.order_index)
    order_items = _order_items_table(ids.order_item, order_id, lines)

    ctx = ChunkContext(
        customer_id=customer_id,
        signup_s=signup_s,
        purchases=pur,
        order_start=_segment_starts(pur.n_orders),
        order_id=order_id,
        order_total_c=total_c,
        lam_rel=latents.lam * bg.alpha / bg.r,
        end_s=window.end_s,
    )
    complaints = make_complaints(rng_comp, ctx, ids.complaint)
    surveys = make_surveys(rng_surv, ctx, ids.response)
    contacts = make_contacts(rng_contact, ctx, latents.lam, ids.contact)
    next_ids = IdStart(
        customer=ids.customer + n,
        order=ids.order + n_ord,
        order_item=ids.order_item + n_lines,
        complaint=ids.complaint + complaints.num_rows,
        response=ids.response + surveys.num_rows,
        contact=ids.contact + contacts.num_rows,
    )
    tables = {
        "customers": customers,
        "orders": orders,
        "order_items": order_items,
        "complaints": complaints,
        "surveys": surveys,
        "contacts": contacts,
    }
    return ChunkResult(tables, latents, pur, next_ids)


# --------------------------------------------------------------------------------------------
# Bad rows
# --------------------------------------------------------------------------------------------
def stringify_dates(table: pa.Table) -> pa.Table:
    """Date/timestamp columns as 'YYYY-MM-DD' / 'YYYY-MM-DD HH:MM:SS' strings."""
    for i, f in enumerate(table.schema):
        if pa.types.is_date(f.type) or pa.types.is_timestamp(f.type):
            table = table.set_column(i, f.name, table.column(i).cast(pa.string()))
    return table


def bad_row_count(rate: float, clean_rows: int) -> int:
    """Rows to inject per kind: max(3, round half up(rate * clean rows))."""
    return max(3, math.floor(rate * clean_rows + 0.5))


def _set(table: pa.Table, column: str, values: Any) -> pa.Table:
    i = table.schema.get_field_index(column)
    return table.set_column(i, column, pa.array(values, table.schema.field(i).type))


def _future_day(window: Window, n: int) -> list[str]:
    base = window.end_date + timedelta(days=round(FUTURE_YEARS * 365.25))
    return [(base + timedelta(days=i % 30)).isoformat() for i in range(n)]


def _future_ts(window: Window, n: int) -> list[str]:
    base = datetime.combine(window.end_date, datetime.min.time()) + timedelta(
        days=round(FUTURE_YEARS * 365.25)
    )
    return [(base + timedelta(days=i % 30, seconds=37_000 + i)).isoformat(" ") for i in range(n)]


def _cycle(values: Sequence[Any], n: int) -> list[Any]:
    return [values[i % len(values)] for i in range(n)]


class _IdCounter:
    """Hands out consecutive ids starting at ``start``."""

    def __init__(self, start: int) -> None:
        self.next = start

    def take(self, n: int) -> np.ndarray:
        ids = np.arange(self.next, self.next + n, dtype=np.int64)
        self.next += n
        return ids


def _renumber(text: pa.ChunkedArray, numbers: IntArray, width: int) -> pa.Array:
    """Replace the last group of digits in every value with ``numbers`` (zero padded).

    Injected customers and products get fresh ids, and their email or name follows suit so
    that it stays unique (a duplicated email or name would be a second defect).
    """
    parts = pc.extract_regex(text, r"^(?P<head>.*?)(?P<num>\d+)(?P<tail>\D*)$")
    digits = pc.utf8_lpad(pc.cast(pa.array(numbers), pa.string()), width, "0")
    head, tail = pc.struct_field(parts, "head"), pc.struct_field(parts, "tail")
    return pc.binary_join_element_wise(head, digits, tail, "")


def _defect(
    name: str,
    code: str,
    rows: pa.Table,
    *,
    window: Window,
    fresh: _IdCounter,
    unknown: _IdCounter,
) -> pa.Table:
    """Give template rows (string dates) exactly one defect of kind ``code`` and fresh keys."""
    n = rows.num_rows
    key = KEY_COLUMNS[name]
    if code == "duplicate_key":
        return rows
    fresh_ids = fresh.take(n)
    rows = _set(rows, key, fresh_ids)
    if name == "customers":
        rows = _set(rows, "email", _renumber(rows.column("email"), fresh_ids, 1))
    if name == "products":
        name_col = rows.column("product_name")
        rows = _set(rows, "product_name", _renumber(name_col, fresh_ids, 5))
    if code == "null_key":
        return _set(rows, key, [None] * n)
    date_col = DATE_COLUMNS.get(name, "")
    date_defect = code in ("unparseable_date", "future_date")
    if name == "complaints" and (date_defect or code == "unknown_customer"):
        # A resolution before the bad opening time, or an order of another customer, would be a
        # second defect: such complaints are open and refer to no order.
        rows = _set(rows, "resolved_at", [None] * n)
        rows = _set(rows, "order_id", [None] * n)
    if code == "unparseable_date":
        return _set(rows, date_col, _cycle(BAD_DATES if name == "customers" else BAD_TIMESTAMPS, n))
    if code == "future_date":
        return _set(rows, date_col, (_future_day if name == "customers" else _future_ts)(window, n))
    if code == "unknown_customer":
        return _set(rows, "customer_id", unknown.take(n))
    if code == "unknown_order":
        return _set(rows, "order_id", unknown.take(n))
    if code == "invalid_status":
        return _set(rows, "status", _cycle(INVALID_STATUSES, n))
    if code == "negative_amount":
        return _negative_amount(name, rows)
    if code == "out_of_range":
        return _out_of_range(rows)
    raise ValueError(f"unknown bad row kind {name}.{code}")


def _negative_amount(name: str, rows: pa.Table) -> pa.Table:
    if name == "orders":
        return _set(rows, "order_total", pc.negate(rows.column("order_total")))
    if name == "products":
        return _set(rows, "list_price", pc.negate(rows.column("list_price")))
    # order_items: alternate a negative quantity and a negative unit price.
    even = np.arange(rows.num_rows) % 2 == 0
    qty = rows.column("quantity").to_numpy()
    price = rows.column("unit_price").to_numpy()
    rows = _set(rows, "quantity", np.where(even, -qty, qty).astype(np.int32))
    return _set(rows, "unit_price", np.where(even, price, -price))


def _out_of_range(rows: pa.Table) -> pa.Table:
    """Cycle through nps 11..15, csat 0/6 and share of wallet 101..150 (one field per row)."""
    i = np.arange(rows.num_rows)
    replacements = (
        ("nps_score", 11 + i % 5),
        ("csat_score", np.where(i % 2 == 0, 6, 0)),
        ("share_of_wallet_pct", 101 + i % 50),
    )
    for which, (column, bad) in enumerate(replacements):
        hit = i % 3 == which
        old = rows.column(column)
        values = pc.if_else(pa.array(hit), pa.array(bad.astype(np.int32)), old)
        rows = _set(rows, column, values)
    return rows


def make_bad_rows(
    rng: np.random.Generator,
    name: str,
    pool: pa.Table,
    clean_rows: int,
    *,
    rate: float,
    window: Window,
    fresh: _IdCounter,
    unknown: _IdCounter,
) -> tuple[pa.Table, dict[str, int]]:
    """Injected rows of one file (string dates) and their count per reason code."""
    counts: dict[str, int] = {}
    parts: list[pa.Table] = []
    for code in BAD_ROW_KINDS[name]:
        n = bad_row_count(rate, clean_rows) if pool.num_rows else 0
        # Distinct templates where possible so that each duplicate copies its own clean row.
        idx = rng.choice(pool.num_rows, n, replace=n > pool.num_rows) if n else np.array([], int)
        templates = pool.take(pa.array(np.sort(idx), pa.int64()))
        parts.append(_defect(name, code, templates, window=window, fresh=fresh, unknown=unknown))
        counts[code] = n
    schema = parts[0].schema if parts else pool.schema
    return pa.concat_tables([p.cast(schema) for p in parts]), counts


def _pool_sample(rng: np.random.Generator, table: pa.Table, rate: float) -> pa.Table:
    """Random clean rows kept as templates for the bad rows (enough for every kind)."""
    keep = min(table.num_rows, math.ceil(rate * table.num_rows) + 3)
    idx = np.sort(rng.choice(table.num_rows, keep, replace=False))
    return table.take(pa.array(idx, pa.int64()))


def _bad_row_tables(
    rngs: dict[str, np.random.Generator],
    pools: dict[str, list[pa.Table]],
    schemas: dict[str, pa.Schema],
    clean: dict[str, int],
    next_ids: IdStart,
    *,
    rate: float,
    window: Window,
) -> dict[str, tuple[pa.Table, dict[str, int]]]:
    """Bad rows of every file, with fresh ids after the last clean id of each file."""
    fresh_start = {
        "customers": next_ids.customer,
        "orders": next_ids.order,
        "order_items": next_ids.order_item,
        "products": N_PRODUCTS + 1,
        "complaints": next_ids.complaint,
        "surveys": next_ids.response,
        "contacts": next_ids.contact,
    }
    unknown = _IdCounter(UNKNOWN_ID_BASE)  # shared, so every unknown reference is distinct
    tables = {}
    for name in TABLES:
        pool = pa.concat_tables(pools[name]) if pools[name] else schemas[name].empty_table()
        tables[name] = make_bad_rows(
            rngs[name],
            name,
            pool,
            clean[name],
            rate=rate,
            window=window,
            fresh=_IdCounter(fresh_start[name]),
            unknown=unknown,
        )
    return tables


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------
class _Sink:
    """One Parquet and/or CSV writer per table; each write appends row groups."""

    def __init__(self, out_dir: Path, formats: Sequence[str], schemas: dict[str, pa.Schema]):
        self._writers: list[tuple[str, Any]] = []
        for name in TABLES:
            for fmt in formats:
                path = out_dir / f"{name}.{fmt}"
                if fmt == "parquet":
                    writer: Any = pq.ParquetWriter(path, schemas[name], compression="snappy")
                else:
                    writer = pacsv.CSVWriter(path, schemas[name])
                self._writers.append((name, writer))

    def write(self, name: str, table: pa.Table) -> None:
        for table_name, writer in self._writers:
            if table_name == name and table.num_rows:
                writer.write_table(table)

    def close(self) -> None:
        for _, writer in self._writers:
            writer.close()


def _chunk_sizes(n: int, chunk_size: int) -> Iterator[int]:
    for start in range(0, n, chunk_size):
        yield min(chunk_size, n - start)


def _seed_streams(
    seed: int, n_chunks: int
) -> tuple[
    np.random.SeedSequence,
    np.random.SeedSequence,
    list[np.random.SeedSequence],
    np.random.SeedSequence,
]:
    """Independent streams for the catalogue, the bad rows, each chunk of customers and the
    contacts' bad rows (spawned last, so the others are what they were before contacts)."""
    catalogue_ss, bad_ss, *chunk_ss, contacts_bad_ss = np.random.SeedSequence(seed).spawn(
        3 + n_chunks
    )
    return catalogue_ss, bad_ss, chunk_ss, contacts_bad_ss


def simulate_customers(
    customers: int,
    *,
    seed: int = 42,
    end_date: date | str = "2026-06-30",
    years: float = 5.0,
    bg_nbd: BgNbdParams = DEFAULT_BG_NBD,
    gamma_gamma: GammaGammaParams = DEFAULT_GAMMA_GAMMA,
) -> ChunkResult:
    """In-memory run with the latents: the same draws as ``generate`` with one chunk."""
    catalogue_ss, _, (chunk_ss,), _ = _seed_streams(seed, 1)
    return simulate_chunk(
        chunk_ss,
        customers,
        n_total=customers,
        window=Window(_parse_date(end_date), float(years)),
        catalogue=build_catalogue(np.random.default_rng(catalogue_ss)),
        ids=IdStart(),
        bg=bg_nbd,
        gg=gamma_gamma,
    )


def _parse_date(value: date | str) -> date:
    return value if isinstance(value, date) else date.fromisoformat(value)


def generate(
    out_dir: str | Path,
    customers: int = 5000,
    *,
    seed: int = 42,
    fmt: str = "parquet",
    chunk_size: int = 250_000,
    end_date: date | str = "2026-06-30",
    years: float = 5.0,
    inject_bad_rows: bool = False,
    bad_row_rate: float = 0.001,
    quiet: bool = True,
    bg_nbd: BgNbdParams = DEFAULT_BG_NBD,
    gamma_gamma: GammaGammaParams = DEFAULT_GAMMA_GAMMA,
) -> dict[str, Any]:
    """Write the raw files and ``generator_manifest.json`` into ``out_dir``; return the manifest.

    ``fmt`` is ``parquet``, ``csv`` or ``both``. The same arguments give identical files.
    """
    end = _parse_date(end_date)
    _validate(customers, seed, fmt, chunk_size, years, bad_row_rate)
    window = Window(end, float(years))
    formats = FORMATS if fmt == "both" else (fmt,)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for name in TABLES:  # stale files of the other format would mix two runs
        for ext in FORMATS:
            (out / f"{name}.{ext}").unlink(missing_ok=True)

    sizes = list(_chunk_sizes(customers, chunk_size))
    catalogue_ss, bad_ss, chunk_ss, contacts_bad_ss = _seed_streams(seed, len(sizes))
    catalogue = build_catalogue(np.random.default_rng(catalogue_ss))
    prepare: Callable[[pa.Table], pa.Table] = stringify_dates if inject_bad_rows else (lambda t: t)
    schemas = {name: prepare(s.empty_table()).schema for name, s in SCHEMAS.items()}
    rng_bad = np.random.default_rng(bad_ss)
    # Contacts' bad rows draw from a stream of their own: the other files' stay as they were.
    rngs_bad = dict.fromkeys(TABLES, rng_bad) | {"contacts": np.random.default_rng(contacts_bad_ss)}

    sink = _Sink(out, formats, schemas)
    clean = dict.fromkeys(TABLES, 0)
    pools: dict[str, list[pa.Table]] = {name: [] for name in TABLES}
    ids = IdStart()
    try:
        products = prepare(catalogue.table)
        sink.write("products", products)
        clean["products"] = products.num_rows
        pools["products"].append(products)
        for n, ss in tqdm(
            list(zip(sizes, chunk_ss, strict=True)),
            desc="customers",
            unit="chunk",
            file=sys.stderr,
            disable=quiet,
        ):
            result = simulate_chunk(
                ss,
                n,
                n_total=customers,
                window=window,
                catalogue=catalogue,
                ids=ids,
                bg=bg_nbd,
                gg=gamma_gamma,
            )
            ids = result.next_ids
            for name, table in result.tables.items():
                table = prepare(table)
                sink.write(name, table)
                clean[name] += table.num_rows
                if inject_bad_rows and table.num_rows:
                    pools[name].append(_pool_sample(rngs_bad[name], table, bad_row_rate))
        bad_rows: dict[str, dict[str, int]] = {}
        injected = dict.fromkeys(TABLES, 0)
        if inject_bad_rows:
            for name, (table, counts) in _bad_row_tables(
                rngs_bad, pools, schemas, clean, ids, rate=bad_row_rate, window=window
            ).items():
                sink.write(name, table)  # the last row group: after every clean row
                bad_rows[name] = {code: n for code, n in counts.items() if n}
                injected[name] = table.num_rows
    finally:
        sink.close()

    manifest = _manifest(
        seed=seed,
        args={
            "customers": customers,
            "seed": seed,
            "format": fmt,
            "chunk_size": chunk_size,
            "end_date": end.isoformat(),
            "years": float(years),
            "inject_bad_rows": inject_bad_rows,
            "bad_row_rate": bad_row_rate,
        },
        window=window,
        formats=formats,
        clean=clean,
        injected=injected,
        bad_rows=bad_rows,
        bg=bg_nbd,
        gg=gamma_gamma,
    )
    (out / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def _validate(
    customers: int, seed: int, fmt: str, chunk_size: int, years: float, rate: float
) -> None:
    if customers < 1:
        raise ValueError(f"customers must be >= 1, got {customers}")
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    if fmt not in (*FORMATS, "both"):
        raise ValueError(f"format must be parquet, csv or both, got {fmt!r}")
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    if not 0 < years <= MAX_YEARS:
        raise ValueError(f"years must be in (0, {MAX_YEARS}], got {years}")
    if not 0 <= rate <= 1:
        raise ValueError(f"bad_row_rate must be in [0, 1], got {rate}")


def _manifest(
    *,
    seed: int,
    args: dict[str, Any],
    window: Window,
    formats: Sequence[str],
    clean: dict[str, int],
    injected: dict[str, int],
    bad_rows: dict[str, dict[str, int]],
    bg: BgNbdParams,
    gg: GammaGammaParams,
) -> dict[str, Any]:
    n_customers = clean["customers"]
    return {
        "generator": "cvm.generate",
        "generator_version": GENERATOR_VERSION,
        "seed": seed,
        "args": args,
        "end_date": window.end_date.isoformat(),
        "start_date": window.start_date.isoformat(),
        "window_end": (datetime(1970, 1, 1) + timedelta(seconds=window.end_s)).isoformat(" "),
        "files": {name: [f"{name}.{fmt}" for fmt in formats] for name in TABLES},
        "row_counts": {name: clean[name] + injected[name] for name in TABLES},
        "clean_row_counts": clean,
        "parameters": {
            "bg_nbd": {**asdict(bg), "time_unit": "days"},
            "gamma_gamma": asdict(gg),
        },
        "parameter_notes": (
            "BG/NBD: time 0 = a customer's first order, T = window_end - first order, in days; "
            "lambda ~ Gamma(shape r, rate alpha), p ~ Beta(a, b); x = repeat orders. "
            "Gamma-Gamma: nu ~ Gamma(shape q, rate v), order_total ~ Gamma(shape p, rate nu) for "
            "every order incl. the first. Both describe all placed orders: status is independent."
        ),
        "settings": {
            "first_order_prob": FIRST_ORDER_PROB,
            "first_order_lag_mean_days": FIRST_ORDER_LAG_MEAN_DAYS,
            "signup_growth_per_year": SIGNUP_GROWTH_PER_YEAR,
            "status_probs": dict(zip(STATUSES, STATUS_PROBS, strict=True)),
            "promo_prob": PROMO_PROB,
            "n_products": N_PRODUCTS,
        },
        "summary": {
            "orders_per_customer": round(clean["orders"] / n_customers, 4),
            "lines_per_order": round(clean["order_items"] / max(1, clean["orders"]), 4),
        },
        "inject_bad_rows": args["inject_bad_rows"],
        "bad_rows": bad_rows,
    }


# --------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------
def _bounded(kind: Callable[[str], Any], low: float, what: str) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a valid {what}") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"{text!r} is not a finite {what}")
        if value < low:
            raise argparse.ArgumentTypeError(f"must be >= {low}, got {text}")
        return value

    return parse


def _rate(text: str) -> float:
    value = _bounded(float, 0.0, "rate")(text)
    if value > 1:
        raise argparse.ArgumentTypeError(f"must be <= 1, got {text}")
    return value


def _iso_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from None


def _years(text: str) -> float:
    value = _bounded(float, 0.0, "number")(text)
    if not 0 < value <= MAX_YEARS:
        raise argparse.ArgumentTypeError(f"must be in (0, {MAX_YEARS}], got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m cvm.generate",
        description="Generate reproducible raw customer data (Parquet/CSV) for the warehouse, "
        f"with the true process parameters in <out>/{MANIFEST_NAME}.",
    )
    add = parser.add_argument
    add("--customers", type=_bounded(int, 1, "integer"), default=5000, help="default %(default)s")
    add("--out", type=Path, required=True, help="output directory (created if missing)")
    add("--seed", type=_bounded(int, 0, "integer"), default=42, help="default %(default)s")
    add("--format", choices=(*FORMATS, "both"), default="parquet", help="default %(default)s")
    add(
        "--chunk-size",
        type=_bounded(int, 1, "integer"),
        default=250_000,
        help="customers simulated and written at a time; bounds memory (default %(default)s)",
    )
    add(
        "--end-date",
        type=_iso_date,
        default=date(2026, 6, 30),
        help="last day of data, YYYY-MM-DD (default %(default)s)",
    )
    add("--years", type=_years, default=5.0, help="history length (default %(default)s)")
    add(
        "--inject-bad-rows",
        action="store_true",
        help="append rows with one defect each (counted in the manifest); dates become text",
    )
    add(
        "--bad-row-rate",
        type=_rate,
        default=0.001,
        help="bad rows per kind and file, as a share of its clean rows, at least 3 "
        "(default %(default)s)",
    )
    add("--quiet", action="store_true", help="no progress bar")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    manifest = generate(
        args.out,
        args.customers,
        seed=args.seed,
        fmt=args.format,
        chunk_size=args.chunk_size,
        end_date=args.end_date,
        years=args.years,
        inject_bad_rows=args.inject_bad_rows,
        bad_row_rate=args.bad_row_rate,
        quiet=args.quiet,
    )
    if not args.quiet:
        counts = ", ".join(f"{k}={v}" for k, v in manifest["row_counts"].items())
        print(f"wrote {args.out}: {counts}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
