"""Serving with features: Feast's get-online-features route, a model whose requests send entity keys (the
server looks its feature service up and logs the features it used), readiness with an unreachable Redis."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

import shipyard
from shipyard.errors import InvalidInput
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
from shipyard.features.online import RedisOnlineStore, SqliteOnlineStore
from shipyard.payloads import PayloadLogConfig, PayloadLogger, read_payloads
from shipyard.serving.features import FeatureLookup
from shipyard.serving.repository import ModelConfig
from shipyard.store.artifacts import ArtifactStore
from tests.conftest import free_port, make_settings
from tests.serving.conftest import RunningServer

NOW = datetime.now(UTC).replace(microsecond=0)
customer = Entity("customer", ["customer_id"])
ROWS = pd.DataFrame(
    {
        "customer_id": [1, 2, 3],
        "event_timestamp": [NOW - timedelta(hours=1)] * 3,
        "spend": [10.0, 200.0, 35.0],
        "visits": [1, 9, 4],
    }
)
stats = FeatureView(
    "stats", [customer], [Field("spend", "float64"), Field("visits", "int64")], DataFrameSource(ROWS)
)
order = RequestSource("order", [Field("amount", "float64")])


@on_demand_feature_view(sources=[stats[["spend"]], order], schema=[Field("share", "float64")])
def share(inputs: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({"share": inputs["amount"] / inputs["spend"]})


churn = FeatureService("churn", [stats, share])


def feature_store(path: Path) -> FeatureStore:
    store = FeatureStore([stats, share, churn], online_store=SqliteOnlineStore(path))
    store.materialize(NOW - timedelta(days=1), NOW + timedelta(seconds=1))
    return store


def test_feast_route_answers_in_feasts_shape(
    tmp_path: Path, start_server: Callable[..., RunningServer]
) -> None:
    settings = make_settings(tmp_path / "home")
    lookup = FeatureLookup(feature_store(tmp_path / "online.db"))
    server = start_server([], settings, features=lookup)
    body = {"features": ["stats:spend", "stats:visits"], "entities": {"customer_id": [2, 9]}}
    answer = httpx.post(f"{server.url}/v1/features/get-online-features", json=body)
    assert answer.status_code == 200, answer.text
    found = answer.json()
    assert found["metadata"]["feature_names"] == ["customer_id", "spend", "visits"]
    assert found["results"][0]["values"] == [2, 9]
    assert found["results"][1]["values"] == [200.0, None]
    assert found["results"][1]["statuses"] == ["PRESENT", "NOT_FOUND"]
    assert found["results"][1]["event_timestamps"][0].startswith(str((NOW - timedelta(hours=1)).date()))
    service = httpx.post(
        f"{server.url}/v1/features/get-online-features",
        json={"feature_service": "churn", "entities": {"customer_id": [1], "amount": [5.0]}},
    ).json()
    assert dict(
        zip(service["metadata"]["feature_names"], [r["values"][0] for r in service["results"]], strict=True)
    ) == {
        "customer_id": 1,
        "spend": 10.0,
        "visits": 1,
        "share": 0.5,
    }
    for bad, message in (
        ({"features": ["stats:spnd"], "entities": {"customer_id": [1]}}, "did you mean stats:spend"),
        ({"features": ["stats:spend"], "entities": {"id": [1]}}, "entity rows have no 'customer_id'"),
        ({"features": ["stats:spend"]}, "entities is"),
        (
            {"features": ["stats:spend"], "entities": {"customer_id": [1]}, "extra": 1},
            "unknown field 'extra'",
        ),
    ):
        refused = httpx.post(f"{server.url}/v1/features/get-online-features", json=bad)
        assert refused.status_code == 400 and message in refused.text, (bad, refused.text)


def test_a_model_served_with_its_feature_service(
    tmp_path: Path, start_server: Callable[..., RunningServer]
) -> None:
    settings = make_settings(tmp_path / "home")
    train = pd.DataFrame(
        {"spend": [10.0, 200.0, 35.0, 150.0], "visits": [1, 9, 4, 8], "share": [0.5, 0.1, 0.2, 0.05]}
    )
    model = LogisticRegression().fit(train, [0, 1, 0, 1])
    with shipyard.start_run("features", settings=settings) as run:
        info = shipyard.models.log(model, name="model", run=run, input_example=train.head(2))
    store = ArtifactStore.configured(settings)
    payloads = PayloadLogger(store, PayloadLogConfig(sample_rate=1.0, max_rows=1, max_seconds=0.1))
    server = start_server(
        [ModelConfig("churn", info.uri, feature_service="churn")],
        settings,
        features=FeatureLookup(feature_store(tmp_path / "online.db")),
        payloads=payloads,
    )
    records = [{"customer_id": 2, "amount": 20.0}, {"customer_id": 1, "amount": 5.0}]
    answer = httpx.post(f"{server.url}/models/churn/predict", json=records)
    assert answer.status_code == 200, answer.text
    expected = model.predict(pd.DataFrame({"spend": [200.0, 10.0], "visits": [9, 1], "share": [0.1, 0.5]}))
    assert answer.json()["predictions"] == expected.tolist()
    v1 = httpx.post(f"{server.url}/v1/models/churn:predict", json={"instances": records})
    assert v1.status_code == 200 and v1.json()["predictions"] == expected.tolist()
    missing = httpx.post(f"{server.url}/models/churn/predict", json=[{"customer_id": 1}])
    assert missing.status_code == 400 and "needs request field 'amount'" in missing.text
    payloads.close()
    logged = read_payloads(store, model="churn")
    inputs = json.loads(logged["inputs"].iloc[0])  # what the model saw: the features looked up
    assert inputs == {"spend": [200.0, 10.0], "visits": [9, 1], "share": [0.1, 0.5]}


def test_a_feature_service_needs_a_repository_and_must_exist(
    tmp_path: Path, start_server: Callable[..., RunningServer]
) -> None:
    settings = make_settings(tmp_path / "home")
    with pytest.raises(
        InvalidInput, match="names a feature service, but the deployment has no feature repository"
    ):
        start_server([ModelConfig("m", "models:/none@x", feature_service="churn")], settings)
    lookup = FeatureLookup(feature_store(tmp_path / "online.db"))
    with pytest.raises(Exception, match="no feature service 'chrn'; did you mean churn"):
        start_server([ModelConfig("m", "models:/none@x", feature_service="chrn")], settings, features=lookup)


def test_readiness_says_when_redis_is_unreachable(
    tmp_path: Path, start_server: Callable[..., RunningServer]
) -> None:
    settings = make_settings(tmp_path / "home")
    dead = RedisOnlineStore(f"redis://127.0.0.1:{free_port()}/0", timeout_s=0.3)
    server = start_server([], settings, features=FeatureLookup(FeatureStore([stats], online_store=dead)))
    ready = httpx.get(f"{server.url}/v2/health/ready")
    assert ready.status_code == 503 and "online store redis://127.0.0.1" in ready.json()["features"]
    looked = httpx.post(
        f"{server.url}/v1/features/get-online-features",
        json={"features": ["stats:spend"], "entities": {"customer_id": [1]}},
    )
    assert looked.status_code >= 500 and "online store redis://127.0.0.1" in looked.text


def test_deploy_yaml_names_the_repository_and_each_models_service(tmp_path: Path) -> None:
    from shipyard.serving.deployment import load_deployment

    path = tmp_path / "deploy" / "deploy.yaml"
    path.parent.mkdir()
    path.write_text(
        "features: {repo: ../features, online_store: redis://cache:6379/0}\n"
        "models:\n  - uri: models:/churn@champion\n    feature_service: churn\n",
        encoding="utf-8",
    )
    found = load_deployment(path)
    assert found.features is not None and Path(found.features.repo) == tmp_path / "deploy" / ".." / "features"
    assert found.features.online_store == "redis://cache:6379/0"
    assert [c.feature_service for c in found.model_configs()] == ["churn"]
    path.write_text("features: {repository: x}\nmodels: [{uri: models:/m@a}]\n", encoding="utf-8")
    with pytest.raises(InvalidInput, match=r"deploy.yaml: features.repo: Field required"):
        load_deployment(path)


def test_a_models_own_record_names_its_feature_service() -> None:
    from types import SimpleNamespace

    from shipyard.serving.features import services_from_models

    recorded = {
        "models:/a@champion": {"feature_service": {"name": "churn", "version": 2}},
        "models:/a@challenger": {"feature_service": {"name": "churn", "version": 3}},
        "models:/b@champion": {"feature_service": {"name": "fraud", "version": 1}},
        "models:/c@champion": {},
    }
    version_of = lambda uri: SimpleNamespace(lineage=recorded[uri])  # noqa: E731
    configs = [
        ModelConfig("a", versions={"champion": "models:/a@champion", "challenger": "models:/a@challenger"}),
        ModelConfig("c", "models:/c@champion"),
        ModelConfig("d", "models:/b@champion", feature_service="explicit"),
    ]
    assert [c.feature_service for c in services_from_models(configs, version_of)] == [
        "churn",
        None,
        "explicit",
    ]
    mixed = [ModelConfig("x", versions={"one": "models:/a@champion", "two": "models:/b@champion"})]
    with pytest.raises(InvalidInput, match="trained on different feature services \\(churn, fraud\\)"):
        services_from_models(mixed, version_of)
