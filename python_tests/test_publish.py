"""Readers during a rebuild: `make build` builds a staging copy and publishes it atomically. A
reader is DuckDB's own client or a BI tool's SQLAlchemy connection (duckdb-engine, read-only)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest
import sqlalchemy
from duckdb_engine import DuckDBEngineWarning
from sqlalchemy.pool import NullPool

from cvm import publish
from cvm.build import PROJECT_DIR
from cvm.generate import generate
from daily_source import PUBLISHED_AS_OF, PUBLISHED_END_DATE
from dbt_project import make_build, make_build_env

FINGERPRINT = """
    select
        (select as_of_date from staging.base_shop__as_of_date),
        (select count(*) from marts.customer_value where recency_days is not null),
        (select sum(clv) from marts.customer_value),
        (select sum(revenue) from bi.revenue_and_margin_by_tier_month)
"""


# What a BI dashboard asks of the bi tables (saved-query exports).
BI_FINGERPRINT = """
    select
        (select sum(revenue) from bi.revenue_and_margin_by_tier_month),
        (select sum(customers) from bi.share_of_wallet_by_tier),
        (select count(*) from bi.tier_migrations_by_month)
"""


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def bi_engine(warehouse: Path) -> sqlalchemy.Engine:
    """The warehouse as a BI tool connects to it: DuckDB's SQLAlchemy dialect, read-only, a new
    connection per query (NullPool, as Superset uses for analytics databases)."""
    return sqlalchemy.create_engine(
        f"duckdb:///{warehouse}", connect_args={"read_only": True}, poolclass=NullPool
    )


# A BI tool in a process of its own (DuckDB refuses a second in-process connection to a file
# with another configuration, and duckdb-engine configures its own): it queries the bi tables
# every half second until told to stop, and logs each answer.
BI_TOOL = f"""
import json, pathlib, sys, time
import sqlalchemy
from sqlalchemy.pool import NullPool
warehouse, log, stop = sys.argv[1], pathlib.Path(sys.argv[2]), pathlib.Path(sys.argv[3])
engine = sqlalchemy.create_engine(
    f"duckdb:///{{warehouse}}", connect_args={{"read_only": True}}, poolclass=NullPool
)
with log.open("w") as answers:
    while not stop.exists():
        with engine.connect() as connection:
            row = connection.execute(sqlalchemy.text({BI_FINGERPRINT!r})).one()
        answers.write(json.dumps([str(value) for value in row]) + "\\n")
        answers.flush()
        time.sleep(0.5)
