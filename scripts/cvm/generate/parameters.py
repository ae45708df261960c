"""Every number that shapes the generated data, in one place.

The true BG/NBD and Gamma-Gamma parameters (the defaults; the manifest records the ones a run
used, so that model fits can be checked against them), the constants of the other processes
(signups, first orders, statuses, order lines, products, customer attributes, complaints,
surveys, contacts) and the history window. Separate so that tuning the data means reading one
module. The bad rows' own constants live in :mod:`cvm.generate.bad_rows`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np

from cvm.clv.bg_nbd import BgNbdParams
from cvm.clv.gamma_gamma import GammaGammaParams

DAY_S = 86_400
EPOCH = date(1970, 1, 1)


# The true parameters, in the CLV models' types and units (alpha a rate per day, v a rate), so
# that a fit compares with them directly.
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


# --------------------------------------------------------------------------------------------
# History window
# --------------------------------------------------------------------------------------------
def _epoch_day(d: date) -> int:
    return (d - EPOCH).days


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


def parse_date(value: date | str) -> date:
    """The end date as given to generate: a date or an ISO string."""
    return value if isinstance(value, date) else date.fromisoformat(value)
