"""Complaints, surveys and retention contacts: what customers say and what is sent to them.

Complaints are much more likely for customers who drop out in the window (around their last
orders) than for customers still active; surveys are answered by about a fifth of customers,
and churners give lower NPS and CSAT. Neither is ever after the end of ``end-date``.

Contacts (retention campaigns) reach ``CONTACT_PROB_BUYER`` of the buyers, 1 + Poisson(1)
times each, uniformly over the last ``CONTACT_HISTORY_DAYS`` days (never before the first
order). Every customer has a favourite channel that most of their contacts use; a random
``HOLDOUT_SHARE`` of contacts is a holdout (selected, deliberately not sent: ``responded`` is
empty). Responses depend on the strategy and on whether the channel is the favourite;
``converted`` (a purchase within ``ATTRIBUTION_DAYS``) is the customer's own chance to buy
in that time (1 - exp(-30 lambda) while alive) for everyone, plus, for treated contacts that
responded, a strategy-specific conversion. The conversions that contacts add are not fed back
into the orders. Contacts use a random stream of their own (a seventh stream per chunk and
their own bad-row stream), so the other files are byte-identical to a run without them.

Separate because these tables only read the purchase histories (:class:`ChunkContext`) and
never change them: nothing here moves a CLV parameter.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from cvm.generate._vectors import (
    FloatArray,
    IntArray,
    cents_to_money,
    choice,
    gather,
    labels,
    nullable_int,
    timestamps,
)
from cvm.generate.parameters import (
    ATTRIBUTION_DAYS,
    COMPENSATION_PROB_BY_SEVERITY,
    COMPLAINT_CATEGORIES,
    COMPLAINT_CATEGORY_PROBS,
    COMPLAINT_NO_ORDER_REF_PROB,
    COMPLAINT_PROB_ACTIVE,
    COMPLAINT_PROB_CHURNER,
    COMPLAINT_PROB_NO_ORDER,
    CONTACT_CHANNEL_PROBS,
    CONTACT_CHANNELS,
    CONTACT_HISTORY_DAYS,
    CONTACT_PROB_BUYER,
    CONTACT_STRATEGIES,
    CONTACT_STRATEGY_PROBS,
    CONTACTS_EXTRA_MEAN,
    CONVERSION_GIVEN_RESPONSE_BY_STRATEGY,
    DAY_S,
    FAVOURITE_CHANNEL_PROB,
    HOLDOUT_SHARE,
    RESPONSE_FACTOR_FAVOURITE,
    RESPONSE_FACTOR_OTHER,
    RESPONSE_PROB_BY_STRATEGY,
    SEVERITIES,
    SEVERITY_PROBS_ACTIVE,
    SEVERITY_PROBS_CHURNER,
    SURVEY_PROB_BUYER,
    SURVEY_PROB_NO_ORDER,
)
from cvm.generate.purchases import Purchases
from cvm.generate.schemas import SCHEMAS


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
    at = np.where(has_orders, gather(ctx.purchases.order_s, order_row) + lag_s, uniform)
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
        choice(rng, SEVERITY_PROBS_CHURNER, m),
        choice(rng, SEVERITY_PROBS_ACTIVE, m),
    )
    compensated = rng.random(m) < COMPENSATION_PROB_BY_SEVERITY[severity]
    order_value = gather(ctx.order_total_c, order_row)
    share = rng.uniform(0.1, 0.5, m)
    flat = np.asarray([500, 1000, 1500, 2500])[choice(rng, [0.4, 0.3, 0.2, 0.1], m)]
    comp_c = np.where(order_row >= 0, np.rint(order_value * share), flat).astype(np.int64)
    comp_c = np.where(compensated, comp_c, 0)
    no_ref = (order_row < 0) | (rng.random(m) < COMPLAINT_NO_ORDER_REF_PROB)
    category = choice(rng, COMPLAINT_CATEGORY_PROBS, m)

    keep = opened < ctx.end_s
    order_key = np.lexsort((opened[keep], cust[keep]))
    sel = np.flatnonzero(keep)[order_key]
    k = len(sel)
    return pa.Table.from_arrays(
        [
            pa.array(np.arange(first_id, first_id + k, dtype=np.int64)),
            pa.array(ctx.customer_id[cust[sel]]),
            nullable_int(gather(ctx.order_id, order_row[sel]), no_ref[sel], pa.int64()),
            timestamps(opened[sel]),
            timestamps(resolved[sel], mask=open_null[sel]),
            labels(COMPLAINT_CATEGORIES, category[sel]),
            labels(SEVERITIES, severity[sel]),
            cents_to_money(comp_c[sel]),
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
            timestamps(responded[sel]),
            nullable_int(nps[sel].astype(np.int32), nps_null[sel], pa.int32()),
            nullable_int(csat[sel].astype(np.int32), csat_null[sel], pa.int32()),
            nullable_int(sow[sel].astype(np.int32), sow_null[sel], pa.int32()),
        ],
        schema=SCHEMAS["surveys"],
    )


def make_contacts(
    rng: np.random.Generator, ctx: ChunkContext, lam: FloatArray, first_id: int
) -> pa.Table:
    """Retention contacts of buyers in the last CONTACT_HISTORY_DAYS, with a random holdout."""
    pur = ctx.purchases
    n = len(ctx.customer_id)
    favourite = choice(rng, CONTACT_CHANNEL_PROBS, n)
    first_row = np.where(pur.ordering, ctx.order_start, -1)
    first_s = np.where(pur.ordering, gather(pur.order_s, first_row), ctx.end_s)
    last_s = gather(pur.order_s, np.where(pur.ordering, first_row + pur.n_orders - 1, -1))
    start_s = np.maximum(first_s, ctx.end_s - CONTACT_HISTORY_DAYS * DAY_S)
    contacted = pur.ordering & (start_s < ctx.end_s) & (rng.random(n) < CONTACT_PROB_BUYER)
    count = np.where(contacted, 1 + rng.poisson(CONTACTS_EXTRA_MEAN, n), 0)
    cust = np.repeat(np.arange(n), count)
    m = len(cust)
    sent = start_s[cust] + (rng.random(m) * (ctx.end_s - start_s[cust])).astype(np.int64)
    on_favourite = rng.random(m) < FAVOURITE_CHANNEL_PROB
    channel = np.where(on_favourite, favourite[cust], choice(rng, CONTACT_CHANNEL_PROBS, m))
    strategy = choice(rng, CONTACT_STRATEGY_PROBS, m)
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
            timestamps(sent[sel]),
            labels(CONTACT_CHANNELS, channel[sel]),
            labels(CONTACT_STRATEGIES, strategy[sel]),
            pa.array(holdout[sel]),
            pa.array(responded[sel], mask=holdout[sel]),
            pa.array(converted[sel]),
        ],
        schema=SCHEMAS["contacts"],
    )
