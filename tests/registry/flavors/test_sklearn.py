"""The sklearn flavor: skops round trips, the type allow-list against tampered files, verified ONNX copies."""

from __future__ import annotations

import json
import sys
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.compose import make_column_transformer
from sklearn.ensemble import GradientBoostingRegressor, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

from shipyard.errors import InvalidInput, UntrustedArtifact
from shipyard.registry.flavors.base import Predictor, SavedModel
from shipyard.registry.flavors.sklearn import SklearnFlavor

pytest.importorskip("skops", reason="skops is not installed (pip install skops)")

FLAVOR = SklearnFlavor()


class Clipper(BaseEstimator, TransformerMixin):
    """A custom transformer: skops must be told about it, and skl2onnx has no converter for it."""

    def __init__(self, high: float = 0.5) -> None:
        self.high = high

    def fit(self, X: Any, y: Any = None) -> Clipper:
        return self

    def transform(self, X: Any) -> Any:
        return np.minimum(np.asarray(X, dtype=float), self.high)


@pytest.fixture
def data() -> tuple[Any, Any, Any]:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(120, 4)), columns=["a", "b", "c", "d"])
    labels = (frame["a"] + frame["b"] > 0).astype(int).to_numpy()
    target = (2 * frame["a"] - frame["c"] + rng.normal(scale=0.1, size=120)).to_numpy()
    return frame, labels, target


def _save(model: Any, tmp_path: Path, example: Any | None) -> tuple[Path, SavedModel]:
    directory = tmp_path / "pkg"
    directory.mkdir()
    return directory, FLAVOR.save(model, directory, input_example=example)


def test_random_forest_round_trip_predicts_the_same(tmp_path: Path, data: tuple[Any, Any, Any]) -> None:
    frame, labels, _ = data
    model = RandomForestClassifier(n_estimators=10, random_state=0).fit(frame, labels)
    directory, saved = _save(model, tmp_path, frame.head(20))

    assert saved.files[0] == "model.skops"
    assert "sklearn.tree._tree.Tree" in saved.loader["types"]
    assert any(r.startswith("scikit-learn==") for r in saved.requirements)
    assert any(r.startswith("skops==") for r in saved.requirements)
    json.dumps(dict(saved.loader))  # MODEL.yaml can hold it

    loaded = FLAVOR.load(directory, saved.loader)
    assert isinstance(loaded, Predictor)
    assert loaded.runtime == "native"
    np.testing.assert_array_equal(loaded.predict(frame), model.predict(frame))
    np.testing.assert_allclose(loaded.predict_proba(frame), model.predict_proba(frame))


def test_pipeline_round_trip_accepts_arrays_and_frames(tmp_path: Path, data: tuple[Any, Any, Any]) -> None:
    frame, labels, _ = data
    array = frame.to_numpy()
    model = Pipeline([("scale", StandardScaler()), ("clf", LogisticRegression())]).fit(array, labels)
    directory, saved = _save(model, tmp_path, array[:10])

    loaded = FLAVOR.load(directory, saved.loader)
    result = loaded.predict(array)
    assert isinstance(result, np.ndarray)
    np.testing.assert_array_equal(result, model.predict(array))
    np.testing.assert_allclose(loaded.predict_proba(array), model.predict_proba(array))
    np.testing.assert_array_equal(loaded.predict(pd.DataFrame(array)), model.predict(array))


def test_regressor_round_trip_and_onnx_copy_agree(tmp_path: Path, data: tuple[Any, Any, Any]) -> None:
    pytest.importorskip("skl2onnx", reason="skl2onnx is not installed (pip install 'shipyard[onnx]')")
    pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip install 'shipyard[onnx]')")
    frame, _, target = data
    model = GradientBoostingRegressor(n_estimators=20, random_state=0).fit(frame, target)
    directory, saved = _save(model, tmp_path, frame.head(30))

    assert saved.loader["onnx"] == {
        "available": True,
        "verified_on_example": True,
        "label_output": saved.loader["onnx"]["label_output"],
        "output_ndim": 1,
        "feature_names": ["a", "b", "c", "d"],
    }
    native = FLAVOR.load(directory, saved.loader)
    np.testing.assert_allclose(native.predict(frame), model.predict(frame))
    assert not hasattr(native, "predict_proba")

    onnx = FLAVOR.load(directory, saved.loader, prefer="onnx")
    assert onnx.runtime == "onnx"
    got = onnx.predict(frame)
    assert got.shape == (len(frame),)
    np.testing.assert_allclose(got, model.predict(frame), rtol=1e-4, atol=1e-4)


