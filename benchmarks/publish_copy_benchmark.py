"""Benchmark (outside the test suite): the staging copy a `make build` starts from.

Before it builds, `make build` copies the published warehouse to `<dir>/.building/`
(cvm.publish.seed_staging). This times that step on a real warehouse file where it lies, and
on a copy-on-write file system (XFS with reflinks, Btrfs), where the copy is a clone:
    .venv/bin/python benchmarks/publish_copy_benchmark.py \
        --warehouse warehouse/cvm.duckdb --copy-on-write-dir /mnt/xfs --repeats 3
The warehouse is copied once, untimed, into --copy-on-write-dir; both copies are removed after.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import time
from pathlib import Path

from cvm import publish


def free_bytes(directory: Path) -> int:
    os.sync()
    stats = os.statvfs(directory)
    return stats.f_bavail * stats.f_frsize


def file_system(path: Path) -> str:
    """The type of the file system holding ``path`` (the longest mount point above it)."""
    mounts = [line.split()[1:3] for line in Path("/proc/self/mounts").read_text().splitlines()]
    above = [(point, kind) for point, kind in mounts if path.resolve().is_relative_to(point)]
    return max(above, key=lambda mount: len(mount[0]))[1]


def time_staging_copy(published: Path, repeats: int) -> tuple[list[float], int]:
    """Seconds of each seed_staging run, and the disk space the last copy took (bytes)."""
    staging = publish.staging_path(published)
    staging.parent.mkdir(exist_ok=True)
    runs = []
    for _ in range(repeats):
        staging.unlink(missing_ok=True)
        free = free_bytes(published.parent)
        started = time.perf_counter()
        publish.seed_staging(published, staging)
        os.sync()  # the copy is on disk, not only in the page cache
        runs.append(time.perf_counter() - started)
        used = free - free_bytes(published.parent)
    staging.unlink()
    return runs, used


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warehouse", type=Path, required=True, help="a built warehouse file")
    parser.add_argument("--copy-on-write-dir", type=Path, help="a directory on XFS or Btrfs")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    size = args.warehouse.stat().st_size
    print(f"warehouse {args.warehouse}: {size / 1e9:.2f} GB")
    places = [(f"where it lies ({file_system(args.warehouse)})", args.warehouse)]
    if args.copy_on_write_dir:
        clone_source = args.copy_on_write_dir / args.warehouse.name
        shutil.copyfile(args.warehouse, clone_source)
        places.append((f"copy-on-write ({file_system(clone_source)})", clone_source))
    rows = []
    try:
        for label, published in places:
            runs, used = time_staging_copy(published, args.repeats)
            seconds = statistics.median(runs)
            each = ", ".join(f"{run:.3f}" for run in runs)
            rows.append(f"| {label} | {seconds:.3f} | {each} | {used / 1e9:.2f} |")
    finally:
        if args.copy_on_write_dir:
            clone_source.unlink(missing_ok=True)
    print("| file system | staging copy s (median) | runs s | disk space taken GB |")
    print("|---|---:|---:|---:|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
