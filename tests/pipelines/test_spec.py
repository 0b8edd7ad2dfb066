"""The spec's YAML form: round trip, schema checks, and hand-edited references named by line."""

from __future__ import annotations

import pytest

from shipyard.errors import InvalidInput, PipelineError
from shipyard.pipelines import PipelineSpec, bind_parameters, compile_pipeline, parse_assignments
from tests.pipelines import example_components as ex


@pytest.mark.parametrize("pipe", [ex.training_pipeline, ex.fan_out, ex.guarded])
def test_yaml_round_trip_is_equal(pipe: object) -> None:
    spec = compile_pipeline(pipe)  # type: ignore[arg-type]
    text = spec.to_yaml()
    assert text.startswith("spec_version: shipyard.pipeline/v1")
    assert PipelineSpec.from_yaml(text) == spec
    assert PipelineSpec.from_dict(spec.to_dict()) == spec


def _line(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def test_hand_edited_bad_step_reference_names_step_input_and_line() -> None:
    text = compile_pipeline(ex.training_pipeline).to_yaml().replace("step: split", "step: splitt", 1)
    with pytest.raises(PipelineError) as err:
        PipelineSpec.from_yaml(text, source="pipe.yaml")
    message = str(err.value)
    assert f"pipe.yaml, line {_line(text, 'step: splitt') - 1}" in message
    assert "unknown step 'splitt'" in message and "step 'train' inputs 'data'" in message


def test_hand_edited_bad_param_and_output_are_named() -> None:
    text = compile_pipeline(ex.training_pipeline).to_yaml()
    with pytest.raises(PipelineError, match=r"line \d+: .*unknown pipeline parameter 'rate'"):
        PipelineSpec.from_yaml(text.replace("param: lr", "param: rate"))
    with pytest.raises(PipelineError, match=r"line \d+: .*unknown output 'tset' of step 'split'"):
        PipelineSpec.from_yaml(text.replace("output: test", "output: tset"))


def test_schema_violation_names_the_line() -> None:
    text = compile_pipeline(ex.training_pipeline).to_yaml().replace("retries: 3", "retries: many")
    with pytest.raises(PipelineError, match=rf"line {_line(text, 'retries: many')}: steps.train.retries"):
        PipelineSpec.from_yaml(text)
    with pytest.raises(PipelineError, match="spec_version"):
        PipelineSpec.from_yaml(text.replace("shipyard.pipeline/v1", "shipyard.pipeline/v9"))


def test_bind_parameters_coerces_strings_and_fills_defaults() -> None:
    spec = compile_pipeline(ex.training_pipeline)
    bound = bind_parameters(spec, parse_assignments(["threshold=0.95", "lr=1"]))
    assert bound == {"source": "s3://bucket/iris.csv", "threshold": 0.95, "lr": 1.0}
    assert bind_parameters(compile_pipeline(ex.fan_out), {"ns": "[7, 8]"}) == {"ns": [7, 8]}


def test_bind_parameters_rejects_unknown_and_badly_typed_values() -> None:
    spec = compile_pipeline(ex.training_pipeline)
    with pytest.raises(InvalidInput, match=r"no parameter 'thresh'; valid parameters: source, threshold, lr"):
        bind_parameters(spec, {"thresh": "1"})
    with pytest.raises(InvalidInput, match=r"parameter 'lr' expects float, got 'fast'"):
        bind_parameters(spec, {"lr": "fast"})
    with pytest.raises(InvalidInput, match=r"parameter 'ns' expects list"):
        bind_parameters(compile_pipeline(ex.fan_out), {"ns": "{}"})
    with pytest.raises(InvalidInput, match="key=value"):
        parse_assignments(["lr"])
