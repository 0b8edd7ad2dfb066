"""Online stores: the latest feature values of each entity, for lookups at serving time.

A store keeps, per feature view, one record per entity: its event time and its features' values. Writes
are upserts that never go back in time (a record older than the one held is ignored), so materializing
an interval twice, or two intervals out of order, leaves the same state. Reads answer a batch of
entities in one round trip.

:class:`SqliteOnlineStore` is the default (one file, WAL, a table per view clustered on the entity key).
"""

from __future__ import annotations

import json
import math
import sqlite3
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from shipyard.errors import InvalidInput, StoreError
from shipyard.features.definitions import FeatureView, ValueType

Key = tuple[Any, ...]


@dataclass(frozen=True)
class Record:
    """One entity's values in one view, as held online (``event_ms``: epoch ms of its event time)."""

    event_ms: int
    values: Mapping[str, Any]


@dataclass(frozen=True)
class Materialization:
    """One load of a view's interval into the online store."""

    view: str
    start_ms: int
    end_ms: int
    rows: int
    seconds: float
    at_ms: int
    anomalies: tuple[str, ...] = ()  # the batch's anomalies against its view's schema (warnings kept)


class OnlineStore(Protocol):
    """Where the latest values live for serving."""

    def write(self, view: FeatureView, records: Iterable[tuple[Key, Record]]) -> int: ...
    def read(self, view: FeatureView, keys: Sequence[Key]) -> list[Record | None]: ...
    def drop(self, view: str) -> None: ...
    def record_materialization(self, done: Materialization) -> None: ...
    def materializations(self, view: str | None = None) -> list[Materialization]: ...
    def schema(self, view: str) -> str | None: ...
    def save_schema(self, view: str, text: str) -> None: ...
    def close(self) -> None: ...


def encode_key(view: FeatureView, key: Sequence[Any]) -> str:
    """An entity's join key values as the text both stores index by (``[42]``, ``["a", 7]``), each value
    coerced to its entity's type so that 42, 42.0 and numpy's int64(42) are the same entity."""
    types = [e.value_type for e in view.entities for _ in e.join_keys]
    if len(key) != len(types):
        raise InvalidInput(
            f"feature view {view.name}: a key needs {len(types)} values ({', '.join(view.join_keys)})"
        )
    return json.dumps([_coerce(v, t, name) for v, t, name in zip(key, types, view.join_keys, strict=True)])


def _coerce(value: Any, kind: ValueType, name: str) -> Any:
    if value is None:
        raise InvalidInput(f"join key {name!r} is null")
    try:
        if kind in (ValueType.INT32, ValueType.INT64):
            number = float(value) if not isinstance(value, int) else value
            if isinstance(number, float) and not number.is_integer():
                raise ValueError(value)
            return int(number)
        if kind in (ValueType.FLOAT32, ValueType.FLOAT64):
            return float(value)
        if kind is ValueType.BOOL:
            return bool(value)
        return str(value)
    except (TypeError, ValueError):
        raise InvalidInput(f"join key {name!r}: {value!r} is not {kind.value}") from None


def plain(value: Any) -> Any:
    """A value as JSON can hold it: numpy scalars to Python, NaN to None, timestamps to epoch ms."""
    if value is None:
        return None
    if hasattr(value, "item") and not isinstance(value, (bytes, str)):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    if hasattr(value, "timestamp"):
        return int(value.timestamp() * 1000)
    if isinstance(value, bytes):
        return value.hex()
    return value


