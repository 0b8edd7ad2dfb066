"""The onnx flavor: ModelProto round trips through onnxruntime, input handling, invalid files."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression, LogisticRegression

from shipyard.errors import InvalidInput
from shipyard.registry.flavors.base import Predictor
from shipyard.registry.flavors.onnx import OnnxFlavor

onnx = pytest.importorskip("onnx", reason="onnx is not installed (pip install 'shipyard[onnx]')")
pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip install 'shipyard[onnx]')")
skl2onnx = pytest.importorskip("skl2onnx", reason="skl2onnx is not installed (pip install 'shipyard[onnx]')")

FLAVOR = OnnxFlavor()


@pytest.fixture
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(1)
    return pd.DataFrame(rng.normal(size=(60, 3)), columns=["x", "y", "z"])


@pytest.fixture
def classifier(frame: pd.DataFrame) -> tuple[LogisticRegression, Any]:
    model = LogisticRegression().fit(frame.to_numpy(), (frame["x"] > 0).astype(int))
    proto = skl2onnx.to_onnx(model, frame.to_numpy(np.float32)[:1], options={"zipmap": False})
    return model, proto


def test_model_proto_round_trip(tmp_path: Path, frame: pd.DataFrame, classifier: tuple[Any, Any]) -> None:
    model, proto = classifier
    assert FLAVOR.handles(proto)
    saved = FLAVOR.save(proto, tmp_path, input_example=frame.head(5))

    assert list(saved.files) == ["model.onnx"]
    assert saved.loader["inputs"] == ["X"]
    assert saved.loader["outputs"] == ["label", "probabilities"]
    assert saved.loader["verified_on_example"] is True
    assert saved.requirements[0].startswith("onnxruntime==")

    loaded = FLAVOR.load(tmp_path, saved.loader)
    assert isinstance(loaded, Predictor)
    np.testing.assert_array_equal(loaded.predict(frame), model.predict(frame.to_numpy()))
    outputs = loaded.predict_all(frame.to_numpy())
    assert set(outputs) == {"label", "probabilities"}
    np.testing.assert_allclose(outputs["probabilities"], model.predict_proba(frame.to_numpy()), atol=1e-5)


def test_several_inputs_are_matched_to_dataframe_columns(tmp_path: Path, frame: pd.DataFrame) -> None:
    helper = onnx.helper
    graph = helper.make_graph(
        [helper.make_node("Sub", ["a", "b"], ["diff"])],
        "sub",
        [
            helper.make_tensor_value_info("a", onnx.TensorProto.FLOAT, [None, 1]),
            helper.make_tensor_value_info("b", onnx.TensorProto.FLOAT, [None, 1]),
        ],
        [helper.make_tensor_value_info("diff", onnx.TensorProto.FLOAT, [None, 1])],
    )
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    saved = FLAVOR.save(proto, tmp_path)
    loaded = FLAVOR.load(tmp_path, saved.loader)

    data = pd.DataFrame({"b": [1.0, 2.0], "a": [5.0, 5.0], "unused": ["p", "q"]})
    np.testing.assert_allclose(loaded.predict(data), [[4.0], [3.0]])
    np.testing.assert_allclose(loaded.predict({"a": [[1.0]], "b": [[0.5]]}), [[0.5]])
    with pytest.raises(InvalidInput, match="lacks columns b"):
        loaded.predict(pd.DataFrame({"a": [1.0]}))
    with pytest.raises(InvalidInput, match="has 2 inputs"):
        loaded.predict(np.ones((2, 2)))


def test_regressor_gets_float32_input_from_any_numeric_frame(tmp_path: Path, frame: pd.DataFrame) -> None:
    target = frame["x"] * 3 - frame["z"]
    model = LinearRegression().fit(frame.to_numpy(), target)
    proto = skl2onnx.to_onnx(model, frame.to_numpy(np.float32)[:1])
    saved = FLAVOR.save(proto, tmp_path)
    loaded = FLAVOR.load(tmp_path, saved.loader)

    ints = frame.round().astype("int64")
    got = loaded.predict(ints)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got.ravel(), model.predict(ints.to_numpy()), rtol=1e-4, atol=1e-4)


def test_model_that_cannot_run_on_its_example_is_refused_at_save(
    tmp_path: Path, classifier: tuple[Any, Any]
) -> None:
    _, proto = classifier
    with pytest.raises(InvalidInput, match="does not run on the input example"):
        FLAVOR.save(proto, tmp_path, input_example=np.ones((2, 7)))
    assert not (tmp_path / "model.onnx").exists()


def test_invalid_onnx_file_is_invalid_input_naming_the_file(tmp_path: Path) -> None:
    (tmp_path / "model.onnx").write_bytes(b"\x08\x07garbage, not a protobuf graph")
    with pytest.raises(InvalidInput, match=r"model\.onnx is not a valid ONNX model"):
        FLAVOR.load(tmp_path, {})


def test_missing_onnx_file_is_invalid_input(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match=r"model\.onnx.*does not exist"):
        FLAVOR.load(tmp_path, {})


def test_cuda_request_runs_on_whatever_provider_exists(
    tmp_path: Path, frame: pd.DataFrame, classifier: tuple[Any, Any]
) -> None:
    model, proto = classifier
    saved = FLAVOR.save(proto, tmp_path)
    loaded = FLAVOR.load(tmp_path, {**saved.loader, "device": "cuda"})
    assert loaded.session.get_providers()[-1] == "CPUExecutionProvider"
    np.testing.assert_array_equal(loaded.predict(frame), model.predict(frame.to_numpy()))
    with pytest.raises(InvalidInput, match="device must be one of cpu, cuda"):
        FLAVOR.load(tmp_path, saved.loader, device="tpu")


@pytest.mark.parametrize("threads", [0, -2])
def test_fewer_than_one_intra_op_thread_is_refused_by_name(
    tmp_path: Path, classifier: tuple[Any, Any], threads: int
) -> None:
    saved = FLAVOR.save(classifier[1], tmp_path)
    with pytest.raises(InvalidInput, match=f"threads must be at least 1, got {threads}"):
        FLAVOR.load(tmp_path, saved.loader, threads=threads)
    assert (
        FLAVOR.load(tmp_path, saved.loader, threads=2).session.get_session_options().intra_op_num_threads == 2
    )


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two CPUs to pin a process to one")
def test_a_process_pinned_to_one_cpu_gets_no_onnxruntime_pool_threads(
    tmp_path: Path, classifier: tuple[Any, Any]
) -> None:
    """onnxruntime sizes its pool by the machine's cores; a pinned server's extra pool threads only
    compete with its request threads."""
    FLAVOR.save(classifier[1], tmp_path)
    code = textwrap.dedent(
        f"""
        import os, sys
        from pathlib import Path
        import onnxruntime  # its import starts threads of its own: counted before
        from shipyard.registry.flavors.onnx import OnnxFlavor
        pinned = sys.argv[1] == "pinned"
        if pinned:
            os.sched_setaffinity(0, {{sorted(os.sched_getaffinity(0))[0]}})
        before = len(os.listdir("/proc/self/task"))
        model = OnnxFlavor().load(Path({str(tmp_path)!r}), {{}})
        model.predict([[0.1, 0.2, 0.3]] * 8)
        threads = model.session.get_session_options().intra_op_num_threads
        print(len(os.listdir("/proc/self/task")) - before, threads)
        """
    )
    run = [sys.executable, "-c", code]
    pinned = subprocess.run([*run, "pinned"], capture_output=True, text=True, timeout=120, check=True)
    free = subprocess.run([*run, "free"], capture_output=True, text=True, timeout=120, check=True)
    assert pinned.stdout.split() == ["0", "1"]  # no pool threads beside the caller's
    cpus = len(os.sched_getaffinity(0))
    assert free.stdout.split() == [str(cpus - 1), str(cpus)]


def test_handles_only_model_protos(classifier: tuple[Any, Any]) -> None:
    model, proto = classifier
    assert FLAVOR.handles(proto)
    assert not FLAVOR.handles(model)
    assert not FLAVOR.handles(proto.graph)


@pytest.mark.parametrize("flavor", ["onnx", "sklearn", "pyfunc"])
def test_importing_a_flavor_does_not_import_heavy_libraries(flavor: str) -> None:
    # pandas/numpy come with the registry package itself (signatures); the flavor must add nothing heavy.
    heavy = ("sklearn", "skops", "onnx", "onnxruntime", "skl2onnx")
    code = (
        f"import sys, shipyard.registry.flavors.{flavor}; "
        f"print(','.join(m for m in {heavy!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_missing_onnxruntime_fails_on_use_with_the_install_hint(
    tmp_path: Path, classifier: tuple[Any, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, proto = classifier
    saved = FLAVOR.save(proto, tmp_path)
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(InvalidInput, match=r"onnxruntime is not installed.*pip install 'shipyard\[onnx\]'"):
        FLAVOR.load(tmp_path, saved.loader)
