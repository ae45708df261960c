"""Helpers of `make slim-ci`.

    python -m cvm.slim_ci database PATH/manifest.json

prints the database name production's models live in (dbt-duckdb names a database after the
warehouse file's stem), the alias under which slim CI attaches production read-only so that
deferred references resolve.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path


def production_database(manifest_path: Path) -> str:
    manifest = json.loads(manifest_path.read_text())
    databases = {
        node["database"]
        for node in manifest["nodes"].values()
        if node["resource_type"] in {"model", "seed", "snapshot"}
    }
    if len(databases) != 1:
        raise SystemExit(f"expected one database in {manifest_path}, found {sorted(databases)}")
    return databases.pop()


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 2 or args[0] != "database":
        print(__doc__, file=sys.stderr)
        return 2
    print(production_database(Path(args[1])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
