"""Pipelines on an object-store artifact root (moto's S3 server on loopback): steps exchange datasets and
models as s3:// URIs, each worker downloading its inputs (sha256-checked) and uploading its outputs."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from shipyard.config import Settings
from shipyard.errors import IntegrityError
from shipyard.lineage import LineageClient
from shipyard.pipelines import compile_pipeline
from shipyard.pipelines.executors import LocalExecutor, PipelineExecutor, RayExecutor, StepStatus
from shipyard.pipelines.executors.worker import ArtifactRef
from shipyard.pipelines.staging import path_sha256, staged, uri_sha256
from shipyard.store.artifacts import ArtifactStore
from shipyard.tracking import get_client
from tests.pipelines import executor_components as comps

pytestmark = pytest.mark.s3
S, C = StepStatus.SUCCEEDED, StepStatus.CACHED


@pytest.fixture(params=["local", "ray"])
def executor(request: pytest.FixtureRequest, s3_settings: Settings) -> PipelineExecutor:
    if request.param == "ray":
        request.getfixturevalue("ray_cluster")
        return RayExecutor(max_parallel=2, settings=s3_settings)
    return LocalExecutor(max_parallel=2, settings=s3_settings)


def test_steps_exchange_artifacts_through_the_object_store(
    executor: PipelineExecutor, s3_settings: Settings
) -> None:
    result = executor.run(compile_pipeline(comps.realistic), {"n": 10})
    assert {k: r.status for k, r in result.steps.items()} == {"make-data": S, "fit": S, "publish": S}
    # `publish` read the model `fit` wrote: each ran in its own worker, with only the bucket in common.
    assert result.steps["publish"].outputs["output"] == "mean=4.5"
    model_uri = result.steps["fit"].outputs["model"]
    root = s3_settings.artifact_root
    assert model_uri.startswith(root + "/") and model_uri.endswith("/steps/fit/model")
    stored = ArtifactStore.configured(s3_settings, model_uri.rsplit("/", 1)[0])
    assert stored.read_bytes("model") == b"mean=4.5"
    client = get_client(s3_settings)
    assert client.get_run(result.steps["fit"].run_id).metrics == {"acc": 1.0}  # read back from the bucket
    # Lineage links the stored files by their s3:// URIs and digests.
    graph = LineageClient(client).upstream(model_uri)
    data = next(a for a in graph.artifacts.values() if a.type.value == "Dataset")
    assert data.uri == result.steps["make-data"].outputs["data"]
    assert data.sha256 == hashlib.sha256(b"\n".join(str(i).encode() for i in range(10))).hexdigest()


def test_a_second_run_reuses_the_stored_outputs_after_checking_them(s3_settings: Settings) -> None:
    executor = LocalExecutor(max_parallel=2, settings=s3_settings)
    first = executor.run(compile_pipeline(comps.realistic), {"n": 10})
    second = executor.run(compile_pipeline(comps.realistic), {"n": 10})
    assert {k: r.status for k, r in second.steps.items()} == {"make-data": C, "fit": C, "publish": C}
    assert second.steps["fit"].outputs["model"] == first.steps["fit"].outputs["model"]
    # A stored output that changed is not reused: the steps that depend on it run again.
    model_uri = first.steps["fit"].outputs["model"]
    ArtifactStore.configured(s3_settings, model_uri.rsplit("/", 1)[0]).put_bytes(b"tampered", "model")
    third = executor.run(compile_pipeline(comps.realistic), {"n": 10})
    assert third.steps["fit"].status is S and third.steps["publish"].outputs["output"] == "mean=4.5"


def test_a_missing_output_names_its_uri(s3_settings: Settings) -> None:
    result = LocalExecutor(max_parallel=1, settings=s3_settings).run(compile_pipeline(comps.mistyped))
    missing = result.steps["forgets"].error or ""
    assert "did not write artifact output 'model'" in missing and "/steps/forgets/model" in missing
    assert s3_settings.artifact_root in missing


def test_a_corrupt_input_is_refused_before_the_step_runs(s3_settings: Settings) -> None:
    store = ArtifactStore.configured(s3_settings)
    store.put_bytes(b"rows", "data.csv")
    good = ArtifactRef("Dataset", "", store.uri("data.csv"), hashlib.sha256(b"rows").hexdigest())
    with staged({"data": good}, s3_settings) as local:
        assert Path(local["data"].path).read_bytes() == b"rows"
    staged_path = Path(local["data"].path)
    assert not staged_path.exists()  # the temp copy goes with the block
    bad = ArtifactRef("Dataset", "", store.uri("data.csv"), hashlib.sha256(b"other").hexdigest())
    with (
        pytest.raises(IntegrityError, match=r"'data' at s3://.*data\.csv is corrupt"),
        staged({"data": bad}, s3_settings),
    ):
        pytest.fail("the step must not run on a corrupt input")


def test_a_stored_folder_hashes_as_its_local_copy(s3_settings: Settings, tmp_path: Path) -> None:
    folder = tmp_path / "model"
    for rel, text in {"a0": "1", "a/x": "2", "a/b/y": "3", "b.txt": "4", "c/z": "5"}.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_text(text)
    store = ArtifactStore.configured(s3_settings)
    store.put_dir(folder, "model")
    assert uri_sha256(store.uri("model"), s3_settings) == path_sha256(str(folder))
    assert uri_sha256(store.uri("model/b.txt"), s3_settings) == path_sha256(str(folder / "b.txt"))
