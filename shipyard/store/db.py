"""Metadata database: engines, transactions and schema migrations.

SQLite runs in WAL mode with ``synchronous=NORMAL``: a committed transaction survives the process being killed
(``kill -9``); only a power loss or OS crash may drop the last commits. Write transactions start with
``BEGIN IMMEDIATE`` so that concurrent writers queue on the busy timeout instead of failing with
"database is locked" when a read lock cannot be upgraded.

On open, the schema revision is checked against the migrations shipped with this version: a new store is
created, an older one is upgraded (under a file or advisory lock, so concurrent first opens are safe), and a
newer or foreign one is refused with a :class:`SchemaError` that says what to do.

Under :func:`without_waiting` a call that would wait — for SQLite's write lock or for a pooled connection,
or on PostgreSQL for any statement's round trip — raises :class:`WouldWait` before it has written anything,
so that the server can run short work on its event loop and hand only what must wait to a thread.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError, OperationalError, SQLAlchemyError

from shipyard.errors import SchemaError, StoreError
from shipyard.store.waiting import NoWait, WouldWait, must_not_wait

HEAD_REVISION = "0014"
_KNOWN_REVISIONS = tuple(f"{n:04d}" for n in range(1, int(HEAD_REVISION) + 1))
_MIGRATIONS_DIR = Path(__file__).parent / "migrations"
_BUSY_TIMEOUT_S = 60.0
_PING_AFTER_IDLE_S = 1.0
_MMAP_BYTES = 1 << 30
_PG_MIGRATION_LOCK = 0x5348_4950  # "SHIP": pg_advisory_lock key held while migrating


class MetadataStore:
    """A migrated metadata database. Thread-safe; one per URL per process (see :func:`open_store`)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = _create_engine(url)
        self.dialect = self.engine.dialect.name
        # Same pool, but its transactions begin IMMEDIATE on SQLite (see module docstring).
        self._write_engine = self.engine.execution_options(shipyard_write=True)
        _ensure_schema(self)

    @contextlib.contextmanager
    def write(self) -> Iterator[Connection]:
        """A write transaction, committed on success and rolled back on error.

        Constraint violations propagate as SQLAlchemy's ``IntegrityError`` for the caller to explain; every
        other database error becomes a `StoreError`.
        """
        if must_not_wait() is not None:
            self._check_pool()
        try:
            with self._write_engine.begin() as conn:
                yield conn
        except sa.exc.IntegrityError:
            raise  # a constraint the caller knows how to explain (duplicate name, …)
        except DBAPIError as exc:
            raise _translate(exc, self.url) from exc

    @contextlib.contextmanager
    def write_raw(self, *, one_statement: bool = False) -> Iterator[RawTransaction]:
        """A write transaction on the driver's own connection, for the per-run hot paths: SQLAlchemy's
        work around each transaction and statement cost more than the SQLite statements themselves.

        Statements are plain driver SQL. Errors are raised as :meth:`write` raises them (SQLAlchemy's
        ``IntegrityError`` for constraints, `StoreError` for the rest). With ``one_statement`` the caller
        runs a single statement, atomic by itself: on PostgreSQL it then goes without BEGIN and COMMIT,
        two of the three round trips such a write costs.
        """
        dbapi = self.engine.dialect.loaded_dbapi
        autocommit = one_statement and self.dialect == "postgresql"
        no_wait = must_not_wait()
        if no_wait is not None:
            self._check_pool()
        try:
            # (The pool hands on the driver's own error, not SQLAlchemy's, when it cannot connect.)
            conn = self.engine.raw_connection()
            try:
                if autocommit:
                    conn.driver_connection.autocommit = True
                cursor = conn.cursor()
                try:
                    if self.dialect == "sqlite":
                        _begin_immediate(cursor, no_wait)  # as write()'s begin event does
                    yield RawTransaction(cursor, self.dialect)
                    conn.commit()
                except BaseException:
                    try:
                        conn.rollback()
                    except dbapi.Error:  # the connection broke: the pool must not hand it out again
                        conn.invalidate()
                    raise
                finally:
                    cursor.close()
                    if autocommit and conn.driver_connection is not None:
                        conn.driver_connection.autocommit = False
            finally:
                conn.close()
        except DBAPIError as exc:
            raise _translate(exc, self.url) from exc
        except dbapi.IntegrityError as exc:
            raise sa.exc.IntegrityError(None, None, exc) from exc
        except dbapi.Error as exc:
            raise _translate(DBAPIError.instance(None, None, exc, dbapi.Error), self.url) from exc

    @contextlib.contextmanager
    def read(self) -> Iterator[Connection]:
        """A read-only transaction (a consistent snapshot on SQLite WAL)."""
        if must_not_wait() is not None:
            self._check_pool()  # (reads in WAL mode take no lock a writer holds)
        try:
            with self.engine.connect() as conn:
                yield conn
        except DBAPIError as exc:
            raise _translate(exc, self.url) from exc

    def dispose(self) -> None:
        self.engine.dispose()

    def _check_pool(self) -> None:
        if self.dialect != "sqlite":
            raise WouldWait(f"a {self.dialect} statement is a network round trip")
        # No idle connection: making one runs PRAGMAs that may wait, and a full pool waits for a return.
        pool = self.engine.pool
        if isinstance(pool, sa.pool.QueuePool) and pool.checkedin() == 0:
            raise WouldWait("no idle connection in the pool")


