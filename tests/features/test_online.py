"""Materialization into the SQLite online store and online lookups: latest values per entity, statuses
(PRESENT, NULL_VALUE, OUTSIDE_MAX_AGE, NOT_FOUND), idempotent and incremental loads, on-demand features."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from shipyard.errors import InvalidInput, StoreError
from shipyard.features import (
    DataFrameSource,
    Entity,
    FeatureService,
    FeatureStore,
    FeatureView,
    Field,
    RequestSource,
    on_demand_feature_view,
)
from shipyard.features.online import OnlineStore, RedisOnlineStore, SqliteOnlineStore

NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture(params=["sqlite", pytest.param("redis", marks=pytest.mark.redis)])
def online(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[OnlineStore]:
    """Each online store on a fresh namespace: a SQLite file, or a key prefix on the session's Redis."""
    if request.param == "sqlite":
        store: OnlineStore = SqliteOnlineStore(tmp_path / "o.db")
    else:
        server = request.getfixturevalue("redis_server")
        store = RedisOnlineStore(server.url(), prefix=f"test-{uuid.uuid4().hex[:12]}")
    yield store
    store.close()


customer = Entity("customer", ["customer_id"])


def ago(hours: float) -> datetime:
    return NOW - timedelta(hours=hours)


def view_of(rows: pd.DataFrame, ttl: timedelta | None = None, name: str = "stats") -> FeatureView:
    return FeatureView(
        name,
        [customer],
        [
            Field("spend", "float64"),
            Field("visits", "int64"),
            Field("tier", "string"),
            Field("seen", "timestamp"),
        ],
        DataFrameSource(rows, created_timestamp_field="created" if "created" in rows else None),
        ttl=ttl,
    )


ROWS = pd.DataFrame(
    {
        "customer_id": [1, 1, 2, 3, 4],
        "event_timestamp": [ago(10), ago(2), ago(5), ago(100), ago(1)],
        "spend": [1.0, 2.0, 3.0, 4.0, None],
        "visits": [1, 2, 3, 4, 5],
        "tier": ["a", "b", "c", "d", "e"],
        "seen": [ago(10), ago(2), ago(5), ago(100), ago(1)],
    }
)


def test_materialized_values_come_back_with_their_statuses(online: OnlineStore) -> None:
    store = FeatureStore([view_of(ROWS, ttl=timedelta(hours=48))], online_store=online)
    seen: list[tuple[str, int, int]] = []
    done = store.materialize(ago(200), NOW + timedelta(seconds=1), progress=lambda *a: seen.append(a))
    assert [(m.view, m.rows) for m in done] == [("stats", 4)] and seen[-1] == ("stats", 4, 4)
    got = store.get_online_features(
        ["stats:spend", "stats:visits", "stats:tier"], [{"customer_id": c} for c in (1, 2, 3, 4, 99)]
    )
    assert got.to_dict() == {
        "customer_id": [1, 2, 3, 4, 99],
        "spend": [2.0, 3.0, None, None, None],
        "visits": [2, 3, None, 5, None],
        "tier": ["b", "c", None, "e", None],
    }
    assert got.statuses["spend"] == ["PRESENT", "PRESENT", "OUTSIDE_MAX_AGE", "NULL_VALUE", "NOT_FOUND"]
    assert got.event_ms["spend"][0] == int(ago(2).timestamp() * 1000)
    seen = store.get_online_features(["stats:seen"], {"customer_id": [1]}).to_dict()["seen"]
    assert seen == [ago(2)]
    # Keys as the entity's type: 2.0 and "2" name customer 2.
    again = store.get_online_features(["stats:visits"], {"customer_id": [2.0, "2"]})
    assert again.to_dict()["visits"] == [3, 3]


def test_loads_are_idempotent_and_never_go_back_in_time(online: OnlineStore) -> None:
    store = FeatureStore([view_of(ROWS)], online_store=online)
    store.materialize(ago(4), NOW)  # customer 1's row at -2 h
    store.materialize(ago(4), NOW)
    store.materialize(ago(20), ago(4))  # an older interval afterwards: customer 1's row at -10 h is older
    got = store.get_online_features(["stats:spend"], {"customer_id": [1, 2]})
    assert got.to_dict()["spend"] == [2.0, 3.0]
    assert [m.rows for m in online.materializations("stats")] == [2, 2, 2]