class SqliteOnlineStore:
    """The online store in one SQLite file: a table per view, ``(key TEXT PRIMARY KEY, event_ms, payload)``
    without rowids (a lookup is one B-tree descent), WAL with ``synchronous=NORMAL`` (an acknowledged write
    survives the process being killed). Thread-safe: a connection per thread."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._known: set[str] = set()
        self._lock = threading.Lock()
        with self._connection() as con:
            con.execute(
                "CREATE TABLE IF NOT EXISTS materializations (view TEXT NOT NULL, start_ms INTEGER NOT NULL, "
                "end_ms INTEGER NOT NULL, rows INTEGER NOT NULL, seconds REAL NOT NULL, "
                "at_ms INTEGER NOT NULL, anomalies TEXT NOT NULL DEFAULT '[]')"
            )
            con.execute(
                "CREATE TABLE IF NOT EXISTS view_schemas (view TEXT PRIMARY KEY, schema TEXT NOT NULL)"
            )

    def _connection(self) -> sqlite3.Connection:
        con = getattr(self._local, "con", None)
        if con is None:
            try:
                con = sqlite3.connect(self.path, timeout=30.0, isolation_level=None, check_same_thread=False)
                con.execute("PRAGMA journal_mode=WAL")
                con.execute("PRAGMA synchronous=NORMAL")
            except sqlite3.Error as exc:
                raise StoreError(f"online store {self.path}: cannot be opened: {exc}") from exc
            self._local.con = con
        return con

    @staticmethod
    def _table(view: str) -> str:
        return f'"view_{view}"'  # view names are checked identifiers

    def _ensure(self, con: sqlite3.Connection, view: str) -> None:
        if view in self._known:
            return
        con.execute(
            f"CREATE TABLE IF NOT EXISTS {self._table(view)} (key TEXT PRIMARY KEY, "
            "event_ms INTEGER NOT NULL, payload TEXT NOT NULL) WITHOUT ROWID"
        )
        with self._lock:
            self._known.add(view)

    def write(self, view: FeatureView, records: Iterable[tuple[Key, Record]]) -> int:
        """Upsert ``records`` in one transaction; a record older than the one held is skipped. Returns how
        many were given."""
        con = self._connection()
        self._ensure(con, view.name)
        rows = [
            (
                encode_key(view, key),
                record.event_ms,
                json.dumps({k: plain(v) for k, v in record.values.items()}),
            )
            for key, record in records
        ]
        con.execute("BEGIN IMMEDIATE")
        try:
            con.executemany(
                f"INSERT INTO {self._table(view.name)} (key, event_ms, payload) VALUES (?, ?, ?) "
                "ON CONFLICT (key) DO UPDATE SET event_ms = excluded.event_ms, payload = excluded.payload "
                "WHERE excluded.event_ms >= event_ms",
                rows,
            )
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        return len(rows)

    def read(self, view: FeatureView, keys: Sequence[Key]) -> list[Record | None]:
        """Each key's record (None: never written), in the order of ``keys``."""
        con = self._connection()
        self._ensure(con, view.name)
        encoded = [encode_key(view, key) for key in keys]
        found: dict[str, Record] = {}
        table = self._table(view.name)
        for start in range(0, len(encoded), 500):
            chunk = encoded[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for key, event_ms, payload in con.execute(
                f"SELECT key, event_ms, payload FROM {table} WHERE key IN ({marks})", chunk
            ):
                found[key] = Record(event_ms, json.loads(payload))
        return [found.get(k) for k in encoded]

    def drop(self, view: str) -> None:
        con = self._connection()
        con.execute(f"DROP TABLE IF EXISTS {self._table(view)}")
        con.execute("DELETE FROM materializations WHERE view = ?", (view,))
        con.execute("DELETE FROM view_schemas WHERE view = ?", (view,))
        with self._lock:
            self._known.discard(view)

    def record_materialization(self, done: Materialization) -> None:
        self._connection().execute(
            "INSERT INTO materializations VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                done.view,
                done.start_ms,
                done.end_ms,
                done.rows,
                done.seconds,
                done.at_ms,
                json.dumps(done.anomalies),
            ),
        )

    def materializations(self, view: str | None = None) -> list[Materialization]:
        query = "SELECT view, start_ms, end_ms, rows, seconds, at_ms, anomalies FROM materializations"
        rows = self._connection().execute(
            query + (" WHERE view = ? ORDER BY at_ms" if view else " ORDER BY at_ms"), (view,) if view else ()
        )
        return [Materialization(*row[:6], tuple(json.loads(row[6]))) for row in rows]

    def schema(self, view: str) -> str | None:
        found = (
            self._connection().execute("SELECT schema FROM view_schemas WHERE view = ?", (view,)).fetchone()
        )
        return None if found is None else found[0]

    def save_schema(self, view: str, text: str) -> None:
        self._connection().execute(
            "INSERT INTO view_schemas VALUES (?, ?) "
            "ON CONFLICT (view) DO UPDATE SET schema = excluded.schema",
            (view, text),
        )

    def close(self) -> None:
        con = getattr(self._local, "con", None)
        if con is not None:
            con.close()
            self._local.con = None


def now_ms() -> int:
    return int(time.time() * 1000)


# ---------------------------------------------------------------------- Redis
# Upsert-if-newer, atomically per key: a value is "<event_ms>|<payload>"; the stored one is replaced only if
# it is not newer. ARGV holds each key's event_ms and value, in KEYS order.
_UPSERT = """
for i, key in ipairs(KEYS) do
  local event = tonumber(ARGV[2 * i - 1])
  local held = redis.call('GET', key)
  if not held or tonumber(string.match(held, '^(-?%d+)|')) <= event then
    redis.call('SET', key, ARGV[2 * i])
  end
end
return #KEYS
"""


