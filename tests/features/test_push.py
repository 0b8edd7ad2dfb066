"""Push sources: rows pushed are checked, appended offline as whole Parquet files and upserted online."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from shipyard.errors import InvalidInput, NotFound
from shipyard.features import Entity, FeatureStore, FeatureView, Field, FileSource, PushSource
from shipyard.features.online import SqliteOnlineStore

NOW = datetime.now(UTC).replace(microsecond=0)
customer = Entity("customer", ["customer_id"])


def store_of(tmp_path: Path) -> FeatureStore:
    clicks = PushSource("clicks", FileSource(str(tmp_path / "clicks")))
    view = FeatureView("activity", [customer], [Field("clicks", "int64"), Field("page", "string")], clicks)
    return FeatureStore([view], online_store=SqliteOnlineStore(tmp_path / "online.db"))


def test_pushed_rows_reach_both_stores(tmp_path: Path) -> None:
    store = store_of(tmp_path)
    first = pd.DataFrame(
        {
            "customer_id": [1, 1, 2],
            "event_timestamp": [
                NOW - timedelta(minutes=5),
                NOW - timedelta(minutes=1),
                NOW - timedelta(minutes=2),
            ],
            "clicks": [3, 4, 7],
            "page": ["a", "b", "c"],
        }
    )
    assert store.push("clicks", first) == 3
    online = store.get_online_features(
        ["activity:clicks", "activity:page"], {"customer_id": [1, 2]}
    ).to_dict()
    assert online["clicks"] == [4, 7] and online["page"] == ["b", "c"]
    # An older row pushed later does not go back in time online; offline it is history.
    store.push("clicks", first.iloc[[0]].assign(clicks=99, event_timestamp=NOW - timedelta(minutes=10)))
    assert store.get_online_features(["activity:clicks"], {"customer_id": [1]}).to_dict()["clicks"] == [4]
    files = sorted(p.name for p in (tmp_path / "clicks").iterdir())
    assert len(files) == 2 and all(f.startswith("push-") and f.endswith(".parquet") for f in files)
    entity = pd.DataFrame({"customer_id": [1, 1], "event_timestamp": [NOW - timedelta(minutes=7), NOW]})
    offline = store.get_historical_features(entity, ["activity:clicks"]).to_pandas()
    assert offline["clicks"].tolist() == [99, 4]


def test_pushes_are_checked(tmp_path: Path) -> None:
    store = store_of(tmp_path)
    rows = pd.DataFrame({"customer_id": [1], "event_timestamp": [NOW], "clicks": [1], "page": ["a"]})
    with pytest.raises(NotFound, match="no push source 'click'; did you mean clicks"):
        store.push("click", rows)
    with pytest.raises(InvalidInput, match="rows have no column 'page'"):
        store.push("clicks", rows.drop(columns=["page"]))
    with pytest.raises(InvalidInput, match="column 'clicks' is not int64"):
        store.push("clicks", rows.assign(clicks=["many"]))
    with pytest.raises(InvalidInput, match="no timestamp column 'event_timestamp'"):
        store.push("clicks", rows.drop(columns=["event_timestamp"]))
    with pytest.raises(InvalidInput, match="to='nowhere'"):
        store.push("clicks", rows, to="nowhere")
    with pytest.raises(InvalidInput, match="batch_source must be a FileSource of Parquet files"):
        PushSource("bad", FileSource(str(tmp_path / "x.csv")))
    assert not (tmp_path / "clicks").exists()  # nothing was written by a refused push
