"""Opening stores: migrations on first use, and clear errors for corrupt, foreign or newer databases."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from shipyard import SchemaError, StoreError
from shipyard.store.db import (
    _BUSY_TIMEOUT_S,
    _PING_AFTER_IDLE_S,
    HEAD_REVISION,
    MetadataStore,
    RowInsert,
)
from shipyard.store.schema import metadata
from shipyard.store.waiting import WouldWait, without_waiting
from tests.store.old_stores import sqlite_store_at


def test_new_store_is_migrated_to_head(tmp_path: Path) -> None:
    store = MetadataStore(f"sqlite:///{tmp_path / 'new.db'}")
    with store.read() as conn:
        assert conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar() == HEAD_REVISION
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"


def test_migration_matches_the_table_definitions(tmp_path: Path) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    store = MetadataStore(f"sqlite:///{tmp_path / 'm.db'}")
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []


def test_corrupt_file_gives_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "corrupt.db"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(SchemaError, match="not a readable SQLite database"):
        MetadataStore(f"sqlite:///{path}")


def test_newer_schema_says_to_upgrade(tmp_path: Path) -> None:
    path = tmp_path / "newer.db"
    MetadataStore(f"sqlite:///{path}").dispose()
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE alembic_version SET version_num = '9999'")
    with pytest.raises(SchemaError, match=r"'9999'.*upgrade Shipyard"):
        MetadataStore(f"sqlite:///{path}")


def test_foreign_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "foreign.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE customers (id INTEGER)")
    with pytest.raises(SchemaError, match="not a Shipyard store"):
        MetadataStore(f"sqlite:///{path}")


@pytest.mark.postgres
def test_postgres_store_migrates(postgres) -> None:  # type: ignore[no-untyped-def]
    store = MetadataStore(postgres.create_database())
    assert "runs" in sa.inspect(store.engine).get_table_names()
    store.dispose()


def test_store_at_an_older_revision_is_upgraded_on_open(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    sqlite_store_at(path, "0001")
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchone() == ("0001",)
        conn.execute("INSERT INTO experiments VALUES ('e1', 'kept', NULL, '/a', 'active', 1, 1)")
    store = MetadataStore(f"sqlite:///{path}")
    with store.read() as conn:
        assert conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar() == HEAD_REVISION
        assert conn.exec_driver_sql("SELECT name FROM experiments").scalar() == "kept"
        assert "model_versions" in sa.inspect(conn).get_table_names()


def test_a_store_from_before_heartbeats_is_upgraded_and_keeps_its_runs(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    sqlite_store_at(path, "0004")
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO experiments VALUES ('e1', 'old', NULL, '/a', 'active', 1, 1)")
        conn.execute(
            "INSERT INTO runs (run_id, experiment_id, name, status, start_time, artifact_uri) "
            "VALUES ('r1', 'e1', 'old-run', 'RUNNING', 1, '/a/r1/artifacts')"
        )
    store = MetadataStore(f"sqlite:///{path}")
    with store.read() as conn:
        assert conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar() == HEAD_REVISION
        row = conn.exec_driver_sql("SELECT name, status, heartbeat_at, pid, host FROM runs").one()
    assert tuple(row) == ("old-run", "RUNNING", None, None, None)  # no heartbeat: never judged lost


def _raw_store(url: str) -> MetadataStore:
    store = MetadataStore(url)
    with store.engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE raw_probe (k TEXT PRIMARY KEY, v INTEGER)")
    return store


def _raw_transactions_commit_roll_back_and_explain(store: MetadataStore, p: str) -> None:
    insert = f"INSERT INTO raw_probe (k, v) VALUES ({p}, {p})"
    with store.write_raw() as tx:
        assert tx.executemany(insert, [("a", 1), ("b", 2)]) == 2
        assert tx.scalar(f"SELECT v FROM raw_probe WHERE k = {p}", ("b",)) == 2
    with pytest.raises(RuntimeError), store.write_raw() as tx:
        tx.execute(insert, ("c", 3))
        raise RuntimeError("the caller fails mid-transaction")
    # A constraint comes back as write() gives it (callers explain it); the transaction rolled back.
    with pytest.raises(sa.exc.IntegrityError), store.write_raw() as tx:
        tx.execute(insert, ("d", 4))
        tx.execute(insert, ("a", 5))
    with pytest.raises(StoreError, match="raw_missing"), store.write_raw() as tx:
        tx.execute(f"INSERT INTO raw_missing VALUES ({p})", (1,))
    with store.write_raw() as tx:
        assert tx.rows("SELECT k, v FROM raw_probe ORDER BY k") == [("a", 1), ("b", 2)]
        assert tx.scalar(f"SELECT v FROM raw_probe WHERE k = {p}", ("zz",)) is None
    # Many rows at once (several multi-row statements on PostgreSQL): the rows changed, counted over all
    # statements; a row already there is left alone by ON CONFLICT DO NOTHING and not counted.
    many = RowInsert("INSERT INTO raw_probe (k, v)", 2, "ON CONFLICT DO NOTHING")
    rows = [(f"k{i:05d}", i) for i in range(2500)] + [("a", 99)]
    with store.write_raw() as tx:
        assert tx.insert(many, rows) == 2500
        assert tx.insert(many, []) == 0
    # Every connection went back to the pool usable.
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM raw_probe").scalar() == 2502
        assert conn.exec_driver_sql("SELECT v FROM raw_probe WHERE k = 'a'").scalar() == 1


def test_raw_write_transactions_on_sqlite(tmp_path: Path) -> None:
    store = _raw_store(f"sqlite:///{tmp_path / 'raw.db'}")
    _raw_transactions_commit_roll_back_and_explain(store, "?")
    store.dispose()


def test_without_waiting_a_held_write_lock_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    path = tmp_path / "nowait.db"
    store = _raw_store(f"sqlite:///{path}")
    with store.write_raw() as tx:  # a connection idle in the pool, as a running server has
        tx.execute("INSERT INTO raw_probe (k, v) VALUES (?, ?)", ("warm", 0))
    other = sqlite3.connect(path, isolation_level=None)  # another process's writer, mid-transaction
    other.execute("BEGIN IMMEDIATE")
    started = time.monotonic()
    with without_waiting():
        with pytest.raises(WouldWait, match="write lock"), store.write_raw() as tx:
            tx.execute("INSERT INTO raw_probe (k, v) VALUES (?, ?)", ("raw", 1))
        with pytest.raises(WouldWait, match="write lock"), store.write() as conn:
            conn.exec_driver_sql("INSERT INTO raw_probe (k, v) VALUES ('orm', 2)")
        with store.read() as conn:  # a reader takes no lock the writer holds
            assert conn.exec_driver_sql("SELECT count(*) FROM raw_probe").scalar() == 1
    assert time.monotonic() - started < 5.0  # refused at once, not after the busy timeout
    other.execute("ROLLBACK")
    other.close()
    # Every connection went back to the pool with its busy timeout: later writers wait as before.
    held = [store.engine.raw_connection() for _ in range(3)]
    try:
        for conn in held:
            assert conn.cursor().execute("PRAGMA busy_timeout").fetchone()[0] == int(_BUSY_TIMEOUT_S * 1000)
    finally:
        for conn in held:
            conn.close()
    with store.read() as conn:
        assert conn.exec_driver_sql("SELECT k FROM raw_probe ORDER BY k").scalars().all() == ["warm"]
    store.dispose()


def test_without_waiting_writes_once_the_lock_is_free_and_then_waits_as_usual(tmp_path: Path) -> None:
    store = _raw_store(f"sqlite:///{tmp_path / 'began.db'}")
    with store.write_raw() as tx:
        tx.execute("INSERT INTO raw_probe (k, v) VALUES (?, ?)", ("warm", 0))
    with without_waiting():
        with store.write_raw() as tx:
            tx.execute("INSERT INTO raw_probe (k, v) VALUES (?, ?)", ("first", 1))
        # A write began: a second one in the block is never refused, whatever holds the pool or the lock
        # (half of the block's work must not be done twice by a caller that retries it).
        held = [store.engine.raw_connection() for _ in range(2)]
        try:
            with store.write() as conn:
                conn.exec_driver_sql("INSERT INTO raw_probe (k, v) VALUES ('second', 2)")
        finally:
            for conn in held:
                conn.close()
    with store.read() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM raw_probe").scalar() == 3
    store.dispose()


def test_without_waiting_an_empty_pool_is_refused(tmp_path: Path) -> None:
    store = _raw_store(f"sqlite:///{tmp_path / 'pool.db'}")
    store.dispose()  # no idle connection: opening one runs PRAGMAs that may wait
    with without_waiting(), pytest.raises(WouldWait, match="idle connection"), store.write_raw() as tx:
        tx.execute("INSERT INTO raw_probe (k, v) VALUES (?, ?)", ("x", 1))
    with store.write_raw() as tx:  # outside the block: as before
        tx.execute("INSERT INTO raw_probe (k, v) VALUES (?, ?)", ("x", 1))
    store.dispose()


@pytest.mark.postgres
def test_without_waiting_every_postgresql_statement_is_refused(postgres) -> None:  # type: ignore[no-untyped-def]
    store = _raw_store(postgres.create_database())
    with without_waiting():
        with pytest.raises(WouldWait, match="network round trip"), store.read() as conn:
            conn.exec_driver_sql("SELECT 1")
        with pytest.raises(WouldWait, match="network round trip"), store.write() as conn:
            conn.exec_driver_sql("INSERT INTO raw_probe (k, v) VALUES ('w', 1)")
        with pytest.raises(WouldWait, match="network round trip"), store.write_raw() as tx:
            tx.execute("INSERT INTO raw_probe (k, v) VALUES (%s, %s)", ("r", 2))
    with store.read() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM raw_probe").scalar() == 0
    store.dispose()


@pytest.mark.postgres
def test_raw_write_transactions_on_postgres(postgres) -> None:  # type: ignore[no-untyped-def]
    store = _raw_store(postgres.create_database())
    _raw_transactions_commit_roll_back_and_explain(store, "%s")
    store.dispose()


@pytest.mark.postgres
def test_postgres_compresses_metric_chunks_with_lz4(postgres) -> None:  # type: ignore[no-untyped-def]
    store = MetadataStore(postgres.create_database())
    with store.engine.connect() as conn:
        has_lz4 = conn.exec_driver_sql(
            "SELECT 1 FROM pg_settings WHERE name = 'default_toast_compression' AND 'lz4' = ANY(enumvals)"
        ).first()
        methods = dict(
            conn.exec_driver_sql(
                "SELECT attname, attcompression FROM pg_attribute WHERE attrelid = 'metric_chunks'::regclass "
                "AND attname IN ('steps', 'values', 'timestamps')"
            ).all()
        )
    store.dispose()
    if has_lz4 is None:
        pytest.skip("this PostgreSQL was built without lz4")
    assert methods == {"steps": "l", "values": "l", "timestamps": "l"}


@pytest.mark.postgres
def test_pooled_connections_the_database_dropped_are_replaced(postgres) -> None:  # type: ignore[no-untyped-def]
    """A connection idle past the ping interval is checked before use: one the server ended (a restart, an
    idle timeout) is replaced, so neither a raw write nor a read fails on it. An autocommit write leaves
    its connection in transactions again."""
    store = _raw_store(postgres.create_database())
    insert = "INSERT INTO raw_probe (k, v) VALUES (%s, %s)"
    with store.write_raw(one_statement=True) as tx:
        tx.execute(insert, ("a", 1))
    with store.read() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM raw_probe").scalar() == 1
    admin_engine = sa.create_engine(store.url)
    with admin_engine.connect() as admin:
        ended = admin.exec_driver_sql(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).scalar()
    admin_engine.dispose()
    assert ended >= 1
    time.sleep(_PING_AFTER_IDLE_S + 0.2)
    with store.write_raw() as tx:
        tx.execute(insert, ("b", 2))
        raw = tx._cursor.connection
        assert not raw.autocommit
    with store.read() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM raw_probe").scalar() == 2
    store.dispose()
