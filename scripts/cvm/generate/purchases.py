"""The purchase processes: latent draws, BG/NBD purchase histories, order values, order lines.

Repeat purchases follow BG/NBD (Fader, Hardie & Lee 2005) in continuous time in DAYS, from the
first order (time 0) to the end of the window (``end-date`` 24:00), T days later:
lambda ~ Gamma(shape=r, rate=alpha), p ~ Beta(a, b); repeat purchases are a Poisson(lambda)
process and after every repeat purchase the customer drops out with probability p. Hence
x = min(N, D) with N ~ Poisson(lambda T) and D ~ Geometric(p) on {1, 2, ...}; the repeat times
are the first x of N uniform order statistics on [0, T], drawn through exponential spacings
(U_(j) = S_j / S_(N+1), S_(N+1) = S_x + Gamma(N + 1 - x)), so no customer needs N draws.
Times are floored to whole seconds; there is no time-of-day or weekday pattern (that would
break the Poisson process the parameters describe).

Order values follow Gamma-Gamma (Fader, Hardie & Lee 2005, "RFM and CLV"; Colombo & Jiang
1999): nu ~ Gamma(shape=q, rate=v) per customer and every order's value z ~ Gamma(shape=p,
rate=nu) (first and repeat orders alike). ``order_total`` is z rounded to cents.

The BG/NBD and Gamma-Gamma parameters describe ALL placed orders: the status (completed,
cancelled, returned) is drawn independently of both processes afterwards.

Order lines: 1 + Poisson line count, the order's gross amount (total / (1 - promo rate)) split
with a floored Dirichlet, a skewed quantity per line, and the product whose list price is
nearest to the per-unit amount (with a little noise) in a price-sorted catalogue. unit_price is
that per-unit amount, within a few percent of the list price. A promo order (5-30 %) discounts
every line; the line with the smallest quantity absorbs the rounding so that the lines' net
amounts (quantity * unit_price - discount_amount) sum exactly to order_total. That line may
therefore carry a discount of a few cents (< its quantity) on orders without a promo.

Separate because these are the processes whose true parameters the CLV models estimate: the
code a fit is checked against, free of table building and file writing.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cvm.clv.bg_nbd import BgNbdParams
from cvm.clv.gamma_gamma import GammaGammaParams
from cvm.generate._vectors import (
    BoolArray,
    FloatArray,
    IntArray,
    choice,
    position_in_segment,
    segment_starts,
)
from cvm.generate.catalogue import Catalogue, nearest_product
from cvm.generate.parameters import (
    DAY_S,
    DEFAULT_BG_NBD,
    DEFAULT_GAMMA_GAMMA,
    EXTRA_LINES_MEAN,
    MAX_LINES,
    MIN_LINE_CENTS,
    PRODUCT_PICK_NOISE,
    PROMO_PROB,
    PROMO_RATES,
    QUANTITY_PROBS,
)


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
    order_s[position_in_segment(n_orders) > 0] += rep_offset
    return Purchases(ordering, x, died, n_orders, order_customer, order_s)


def draw_order_totals(
    rng: np.random.Generator, latents: Latents, purchases: Purchases, gg: GammaGammaParams
) -> IntArray:
    """Order values in cents: z ~ Gamma(p, rate nu) with the nu of each order's customer."""
    z = rng.standard_gamma(gg.p, len(purchases.order_s)) / latents.nu[purchases.order_customer]
    return np.maximum(1, np.rint(z * 100.0)).astype(np.int64)


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
        rng.random(n) < PROMO_PROB, np.asarray(PROMO_RATES)[choice(rng, [1] * 6, n)], 0.0
    )
    k = 1 + rng.poisson(EXTRA_LINES_MEAN, n)
    k = np.clip(k, 1, np.clip(total_c // MIN_LINE_CENTS, 1, MAX_LINES))
    starts = segment_starts(k)
    order_index = np.repeat(np.arange(n), k)
    n_lines = len(order_index)

    # Floored Dirichlet(2) shares of the gross amount: every line gets at least half its fair
    # share, so the rounding of the other lines can never exhaust the line that absorbs it.
    target = rng.standard_gamma(2.0, n_lines)
    target /= np.add.reduceat(target, starts)[order_index]
    target *= 0.5
    target += (0.5 / k)[order_index]
    target *= (total_c / (1.0 - promo))[order_index]
    qty = 1 + choice(rng, QUANTITY_PROBS, n_lines)
    np.minimum(qty, np.maximum(1, target // catalogue.min_price_c).astype(np.int64), out=qty)
    np.maximum(qty, np.ceil(target / catalogue.max_price_c).astype(np.int64), out=qty)
    target /= qty  # now the amount per unit
    noisy = np.log(target)
    noisy += rng.normal(0.0, PRODUCT_PICK_NOISE, n_lines)
    product_id = catalogue.sorted_product_id[nearest_product(catalogue, noisy)]
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