@dataclass(frozen=True)
class RowInsert:
    """``INSERT … VALUES (…)`` of rows ``width`` values wide: ``head`` (up to VALUES) and ``tail`` (an ON
    CONFLICT clause, say) around the rows (see :meth:`RawTransaction.insert`)."""

    head: str
    width: int
    tail: str = ""


# Rows per multi-row statement: well under PostgreSQL's 65,535 bound parameters at the widest row (8).
ROWS_PER_STATEMENT = 1000


class RawTransaction:
    """Statements in a :meth:`MetadataStore.write_raw` transaction."""

    __slots__ = ("_cursor", "_multirow", "mark")

    def __init__(self, cursor: Any, dialect: str) -> None:
        self._cursor = cursor
        self._multirow = dialect == "postgresql"
        self.mark = "?" if dialect == "sqlite" else "%s"  # the driver's placeholder

    def insert(self, statement: RowInsert, rows: Sequence[Sequence[Any]]) -> int:
        """Insert ``rows``; the number of rows changed. On PostgreSQL as one statement per thousand rows:
        each statement there is a round of parse, plan and execute on the server (a run's params, points
        and latest values were a dozen executions); on SQLite, in this process, once per row."""
        if not rows:
            return 0
        one = "(" + ", ".join([self.mark] * statement.width) + ")"
        if not self._multirow:
            return self.executemany(f"{statement.head} VALUES {one} {statement.tail}", rows)
        changed = 0
        for start in range(0, len(rows), ROWS_PER_STATEMENT):
            part = rows[start : start + ROWS_PER_STATEMENT]
            values = ", ".join([one] * len(part))
            flat = [value for row in part for value in row]
            changed += self.execute(f"{statement.head} VALUES {values} {statement.tail}", flat)
        return changed

    def insert_both(
        self,
        first: RowInsert,
        first_rows: Sequence[Sequence[Any]],
        second: RowInsert,
        second_rows: Sequence[Sequence[Any]],
    ) -> None:
        """PostgreSQL only: two inserts of at most a statement's rows each as ONE statement (the first in a
        ``WITH``), atomic by itself: with :meth:`MetadataStore.write_raw`'s ``one_statement`` a write is
        then one round trip instead of four (BEGIN, two inserts, COMMIT) — a logged point's whole cost."""
        if not self._multirow:
            raise ValueError("insert_both needs PostgreSQL")
        self.execute(*both_statement(first, first_rows, second, second_rows))

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run ``sql``; the number of rows it changed."""
        self._cursor.execute(sql, params)
        return int(self._cursor.rowcount)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> int:
        """Run ``sql`` once per row; the number of rows changed in all."""
        self._cursor.executemany(sql, rows)
        return int(self._cursor.rowcount)

    def scalar(self, sql: str, params: Sequence[Any] = ()) -> Any:
        """The first column of ``sql``'s first row (None without one)."""
        self._cursor.execute(sql, params)
        row = self._cursor.fetchone()
        return None if row is None else row[0]

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        self._cursor.execute(sql, params)
        return [tuple(row) for row in self._cursor.fetchall()]