def test_incremental_loads_continue_where_the_last_ended(online: OnlineStore) -> None:
    store = FeatureStore([view_of(ROWS, ttl=timedelta(hours=48))], online_store=online)
    first = store.materialize_incremental(ago(3))  # from -51 h (the TTL) to -3 h
    assert [(m.rows, m.end_ms) for m in first] == [(2, int(ago(3).timestamp() * 1000))]  # customers 1 and 2
    assert store.get_online_features(["stats:spend"], {"customer_id": [1]}).to_dict()["spend"] == [1.0]
    second = store.materialize_incremental(NOW)
    assert second[0].start_ms == first[0].end_ms and second[0].rows == 2  # customer 1's later row, and 4
    assert store.get_online_features(["stats:spend"], {"customer_id": [1]}).to_dict()["spend"] == [2.0]
    assert store.materialize_incremental(NOW) == []  # nothing left to load


def test_services_and_on_demand_features_online(online: OnlineStore) -> None:
    stats = view_of(ROWS)
    order = RequestSource("order", [Field("amount", "float64")])

    @on_demand_feature_view(sources=[stats[["spend"]], order], schema=[Field("share", "float64")])
    def share(inputs: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame({"share": inputs["amount"] / inputs["spend"]})

    service = FeatureService("checkout", [stats[["visits"]], share])
    store = FeatureStore([stats, share, service], online_store=online)
    store.materialize(ago(200), NOW + timedelta(seconds=1))
    got = store.get_online_features(
        "checkout", [{"customer_id": 1, "amount": 1.0}, {"customer_id": 2, "amount": 6.0}]
    )
    assert got.to_dict() == {"customer_id": [1, 2], "visits": [2, 3], "share": [0.5, 2.0]}
    assert got.statuses["share"] == ["PRESENT", "PRESENT"]
    with pytest.raises(InvalidInput, match="needs request field 'amount'"):
        store.get_online_features("checkout", [{"customer_id": 1}])


def test_bad_requests_are_named(online: OnlineStore) -> None:
    offline_only = FeatureView(
        "history", [customer], [Field("spend", "float64")], DataFrameSource(ROWS), online=False
    )
    store = FeatureStore([view_of(ROWS), offline_only], online_store=online)
    with pytest.raises(InvalidInput, match="entity rows have no 'customer_id'"):
        store.get_online_features(["stats:spend"], [{"id": 1}])
    with pytest.raises(InvalidInput, match="history is not served online"):
        store.materialize(ago(10), NOW, ["history"])
    with pytest.raises(InvalidInput, match="is not after start"):
        store.materialize(NOW, ago(1))
    with pytest.raises(InvalidInput, match="'x' is not int64"):
        store.get_online_features(["stats:spend"], {"customer_id": ["x"]})
    with pytest.raises(InvalidInput, match="not an ISO 8601 time"):
        store.materialize("yesterday", NOW)


def test_concurrent_readers_see_whole_writes(online: OnlineStore) -> None:
    store = FeatureStore([view_of(ROWS)], online_store=online)
    store.materialize(ago(200), NOW + timedelta(seconds=1))
    errors: list[BaseException] = []

    def read() -> None:
        try:
            for _ in range(200):
                values = store.get_online_features(["stats:visits"], {"customer_id": [1, 2]}).to_dict()[
                    "visits"
                ]
                assert values == [2, 3]
        except BaseException as exc:  # reported below
            errors.append(exc)

    readers = [threading.Thread(target=read) for _ in range(4)]
    for t in readers:
        t.start()
    for _ in range(20):
        store.materialize(ago(200), NOW + timedelta(seconds=1))
    for t in readers:
        t.join()
    assert not errors


def test_an_acknowledged_load_survives_kill_9(tmp_path: Path) -> None:
    path = tmp_path / "o.db"
    script = textwrap.dedent(
        f"""
        import os, sys, time
        from datetime import datetime, timedelta, UTC
        import pandas as pd
        from shipyard.features import DataFrameSource, Entity, FeatureStore, FeatureView, Field
        from shipyard.features.online import OnlineStore, RedisOnlineStore, SqliteOnlineStore
        now = datetime.now(UTC)
        rows = pd.DataFrame({{"customer_id": list(range(5000)), "event_timestamp": [now] * 5000,
                             "spend": [float(i) for i in range(5000)]}})
        view = FeatureView("stats", [Entity("customer", ["customer_id"])], [Field("spend", "float64")],
                           DataFrameSource(rows))
        store = FeatureStore([view], online_store=SqliteOnlineStore({str(path)!r}))
        store.materialize(now - timedelta(hours=1), now + timedelta(seconds=1))
        print("loaded", flush=True)
        time.sleep(60)
        """
    )
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None and child.stdout.readline().strip() == "loaded"
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    rows = pd.DataFrame({"customer_id": [4999], "event_timestamp": [NOW], "spend": [0.0]})
    view = FeatureView("stats", [customer], [Field("spend", "float64")], DataFrameSource(rows))
    got = FeatureStore([view], online_store=SqliteOnlineStore(path)).get_online_features(
        ["stats:spend"], {"customer_id": [0, 4999]}
    )
    assert got.to_dict()["spend"] == [0.0, 4999.0]


@pytest.mark.redis
def test_an_unreachable_redis_is_named(redis_server: object) -> None:
    from tests.conftest import free_port

    del redis_server  # only to skip with the others when Redis is absent
    store = RedisOnlineStore(f"redis://:s3cret@127.0.0.1:{free_port()}/0", timeout_s=0.5)
    with pytest.raises(
        StoreError, match=r"online store redis://:\*\*\*\*@127\.0\.0\.1:\d+/0: ConnectionError"
    ) as caught:
        store.ping()
    assert "s3cret" not in str(caught.value)
    view = view_of(ROWS)
    with pytest.raises(StoreError, match="online store redis://"):
        FeatureStore([view], online_store=store).get_online_features(["stats:spend"], {"customer_id": [1]})


def test_the_setting_chooses_the_store(tmp_path: Path) -> None:
    from shipyard.features.online import open_online_store

    assert isinstance(open_online_store(None, tmp_path), SqliteOnlineStore)
    assert open_online_store(None, tmp_path).path == tmp_path / "features" / "online.db"  # type: ignore[attr-defined]
    assert open_online_store(f"sqlite:///{tmp_path}/x.db", tmp_path).path == tmp_path / "x.db"  # type: ignore[attr-defined]
    assert isinstance(open_online_store("redis://127.0.0.1:1/0", tmp_path), RedisOnlineStore)
    with pytest.raises(InvalidInput, match="online_store: dynamodb:// is not a known online store"):
        open_online_store("dynamodb://table", tmp_path)


def test_batches_are_validated_against_the_views_kept_schema(online: OnlineStore) -> None:
    from shipyard.errors import DataValidationError

    first = pd.DataFrame(
        {
            "customer_id": [1, 2, 3],
            "event_timestamp": [ago(30)] * 3,
            "spend": [1.0, 2.0, 3.0],
            "visits": [1, 2, 3],
            "tier": ["a", "b", "a"],
            "seen": [ago(30)] * 3,
        }
    )
    later = pd.DataFrame(
        {
            "customer_id": [1, 2, 4],
            "event_timestamp": [ago(2)] * 3,
            "spend": [None, None, 3.5],  # spend had no nulls in the first batch: an error-severity anomaly
            "visits": [5, 6, 7],
            "tier": ["a", "b", "a"],
            "seen": [ago(2)] * 3,
        }
    )
    rows = pd.concat([first, later], ignore_index=True)
    store = FeatureStore([view_of(rows)], online_store=online)
    store.materialize(ago(40), ago(20))  # the first batch: its schema is kept
    assert online.schema("stats") is not None and "spend" in str(online.schema("stats"))
    with pytest.raises(
        DataValidationError, match="feature view stats: the batch breaks its schema: .*'spend'"
    ):
        store.materialize(ago(10), NOW, on_anomaly="error")
    assert store.get_online_features(["stats:visits"], {"customer_id": [1]}).to_dict()["visits"] == [
        1
    ]  # unwritten
    done = store.materialize(ago(10), NOW)  # warn: written, and the anomalies recorded
    assert done[0].anomalies and "spend" in done[0].anomalies[0]
    assert store.get_online_features(["stats:visits"], {"customer_id": [1]}).to_dict()["visits"] == [5]
    assert online.materializations("stats")[-1].anomalies == done[0].anomalies
    assert store.materialize(ago(10), NOW, on_anomaly="off")[0].anomalies == ()
