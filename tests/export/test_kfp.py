"""`shipyard export kfp`: the IR parses strictly into kfp-pipeline-spec's PipelineSpec proto and loads (and
recompiles) with the kfp SDK; every DSL feature that maps is checked in the IR, the ones that do not are
refused naming the step; and the exported containers' own commands run the steps."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from shipyard.errors import PipelineDefinitionError
from shipyard.export.kfp import export_kfp
from shipyard.pipelines import compile_pipeline
from tests.cli.test_cli import run_cli
from tests.export import kfp_components

REPO = Path(__file__).resolve().parents[2]
IMAGE = "registry.example/train:1"

json_format = pytest.importorskip("google.protobuf.json_format")
pipeline_spec_pb2 = pytest.importorskip("kfp.pipeline_spec.pipeline_spec_pb2")
kfp = pytest.importorskip("kfp")


def check_with_kfp(path: Path, tmp_path: Path) -> Any:
    """Strict proto parse (an unknown field fails), kfp's loader, and kfp's compiler on what it loaded."""
    import kfp.compiler
    import kfp.components

    document = yaml.safe_load(path.read_text())
    json_format.ParseDict(document, pipeline_spec_pb2.PipelineSpec(), ignore_unknown_fields=False)
    loaded = kfp.components.load_component_from_file(str(path))
    kfp.compiler.Compiler().compile(loaded, str(tmp_path / "recompiled.yaml"))
    return loaded


def _tasks(document: dict[str, Any], dag: str) -> dict[str, Any]:
    return document["root"]["dag"]["tasks"] if dag == "root" else document["components"][dag]["dag"]["tasks"]


def test_the_example_training_pipeline(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(REPO)
    out = tmp_path / "pipeline.yaml"
    code, _, err = run_cli(
        capsys, "export", "kfp", "examples/train_pipeline.py:training", "--image", IMAGE, "-o", str(out)
    )
    assert code == 0, err
    loaded = check_with_kfp(out, tmp_path)
    assert loaded.name == "breast-cancer-training"
    assert set(loaded.component_spec.inputs) == {
        "threshold",
        "n_estimators",
        "max_depth",
        "seed",
        "test_size",
        "model_name",
    }
    document = yaml.safe_load(out.read_text())
    root = _tasks(document, "root")
    assert set(root) == {"ingest", "validate", "split", "train", "evaluate", "condition-1"}
    # split runs after validate although it takes none of its outputs (.after(checked)).
    assert root["split"]["dependentTasks"] == ["ingest", "validate"]
    assert root["train"]["inputs"]["artifacts"]["train_data"] == {
        "taskOutputArtifact": {"producerTask": "split", "outputArtifactKey": "train"}
    }
    assert root["train"]["inputs"]["parameters"]["max_depth"] == {"componentInputParameter": "max_depth"}
    condition = root["condition-1"]
    assert condition["triggerPolicy"]["condition"] == (
        "inputs.parameter_values['pipelinechannel--evaluate-output'] > "
        "inputs.parameter_values['pipelinechannel--threshold']"
    )
    register = _tasks(document, "comp-condition-1")["register"]
    assert register["inputs"]["artifacts"]["model"] == {
        "componentInputArtifact": "pipelinechannel--train-model"
    }
    container = document["deploymentSpec"]["executors"]["exec-train"]["container"]
    assert container["image"] == IMAGE
    assert container["command"] == ["python", "-m", "shipyard.export.kfp_runner"]
    assert "examples.train_pipeline:train" in container["args"]
    assert "model:Model={{$.outputs.artifacts['model'].path}}" in container["args"]
    assert document["components"]["comp-train"]["outputDefinitions"]["artifacts"]["model"] == {
        "artifactType": {"schemaTitle": "system.Model", "schemaVersion": "0.0.1"}
    }
    assert document["root"]["inputDefinitions"]["parameters"]["threshold"] == {
        "parameterType": "NUMBER_DOUBLE", "isOptional": True, "defaultValue": 0.9
    }  # fmt: skip


def test_every_feature_that_maps(tmp_path: Path) -> None:
    document = export_kfp(compile_pipeline(kfp_components.features), IMAGE)
    path = tmp_path / "features.yaml"
    path.write_text(yaml.safe_dump(document))
    check_with_kfp(path, tmp_path)
    root = _tasks(document, "root")
    # The exit handler: the guarded steps in a sub-DAG, the exit task after it whatever its outcome.
    assert set(root) == {"note", "exit-handler-1"}
    assert root["note"]["triggerPolicy"] == {"strategy": "ALL_UPSTREAM_TASKS_COMPLETED"}
    assert root["note"]["dependentTasks"] == ["exit-handler-1"]
    body = _tasks(document, "comp-exit-handler-1")
    # Retries with their backoff, caching, resources.
    assert body["make-data"]["retryPolicy"] == {
        "maxRetryCount": 3, "backoffDuration": "5s", "backoffFactor": 2.0, "backoffMaxDuration": "3600s"
    }  # fmt: skip
    assert body["fit"]["cachingOptions"] == {"enableCache": False}
    assert body["make-data"]["cachingOptions"] == {"enableCache": True}
    resources = document["deploymentSpec"]["executors"]["exec-make-data"]["container"]["resources"]
    assert resources["resourceCpuRequest"] == "2" and resources["resourceMemoryRequest"] == "2Gi"
    assert resources["accelerator"]["resourceType"] == "nvidia.com/gpu"
    assert resources["accelerator"]["resourceCount"] == "1"
    # If / Elif / Else: one condition sub-DAG each, the later ones negating the earlier.
    triggers = {
        name: t["triggerPolicy"]["condition"] for name, t in body.items() if name.startswith("condition")
    }
    out = "inputs.parameter_values['pipelinechannel--fit-output']"
    assert sorted(triggers.values()) == sorted(
        [
            f"{out} > inputs.parameter_values['pipelinechannel--threshold']",
            f"!({out} > inputs.parameter_values['pipelinechannel--threshold']) && {out} > 10",
            f"!({out} > inputs.parameter_values['pipelinechannel--threshold']) && !({out} > 10)",
        ]
    )
    # ParallelFor over a parameter with its parallelism, and over a literal list; a condition on the item.
    loops = {name: t for name, t in body.items() if name.startswith("for-loop")}
    over_param = next(t for t in loops.values() if "inputParameter" in t["parameterIterator"]["items"])
    assert over_param["parameterIterator"]["items"] == {"inputParameter": "pipelinechannel--ns"}
    assert over_param["iteratorPolicy"] == {"parallelismLimit": 2}
    literal = next(t for t in loops.values() if "raw" in t["parameterIterator"]["items"])
    assert json.loads(literal["parameterIterator"]["items"]["raw"]) == [4, 5]
    inner = _tasks(document, over_param["componentRef"]["name"])
    (inner_condition,) = inner.values()
    assert inner_condition["triggerPolicy"]["condition"] == (
        "double(inputs.parameter_values['pipelinechannel--loop-item-loop-1']) >= 2"
    )
    (scored,) = _tasks(document, inner_condition["componentRef"]["name"]).values()
    assert scored["inputs"]["parameters"]["n"] == {
        "componentInputParameter": "pipelinechannel--loop-item-loop-1"
    }
    assert scored["inputs"]["parameters"]["tags"] == {"runtimeValue": {"constant": {"a": 1}}}
    # The text has no YAML anchors: every mapping is written out.
    assert "&id" not in path.read_text()


@pytest.mark.parametrize(
    ("pipeline", "expected"),
    [
        (
            kfp_components.with_timeout,
            "step 'make-data' uses a per-step timeout (KFP v2's IR has none) (timeout_s=30)",
        ),
        (
            kfp_components.with_collected,
            "step 'summarize' uses fan-in of a ParallelFor's outputs (Collected)",
        ),
        (
            kfp_components.conditional_output,
            "step 'publish' input 'model' uses output 'model' of step 'fit', which runs inside condition-1",
        ),
    ],
)
def test_what_kfp_cannot_express_is_refused_naming_the_step(pipeline: Any, expected: str) -> None:
    with pytest.raises(PipelineDefinitionError) as caught:
        export_kfp(compile_pipeline(pipeline), IMAGE)
    assert expected in str(caught.value)


def test_cli_refusals(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(
        capsys, "export", "kfp", "tests.export.kfp_components:with_timeout", "--image", IMAGE
    )
    assert code == 2 and "step 'make-data' uses a per-step timeout" in err
    code, _, err = run_cli(capsys, "export", "kfp", "nowhere.py:p", "--image", IMAGE)
    assert code == 2 and "pipeline file 'nowhere.py' does not exist" in err
    code, _, err = run_cli(
        capsys, "export", "kfp", "tests.export.kfp_components:features", "--image", "Bad Image"
    )
    assert code == 2 and "--image 'Bad Image'" in err


def _substitute(args: list[str], values: dict[str, str]) -> list[str]:
    return [re.sub(r"\{\{\$\.[^}]+\}\}", lambda m: values[m.group(0)], a) for a in args]


@pytest.mark.slow
def test_the_exported_containers_run_the_steps(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A small stand-in for KFP's launcher: the root DAG's tasks in order, each container's command run with
    its placeholders filled as KFP fills them (parameters as text, artifact paths, output files)."""
    monkeypatch.chdir(REPO)
    spec = compile_pipeline(kfp_components.features)
    document = export_kfp(spec, IMAGE)
    body = _tasks(document, "comp-exit-handler-1")
    parameters = {"rows": 10, "threshold": 30.0, "ns": [1, 2, 3], "name": "m"}
    produced: dict[tuple[str, str], str] = {}
    env = {**os.environ, "SHIPYARD_HOME": str(tmp_path / "home"), "PYTHONPATH": str(REPO)}
    for task in ("make-data", "fit"):
        spec_task = body[task]
        container = document["deploymentSpec"]["executors"][f"exec-{task}"]["container"]
        values: dict[str, str] = {}
        for name, binding in spec_task.get("inputs", {}).get("parameters", {}).items():
            channel = binding.get("componentInputParameter", "")
            raw = parameters.get(
                channel.removeprefix("pipelinechannel--"), binding.get("runtimeValue", {}).get("constant")
            )
            values[f"{{{{$.inputs.parameters['{name}']}}}}"] = (
                raw if isinstance(raw, str) else json.dumps(raw)
            )
        for name, binding in spec_task.get("inputs", {}).get("artifacts", {}).items():
            source = binding["taskOutputArtifact"]
            values[f"{{{{$.inputs.artifacts['{name}'].path}}}}"] = produced[
                (source["producerTask"], source["outputArtifactKey"])
            ]
        outputs = document["components"][f"comp-{task}"]["outputDefinitions"]
        for name in outputs.get("artifacts", {}):
            path = str(tmp_path / "minio" / task / name)  # KFP's local path of the artifact's URI
            values[f"{{{{$.outputs.artifacts['{name}'].path}}}}"] = path
            produced[(task, name)] = path
        for name in outputs.get("parameters", {}):
            values[f"{{{{$.outputs.parameters['{name}'].output_file}}}}"] = str(
                tmp_path / "outputs" / task / name
            )
        command = [sys.executable, *container["command"][1:], *_substitute(container["args"], values)]
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr[-2000:]
    # make-data wrote 0..9 (mean 4.5); fit doubled their sum: 90.0, read back as KFP reads a number output.
    assert json.loads((tmp_path / "outputs" / "make-data" / "output").read_text()) == 4.5
    assert json.loads((tmp_path / "outputs" / "fit" / "output").read_text()) == 90.0
    assert (tmp_path / "minio" / "fit" / "model").read_text() == "90.0"
    # Each step ran as a tracked run of its own, named after the step, in the pipeline's experiment.
    import shipyard

    assert os.environ["SHIPYARD_HOME"] == env["SHIPYARD_HOME"]  # this test's store is the steps'
    runs = shipyard.search_runs(experiment="kfp-features")
    assert sorted(r.name for r in runs) == ["fit", "make-data"]


def test_a_parameter_of_the_wrong_shape_is_named_by_the_runner(tmp_path: Path) -> None:
    from shipyard.export.kfp_runner import main

    args = ["--component", "tests.export.kfp_components:make_data", "--pipeline", "p", "--step", "s",
            "--input", "rows:int=3.5", "--output-artifact", f"data:Dataset={tmp_path / 'd'}"]  # fmt: skip
    assert main(args) == 2
    assert main([*args[:6], "--input", "rows=3"]) == 2