"""


def bi_answer(connection: duckdb.DuckDBPyConnection) -> list[str]:
    """BI_FINGERPRINT as the BI tool logs it."""
    return [str(value) for value in connection.execute(BI_FINGERPRINT).fetchone()]


@pytest.mark.slow
def test_readers_never_block_a_build_and_see_old_then_new_data(published_build, tmp_path):
    warehouse = published_build.copy_to(tmp_path / "warehouse")
    env = make_build_env(tmp_path, published_build.raw_dir, warehouse)

    reader = duckdb.connect(str(warehouse), read_only=True)
    before = reader.execute(FINGERPRINT).fetchone()
    snapshot_before = set(
        reader.execute("select dbt_scd_id from snapshots.customer_tier_snapshots").fetchall()
    )
    assert str(before[0]) == PUBLISHED_AS_OF

    # A BI tool reads the bi tables through SQLAlchemy meanwhile, reconnecting for each query.
    bi_before = bi_answer(reader)
    bi_log, bi_stop = tmp_path / "bi_answers.jsonl", tmp_path / "bi_stop"
    bi_tool = subprocess.Popen(
        [sys.executable, "-c", BI_TOOL, str(warehouse), str(bi_log), str(bi_stop)]
    )

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
    bi_stop.touch()
    assert bi_tool.wait(timeout=30) == 0

    assert reader.execute(FINGERPRINT).fetchone() == before  # old data until it reconnects
    reader.close()
    with duckdb.connect(str(warehouse), read_only=True) as next_reader:
        after = next_reader.execute(FINGERPRINT).fetchone()
        snapshot_after = set(
            next_reader.execute(
                "select dbt_scd_id from snapshots.customer_tier_snapshots"
            ).fetchall()
        )
        bi_after = bi_answer(next_reader)
    assert str(after[0]) == PUBLISHED_END_DATE and after[1:] != before[1:]
    # Every answer the BI tool got was a whole warehouse: the old one, then the new one.
    bi_answers = [json.loads(line) for line in bi_log.read_text().splitlines()]
    assert len(bi_answers) > 5 and bi_answers[0] == bi_before and bi_after != bi_before
    assert all(answer in (bi_before, bi_after) for answer in bi_answers), bi_answers
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


# duckdb-engine warns that it reflects no indexes; the warehouse has none to reflect.
@pytest.mark.filterwarnings(f"ignore::{DuckDBEngineWarning.__module__}.DuckDBEngineWarning")
def test_a_bi_tool_lists_reflects_and_queries_the_bi_tables_read_only(published_build, tmp_path):
    """What a BI tool does with a new database: list the schemas and tables, reflect a table's
    columns, query it; writing is refused, since the connection is read-only. (On a copy: this
    process may hold the published file open with DuckDB's own client.)"""
    engine = bi_engine(published_build.copy_to(tmp_path))
    inspector = sqlalchemy.inspect(engine)
    assert "cvm.bi" in inspector.get_schema_names()
    tables = inspector.get_table_names(schema="bi")
    assert {"share_of_wallet_by_tier", "satisfaction_by_tier", "customer_base_by_month"} <= set(
        tables
    )
    table = sqlalchemy.Table("share_of_wallet_by_tier", sqlalchemy.MetaData(), schema="bi",
                             autoload_with=engine)  # fmt: skip
    query = sqlalchemy.select(table.c.customer__value_tier, table.c.customers)
    with engine.connect() as connection:
        by_tier = dict(connection.execute(query).all())
        assert (
            sum(by_tier.values())
            == connection.execute(
                sqlalchemy.text("select count(*) from marts.customer_value")
            ).scalar_one()
        )
        with pytest.raises(sqlalchemy.exc.DBAPIError, match="read-only"):
            connection.execute(sqlalchemy.text("create table bi.scratch (x integer)"))


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


@pytest.fixture
def copy_on_write_dir(tmp_path):
    """A directory on a fresh XFS file system with reflinks, mounted from an image file in
    ``tmp_path``; skipped on a machine that cannot make one (root, mkfs.xfs, loop devices:
    .ci/run installs xfsprogs)."""
    image, mount_point = tmp_path / "xfs.img", tmp_path / "xfs"
    mount_point.mkdir()
    with image.open("wb") as sparse:
        sparse.truncate(512 * 2**20)
    made = (
        subprocess.run(
            ["mkfs.xfs", "-q", "-m", "reflink=1", str(image)], capture_output=True, check=False
        )
        if shutil.which("mkfs.xfs")
        else None
    )
    mounted = (
        made is not None
        and made.returncode == 0
        and subprocess.run(
            ["mount", "-o", "loop", str(image), str(mount_point)], capture_output=True, check=False
        ).returncode
        == 0
    )
    if not mounted:
        pytest.skip("no XFS file system can be mounted here (needs root, mkfs.xfs, loop devices)")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", str(mount_point)], check=True)


def free_bytes(directory: Path) -> int:
    os.sync()
    stats = os.statvfs(directory)
    return stats.f_bavail * stats.f_frsize


def test_on_a_copy_on_write_file_system_the_staging_copy_is_a_clone(copy_on_write_dir):
    """On XFS (or Btrfs) the next build starts from a clone of the published file: no data is
    copied, and the build's writes leave the published file as it was."""
    published = copy_on_write_dir / "cvm.duckdb"
    with duckdb.connect(str(published)) as con:
        con.execute("create table t as select random() as v from range(4000000)")
    size, before, free = published.stat().st_size, digest(published), free_bytes(copy_on_write_dir)
    assert size > 20 * 2**20
    with publish.staged_build(published) as staging:
        assert free - free_bytes(copy_on_write_dir) < 2**20  # shares the published file's blocks
        assert digest(staging) == before
        with duckdb.connect(str(staging)) as con:
            con.execute("update t set v = -v")
            con.execute("checkpoint")
        assert digest(published) == before
        publish.publish(staging, published)
    with duckdb.connect(str(published), read_only=True) as con:
        assert con.execute("select max(v) <= 0 from t").fetchone() == (True,)


def test_across_file_systems_the_staging_copy_is_a_copy(copy_on_write_dir, tmp_path):
    """A clone cannot cross file systems: the copy falls back to the kernel's, byte for byte."""
    source = copy_on_write_dir / "data.bin"
    source.write_bytes(os.urandom(3 * 2**20))
    publish.clone_file(source, tmp_path / "data.bin")
    assert digest(tmp_path / "data.bin") == digest(source)


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
    assert (Path(env["CVM_DATA_DOCS_DIR"]) / "index.html").is_file()
    with duckdb.connect(str(env["CVM_DUCKDB_PATH"]), read_only=True) as con:
        assert con.execute("select count(*) from marts.customer_value").fetchone()[0] == 300


PUBLIC_VIEWS = {  # mart -> the intermediate table that stores its rows (doc block public_views)
    "dim_customers": "int_customers_cohorted",
    "fct_orders": "int_orders_costed",
    "fct_order_items": "int_order_items_costed",
    "fct_customer_tier_months": "int_customer_months_tiered",
    "customer_value": "int_customers_valued",
}


def test_public_views_resolve_when_the_warehouse_is_attached_under_another_name(
    published_build, tmp_path
):
    """The marts that are views of intermediate tables read the same rows whatever name the
    file is attached under (a BI tool's alias, a test's copy): a view that named its database
    would fail to bind outside a database called `cvm`."""
    warehouse = published_build.copy_to(tmp_path)
    with duckdb.connect() as con:
        con.execute(f"attach '{warehouse}' as elsewhere (read_only)")
        views = con.execute(
            "select view_name from duckdb_views() "
            "where database_name = 'elsewhere' and schema_name = 'marts'"
        ).fetchall()
        assert {name for (name,) in views} == set(PUBLIC_VIEWS)
        for mart, table in PUBLIC_VIEWS.items():
            counts = con.execute(
                f"select (select count(*) from elsewhere.marts.{mart}), "
                f"(select count(*) from elsewhere.intermediate.{table})"
            ).fetchone()
            assert counts[0] > 0 and counts[0] == counts[1], (mart, counts)