def test_onnx_copy_is_verified_and_used_with_prefer_onnx(tmp_path: Path, data: tuple[Any, Any, Any]) -> None:
    pytest.importorskip("skl2onnx", reason="skl2onnx is not installed (pip install 'shipyard[onnx]')")
    pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip install 'shipyard[onnx]')")
    frame, labels, _ = data
    model = RandomForestClassifier(n_estimators=10, random_state=0).fit(frame, labels)
    directory, saved = _save(model, tmp_path, frame.head(40))

    assert list(saved.files) == ["model.skops", "model.onnx"]
    assert saved.loader["onnx"]["available"] is True
    assert saved.loader["onnx"]["verified_on_example"] is True
    assert any(r.startswith("skl2onnx==") for r in saved.requirements)
    assert any(r.startswith("onnxruntime==") for r in saved.requirements)

    loaded = FLAVOR.load(directory, saved.loader, prefer="onnx")
    assert loaded.runtime == "onnx"
    np.testing.assert_array_equal(loaded.predict(frame), model.predict(frame))
    np.testing.assert_allclose(loaded.predict_proba(frame), model.predict_proba(frame), atol=1e-4)
    # Columns are matched by name, not position: a reordered frame predicts the same.
    np.testing.assert_array_equal(loaded.predict(frame[["d", "c", "b", "a"]]), model.predict(frame))
    with pytest.raises(InvalidInput, match="lacks columns d"):
        loaded.predict(frame[["a", "b", "c"]])
    # The in-order Index is remembered (frames made from one signature share it); others are still checked.
    reordered = frame[["d", "c", "b", "a"]]
    for _ in range(2):
        np.testing.assert_array_equal(loaded.predict(frame), model.predict(frame))
        np.testing.assert_array_equal(loaded.predict(reordered), model.predict(frame))


def test_pipeline_onnx_copy_predicts_the_same(tmp_path: Path, data: tuple[Any, Any, Any]) -> None:
    pytest.importorskip("skl2onnx", reason="skl2onnx is not installed (pip install 'shipyard[onnx]')")
    pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip install 'shipyard[onnx]')")
    frame, labels, _ = data
    array = frame.to_numpy()
    model = make_pipeline(StandardScaler(), LogisticRegression()).fit(array, labels)
    directory, saved = _save(model, tmp_path, array[:50])

    assert saved.loader["onnx"]["available"] is True
    loaded = FLAVOR.load(directory, saved.loader, prefer="onnx")
    np.testing.assert_array_equal(loaded.predict(array), model.predict(array))


def test_model_skl2onnx_cannot_convert_gets_no_onnx_file_and_a_reason(
    tmp_path: Path, data: tuple[Any, Any, Any]
) -> None:
    pytest.importorskip("skl2onnx", reason="skl2onnx is not installed (pip install 'shipyard[onnx]')")
    pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip install 'shipyard[onnx]')")
    frame, labels, _ = data
    model = make_pipeline(Clipper(), LogisticRegression()).fit(frame, labels)
    directory, saved = _save(model, tmp_path, frame.head(10))

    assert list(saved.files) == ["model.skops"]
    assert not (directory / "model.onnx").exists()
    assert saved.loader["onnx"]["available"] is False
    assert "skl2onnx cannot convert Pipeline" in saved.loader["onnx"]["reason"]
    assert not any(r.startswith("skl2onnx") for r in saved.requirements)
    # The custom transformer is recorded at save time, but a file's author writes its manifest too: a class
    # of one's own is built only with trusted=True.
    assert f"{Clipper.__module__}.Clipper" in saved.loader["types"]
    with pytest.raises(UntrustedArtifact, match=rf"{Clipper.__module__}\.Clipper \(as ObjectNode\)"):
        FLAVOR.load(directory, saved.loader, prefer="onnx")
    loaded = FLAVOR.load(directory, saved.loader, prefer="onnx", trusted=True)  # falls back to scikit-learn
    assert loaded.runtime == "native"
    np.testing.assert_array_equal(loaded.predict(frame), model.predict(frame))
    assert FLAVOR.load(directory, saved.loader, prefer="auto", trusted=True).runtime == "native"


def test_prefer_auto_takes_the_verified_onnx_copy_and_refuses_unknown_choices(
    tmp_path: Path, data: tuple[Any, Any, Any]
) -> None:
    pytest.importorskip("skl2onnx", reason="skl2onnx is not installed (pip install 'shipyard[onnx]')")
    pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip install 'shipyard[onnx]')")
    frame, labels, _ = data
    model = RandomForestClassifier(n_estimators=5, random_state=0).fit(frame, labels)
    directory, saved = _save(model, tmp_path, frame.head(40))
    assert FLAVOR.load(directory, saved.loader, prefer="auto").runtime == "onnx"
    assert FLAVOR.load(directory, saved.loader).runtime == "native"  # the library's default stays native
    with pytest.raises(InvalidInput, match="prefer must be one of native, onnx, auto, got 'fastest'"):
        FLAVOR.load(directory, saved.loader, prefer="fastest")


def test_no_input_example_means_no_onnx_copy(tmp_path: Path, data: tuple[Any, Any, Any]) -> None:
    frame, labels, _ = data
    model = LogisticRegression().fit(frame, labels)
    _, saved = _save(model, tmp_path, None)
    assert saved.loader["onnx"] == {
        "available": False,
        "reason": "no input_example was given, so the ONNX input type is unknown",
    }
    assert list(saved.files) == ["model.skops"]


