"""Point-in-time training sets: every entity row kept, the latest feature row at or before its time, TTL,
ties, the created cutoff, time zones — each checked against a brute-force pandas reference."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shipyard.errors import InvalidInput, NotFound
from shipyard.features import (
    DataFrameSource,
    Entity,
    FeatureService,
    FeatureStore,
    FeatureView,
    Field,
    FileSource,
    RequestSource,
    offline,
    on_demand_feature_view,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)
customer = Entity("customer", ["customer_id"])


def at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def reference(
    entity: pd.DataFrame,
    rows: pd.DataFrame,
    features: list[str],
    ttl: timedelta | None,
    created: str | None,
    cutoff: bool,
) -> pd.DataFrame:
    """The join done the slow, obvious way: for each entity row, the feature rows of its key at or before
    its time (and created by then, with the cutoff), the latest event, then the newest created, then the
    last in file order; null when none, or when older than the TTL."""
    out = []
    rows = rows.assign(_line=np.arange(len(rows)))
    for _, e in entity.iterrows():
        t = e["event_timestamp"]
        mine = rows[(rows["customer_id"] == e["customer_id"]) & (rows["event_timestamp"] <= t)]
        if created and cutoff:
            mine = mine[mine[created].isna() | (mine[created] <= t)]
        if created:
            mine = mine.assign(_cr=mine[created].fillna(pd.Timestamp("1900-01-01", tz="UTC").as_unit("us")))
            mine = mine.sort_values(["event_timestamp", "_cr", "_line"])
        else:
            mine = mine.sort_values(["event_timestamp", "_line"])
        if mine.empty or (ttl is not None and t - mine["event_timestamp"].iloc[-1] > ttl):
            out.append({f: None for f in features})
        else:
            out.append({f: mine[f].iloc[-1] for f in features})
    return pd.concat([entity.reset_index(drop=True), pd.DataFrame(out, columns=features)], axis=1)


def same(got: pd.DataFrame, want: pd.DataFrame) -> None:
    assert list(got.columns) == list(want.columns)
    assert len(got) == len(want)
    for column in want.columns:
        a, b = got[column].tolist(), want[column].tolist()
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            if pd.isna(y):
                assert pd.isna(x), (column, i, x, y)
            else:
                assert x == y, (column, i, x, y)


def stats_view(rows: pd.DataFrame, ttl: timedelta | None = None, created: str | None = None) -> FeatureView:
    return FeatureView(
        "stats",
        [customer],
        [Field("spend", "float64"), Field("visits", "int64")],
        DataFrameSource(rows, created_timestamp_field=created),
        ttl=ttl,
    )


def test_every_entity_row_is_kept_in_order_with_the_latest_earlier_values() -> None:
    rows = pd.DataFrame(
        {
            "customer_id": [1, 1, 1, 2, 3],
            "event_timestamp": [at(0), at(5), at(10), at(1), at(50)],
            "spend": [1.0, 5.0, 10.0, 2.0, 3.0],
            "visits": [1, 2, 3, 4, 5],
        }
    )
    entity = pd.DataFrame(
        {
            "customer_id": [1, 3, 1, 2, 9, 1],  # 3's only row comes later; 9 has none: both kept, null
            "event_timestamp": [at(7), at(2), at(10), at(100), at(1), at(-1)],
            "label": [1, 0, 1, 0, 1, 0],
        }
    )
    got = FeatureStore([stats_view(rows)]).get_historical_features(entity, ["stats:spend", "stats:visits"])
    frame = got.to_pandas()
    assert len(got) == 6 and frame["label"].tolist() == [1, 0, 1, 0, 1, 0]
    spend = frame["spend"].tolist()
    assert spend[0] == 5.0 and spend[2] == 10.0 and spend[3] == 2.0
    assert all(pd.isna(spend[i]) for i in (1, 4, 5))
    same(frame, reference(entity, rows, ["spend", "visits"], None, None, True))
    assert str(frame["event_timestamp"].dt.tz) == "UTC"


def test_ttl_nulls_values_older_than_it() -> None:
    rows = pd.DataFrame(
        {"customer_id": [1, 2], "event_timestamp": [at(0), at(0)], "spend": [1.0, 2.0], "visits": [1, 2]}
    )
    entity = pd.DataFrame({"customer_id": [1, 2], "event_timestamp": [at(24), at(24.5)]})
    store = FeatureStore([stats_view(rows, ttl=timedelta(hours=24))])
    frame = store.get_historical_features(entity, ["stats:spend"]).to_pandas()
    assert frame["spend"].iloc[0] == 1.0 and pd.isna(frame["spend"].iloc[1])  # exactly 24 h is in


def test_ties_go_to_the_newest_created_then_the_last_in_file_order() -> None:
    rows = pd.DataFrame(
        {
            "customer_id": [1, 1, 1, 2, 2],
            "event_timestamp": [at(1)] * 5,
            "created": [at(3), at(2), at(2), None, None],
            "spend": [3.0, 2.0, 2.5, 7.0, 8.0],
            "visits": [1, 2, 3, 4, 5],
        }
    )
    entity = pd.DataFrame({"customer_id": [1, 2], "event_timestamp": [at(10), at(10)]})
    store = FeatureStore([stats_view(rows, created="created")])
    frame = store.get_historical_features(entity, ["stats:spend"]).to_pandas()
    assert frame["spend"].tolist() == [3.0, 8.0]


def test_a_late_correction_never_leaks_into_an_earlier_row() -> None:
    rows = pd.DataFrame(
        {
            "customer_id": [1, 1, 1],
            "event_timestamp": [at(0), at(5), at(5)],
            "created": [at(0), at(5), at(20)],  # the event at 5 was corrected at 20
            "spend": [1.0, 5.0, 50.0],
            "visits": [1, 2, 3],
        }
    )
    entity = pd.DataFrame({"customer_id": [1, 1, 1], "event_timestamp": [at(3), at(10), at(30)]})
    store = FeatureStore([stats_view(rows, created="created")])
    cut = store.get_historical_features(entity, ["stats:spend"]).to_pandas()
    assert cut["spend"].tolist() == [1.0, 5.0, 50.0]
    feast_like = store.get_historical_features(entity, ["stats:spend"], created_cutoff=False).to_pandas()
    assert feast_like["spend"].tolist() == [1.0, 50.0, 50.0]  # the correction seen before it was made

    # A row created after its entity time and nothing earlier for that key: null, not the late row.
    late_only = pd.DataFrame(
        {"customer_id": [2], "event_timestamp": [at(0)], "created": [at(9)], "spend": [9.0], "visits": [9]}
    )
    store = FeatureStore([stats_view(late_only, created="created")])
    frame = store.get_historical_features(
        pd.DataFrame({"customer_id": [2, 2], "event_timestamp": [at(1), at(9)]}), ["stats:spend"]
    ).to_pandas()
    assert pd.isna(frame["spend"].iloc[0]) and frame["spend"].iloc[1] == 9.0


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=st.lists(
        st.tuples(
            st.integers(0, 3),
            st.integers(0, 12),
            st.one_of(st.none(), st.integers(0, 20)),
            st.integers(-50, 50),
        ),
        min_size=0,
        max_size=30,
    ),
    probes=st.lists(st.tuples(st.integers(0, 4), st.integers(-2, 24)), min_size=1, max_size=15),
    ttl_hours=st.one_of(st.none(), st.integers(1, 8)),
    with_created=st.booleans(),
    cutoff=st.booleans(),
)
def test_the_join_agrees_with_the_brute_force_reference(
    data: list[tuple[int, int, int | None, int]],
    probes: list[tuple[int, int]],
    ttl_hours: int | None,
    with_created: bool,
    cutoff: bool,
) -> None:
    rows = pd.DataFrame(
        {
            "customer_id": pd.Series([d[0] for d in data], dtype="int64"),
            "event_timestamp": pd.Series([at(d[1]) for d in data], dtype="datetime64[us, UTC]"),
            "created": pd.Series(
                [None if d[2] is None else at(d[2]) for d in data], dtype="datetime64[us, UTC]"
            ),
            "spend": pd.Series([float(d[3]) for d in data], dtype="float64"),
            "visits": pd.Series([d[3] * 2 for d in data], dtype="int64"),
        }
    )
    entity = pd.DataFrame(
        {
            "customer_id": pd.Series([p[0] for p in probes], dtype="int64"),
            "event_timestamp": pd.Series([at(p[1]) for p in probes], dtype="datetime64[us, UTC]"),
        }
    )
    ttl = None if ttl_hours is None else timedelta(hours=ttl_hours)
    created = "created" if with_created else None
    source = rows if with_created else rows.drop(columns=["created"])
    store = FeatureStore([stats_view(source, ttl=ttl, created=created)])
    got = store.get_historical_features(entity, ["stats:spend", "stats:visits"], created_cutoff=cutoff)
    same(got.to_pandas(), reference(entity, source, ["spend", "visits"], ttl, created, cutoff))


def test_naive_times_are_utc_and_a_column_mixing_both_is_refused() -> None:
    rows = pd.DataFrame(
        {"customer_id": [1], "event_timestamp": [datetime(2026, 1, 1, 5)], "spend": [1.0], "visits": [1]}
    )
    store = FeatureStore([stats_view(rows)])  # naive source times: UTC
    entity = pd.DataFrame(
        {"customer_id": [1, 1], "event_timestamp": [datetime(2026, 1, 1, 4), datetime(2026, 1, 1, 5)]}
    )
    frame = store.get_historical_features(entity, ["stats:spend"]).to_pandas()
    assert pd.isna(frame["spend"].iloc[0]) and frame["spend"].iloc[1] == 1.0
    assert frame["event_timestamp"].iloc[1] == pd.Timestamp("2026-01-01 05:00", tz="UTC")

    # 06:00+01:00 is 05:00 UTC.
    aware = pd.DataFrame({"customer_id": [1], "event_timestamp": ["2026-01-01T06:00:00+01:00"]})
    assert store.get_historical_features(aware, ["stats:spend"]).to_pandas()["spend"].tolist() == [1.0]

    mixed = pd.DataFrame(
        {
            "customer_id": [1, 1],
            "event_timestamp": [datetime(2026, 1, 1, 4), datetime(2026, 1, 1, 4, tzinfo=UTC)],
        },
        dtype=object,
    )
    with pytest.raises(InvalidInput, match=r"'event_timestamp' mixes timezone-naive \(row 0\)"):
        store.get_historical_features(mixed, ["stats:spend"])


def test_bad_entity_rows_and_feature_names_are_named() -> None:
    rows = pd.DataFrame({"customer_id": [1], "event_timestamp": [at(0)], "spend": [1.0], "visits": [1]})
    store = FeatureStore([stats_view(rows)])
    with pytest.raises(InvalidInput, match="no column 'customer_id', the join key of feature view stats"):
        store.get_historical_features(pd.DataFrame({"id": [1], "event_timestamp": [at(1)]}), ["stats:spend"])
    with pytest.raises(InvalidInput, match="entity_df has no timestamp column 'event_timestamp'"):
        store.get_historical_features(pd.DataFrame({"customer_id": [1], "ts": [at(1)]}), ["stats:spend"])
    entity = pd.DataFrame({"customer_id": [1], "event_timestamp": [at(1)]})
    with pytest.raises(InvalidInput, match=r"no feature 'spnd'; did you mean stats:spend"):
        store.get_historical_features(entity, ["stats:spnd"])
    with pytest.raises(NotFound, match="no feature view 'stat'; did you mean stats"):
        store.get_historical_features(entity, ["stat:spend"])
    with pytest.raises(InvalidInput, match="write it as view:feature"):
        store.get_historical_features(entity, ["spend"])
    one = store.get_historical_features(entity, "stats:spend").to_pandas()  # one ref, not a service's name
    assert one["spend"].tolist() == [1.0]
    with pytest.raises(InvalidInput, match="join key 'customer_id' is VARCHAR in entity_df but BIGINT"):
        store.get_historical_features(
            pd.DataFrame({"customer_id": ["1"], "event_timestamp": [at(1)]}), ["stats:spend"]
        )
    with pytest.raises(InvalidInput, match="would overwrite entity_df's column 'spend'"):
        store.get_historical_features(entity.assign(spend=1.0), ["stats:spend"])
    with pytest.raises(InvalidInput, match="starts with '__'"):
        store.get_historical_features(entity.assign(__row=1), ["stats:spend"])


def test_file_sources_parquet_folders_and_csv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "stats"
    folder.mkdir()
    first = pd.DataFrame({"customer_id": [1, 2], "event_timestamp": [at(0), at(0)], "spend": [1.0, 2.0]})
    # part-1 repeats customer 1 at hour 0: the later file wins the tie.
    second = pd.DataFrame({"customer_id": [1, 1], "event_timestamp": [at(2), at(0)], "spend": [3.0, 1.5]})
    pq.write_table(pa.Table.from_pandas(first), folder / "part-0.parquet")
    pq.write_table(pa.Table.from_pandas(second), folder / "part-1.parquet")
    csv = tmp_path / "visits.csv"
    csv.write_text("customer_id,event_timestamp,visits\n1,2026-01-01T00:00:00Z,4\n2,2026-01-01T03:00:00Z,5\n")
    spend = FeatureView("spend", [customer], [Field("spend", "float64")], FileSource(str(folder)))
    visits = FeatureView("visits", [customer], [Field("visits", "int64")], FileSource(str(csv)))
    entity = pd.DataFrame({"customer_id": [1, 2, 1, 9], "event_timestamp": [at(1), at(1), at(3), at(3)]})
    store = FeatureStore([spend, visits])
    refs = ["spend:spend", "visits:visits"]
    frame = store.get_historical_features(entity, refs, full_feature_names=True).to_pandas()
    assert frame["spend__spend"].tolist()[:3] == [1.5, 2.0, 3.0] and pd.isna(frame["spend__spend"].iloc[3])
    assert frame["visits__visits"].tolist()[0] == 4 and pd.isna(frame["visits__visits"].iloc[1])
    # A source too large to read whole is joined in DuckDB instead: the same answer.
    monkeypatch.setattr(offline, "TAKE_IN_MEMORY_BYTES", 0)
    streamed = store.get_historical_features(entity, refs, full_feature_names=True).to_pandas()
    pd.testing.assert_frame_equal(streamed, frame)


def test_a_source_whose_schema_changed_is_named_with_both_types(tmp_path: Path) -> None:
    path = tmp_path / "stats.parquet"
    pq.write_table(pa.table({"customer_id": [1], "event_timestamp": [at(0)], "spend": ["high"]}), path)
    view = FeatureView("stats", [customer], [Field("spend", "float64")], FileSource(str(path)))
    entity = pd.DataFrame({"customer_id": [1], "event_timestamp": [at(1)]})
    with pytest.raises(InvalidInput, match="source column 'spend' is VARCHAR but the view declares float64"):
        FeatureStore([view]).get_historical_features(entity, ["stats:spend"])
    missing = FeatureView("stats", [customer], [Field("refunds", "float64")], FileSource(str(path)))
    with pytest.raises(
        InvalidInput, match="has no column 'refunds'; its columns: customer_id, event_timestamp"
    ):
        FeatureStore([missing]).get_historical_features(entity, ["stats:refunds"])
    with pytest.raises(InvalidInput, match="cannot be read"):
        gone = FeatureView(
            "gone", [customer], [Field("x", "float64")], FileSource(str(tmp_path / "nope.parquet"))
        )
        FeatureStore([gone]).get_historical_features(entity, ["gone:x"])


def test_on_demand_features_and_services() -> None:
    rows = pd.DataFrame(
        {"customer_id": [1, 2], "event_timestamp": [at(0), at(0)], "spend": [10.0, 20.0], "visits": [2, 4]}
    )
    stats = stats_view(rows)
    request = RequestSource("order", [Field("amount", "float64")])

    @on_demand_feature_view(sources=[stats[["spend"]], request], schema=[Field("share", "float64")])
    def order_share(inputs: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame({"share": inputs["amount"] / inputs["spend"]})

    service = FeatureService("churn", [stats[["visits"]], order_share])
    store = FeatureStore([stats, order_share, service])
    entity = pd.DataFrame(
        {"customer_id": [1, 2, 3], "event_timestamp": [at(1)] * 3, "amount": [5.0, 5.0, 1.0]}
    )
    got = store.get_historical_features(entity, "churn")
    frame = got.to_pandas()
    assert list(frame.columns) == ["customer_id", "event_timestamp", "amount", "visits", "share"]
    assert frame["share"].tolist()[:2] == [0.5, 0.25] and pd.isna(frame["share"].iloc[2])
    assert got.service is service and got.features == ("stats:visits", "order_share:share")
    with pytest.raises(InvalidInput, match="needs request field 'amount'"):
        store.get_historical_features(entity.drop(columns=["amount"]), "churn")
    with pytest.raises(NotFound, match="no feature service 'chrn'; did you mean churn"):
        store.get_historical_features(entity, "chrn")


def test_two_views_with_a_feature_of_one_name_need_full_names() -> None:
    rows = pd.DataFrame({"customer_id": [1], "event_timestamp": [at(0)], "spend": [1.0], "visits": [1]})
    other = FeatureView("other", [customer], [Field("spend", "float64")], DataFrameSource(rows))
    store = FeatureStore([stats_view(rows), other])
    entity = pd.DataFrame({"customer_id": [1], "event_timestamp": [at(1)]})
    with pytest.raises(InvalidInput, match="full_feature_names=True"):
        store.get_historical_features(entity, ["stats:spend", "other:spend"])
    frame = store.get_historical_features(entity, ["stats:spend", "other:spend"], full_feature_names=True)
    assert frame.to_pandas()[["stats__spend", "other__spend"]].values.tolist() == [[1.0, 1.0]]


def test_definitions_refuse_bad_names_and_shapes() -> None:
    rows = pd.DataFrame({"customer_id": [1], "event_timestamp": [at(0)], "spend": [1.0]})
    with pytest.raises(InvalidInput, match="feature view: '1bad' is not a valid name"):
        FeatureView("1bad", [customer], [Field("spend", "float64")], DataFrameSource(rows))
    with pytest.raises(InvalidInput, match="unknown type 'float'"):
        Field("spend", "float")
    with pytest.raises(InvalidInput, match="feature 'customer_id' is also a join key"):
        FeatureView("v", [customer], [Field("customer_id", "int64")], DataFrameSource(rows))
    with pytest.raises(InvalidInput, match="ttl must be a positive timedelta"):
        FeatureView("v", [customer], [Field("spend", "float64")], DataFrameSource(rows), ttl=timedelta(0))
    with pytest.raises(InvalidInput, match="field 'spend' is listed twice"):
        FeatureView("v", [customer], [Field("spend", "float64")] * 2, DataFrameSource(rows))
