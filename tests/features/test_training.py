"""Training sets with lineage: the feature views' applied versions and source files recorded, the run's
input logged, the model's manifest naming the feature service version, and lineage from the model back to
the feature views."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from sklearn.linear_model import LogisticRegression

import shipyard
from shipyard import Settings
from shipyard.features import Entity, FeatureService, FeatureStore, FeatureView, Field, FileSource
from shipyard.lineage.client import LineageClient

T0 = pd.Timestamp("2026-01-01", tz="UTC")


def test_a_model_trained_on_a_training_set_leads_back_to_the_feature_views(
    tmp_path: Path, settings: Settings
) -> None:
    data = tmp_path / "stats.parquet"
    pq.write_table(
        pa.table(
            {
                "customer_id": [1, 2, 3, 4],
                "event_timestamp": [T0] * 4,
                "spend": [10.0, 200.0, 35.0, 150.0],
                "visits": [1, 9, 4, 8],
            }
        ),
        data,
    )
    customer = Entity("customer", ["customer_id"])
    stats = FeatureView(
        "stats", [customer], [Field("spend", "float64"), Field("visits", "int64")], FileSource(str(data))
    )
    churn = FeatureService("churn", [stats])
    store = FeatureStore([stats, churn], settings=settings)
    store.apply()
    labels = pd.DataFrame(
        {
            "customer_id": [1, 2, 3, 4],
            "event_timestamp": [T0 + pd.Timedelta(days=1)] * 4,
            "label": [0, 1, 0, 1],
        }
    )
    with shipyard.start_run("churn", settings=settings) as run:
        train = store.training_set("churn", labels)
        assert (
            train.service_version == 1 and train.uri == f"features:training_set/churn@1/{train.sha256[:16]}"
        )
        frame = train.to_pandas()
        model = LogisticRegression().fit(frame[["spend", "visits"]], frame["label"])
        info = shipyard.models.log(
            model, name="model", run=run, input_example=frame[["spend", "visits"]].head(2)
        )
    inputs = shipyard.get_client(settings).dataset_inputs(run.run_id)
    assert [d.source for d in inputs] == [train.uri]
    manifest = shipyard.models.load(info.uri, settings=settings).manifest
    assert manifest.lineage["feature_service"] == {"name": "churn", "version": 1}
    graph = LineageClient(shipyard.TrackingClient(settings)).upstream(info.uri)
    uris = {a.uri for a in graph.artifacts.values()}
    assert {train.uri, "features:feature_view/stats@1", f"file://{data}"} <= uris


def test_a_view_over_a_dataset_version_leads_back_to_it(tmp_path: Path, settings: Settings) -> None:
    from shipyard.datasets import DatasetClient
    from shipyard.features import DatasetSource

    folder = tmp_path / "snapshot"
    folder.mkdir()
    pq.write_table(
        pa.table({"customer_id": [1, 2], "event_timestamp": [T0, T0], "spend": [5.0, 6.0]}),
        folder / "part.parquet",
    )
    client = DatasetClient(shipyard.TrackingClient(settings))
    version = client.add(folder, "spend")
    customer = Entity("customer", ["customer_id"])
    stats = FeatureView(
        "stats", [customer], [Field("spend", "float64")], DatasetSource(f"spend@{version.version}")
    )
    service = FeatureService("svc", [stats])
    store = FeatureStore([stats, service], settings=settings)
    store.apply()
    entity = pd.DataFrame({"customer_id": [2, 3], "event_timestamp": [T0 + pd.Timedelta(hours=1)] * 2})
    with shipyard.start_run("ds", settings=settings):
        found = store.training_set("svc", entity)
    frame = found.to_pandas()
    assert frame["spend"].iloc[0] == 6.0 and pd.isna(frame["spend"].iloc[1])
    graph = LineageClient(shipyard.TrackingClient(settings)).upstream(found.uri)
    assert f"data:spend@{version.version}" in {a.uri for a in graph.artifacts.values()}
