"""The product catalogue: names, categories, list prices and unit costs.

Built once per run from a random stream of its own (so the products do not depend on the number
of customers or the chunking), written as ``products`` and used by :mod:`cvm.generate.purchases`
to pick the product of each order line by price. Separate from the purchases because it is a
table of its own, made before any customer.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from cvm.generate._vectors import FloatArray, IntArray, cents_to_money, choice, labels
from cvm.generate.parameters import ADJECTIVES, CATEGORIES, N_PRODUCTS
from cvm.generate.schemas import SCHEMAS


@dataclass(frozen=True)
class Catalogue:
    table: pa.Table
    sorted_log_price: FloatArray  # log list price (cents), ascending
    sorted_product_id: IntArray
    min_price_c: int
    max_price_c: int


def build_catalogue(rng: np.random.Generator, n_products: int = N_PRODUCTS) -> Catalogue:
    """Products with log-uniform list prices per category and category cost ratios."""
    cat = choice(rng, [c[1] for c in CATEGORIES], n_products)
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
            labels([c[0] for c in CATEGORIES], cat),
            cents_to_money(price_c),
            cents_to_money(cost_c),
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


def nearest_product(catalogue: Catalogue, log_price: FloatArray) -> IntArray:
    """Index into the price-sorted catalogue of the product nearest to ``log_price``."""
    prices = catalogue.sorted_log_price
    hi = np.clip(np.searchsorted(prices, log_price), 0, len(prices) - 1)
    lo = np.maximum(hi - 1, 0)
    return np.where(np.abs(prices[hi] - log_price) < np.abs(log_price - prices[lo]), hi, lo)