def both_statement(
    first: RowInsert,
    first_rows: Sequence[Sequence[Any]],
    second: RowInsert,
    second_rows: Sequence[Sequence[Any]],
) -> tuple[str, list[Any]]:
    """PostgreSQL's SQL and parameters for :meth:`RawTransaction.insert_both` (psycopg's ``%s`` marks)."""
    if not first_rows or not second_rows:
        raise ValueError("insert_both needs rows for both statements")
    if max(len(first_rows), len(second_rows)) > ROWS_PER_STATEMENT:
        raise ValueError(f"insert_both takes at most {ROWS_PER_STATEMENT} rows per statement")
    parts, flat = [], []
    for statement, rows in ((first, first_rows), (second, second_rows)):
        one = "(" + ", ".join(["%s"] * statement.width) + ")"
        parts.append(f"{statement.head} VALUES {', '.join([one] * len(rows))} {statement.tail}")
        flat.extend(value for row in rows for value in row)
    return f"WITH first_insert AS ({parts[0]}) {parts[1]}", flat


_stores: dict[str, MetadataStore] = {}
_stores_lock = threading.Lock()


def open_store(url: str) -> MetadataStore:
    """The process-wide store for ``url``, created and migrated on first use."""
    store = _stores.get(url)
    if store is None:
        with _stores_lock:
            store = _stores.get(url)
            if store is None:
                store = MetadataStore(url)
                _stores[url] = store
    return store


def _forget_stores_after_fork() -> None:
    # Pooled connections must not be shared with a forked child; it opens its own.
    for store in _stores.values():
        store.engine.dispose(close=False)
    _stores.clear()


os.register_at_fork(after_in_child=_forget_stores_after_fork)


def _create_engine(url: str) -> Engine:
    try:
        parsed = sa.engine.make_url(url)
    except SQLAlchemyError as exc:
        raise StoreError(f"invalid database URL {url!r}: {exc}") from exc
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(
            url,
            connect_args={"timeout": _BUSY_TIMEOUT_S, "check_same_thread": False},
            pool_size=8,
            max_overflow=16,
            pool_use_lifo=True,
        )
        event.listen(engine, "connect", _sqlite_on_connect)
        event.listen(engine, "begin", _sqlite_on_begin)
        return engine
    try:
        engine = sa.create_engine(url, pool_size=5, max_overflow=10)
    except ModuleNotFoundError as exc:
        raise StoreError(
            f"the driver for {parsed.drivername!r} is not installed: pip install 'shipyard[postgres]'"
        ) from exc
    event.listen(engine, "checkin", _note_checkin)
    event.listen(engine, "checkout", _ping_if_idle)
    return engine


def _note_checkin(_dbapi_conn: Any, record: Any) -> None:
    record.info["idle_since"] = time.monotonic()


