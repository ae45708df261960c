"""The run: chunks of customers written to Parquet and/or CSV, then the manifest.

:func:`generate` validates the arguments, spawns the random streams, writes the catalogue and
then one chunk of customers at a time (memory grows with the chunk size, not with the number of
customers), appends the bad rows last if asked and writes ``generator_manifest.json`` with the
true parameters, row counts and bad rows. Separate because it is the only module that touches
the file system: everything it writes is made elsewhere.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator, Sequence
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from tqdm import tqdm

from cvm.clv.bg_nbd import BgNbdParams
from cvm.clv.gamma_gamma import GammaGammaParams
from cvm.generate.bad_rows import bad_row_tables, pool_sample, stringify_dates
from cvm.generate.catalogue import build_catalogue
from cvm.generate.customers import IdStart, seed_streams, simulate_chunk
from cvm.generate.parameters import (
    DEFAULT_BG_NBD,
    DEFAULT_GAMMA_GAMMA,
    FIRST_ORDER_LAG_MEAN_DAYS,
    FIRST_ORDER_PROB,
    MAX_YEARS,
    N_PRODUCTS,
    PROMO_PROB,
    SIGNUP_GROWTH_PER_YEAR,
    STATUS_PROBS,
    STATUSES,
    Window,
    parse_date,
)
from cvm.generate.schemas import SCHEMAS, TABLES

GENERATOR_VERSION = "1.0.0"
MANIFEST_NAME = "generator_manifest.json"
FORMATS = ("parquet", "csv")


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
    end = parse_date(end_date)
    _validate(customers, seed, fmt, chunk_size, years, bad_row_rate)
    window = Window(end, float(years))
    formats = FORMATS if fmt == "both" else (fmt,)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for name in TABLES:  # stale files of the other format would mix two runs
        for ext in FORMATS:
            (out / f"{name}.{ext}").unlink(missing_ok=True)

    sizes = list(_chunk_sizes(customers, chunk_size))
    catalogue_ss, bad_ss, chunk_ss, contacts_bad_ss = seed_streams(seed, len(sizes))
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
                    pools[name].append(pool_sample(rngs_bad[name], table, bad_row_rate))
        bad_rows: dict[str, dict[str, int]] = {}
        injected = dict.fromkeys(TABLES, 0)
        if inject_bad_rows:
            for name, (table, counts) in bad_row_tables(
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
            "bg_nbd": {**bg._asdict(), "time_unit": "days"},
            "gamma_gamma": gg._asdict(),
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
