"""The torch flavor: TorchScript (scripted or traced) and safetensors + code-reference round trips."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from shipyard.errors import InvalidInput
from shipyard.registry.flavors.torch import (
    STATE_DICT_FILE,
    TORCHSCRIPT_FILE,
    TorchFlavor,
    TorchPredictor,
    _import_torch,
)

torch = pytest.importorskip("torch")
pytest.importorskip("safetensors")
from tests.registry.flavors import torch_models  # noqa: E402  (needs torch)

FLAVOR = TorchFlavor()
FACTORY_MODULE = "tests.registry.flavors.torch_models"


def _features(rows: int = 16, shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(rng.normal(size=(rows, 4)) + shift, columns=["a", "b", "c", "d"])


def _eager(model: torch.nn.Module, data: pd.DataFrame) -> np.ndarray:
    model.eval()
    with torch.no_grad():
        return model(torch.tensor(data.to_numpy(), dtype=torch.float32)).numpy()


def _script(model: torch.nn.Module) -> torch.jit.ScriptModule:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # TorchScript is deprecated upstream
        return torch.jit.script(model)


def _round_trip(
    model: torch.nn.Module, tmp_path: Path, **save_options: object
) -> tuple[TorchPredictor, dict]:
    saved = FLAVOR.save(model, tmp_path, **save_options)
    loader = json.loads(json.dumps(dict(saved.loader)))  # what MODEL.yaml can hold
    return FLAVOR.load(tmp_path, loader), loader


def test_flavor_module_imports_the_real_torch_not_itself() -> None:
    assert _import_torch() is sys.modules["torch"]
    assert hasattr(_import_torch(), "nn")


def test_importing_the_flavor_does_not_import_torch() -> None:
    code = "import sys, shipyard.registry.flavors.torch; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_handles_modules_and_script_modules_only() -> None:
    assert FLAVOR.handles(torch.nn.Linear(2, 2))
    assert FLAVOR.handles(torch_models.MLP())
    assert FLAVOR.handles(_script(torch_models.MLP()))
    assert not FLAVOR.handles(object())
    assert not FLAVOR.handles(torch.zeros(2))


def test_scriptable_mlp_is_saved_as_script_and_predicts_like_eval_mode(tmp_path: Path) -> None:
    model = torch_models.MLP()  # training mode, with dropout
    X = _features()

    saved = FLAVOR.save(model, tmp_path)
    loaded = FLAVOR.load(tmp_path, saved.loader)

    assert list(saved.files) == [TORCHSCRIPT_FILE]
    assert dict(saved.loader) == {"format": "torchscript", "method": "script"}
    assert list(saved.requirements) == [f"torch=={torch.__version__.split('+')[0]}"]
    assert model.training, "save must restore the module's mode"
    prediction = loaded.predict(X)
    assert isinstance(prediction, np.ndarray)
    assert prediction.dtype == np.float32
    np.testing.assert_allclose(prediction, _eager(model, X), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(loaded.predict(X.to_numpy()), prediction, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(
        loaded.predict(torch.tensor(X.to_numpy(), dtype=torch.float32)), prediction, rtol=1e-5, atol=1e-6
    )


def test_script_module_is_saved_as_is(tmp_path: Path) -> None:
    model = torch_models.MLP()
    X = _features()

    loaded, loader = _round_trip(_script(model), tmp_path)

    assert loader["format"] == "torchscript"
    np.testing.assert_allclose(loaded.predict(X), _eager(model, X), rtol=1e-5, atol=1e-6)


def test_unscriptable_module_is_traced_on_the_input_example(tmp_path: Path) -> None:
    model = torch_models.SummedHeads()
    X = _features()

    loaded, loader = _round_trip(model, tmp_path, input_example=X.head(2))

    assert loader == {"format": "torchscript", "method": "trace"}
    np.testing.assert_allclose(loaded.predict(X), _eager(model, X), rtol=1e-5, atol=1e-6)


def test_untraceable_module_falls_back_to_safetensors_and_a_code_reference(tmp_path: Path) -> None:
    model = torch_models.Gated()
    positive, negative = _features(shift=5.0), _features(shift=-5.0)

    saved = FLAVOR.save(model, tmp_path, input_example=positive.head(2))
    loaded = FLAVOR.load(tmp_path, json.loads(json.dumps(dict(saved.loader))))

    assert list(saved.files) == [STATE_DICT_FILE]
    assert dict(saved.loader) == {
        "format": "state_dict",
        "module_factory": f"{FACTORY_MODULE}:Gated",
        "init": {},
    }
    assert any(r.startswith("safetensors==") for r in saved.requirements)
    # both branches of the data-dependent `if` survive, which a trace would have hard-coded
    np.testing.assert_allclose(loaded.predict(positive), _eager(model, positive), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(loaded.predict(negative), _eager(model, negative), rtol=1e-5, atol=1e-6)


def test_state_dict_can_be_preferred_and_rebuilds_from_get_config(tmp_path: Path) -> None:
    model = torch_models.MLP(n_in=4, n_hidden=5, n_out=2)
    X = _features()

    loaded, loader = _round_trip(model, tmp_path, prefer="state_dict")

    assert loader == {
        "format": "state_dict",
        "module_factory": f"{FACTORY_MODULE}:MLP",
        "init": {"n_in": 4, "n_hidden": 5, "n_out": 2},
    }
    assert isinstance(loaded.module, torch_models.MLP)
    assert not loaded.module.training
    np.testing.assert_allclose(loaded.predict(X), _eager(model, X), rtol=1e-5, atol=1e-6)


def test_module_needing_constructor_arguments_without_get_config_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match=r"get_config\(\)") as caught:
        FLAVOR.save(torch_models.NeedsArguments(width=3), tmp_path, input_example=_features().head(2))

    assert "torch.jit.script failed" in str(caught.value)
    assert "torch.jit.trace failed" in str(caught.value)


def test_module_defined_in_a_function_cannot_use_the_state_dict_path(tmp_path: Path) -> None:
    class Local(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x * 2

    with pytest.raises(InvalidInput, match="defined in __main__ or a function"):
        FLAVOR.save(Local(), tmp_path, prefer="state_dict")


def test_get_config_that_does_not_rebuild_the_architecture_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="does not rebuild the model"):
        FLAVOR.save(torch_models.BadConfig(), tmp_path, prefer="state_dict")


def test_unknown_preference_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="prefer"):
        FLAVOR.save(torch_models.MLP(), tmp_path, prefer="onnx")  # type: ignore[arg-type]


def test_corrupted_torchscript_file_is_invalid_input_naming_it(tmp_path: Path) -> None:
    loader = FLAVOR.save(torch_models.MLP(), tmp_path).loader
    (tmp_path / TORCHSCRIPT_FILE).write_bytes(b"not a zip archive")

    with pytest.raises(InvalidInput, match=TORCHSCRIPT_FILE):
        FLAVOR.load(tmp_path, loader)


def test_corrupted_safetensors_file_is_invalid_input_naming_it(tmp_path: Path) -> None:
    loader = FLAVOR.save(torch_models.MLP(), tmp_path, prefer="state_dict").loader
    (tmp_path / STATE_DICT_FILE).write_bytes(b"garbage")

    with pytest.raises(InvalidInput, match=STATE_DICT_FILE):
        FLAVOR.load(tmp_path, loader)


def test_factory_that_is_not_a_module_class_is_never_called(tmp_path: Path) -> None:
    loader = {"format": "state_dict", "module_factory": "subprocess:run", "init": {"args": ["true"]}}

    with pytest.raises(InvalidInput, match="not a torch.nn.Module subclass"):
        FLAVOR.load(tmp_path, loader)


def test_auto_device_is_cpu_without_cuda_and_loader_device_is_honoured(tmp_path: Path) -> None:
    loader = dict(FLAVOR.save(torch_models.MLP(), tmp_path).loader)

    auto = FLAVOR.load(tmp_path, loader)
    explicit = FLAVOR.load(tmp_path, {**loader, "device": "cpu"})

    assert auto.device.type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert explicit.device == torch.device("cpu")


def test_unknown_device_is_rejected(tmp_path: Path) -> None:
    loader = FLAVOR.save(torch_models.MLP(), tmp_path).loader

    with pytest.raises(InvalidInput, match="not a torch device"):
        FLAVOR.load(tmp_path, loader, device="bogus")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error raised where CUDA is absent")
def test_cuda_device_without_cuda_is_rejected(tmp_path: Path) -> None:
    loader = FLAVOR.save(torch_models.MLP(), tmp_path).loader

    with pytest.raises(InvalidInput, match="CUDA is not available"):
        FLAVOR.load(tmp_path, loader, device="cuda")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (torch.cuda.is_available())")
@pytest.mark.parametrize("prefer", ["torchscript", "state_dict"])
def test_model_loads_and_predicts_on_cuda(tmp_path: Path, prefer: str) -> None:
    model = torch_models.MLP()
    X = _features()
    loader = FLAVOR.save(model, tmp_path, prefer=prefer).loader  # type: ignore[arg-type]

    loaded = FLAVOR.load(tmp_path, loader, device="cuda")

    assert loaded.device.type == "cuda"
    assert next(loaded.module.parameters()).is_cuda
    prediction = loaded.predict(X)
    assert isinstance(prediction, np.ndarray)
    np.testing.assert_allclose(prediction, _eager(model, X), rtol=1e-4, atol=1e-5)


def test_missing_torch_fails_on_use_with_an_install_hint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)  # makes `import torch` raise ImportError

    with pytest.raises(InvalidInput, match="pip install torch safetensors"):
        FLAVOR.load(tmp_path, {"format": "torchscript"})
