"""The registry contract on every metadata backend and over the platform server: numbering, aliases,
stages, audit, deletion."""

from __future__ import annotations

import pytest

from shipyard import AlreadyExists, Conflict, InvalidInput, NotFound, Settings
from shipyard.lineage import ArtifactType, LineageClient
from shipyard.registry.client import RegistryClient
from shipyard.registry.records import Stage
from shipyard.registry.uri import RegistryUri
from shipyard.tracking.client import TrackingClient


def _register(client: RegistryClient, name: str = "churn", run_id: str | None = None) -> int:
    version = client.create_version(
        name,
        flavor="sklearn",
        source_uri=f"runs:/{'a' * 32}/model",
        package_uri="/nowhere/model",
        manifest_sha256="0" * 64,
        run_id=run_id,
        lineage={
            "run_id": run_id,
            "datasets": [{"name": "train", "digest": "d" * 64}],
            "pipeline_run_id": None,
        },
    )
    return version.version


@pytest.fixture
def registry(tracking_backend_settings: Settings) -> RegistryClient:
    return RegistryClient(TrackingClient(tracking_backend_settings))


def test_versions_are_numbered_per_model(registry: RegistryClient) -> None:
    assert [_register(registry) for _ in range(3)] == [1, 2, 3]
    assert _register(registry, "other") == 1
    model = registry.get_model("churn")
    assert model.latest_version == 3
    version = registry.get_version("churn", 2)
    assert version.lineage["datasets"][0]["digest"] == "d" * 64 and version.stage is Stage.NONE
    assert registry.resolve(RegistryUri("churn", latest=True)).version == 3


def test_alias_moves_atomically_and_resolves(registry: RegistryClient) -> None:
    for _ in range(2):
        _register(registry)
    registry.set_alias("churn", "champion", 1)
    assert registry.resolve(RegistryUri("churn", alias="champion")).version == 1
    registry.set_alias("churn", "champion", 2, reason="better auc")
    assert registry.resolve(RegistryUri("churn", alias="champion")).version == 2
    assert registry.get_version("churn", 1).aliases == ()
    assert registry.get_model("churn").aliases == {"champion": 2}
    moves = [
        (e.action, e.from_value, e.to_value, e.reason)
        for e in registry.events("churn")
        if e.action == "set_alias"
    ]
    assert moves == [
        ("set_alias", None, "champion->1", None),
        ("set_alias", "champion->1", "champion->2", "better auc"),
    ]


def test_alias_to_missing_version_or_bad_alias(registry: RegistryClient) -> None:
    _register(registry)
    with pytest.raises(NotFound, match="no version 7"):
        registry.set_alias("churn", "champion", 7)
    with pytest.raises(NotFound, match="no registered model named 'ghost'"):
        registry.set_alias("ghost", "champion", 1)
    for bad in ("", "3", "latest", "has space", "a/b"):
        with pytest.raises(InvalidInput):
            registry.set_alias("churn", bad, 1)
    with pytest.raises(NotFound, match="no alias 'champion'; it has: none"):
        registry.resolve(RegistryUri("churn", alias="champion"))


def test_stage_transitions_are_audited(registry: RegistryClient) -> None:
    for _ in range(2):
        _register(registry)
    registry.transition("churn", 1, "production", reason="first release")
    registry.transition("churn", 2, Stage.PRODUCTION, reason="retrained", archive_others=True)
    assert registry.get_version("churn", 1).stage is Stage.ARCHIVED
    assert registry.resolve(RegistryUri("churn", stage=Stage.PRODUCTION)).version == 2
    log = [
        (e.version, e.from_value, e.to_value, e.reason)
        for e in registry.events("churn")
        if e.action == "transition"
    ]
    assert log == [
        (1, "None", "Production", "first release"),
        (2, "None", "Production", "retrained"),
        (1, "Production", "Archived", "archived when version 2 entered Production"),
    ]
    assert all(e.user for e in registry.events("churn")) and all(
        e.created_at > 0 for e in registry.events("churn")
    )
    with pytest.raises(InvalidInput, match="unknown stage 'Prod'"):
        registry.transition("churn", 1, "Prod")


def test_deleting_an_aliased_version_needs_force(registry: RegistryClient) -> None:
    for _ in range(2):
        _register(registry)
    registry.set_alias("churn", "champion", 2)
    with pytest.raises(Conflict, match="champion"):
        registry.delete_version("churn", 2)
    registry.delete_version("churn", 1)
    registry.delete_version("churn", 2, force=True)
    assert registry.list_versions("churn") == []
    assert registry.get_model("churn").aliases == {}
    assert _register(registry) == 3  # numbers are never reused


def test_tags_on_models_and_versions(registry: RegistryClient) -> None:
    _register(registry)
    registry.set_model_tags("churn", {"team": "growth"})
    registry.set_version_tags("churn", 1, {"validated": True})
    assert registry.get_model("churn").tags == {"team": "growth"}
    assert registry.get_version("churn", 1).tags == {"validated": "True"}


