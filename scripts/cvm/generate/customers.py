"""One chunk of customers and everything they do, and the random streams that drive it.

Signups: customer ids are 1..N in signup order. Signup dates cover ``--years`` years up to
``--end-date`` with exponential growth (``SIGNUP_GROWTH_PER_YEAR``); customer i gets the
quantile (i + U)/N of that distribution, so ids stay in signup order across chunks.

First order: with probability ``FIRST_ORDER_PROB`` a customer orders a few days after signup
(exponential lag); the others, and those whose first order would fall after the end of the
window, never order.

:func:`simulate_chunk` draws the customers (names, emails, country, channel), then runs the
purchase processes (:mod:`cvm.generate.purchases`) and the interactions
(:mod:`cvm.generate.interactions`) on them and builds every table of the chunk. Separate
because it is the one place that knows the order of the random streams: each component draws
from a child of the chunk's seed, so a change inside one component leaves the others' draws
as they were.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from cvm.clv.bg_nbd import BgNbdParams
from cvm.clv.gamma_gamma import GammaGammaParams
from cvm.generate._vectors import (
    IntArray,
    cents_to_money,
    choice,
    labels,
    segment_starts,
    timestamps,
)
from cvm.generate.catalogue import Catalogue, build_catalogue
from cvm.generate.interactions import ChunkContext, make_complaints, make_contacts, make_surveys
from cvm.generate.parameters import (
    CHANNEL_PROBS,
    CHANNELS,
    COUNTRIES,
    COUNTRY_PROBS,
    DAY_S,
    DEFAULT_BG_NBD,
    DEFAULT_GAMMA_GAMMA,
    EMAIL_DOMAIN_PROBS,
    EMAIL_DOMAINS,
    FIRST_NAMES,
    FIRST_ORDER_LAG_MEAN_DAYS,
    FIRST_ORDER_PROB,
    LAST_NAMES,
    SIGNUP_GROWTH_PER_YEAR,
    STATUS_PROBS,
    STATUSES,
    Window,
    parse_date,
)
from cvm.generate.purchases import (
    Latents,
    Lines,
    Purchases,
    draw_latents,
    draw_order_totals,
    simulate_purchases,
    split_orders_into_lines,
)
from cvm.generate.schemas import SCHEMAS


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
    domain = choice(rng, EMAIL_DOMAIN_PROBS, n)
    # Unique by construction: the local part ends with the customer id.
    email = pc.binary_join_element_wise(
        labels([f.lower() for f in FIRST_NAMES], first),
        ".",
        labels(LAST_NAMES, last),
        pc.cast(pa.array(customer_id), pa.string()),
        "@",
        labels(EMAIL_DOMAINS, domain),
        "",
    )
    return pa.Table.from_arrays(
        [
            pa.array(customer_id),
            pa.array(signup_day.astype(np.int32), pa.int32()).cast(pa.date32()),
            email,
            labels(FIRST_NAMES, first),
            labels(COUNTRIES, choice(rng, COUNTRY_PROBS, n)),
            labels(CHANNELS, choice(rng, CHANNEL_PROBS, n)),
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
            timestamps(at_s),
            labels(STATUSES, status),
            cents_to_money(total_c),
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
            cents_to_money(lines.unit_c),
            cents_to_money(lines.discount_c),
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
    total_c = draw_order_totals(rng_pur, latents, pur, gg)
    order_id = np.arange(ids.order, ids.order + n_ord, dtype=np.int64)
    # The status is independent of both processes (they describe all placed orders).
    status = choice(rng_pur, STATUS_PROBS, n_ord)
    orders = _orders_table(order_id, customer_id[pur.order_customer], pur.order_s, status, total_c)
    lines = split_orders_into_lines(rng_line, total_c, catalogue)
    n_lines = len(lines.order_index)
    order_items = _order_items_table(ids.order_item, order_id, lines)

    ctx = ChunkContext(
        customer_id=customer_id,
        signup_s=signup_s,
        purchases=pur,
        order_start=segment_starts(pur.n_orders),
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


def seed_streams(
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
    catalogue_ss, _, (chunk_ss,), _ = seed_streams(seed, 1)
    return simulate_chunk(
        chunk_ss,
        customers,
        n_total=customers,
        window=Window(parse_date(end_date), float(years)),
        catalogue=build_catalogue(np.random.default_rng(catalogue_ss)),
        ids=IdStart(),
        bg=bg_nbd,
        gg=gamma_gamma,
    )