class RedisOnlineStore:
    """The online store in Redis: one string per (view, entity), ``<prefix>:<view>:<key>`` holding
    ``<event_ms>|<json values>``; writes upsert through a Lua script (never back in time), reads are one
    MGET a batch. How durable an acknowledged write is follows the server's persistence settings
    (``appendonly yes`` for every write); a lost record comes back with the next materialization.
    """

    def __init__(self, url: str, *, prefix: str = "shipyard", timeout_s: float = 5.0) -> None:
        try:
            import redis
        except ImportError as exc:  # pragma: no cover - the extra is installed in CI
            raise StoreError(
                "a Redis online store needs the redis package: pip install 'shipyard[redis]'"
            ) from exc
        self.url = url
        self.prefix = prefix
        self._redis = redis.Redis.from_url(url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s)
        self._errors: tuple[type[BaseException], ...] = (redis.RedisError, OSError)
        self._upsert = self._redis.register_script(_UPSERT)

    def _fail(self, exc: BaseException) -> StoreError:
        from shipyard.config import mask_url

        return StoreError(f"online store {mask_url(self.url)}: {type(exc).__name__}: {exc}")

    def ping(self) -> None:
        """Raise :class:`StoreError` naming the URL when Redis cannot be reached."""
        try:
            self._redis.ping()
        except self._errors as exc:
            raise self._fail(exc) from exc

    def _key(self, view: str, encoded: str) -> str:
        return f"{self.prefix}:{view}:{encoded}"

    def write(self, view: FeatureView, records: Iterable[tuple[Key, Record]]) -> int:
        keys, argv = [], []
        for key, record in records:
            keys.append(self._key(view.name, encode_key(view, key)))
            argv += [
                record.event_ms,
                f"{record.event_ms}|" + json.dumps({k: plain(v) for k, v in record.values.items()}),
            ]
        try:
            for start in range(0, len(keys), 1000):
                self._upsert(keys=keys[start : start + 1000], args=argv[2 * start : 2 * (start + 1000)])
        except self._errors as exc:
            raise self._fail(exc) from exc
        return len(keys)

    def read(self, view: FeatureView, keys: Sequence[Key]) -> list[Record | None]:
        names = [self._key(view.name, encode_key(view, key)) for key in keys]
        try:
            values = self._redis.mget(names) if names else []
        except self._errors as exc:
            raise self._fail(exc) from exc
        out: list[Record | None] = []
        for value in values:
            if value is None:
                out.append(None)
            else:
                event, _, payload = value.partition(b"|")
                out.append(Record(int(event), json.loads(payload)))
        return out

    def drop(self, view: str) -> None:
        try:
            batch = []
            for name in self._redis.scan_iter(match=f"{self.prefix}:{view}:*", count=1000):
                batch.append(name)
                if len(batch) >= 1000:
                    self._redis.delete(*batch)
                    batch.clear()
            if batch:
                self._redis.delete(*batch)
            kept = [m for m in self.materializations() if m.view != view]
            pipe = self._redis.pipeline()
            pipe.delete(self._log, f"{self.prefix}:__schema:{view}")
            for m in kept:
                pipe.rpush(self._log, json.dumps(m.__dict__))
            pipe.execute()
        except self._errors as exc:
            raise self._fail(exc) from exc

    @property
    def _log(self) -> str:
        return f"{self.prefix}:__materializations"

    def record_materialization(self, done: Materialization) -> None:
        try:
            self._redis.rpush(self._log, json.dumps(done.__dict__))
        except self._errors as exc:
            raise self._fail(exc) from exc

    def materializations(self, view: str | None = None) -> list[Materialization]:
        try:
            entries = self._redis.lrange(self._log, 0, -1)
        except self._errors as exc:
            raise self._fail(exc) from exc
        found = []
        for entry in entries:
            data = json.loads(entry)
            data["anomalies"] = tuple(data.get("anomalies") or ())
            found.append(Materialization(**data))
        return [m for m in found if view is None or m.view == view]

    def schema(self, view: str) -> str | None:
        try:
            found = self._redis.get(f"{self.prefix}:__schema:{view}")
        except self._errors as exc:
            raise self._fail(exc) from exc
        return None if found is None else found.decode()

    def save_schema(self, view: str, text: str) -> None:
        try:
            self._redis.set(f"{self.prefix}:__schema:{view}", text)
        except self._errors as exc:
            raise self._fail(exc) from exc

    def close(self) -> None:
        self._redis.close()


def open_online_store(setting: str | None, home: Path) -> OnlineStore:
    """The online store a setting names: ``redis://…`` (or ``rediss://``, ``unix://``), a SQLite file path
    (or ``sqlite:///path``), or None for ``<home>/features/online.db``."""
    if not setting:
        return SqliteOnlineStore(home / "features" / "online.db")
    if setting.startswith(("redis://", "rediss://", "unix://")):
        return RedisOnlineStore(setting)
    if setting.startswith("sqlite:///"):  # sqlite:///relative or sqlite:////absolute, as SQLAlchemy writes
        return SqliteOnlineStore(setting[len("sqlite:///") :])
    if "://" in setting:
        raise InvalidInput(
            f"online_store: {setting.split('://')[0]}:// is not a known online store (redis://, sqlite:///)"
        )
    return SqliteOnlineStore(setting)
