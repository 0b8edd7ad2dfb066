"""Dataset versions as step inputs (``data:customers@3``): literals, parameters and loop items, each read
from a read-only local copy built by the worker, pinned per pipeline run, cached by snapshot hash and
linked in lineage — on the local executor and Ray, on local files and on an object store."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shipyard.config import Settings
from shipyard.datasets import DatasetClient, DatasetVersion
from shipyard.errors import InvalidInput, NotFound, PipelineDefinitionError
from shipyard.lineage import LineageClient
from shipyard.pipelines import compile_pipeline, pipeline
from shipyard.pipelines.datasets import PINNED_TAG
from shipyard.pipelines.executors import LocalExecutor, PipelineExecutor, StepStatus
from shipyard.tracking import get_client
from tests.pipelines import dataset_components as dc

S, F, C = StepStatus.SUCCEEDED, StepStatus.FAILED, StepStatus.CACHED


def _rows(n: int) -> str:
    return "x,y\n" + "".join(f"{i},{i % 2}\n" for i in range(n))


def add_version(settings: Settings, tmp_path: Path, n: int, *, folder: bool) -> DatasetVersion:
    """The next version of ``customers``: ``n`` rows, as a folder (a.csv) or a lone file."""
    source = tmp_path / f"src-{n}"
    source.mkdir()
    (source / "a.csv").write_text(_rows(n))
    return DatasetClient(get_client(settings)).add(source if folder else source / "a.csv", "customers")


@pytest.fixture
def versions(settings: Settings, tmp_path: Path) -> list[DatasetVersion]:
    return [add_version(settings, tmp_path, 3, folder=True), add_version(settings, tmp_path, 5, folder=False)]


def test_a_literal_version_is_read_recorded_and_linked(
    executor: PipelineExecutor, settings: Settings, versions: list[DatasetVersion]
) -> None:
    result = executor.run(compile_pipeline(dc.literal))
    assert {k: r.status for k, r in result.steps.items()} == {"count-rows": S, "generic": S}, result
    assert result.steps["count-rows"].outputs["output"] == 3
    assert result.steps["generic"].outputs["output"] == "data:customers@2"  # an Artifact input takes one too
    client = get_client(settings)
    step_run = result.steps["count-rows"].run_id
    (logged,) = client.dataset_inputs(step_run)
    assert (logged.source, logged.digest, logged.context) == ("data:customers@1", versions[0].sha256, "data")
    assert [r.run_id for r in DatasetClient(client).runs_using("customers@1")] == [step_run]
    artifact = LineageClient(client).find("data:customers@1")
    assert (artifact.sha256, artifact.type.value) == (versions[0].sha256, "Dataset")


def test_the_newest_version_is_pinned_per_run_and_keys_the_cache(
    settings: Settings, versions: list[DatasetVersion], tmp_path: Path
) -> None:
    executor = LocalExecutor(max_parallel=2, settings=settings)
    spec = compile_pipeline(dc.by_parameter)
    first = executor.run(spec)
    assert first.steps["count-rows"].outputs["output"] == 5
    client = get_client(settings)
    assert json.loads(client.get_run(first.run_id).tags[PINNED_TAG]) == {"data:customers": "data:customers@2"}
    assert executor.run(spec).steps["count-rows"].status is C  # same version, same snapshot hash
    add_version(settings, tmp_path, 7, folder=True)
    newer = executor.run(spec)
    assert (newer.steps["count-rows"].status, newer.steps["count-rows"].outputs["output"]) == (S, 7)
    older = executor.run(spec, {"data": "data:customers@1"})
    assert (older.steps["count-rows"].status, older.steps["count-rows"].outputs["output"]) == (S, 3)


def test_a_resumed_run_reads_the_versions_its_first_attempt_pinned(
    settings: Settings, versions: list[DatasetVersion], tmp_path: Path
) -> None:
    executor = LocalExecutor(max_parallel=2, settings=settings)
    marker = tmp_path / "marker"
    failed = executor.run(compile_pipeline(dc.by_parameter), {"marker": str(marker)})
    assert failed.steps["count-rows"].status is F
    add_version(settings, tmp_path, 7, folder=True)  # customers@3 is now the newest
    marker.touch()
    resumed = executor.resume(failed.run_id)
    assert (resumed.steps["count-rows"].status, resumed.steps["count-rows"].outputs["output"]) == (S, 5)


def test_loop_items_name_versions_and_a_missing_one_fails_its_step(
    settings: Settings, versions: list[DatasetVersion]
) -> None:
    executor = LocalExecutor(max_parallel=2, settings=settings)
    refs = ["data:customers@1", "data:customers@2", "data:customers@9"]
    result = executor.run(compile_pipeline(dc.looped), {"refs": refs})
    assert [result.steps[f"count-rows[{i}]"].status for i in range(3)] == [S, S, F]
    assert [result.steps[f"count-rows[{i}]"].outputs.get("output") for i in range(2)] == [3, 5]
    error = result.steps["count-rows[2]"].error or ""
    assert "step 'count-rows[2]' input 'data' reads 'data:customers@9'" in error
    assert "it has: 1, 2" in error
    assert PINNED_TAG not in get_client(settings).get_run(result.run_id).tags  # numbered: nothing to pin


def test_lineage_runs_from_the_version_to_the_model_trained_on_it(
    settings: Settings, versions: list[DatasetVersion]
) -> None:
    result = LocalExecutor(max_parallel=1, settings=settings).run(compile_pipeline(dc.training))
    assert result.steps["train"].status is S, result.steps["train"].error
    graph = LineageClient(get_client(settings)).upstream(
        f"models:/churn/{result.steps['train'].outputs['output']}"
    )
    assert [(a.uri, a.sha256) for a in graph.sources()] == [("data:customers@1", versions[0].sha256)]


@pytest.mark.s3
def test_a_version_on_an_object_store_is_read_by_the_worker(s3_settings: Settings, tmp_path: Path) -> None:
    version = add_version(s3_settings, tmp_path, 4, folder=True)
    assert version.ref == "customers@1"
    result = LocalExecutor(max_parallel=1, settings=s3_settings).run(
        compile_pipeline(dc.by_parameter), {"data": "data:customers@1"}
    )
    assert result.steps["count-rows"].outputs["output"] == 4, result.steps["count-rows"].error


# ------------------------------------------------------------------ bad input
def test_bad_references_are_refused_when_compiled_naming_step_and_argument() -> None:
    @pipeline
    def bad_name() -> None:
        dc.count_rows(data="data:Not A Name@1")

    @pipeline
    def bad_version() -> None:
        dc.count_rows(data="data:customers@zero")

    @pipeline
    def into_a_model() -> None:
        dc.wants_model(model="data:customers@1")

    @pipeline
    def a_path() -> None:
        dc.count_rows(data="/tmp/customers.csv")

    @pipeline
    def an_int_parameter(n: int = 1) -> None:
        dc.count_rows(data=n)

    with pytest.raises(PipelineDefinitionError, match="step 'count-rows' argument 'data': .*'Not A Name'"):
        compile_pipeline(bad_name)
    with pytest.raises(PipelineDefinitionError, match="step 'count-rows' argument 'data': .*'zero'"):
        compile_pipeline(bad_version)
    with pytest.raises(PipelineDefinitionError, match="'model' is a Model artifact; a dataset version"):
        compile_pipeline(into_a_model)
    with pytest.raises(PipelineDefinitionError, match=r"pass a step output or a dataset version"):
        compile_pipeline(a_path)
    with pytest.raises(PipelineDefinitionError, match="expects Dataset but pipeline parameter"):
        compile_pipeline(an_int_parameter)


def test_bad_parameters_stop_the_run_before_it_starts(
    settings: Settings, versions: list[DatasetVersion]
) -> None:
    executor = LocalExecutor(max_parallel=1, settings=settings)
    spec = compile_pipeline(dc.by_parameter)
    client = get_client(settings)
    with pytest.raises(
        NotFound, match=r"step 'count-rows' input 'data' reads 'data:customers@9'.*it has: 1, 2"
    ):
        executor.run(spec, {"data": "data:customers@9"})
    with pytest.raises(NotFound, match="'data:nobody@1'"):
        executor.run(spec, {"data": "data:nobody@1"})
    with pytest.raises(
        InvalidInput,
        match="pipeline parameter 'data' must be a dataset version such as data:customers@3, got",
    ):
        executor.run(spec, {"data": "customers@1"})
    assert not client.search_runs(None, "tags.`shipyard.pipeline` = 'by-parameter'")


def test_a_yaml_spec_names_a_version_as_a_value(settings: Settings, versions: list[DatasetVersion]) -> None:
    spec = compile_pipeline(dc.literal)
    again = type(spec).from_yaml(spec.to_yaml())
    assert again.steps["count-rows"].inputs["data"].source == {"value": "data:customers@1"}
    result = LocalExecutor(max_parallel=1, settings=settings).run(again)
    assert result.steps["count-rows"].outputs["output"] == 3
