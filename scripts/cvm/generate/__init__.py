"""Seeded, vectorised generator of raw data for the Customer Value Warehouse.

Run it as ``.venv/bin/python -m cvm.generate --customers 100000 --out data/raw`` or call
:func:`generate`. It writes one file per table (``<name>.parquet`` and/or ``<name>.csv``) plus
``generator_manifest.json`` with the true process parameters, row counts and injected bad rows.

Modules, one job each; each imports only modules listed before it:

* :mod:`~cvm.generate.parameters` - every number that shapes the data: the true BG/NBD and
  Gamma-Gamma parameters, the other processes' constants, the history window.
* :mod:`~cvm.generate.schemas` - the raw file contract: the tables and their Arrow schemas.
* ``_vectors`` - small numpy and Arrow helpers shared by the modules below (private).
* :mod:`~cvm.generate.catalogue` - the product catalogue.
* :mod:`~cvm.generate.purchases` - latent draws, BG/NBD purchases, order values, order lines.
* :mod:`~cvm.generate.interactions` - complaints, surveys and retention contacts.
* :mod:`~cvm.generate.customers` - one chunk of customers and everything they do; the streams.
* :mod:`~cvm.generate.bad_rows` - the injected bad rows (``--inject-bad-rows``).
* :mod:`~cvm.generate.writing` - :func:`generate`: the files and the manifest.
* ``__main__`` - the command line.

Each process is described in its module. All are vectorised with numpy; customers are
simulated in chunks to bound memory.

Reproducibility: ``np.random.SeedSequence(seed).spawn`` gives independent streams to the product
catalogue, the bad rows and each chunk (and, inside a chunk, to each component), so the same
arguments and seed give byte-identical files. The chunk size is one of those arguments: another
chunk size gives another (equally valid) sample. Memory grows with the chunk size (about 1.5 GB
peak at the default 250,000 customers), not with the number of customers.
"""

from cvm.generate.bad_rows import BAD_ROW_KINDS, stringify_dates
from cvm.generate.customers import ChunkResult, simulate_customers
from cvm.generate.parameters import (
    CONTACT_STRATEGIES,
    DEFAULT_BG_NBD,
    DEFAULT_GAMMA_GAMMA,
    HOLDOUT_SHARE,
    N_PRODUCTS,
)
from cvm.generate.purchases import draw_latents
from cvm.generate.schemas import SCHEMAS, TABLES, TS
from cvm.generate.writing import MANIFEST_NAME, generate

__all__ = [
    "BAD_ROW_KINDS",
    "CONTACT_STRATEGIES",
    "DEFAULT_BG_NBD",
    "DEFAULT_GAMMA_GAMMA",
    "HOLDOUT_SHARE",
    "MANIFEST_NAME",
    "N_PRODUCTS",
    "SCHEMAS",
    "TABLES",
    "TS",
    "ChunkResult",
    "draw_latents",
    "generate",
    "simulate_customers",
    "stringify_dates",
]