def test_non_numeric_input_example_means_no_onnx_copy(tmp_path: Path) -> None:
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0], "tag": ["a", "b", "a", "b"]})
    encode = make_column_transformer((OneHotEncoder(), ["tag"]), remainder="passthrough")
    model = make_pipeline(encode, LogisticRegression()).fit(frame, [0, 1, 0, 1])
    directory, saved = _save(model, tmp_path, frame)

    assert saved.loader["onnx"]["available"] is False
    assert "not a numeric 2-D table" in saved.loader["onnx"]["reason"]
    assert not (directory / "model.onnx").exists()
    np.testing.assert_array_equal(FLAVOR.load(directory, saved.loader).predict(frame), model.predict(frame))


def _tamper(path: Path, module: str, name: str) -> None:
    """Point the FunctionTransformer's ``func`` in a skops file at ``module.name``."""
    with zipfile.ZipFile(path) as archive:
        members = {info.filename: archive.read(info) for info in archive.infolist()}
    schema = json.loads(members["schema.json"])
    func = schema["content"]["content"]["func"]
    assert func["__loader__"] == "FunctionNode"
    func["__module__"], func["__class__"] = module, name
    members["schema.json"] = json.dumps(schema).encode()
    with zipfile.ZipFile(path, "w") as archive:
        for member, content in members.items():
            archive.writestr(member, content)


@pytest.fixture
def log_transformer(tmp_path: Path) -> tuple[Path, SavedModel]:
    model = FunctionTransformer(np.log1p).fit(np.ones((3, 2)))
    return _save(model, tmp_path, None)


@pytest.mark.parametrize(
    ("module", "name"),
    [
        ("builtins", "eval"),
        ("posix", "system"),
        ("subprocess", "Popen"),
        ("numpy", "load"),
        ("numpy.lib._datasource", "open"),
        ("scipy.sparse", "save_npz"),
    ],
)
def test_tampered_file_with_dangerous_type_is_refused(
    log_transformer: tuple[Path, SavedModel], module: str, name: str
) -> None:
    directory, saved = log_transformer
    _tamper(directory / "model.skops", module, name)

    with pytest.raises(UntrustedArtifact, match=rf"{module}\.{name}.*trusted=True only if you trust"):
        FLAVOR.load(directory, saved.loader)
    # A tampered manifest that also records the type does not help: recorded types are never trusted.
    forged = {**saved.loader, "types": [*saved.loader["types"], f"{module}.{name}"]}
    with pytest.raises(UntrustedArtifact, match=rf"{module}\.{name}"):
        FLAVOR.load(directory, forged)


def test_type_not_recorded_at_save_time_is_refused(log_transformer: tuple[Path, SavedModel]) -> None:
    directory, saved = log_transformer
    _tamper(directory / "model.skops", "some_installed_package.helpers", "run")
    with pytest.raises(UntrustedArtifact, match=r"some_installed_package\.helpers\.run"):
        FLAVOR.load(directory, saved.loader)


def test_trusted_true_is_the_only_way_past_the_allow_list(log_transformer: tuple[Path, SavedModel]) -> None:
    directory, saved = log_transformer
    _tamper(directory / "model.skops", "builtins", "len")  # harmless, but not allowed implicitly

    with pytest.raises(UntrustedArtifact, match=r"builtins\.len"):
        FLAVOR.load(directory, saved.loader)
    loaded = FLAVOR.load(directory, saved.loader, trusted=True)
    assert loaded.estimator.func is len  # constructed, never called


def test_file_that_is_not_skops_is_invalid_input(tmp_path: Path) -> None:
    (tmp_path / "model.skops").write_bytes(b"not a zip archive")
    with pytest.raises(InvalidInput, match="model.skops is not a readable skops file"):
        FLAVOR.load(tmp_path, {"format": "skops", "types": []})


def test_unknown_preference_is_invalid_input(log_transformer: tuple[Path, SavedModel]) -> None:
    directory, saved = log_transformer
    with pytest.raises(InvalidInput, match="prefer must be one of native, onnx"):
        FLAVOR.load(directory, saved.loader, prefer="tensorrt")


def test_handles_sklearn_instances_only(data: tuple[Any, Any, Any]) -> None:
    assert FLAVOR.handles(RandomForestClassifier())
    assert FLAVOR.handles(make_pipeline(StandardScaler(), LogisticRegression()))
    assert not FLAVOR.handles(RandomForestClassifier)
    assert not FLAVOR.handles(np.zeros(3))
    assert not FLAVOR.handles(Clipper())  # a user class, even a BaseEstimator, is pyfunc's


def test_missing_skops_fails_on_use_with_the_install_hint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "skops.io", None)  # what an environment without skops looks like
    with pytest.raises(InvalidInput, match=r"pip install 'skops>=0.10'"):
        FLAVOR.save(LogisticRegression(), tmp_path)


def test_missing_skl2onnx_is_recorded_as_the_reason(
    tmp_path: Path, data: tuple[Any, Any, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    frame, labels, _ = data
    model = LogisticRegression().fit(frame, labels)
    monkeypatch.setitem(sys.modules, "skl2onnx", None)
    _, saved = _save(model, tmp_path, frame.head(5))
    assert saved.loader["onnx"] == {
        "available": False,
        "reason": "skl2onnx is not installed (pip install 'shipyard[onnx]')",
    }
