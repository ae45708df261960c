"""Build the warehouse beside the published file and swap it in atomically on success.

DuckDB lets one process write a file or many read it, never both. So `make build` never writes
the published file: it copies it (with the state that lives only there, the tier snapshot and
the incremental tier history) to ``<dir>/.building/<name>`` (a clone that copies no data on a
copy-on-write file system, see clone_file), builds that copy, checkpoints it and
renames it over the published path. A rename is atomic on one file system: a reader that has the
old file open keeps reading the old data until it reconnects, the next reader opens the new
file, nobody ever sees a half-built warehouse, and a failed build leaves the published file as
it was. The staging copy keeps the published file's name because DuckDB names a database after
its file stem, and the views dbt creates refer to relations by that name.
"""

from __future__ import annotations

import fcntl
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

STAGING_DIR_NAME = ".building"


class BuildInProgressError(RuntimeError):
    """Another build holds the lock of this warehouse."""


def staging_path(published: Path) -> Path:
    return published.parent / STAGING_DIR_NAME / published.name


def wal_path(database: Path) -> Path:
    return database.with_name(database.name + ".wal")


@contextmanager
def build_lock(published: Path) -> Iterator[None]:
    """Hold this warehouse's build lock: two builds of one warehouse never run at once. A build
    takes it before any work (demo data, quality reports, staging), so the second stops at once
    and disturbs nothing; the system drops it when the process ends, however it ends."""
    lock_dir = staging_path(published).parent
    lock_dir.mkdir(parents=True, exist_ok=True)
    with open(lock_dir / f"{published.name}.lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise BuildInProgressError(
                f"Another build of {published} is running (lock {lock.name}); wait for it to end."
            ) from None
        yield


def staging_copy(published: Path) -> Path:
    """A fresh staging copy of the published file (an empty path on the first build); call it
    under the build lock."""
    staging = staging_path(published)
    seed_staging(published, staging)
    return staging


@contextmanager
def staged_build(published: Path) -> Iterator[Path]:
    """The build lock and a fresh staging copy, for a build that does nothing before it."""
    with build_lock(published):
        yield staging_copy(published)


def seed_staging(published: Path, staging: Path) -> None:
    """Start the staging file as a copy of the published one, write-ahead log included."""
    for stale in (staging, wal_path(staging)):
        stale.unlink(missing_ok=True)
    if published.exists():
        clone_file(published, staging)
        if wal_path(published).exists():
            clone_file(wal_path(published), wal_path(staging))


# Linux's ioctl that makes a file share another's blocks (what `cp --reflink` asks for).
FICLONE = 0x40049409


def clone_file(source: Path, target: Path) -> None:
    """Copy ``source`` to ``target``: a copy-on-write clone where the file system makes one
    (XFS, Btrfs: no data is copied, whatever the size, and each file's later writes stay its
    own), else a copy in the kernel at disk speed (ext4)."""
    with open(source, "rb") as original, open(target, "wb") as copy:
        try:
            fcntl.ioctl(copy.fileno(), FICLONE, original.fileno())
            return
        except OSError:  # not supported here (another file system, or across file systems)
            pass
    shutil.copyfile(source, target)


def publish(staging: Path, published: Path) -> None:
    """Checkpoint the staging file (so it is complete without a log) and rename it over the
    published path."""
    with duckdb.connect(str(staging)) as connection:
        connection.execute("checkpoint")
    if wal_path(staging).exists():
        raise RuntimeError(f"{staging} still has a write-ahead log after a checkpoint")
    # A log next to the published file belongs to the old file; DuckDB would replay it into
    # the new one. Its contents are in the staging copy (see seed_staging).
    wal_path(published).unlink(missing_ok=True)
    os.replace(staging, published)
    directory = os.open(published.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
