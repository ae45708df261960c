"""Readers during a rebuild: `make build` builds a staging copy and publishes it atomically."""

from __future__ import annotations

import hashlib
import subprocess
import time
from pathlib import Path

import duckdb
import pytest

from conftest import PUBLISHED_AS_OF, PUBLISHED_END_DATE
from cvm import publish
from cvm.build import PROJECT_DIR
from cvm.generate import generate
from dbt_project import make_build, make_build_env

FINGERPRINT = """
    select
        (select as_of_date from staging.base_shop__as_of_date),
        (select count(*) from marts.customer_value where recency_days is not null),
        (select sum(clv) from marts.customer_value),
        (select sum(revenue) from bi.revenue_and_margin_by_tier_month)
"""


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.slow
def test_readers_never_block_a_build_and_see_old_then_new_data(published_build, tmp_path):
    warehouse = published_build.copy_to(tmp_path / "warehouse")
    env = make_build_env(tmp_path, Path(published_build.env["CVM_RAW_DIR"]), warehouse)

    reader = duckdb.connect(str(warehouse), read_only=True)
    before = reader.execute(FINGERPRINT).fetchone()
    snapshot_before = set(
        reader.execute("select dbt_scd_id from snapshots.customer_tier_snapshots").fetchall()
    )
    assert str(before[0]) == PUBLISHED_AS_OF

    # Rebuild as of a month later (the data's end) while the reader stays connected and reads.
    log = tmp_path / "make_build.log"
    with log.open("w") as output:  # a file, not a pipe: a full pipe would stall the build
        build = subprocess.Popen(
            ["make", "--no-print-directory", "build"],
            cwd=PROJECT_DIR,
            env=env | {"CVM_AS_OF_DATE": PUBLISHED_END_DATE},
            stdout=output,
            stderr=subprocess.STDOUT,
        )
        reads = 0
        while build.poll() is None:
            assert reader.execute(FINGERPRINT).fetchone() == before
            reads += 1
            time.sleep(0.5)
    assert build.returncode == 0, log.read_text()[-3000:]
    assert reads > 5  # the reader was really reading during the build

    assert reader.execute(FINGERPRINT).fetchone() == before  # old data until it reconnects
    reader.close()
    with duckdb.connect(str(warehouse), read_only=True) as next_reader:
        after = next_reader.execute(FINGERPRINT).fetchone()
        snapshot_after = set(
            next_reader.execute(
                "select dbt_scd_id from snapshots.customer_tier_snapshots"
            ).fetchall()
        )
    assert str(after[0]) == PUBLISHED_END_DATE and after[1:] != before[1:]
    # The snapshot's history lives in the warehouse file: it is carried into the new one.
    assert snapshot_before < snapshot_after
    assert not publish.wal_path(warehouse).exists()

    # A build that fails in dbt (a malformed as-of date) leaves the published warehouse as it was.
    published_bytes = digest(warehouse)
    failed = make_build(env | {"CVM_AS_OF_DATE": "31/12/2026"})
    assert failed.returncode != 0
    assert "must be a date written YYYY-MM-DD" in failed.stdout + failed.stderr
    assert f"The published warehouse {warehouse} is unchanged" in failed.stderr
    assert digest(warehouse) == published_bytes
    with duckdb.connect(str(warehouse), read_only=True) as reader_after_failure:
        assert reader_after_failure.execute(FINGERPRINT).fetchone() == after


def test_a_second_build_of_the_same_warehouse_is_refused(tmp_path):
    warehouse = tmp_path / "cvm.duckdb"
    with (
        publish.staged_build(warehouse),
        pytest.raises(publish.BuildInProgressError, match="Another build"),
        publish.staged_build(warehouse),
    ):
        pass
    with publish.staged_build(warehouse) as staging:  # released: the next build may run
        assert staging == publish.staging_path(warehouse) and not staging.exists()


def write_without_checkpoint(path: Path, value: int) -> None:
    """Leave the last write in the write-ahead log, as a crashed writer would."""
    with duckdb.connect(str(path)) as con:
        con.execute("pragma disable_checkpoint_on_shutdown")
        con.execute("create table if not exists t (v integer)")
        con.execute("insert into t values (?)", [value])


def test_staging_starts_from_the_published_file_and_its_log(tmp_path):
    published = tmp_path / "cvm.duckdb"
    write_without_checkpoint(published, 1)
    assert publish.wal_path(published).exists()
    with publish.staged_build(published) as staging:
        with duckdb.connect(str(staging)) as con:
            assert con.execute("select v from t").fetchall() == [(1,)]
            con.execute("insert into t values (2)")
        publish.publish(staging, published)
    assert not publish.wal_path(published).exists() and not staging.exists()
    with duckdb.connect(str(published), read_only=True) as con:
        assert con.execute("select v from t order by v").fetchall() == [(1,), (2,)]


@pytest.mark.slow
def test_two_concurrent_make_builds_one_publishes_the_other_stops_at_once(tmp_path):
    """Two `make build`s of one warehouse in one checkout (a cron job and a user, say): the
    second stops before it reads, generates or writes anything, with the reason, and the first
    publishes a complete warehouse with its own quality report."""
    raw = tmp_path / "raw"
    generate(raw, customers=300, seed=5, end_date=PUBLISHED_END_DATE, quiet=True)
    env = make_build_env(tmp_path, raw, tmp_path / "warehouse" / "cvm.duckdb")
    first = subprocess.Popen(
        ["make", "--no-print-directory", "build"],
        cwd=PROJECT_DIR,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    first_output = []
    for line in first.stdout:  # until the first build is under way
        first_output.append(line)
        if line.startswith("Raw gate:"):
            break
    started = time.perf_counter()
    second = make_build(env)
    second_seconds = time.perf_counter() - started
    first_output.extend(first.stdout)
    assert first.wait() == 0, "".join(first_output)[-4000:]

    assert second.returncode != 0
    assert "Another build of" in second.stderr and "is running" in second.stderr
    assert "Raw gate" not in second.stdout  # stopped before any work
    assert second_seconds < 30
    assert "Warehouse built and published" in "".join(first_output)
    assert (PROJECT_DIR / "build" / "data_docs" / "index.html").is_file()
    with duckdb.connect(str(env["CVM_DUCKDB_PATH"]), read_only=True) as con:
        assert con.execute("select count(*) from marts.customer_value").fetchone()[0] == 300
