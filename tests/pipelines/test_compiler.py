"""Compiling pipelines to the spec, and every compile-time rejection naming step and argument."""

from __future__ import annotations

import pytest

from shipyard.errors import PipelineError
from shipyard.pipelines import Collected, ParallelFor, PipelineSpec, compile_pipeline, pipeline
from shipyard.pipelines.schema import pipeline_spec_schema, schema_problems
from tests.pipelines import example_components as ex
from tests.pipelines import executor_components as comps


def test_realistic_pipeline_compiles_with_dependencies_and_branches() -> None:
    spec = compile_pipeline(ex.training_pipeline)
    assert spec.name == "train-and-register"
    assert list(spec.steps) == [
        "ingest",
        "validate",
        "split",
        "train",
        "evaluate",
        "register",
        "notify",
        "notify-2",
    ]
    assert spec.parameters["threshold"].default == 0.8
    train = spec.steps["train"]
    assert train.inputs["data"].source == {"step": "split", "output": "train"}
    assert train.inputs["lr"].source == {"param": "lr"}
    assert train.outputs["model"].kind == "artifact"
    assert train.component.module == "tests.pipelines.example_components"
    assert len(train.component.source_sha256) == 64
    assert spec.steps["evaluate"].upstream() == {"train", "split"}
    (cond,) = spec.steps["register"].conditions
    assert (cond.left, cond.op, cond.right, cond.negated) == (
        {"step": "evaluate", "output": "output"},
        ">",
        0.8,
        False,
    )
    elif_conds = spec.steps["notify"].conditions
    assert [c.negated for c in elif_conds] == [True, False]
    assert [c.negated for c in spec.steps["notify-2"].conditions] == [True, True]
    assert spec.steps["split"].inputs["ratio"].source == {"value": 0.8}


def test_retries_timeout_cache_and_resources_reach_the_spec() -> None:
    spec = compile_pipeline(ex.training_pipeline)
    train = spec.steps["train"]
    assert (train.retries, train.retry_backoff_s, train.timeout_s) == (3, 2.0, 600)
    assert (train.resources.cpus, train.resources.gpus, train.resources.memory) == (2, 1, "4Gi")
    assert spec.steps["ingest"].cache is False


def test_parallel_for_and_collected_fan_in() -> None:
    spec = compile_pipeline(ex.fan_out)
    loop = spec.steps["score"].loop
    assert loop is not None and loop.items == {"param": "ns"} and loop.parallelism == 2
    assert spec.steps["score"].inputs["n"].source == {"loop_item": loop.loop_id}
    assert spec.steps["summarize"].inputs["scores"].source == {
        "collected": {"step": "score", "output": "output"}
    }
    assert spec.steps["score-2"].loop.items == {"value": [4, 5]}


def test_exit_handler_runs_after_guarded_steps() -> None:
    spec = compile_pipeline(ex.guarded)
    assert spec.steps["notify"].is_exit_handler
    assert set(spec.steps["notify"].after) == {"ingest", "validate"}


def test_compiled_spec_matches_the_packaged_schema() -> None:
    schema = pipeline_spec_schema()
    for p in (ex.training_pipeline, ex.fan_out, ex.guarded):
        assert schema_problems(compile_pipeline(p).to_dict(), schema, schema) == []


def test_missing_required_input_names_step_and_argument() -> None:
    @pipeline
    def p() -> None:
        ex.register(name="x")

    with pytest.raises(PipelineError, match=r"step 'register'.*missing required input 'model'"):
        compile_pipeline(p)


def test_artifact_type_mismatch_names_both_steps() -> None:
    @pipeline
    def p() -> None:
        t = ex.train(data=ex.ingest(source="s").outputs["data"])
        ex.validate(data=t.outputs["model"])

    with pytest.raises(
        PipelineError, match=r"step 'validate' argument 'data' expects Dataset but step 'train'"
    ):
        compile_pipeline(p)


def test_parameter_type_mismatch_and_int_widening() -> None:
    @pipeline
    def bad() -> None:
        ex.score(
            n=ex.register(
                model=ex.train(data=ex.ingest(source="s").outputs["data"]).outputs["model"], name="m"
            ).output
        )

    with pytest.raises(
        PipelineError, match=r"step 'score' argument 'n' expects int but step 'register' gives str"
    ):
        compile_pipeline(bad)

    @pipeline
    def ok(k: int = 3) -> None:
        ex.train(data=ex.ingest(source="s").outputs["data"], lr=k)

    assert compile_pipeline(ok).steps["train"].inputs["lr"].source == {"param": "k"}


def test_literal_of_wrong_type_and_unknown_argument_are_rejected() -> None:
    @pipeline
    def p() -> None:
        ex.score(n="three")

    with pytest.raises(PipelineError, match=r"step 'score' argument 'n' expects int"):
        compile_pipeline(p)

    @pipeline
    def q() -> None:
        ex.score(m=1)

    with pytest.raises(PipelineError, match=r"step 'score'.*'m'"):
        compile_pipeline(q)


def test_cycle_through_after_names_the_steps() -> None:
    @pipeline
    def p() -> None:
        a = ex.notify(message="a")
        b = ex.notify(message="b").after(a)
        a.after(b)

    with pytest.raises(PipelineError, match=r"cycle: .*notify.*notify-2"):
        compile_pipeline(p)


def test_collected_misuse_is_rejected() -> None:
    @pipeline
    def outside() -> None:
        ex.summarize(scores=Collected(ex.score(n=1).output))

    with pytest.raises(PipelineError, match=r"step 'summarize' argument 'scores'.*not in a loop"):
        compile_pipeline(outside)

    @pipeline
    def inside() -> None:
        with ParallelFor([1, 2]) as n:
            ex.summarize(scores=Collected(ex.score(n=n).output))

    with pytest.raises(PipelineError, match=r"Collected is for steps after the loop"):
        compile_pipeline(inside)

    @pipeline
    def uncollected() -> None:
        with ParallelFor([1, 2]) as n:
            s = ex.score(n=n)
        ex.summarize(scores=[s.output])

    with pytest.raises(PipelineError, match=r"step 'summarize' argument 'scores'"):
        compile_pipeline(uncollected)


def test_python_if_on_a_placeholder_is_an_error() -> None:
    @pipeline
    def p() -> None:
        if ex.score(n=1).output > 0.5:
            ex.notify(message="x")

    with pytest.raises(PipelineError, match="use `with If"):
        compile_pipeline(p)


def test_component_outside_pipeline_is_a_plain_function() -> None:
    assert ex.score(n=5) == 0.5


def test_a_condition_against_a_parameter_round_trips_through_yaml() -> None:
    spec = compile_pipeline(comps.thresholded)
    (condition,) = spec.steps["publish"].conditions
    assert condition.right_source == {"param": "threshold"} and condition.right is None
    again = PipelineSpec.from_yaml(spec.to_yaml())
    assert again.steps["publish"].conditions == spec.steps["publish"].conditions
    assert "fit" in again.steps["publish"].upstream()
