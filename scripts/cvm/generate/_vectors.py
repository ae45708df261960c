"""Small vectorised helpers of the modules that draw rows: numpy draws and Arrow columns.

Shared by the catalogue, purchases, interactions, customers and bad rows modules; private to
the package (nothing outside :mod:`cvm.generate` needs them).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa

from cvm.generate.schemas import TS

FloatArray = np.ndarray
IntArray = np.ndarray
BoolArray = np.ndarray


def choice(rng: np.random.Generator, probs: Sequence[float], size: int) -> IntArray:
    """Category indices drawn with the given probabilities (inverse CDF, vectorised)."""
    cdf = np.cumsum(probs)
    idx = np.searchsorted(cdf / cdf[-1], rng.random(size), side="right")
    return np.minimum(idx, len(probs) - 1)


def labels(values: Sequence[str], idx: IntArray) -> pa.Array:
    """A string column from label indices, built in Arrow (no Python string per row)."""
    return pa.array(values, pa.string()).take(pa.array(idx, pa.int32()))


def segment_starts(counts: IntArray) -> IntArray:
    """Start offset of each segment in a flat array holding ``counts[i]`` items per segment."""
    return np.cumsum(counts) - counts


def position_in_segment(counts: IntArray) -> IntArray:
    """0, 1, ..., counts[i]-1 for every segment, flattened."""
    total = int(counts.sum())
    return np.arange(total, dtype=np.int64) - np.repeat(segment_starts(counts), counts)


def cents_to_money(cents: IntArray) -> pa.Array:
    return pa.array(np.asarray(cents, dtype=np.int64) / 100.0, pa.float64())


def timestamps(seconds: IntArray, mask: BoolArray | None = None) -> pa.Array:
    """Epoch seconds -> timestamp[s]; ``mask`` marks nulls."""
    return pa.array(np.asarray(seconds, dtype=np.int64), pa.int64(), mask=mask).cast(TS)


def nullable_int(values: IntArray, null: BoolArray, typ: pa.DataType) -> pa.Array:
    return pa.array(np.where(null, 0, values), typ, mask=null)


def gather(values: np.ndarray, rows: IntArray) -> np.ndarray:
    """``values[rows]`` where ``rows >= 0``, else 0 (also when ``values`` is empty)."""
    if len(values) == 0:
        return np.zeros(len(rows), dtype=values.dtype)
    return np.where(rows >= 0, values[np.maximum(rows, 0)], 0)