def _ping_if_idle(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
    """Check a connection that sat idle before handing it out (the database may have restarted meanwhile).

    ``pool_pre_ping`` checks at every checkout: a round trip that was two of a run's thirteen on PostgreSQL.
    A connection back from work moments ago is alive; a failure in that window reaches one request, and
    SQLAlchemy (or :meth:`MetadataStore.write_raw`) drops the broken connection.
    """
    if time.monotonic() - record.info.get("idle_since", 0.0) < _PING_AFTER_IDLE_S:
        return
    try:
        with contextlib.closing(dbapi_conn.cursor()) as cursor:
            cursor.execute("SELECT 1")
        dbapi_conn.rollback()  # the ping's implicit transaction must not stay open
    except Exception as exc:  # the driver's own error: the pool then retries with a new connection
        raise sa.exc.DisconnectionError(str(exc)) from exc


def _sqlite_on_connect(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
    # Let SQLAlchemy's "begin" event issue BEGIN itself (pysqlite's implicit transactions are off).
    dbapi_conn.isolation_level = None
    cursor = dbapi_conn.cursor()
    try:
        # The busy timeout first: switching a new database to WAL needs its lock, which another process
        # creating or migrating the same store may hold for seconds (the driver's own wait is only 5 s).
        cursor.execute(f"PRAGMA busy_timeout={int(_BUSY_TIMEOUT_S * 1000)}")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA mmap_size={_MMAP_BYTES}")
    finally:
        cursor.close()


def _sqlite_on_begin(conn: Connection) -> None:
    if not conn.get_execution_options().get("shipyard_write", False):
        conn.exec_driver_sql("BEGIN")
        return
    no_wait = must_not_wait()
    if no_wait is None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")
        return
    cursor = conn.connection.driver_connection.cursor()
    try:
        _begin_immediate(cursor, no_wait)
    finally:
        cursor.close()


def _begin_immediate(cursor: Any, no_wait: NoWait | None) -> None:
    if no_wait is None:
        cursor.execute("BEGIN IMMEDIATE")
        return
    cursor.execute("PRAGMA busy_timeout=0")
    try:
        cursor.execute("BEGIN IMMEDIATE")
    except Exception as exc:  # the driver's OperationalError: "database is locked"
        if "locked" in str(exc).lower() or "busy" in str(exc).lower():
            raise WouldWait(f"the write lock is held by another writer ({exc})") from None
        raise
    finally:
        cursor.execute(f"PRAGMA busy_timeout={int(_BUSY_TIMEOUT_S * 1000)}")
    no_wait.began = True


def _translate(exc: DBAPIError, url: str) -> StoreError:
    message = str(exc.orig) if exc.orig is not None else str(exc)
    lowered = message.lower()
    if "file is not a database" in lowered or "malformed" in lowered:
        return SchemaError(
            f"{_display(url)} is not a readable SQLite database ({message}); restore it or move it"
        )
    if isinstance(exc, OperationalError) and "locked" in lowered:
        return StoreError(f"{_display(url)} stayed locked for {_BUSY_TIMEOUT_S:.0f}s by another writer")
    return StoreError(f"metadata store {_display(url)}: {message}")


def _display(url: str) -> str:
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except SQLAlchemyError:
        return "<unparseable url>"


def _ensure_schema(store: MetadataStore) -> None:
    try:
        revision = _current_revision(store.engine)
        if revision == HEAD_REVISION:
            return
        with _migration_lock(store):
            revision = _current_revision(store.engine)  # another process may have migrated meanwhile
            if revision == HEAD_REVISION:
                return
            _check_upgradable(store, revision)
            _upgrade(store)
    except DBAPIError as exc:
        raise _translate(exc, store.url) from exc


def _current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        inspector = sa.inspect(conn)
        if not inspector.has_table("alembic_version"):
            if inspector.get_table_names():
                return "<foreign>"
            return None
        row = conn.exec_driver_sql("SELECT version_num FROM alembic_version").first()
        return row[0] if row else None


def _check_upgradable(store: MetadataStore, revision: str | None) -> None:
    where = _display(store.url)
    if revision == "<foreign>":
        raise SchemaError(
            f"{where} has tables but no Shipyard schema version; it is not a Shipyard store. "
            "Point SHIPYARD_DB_URL at a new or Shipyard-made database."
        )
    if revision is not None and revision not in _KNOWN_REVISIONS:
        raise SchemaError(
            f"{where} has schema revision {revision!r}, newer than this Shipyard knows (up to "
            f"{HEAD_REVISION!r}); upgrade Shipyard (pip install -U shipyard) to open it."
        )


def _upgrade(store: MetadataStore) -> None:
    from alembic import command  # alembic is only needed when the schema changes
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS_DIR))
    with store.engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "head")


@contextlib.contextmanager
def _migration_lock(store: MetadataStore) -> Iterator[None]:
    url = sa.engine.make_url(store.url)
    if store.dialect == "sqlite":
        if not url.database or url.database == ":memory:":
            yield
            return
        lock_path = Path(url.database).with_name(Path(url.database).name + ".migrate.lock")
        with lock_path.open("a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)
        return
    if store.dialect == "postgresql":
        with store.engine.connect() as conn:
            conn.exec_driver_sql(f"SELECT pg_advisory_lock({_PG_MIGRATION_LOCK})")
            conn.commit()
            try:
                yield
            finally:
                conn.exec_driver_sql(f"SELECT pg_advisory_unlock({_PG_MIGRATION_LOCK})")
                conn.commit()
        return
    yield