def test_tags_are_deleted_one_key_at_a_time(registry: RegistryClient) -> None:
    _register(registry)
    registry.set_model_tags("churn", {"team": "growth", "tier": "1"})
    registry.set_version_tags("churn", 1, {"validated": True, "owner": "ana"})
    registry.delete_model_tag("churn", "team")
    registry.delete_version_tag("churn", 1, "validated")
    assert registry.get_model("churn").tags == {"tier": "1"}
    assert registry.get_version("churn", 1).tags == {"owner": "ana"}
    with pytest.raises(NotFound, match="'team'"):
        registry.delete_model_tag("churn", "team")
    with pytest.raises(NotFound, match="version 1 .*'validated'"):
        registry.delete_version_tag("churn", 1, "validated")
    with pytest.raises(NotFound, match="no version 9"):
        registry.delete_version_tag("churn", 9, "owner")


def test_descriptions_are_set_and_cleared(registry: RegistryClient) -> None:
    _register(registry)
    assert registry.update_model("churn", description="churn classifier").description == "churn classifier"
    assert registry.update_version("churn", 1, description="first cut").description == "first cut"
    assert registry.get_version("churn", 1).description == "first cut"
    assert registry.update_model("churn", description=None).description is None
    with pytest.raises(NotFound, match="no version 2"):
        registry.update_version("churn", 2, description="x")


def test_a_renamed_model_keeps_versions_aliases_tags_and_history(registry: RegistryClient) -> None:
    _register(registry)
    _register(registry)
    registry.set_alias("churn", "champion", 2)
    registry.set_model_tags("churn", {"team": "growth"})
    lineage = LineageClient(registry.tracking)
    data = ("s3://b/train.csv", ArtifactType.DATASET, "d" * 64, None)
    lineage.record(
        "register", outputs=[("models:/churn/2", ArtifactType.MODEL, "e" * 64, "churn")], inputs=[data]
    )
    lineage.record("other", outputs=[("models:/churn_x/1", ArtifactType.MODEL, "f" * 64, None)])
    renamed = registry.rename_model("churn", "churn-clf")
    assert (renamed.name, renamed.aliases, renamed.tags, renamed.latest_version) == (
        "churn-clf",
        {"champion": 2},
        {"team": "growth"},
        2,
    )
    assert registry.resolve(RegistryUri("churn-clf", alias="champion")).version == 2
    assert [e.action for e in registry.events("churn-clf")][-1] == "rename_model"
    assert "register" in [e.action for e in registry.events("churn-clf")]
    assert registry.events("churn") == []
    assert [a.uri for a in lineage.upstream("models:/churn-clf/2").sources()] == ["s3://b/train.csv"]
    assert lineage.find("models:/churn_x/1").sha256 == "f" * 64  # another model's lineage stays
    with pytest.raises(NotFound):
        lineage.find("models:/churn/2")
    with pytest.raises(NotFound, match="'churn'"):
        registry.get_model("churn")
    _register(registry, "other")
    with pytest.raises(AlreadyExists, match="'other'"):
        registry.rename_model("churn-clf", "other")
    with pytest.raises(InvalidInput):
        registry.rename_model("churn-clf", "bad/name")
    with pytest.raises(NotFound, match="'gone'"):
        registry.rename_model("gone", "anything")
    assert registry.get_model("churn-clf").latest_version == 2  # a refused rename changed nothing


def test_model_names_are_checked(registry: RegistryClient) -> None:
    for bad in ("", "a/b", "x@y", " padded "):
        with pytest.raises(InvalidInput):
            registry.create_model(bad)


_OUT_OF_RANGE = [0, -1, 2**31, 2**63, 10**30, 10**5000]


@pytest.mark.parametrize("version", _OUT_OF_RANGE, ids=["0", "-1", "2^31", "2^63", "10^30", "10^5000"])
def test_a_version_number_out_of_range_is_invalid_input_on_every_call(
    registry: RegistryClient, version: int
) -> None:
    _register(registry)
    calls = [
        lambda: registry.get_version("churn", version),
        lambda: registry.resolve(RegistryUri("churn", version=version)),
        lambda: registry.delete_version("churn", version),
        lambda: registry.set_alias("churn", "champion", version),
        lambda: registry.transition("churn", version, "Production"),
        lambda: registry.set_version_tags("churn", version, {"k": "v"}),
    ]
    for call in calls:
        with pytest.raises(
            InvalidInput, match=r"version .*out of range: versions are 1 to 2147483647"
        ) as info:
            call()
        assert len(str(info.value)) < 200
    assert [v.version for v in registry.list_versions("churn")] == [1]


@pytest.mark.parametrize("version", [True, 1.0, "1", None])
def test_a_version_that_is_not_a_whole_number_is_invalid_input(
    registry: RegistryClient, version: object
) -> None:
    _register(registry)
    with pytest.raises(InvalidInput, match="version must be a whole number"):
        registry.get_version("churn", version)  # type: ignore[arg-type]


def test_a_tag_value_python_cannot_write_as_text_is_invalid_input(registry: RegistryClient) -> None:
    _register(registry)
    with pytest.raises(
        InvalidInput, match=r"tag 'n' cannot be written as text: it holds an integer of about 500\d digits"
    ):
        registry.set_version_tags("churn", 1, {"n": 10**5000})
    with pytest.raises(
        InvalidInput, match=r"tag 'n' cannot be written as text: it holds an integer of about 500\d digits"
    ):
        registry.set_model_tags("churn", {"n": 10**5000})
    assert registry.get_version("churn", 1).tags == {}
