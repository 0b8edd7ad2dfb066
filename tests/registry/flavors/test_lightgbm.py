"""The LightGBM flavor: native text-model round trips that predict the original labels and values."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from shipyard.errors import InvalidInput
from shipyard.registry.flavors.base import Predictor
from shipyard.registry.flavors.lightgbm import MODEL_FILE, LightGBMFlavor, _import_lightgbm

lgb = pytest.importorskip("lightgbm")

FLAVOR = LightGBMFlavor()


def _features(rows: int = 300) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(rng.normal(size=(rows, 4)), columns=["a", "b", "c", "d"])


def _round_trip(model: object, tmp_path: Path) -> tuple[Predictor, dict]:
    saved = FLAVOR.save(model, tmp_path)
    assert list(saved.files) == [MODEL_FILE]
    loader = json.loads(json.dumps(dict(saved.loader)))  # what MODEL.yaml can hold
    return FLAVOR.load(tmp_path, loader), loader


def test_flavor_module_imports_the_real_lightgbm_not_itself() -> None:
    assert _import_lightgbm() is sys.modules["lightgbm"]
    assert hasattr(_import_lightgbm(), "LGBMClassifier")


def test_importing_the_flavor_does_not_import_lightgbm() -> None:
    code = "import sys, shipyard.registry.flavors.lightgbm; assert 'lightgbm' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_handles_boosters_and_wrappers_only() -> None:
    assert FLAVOR.handles(lgb.LGBMClassifier())
    assert FLAVOR.handles(lgb.LGBMRegressor())
    fitted = lgb.LGBMRegressor(n_estimators=1, verbose=-1).fit(_features(), np.zeros(300))
    assert FLAVOR.handles(fitted.booster_)
    assert not FLAVOR.handles(object())
    assert not FLAVOR.handles(pd.DataFrame())


def test_multiclass_classifier_with_string_labels_predicts_the_same_labels(tmp_path: Path) -> None:
    X = _features()
    y = pd.Series(np.array(["cat", "dog", "eel"])[np.arange(len(X)) % 3])
    model = lgb.LGBMClassifier(n_estimators=10, verbose=-1).fit(X, y)

    loaded, loader = _round_trip(model, tmp_path)

    assert loader == {"wrapper": "LGBMClassifier", "classes": ["cat", "dog", "eel"]}
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    np.testing.assert_array_equal(loaded.predict(X.to_numpy()), model.predict(X))
    np.testing.assert_allclose(loaded.predict_proba(X), model.predict_proba(X), rtol=1e-9)


def test_binary_classifier_with_string_labels_thresholds_like_lightgbm(tmp_path: Path) -> None:
    X = _features()
    y = np.where(X["a"] + 0.5 * X["b"] > 0, "yes", "no")
    model = lgb.LGBMClassifier(n_estimators=10, verbose=-1).fit(X, y)

    loaded, loader = _round_trip(model, tmp_path)

    assert loader["classes"] == ["no", "yes"]
    predicted = loaded.predict(X)
    np.testing.assert_array_equal(predicted, model.predict(X))
    assert set(predicted) == {"no", "yes"}
    np.testing.assert_allclose(loaded.predict_proba(X), model.predict_proba(X), rtol=1e-9)


def test_binary_classifier_with_integer_labels_keeps_them(tmp_path: Path) -> None:
    X = _features()
    y = np.where(X["c"] > 0, 7, -1)
    model = lgb.LGBMClassifier(n_estimators=10, verbose=-1).fit(X.to_numpy(), y)

    loaded, loader = _round_trip(model, tmp_path)

    assert loader["classes"] == [-1, 7]
    np.testing.assert_array_equal(loaded.predict(X.to_numpy()), model.predict(X.to_numpy()))


def test_regressor_round_trip_has_no_predict_proba(tmp_path: Path) -> None:
    X = _features()
    model = lgb.LGBMRegressor(n_estimators=10, verbose=-1).fit(X, X["a"] * 2 - X["c"])

    loaded, loader = _round_trip(model, tmp_path)

    assert loader == {"wrapper": "LGBMRegressor"}
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    assert not hasattr(loaded, "predict_proba")


def test_raw_booster_round_trip(tmp_path: Path) -> None:
    X = _features()
    booster = lgb.train({"objective": "regression", "verbose": -1}, lgb.Dataset(X, label=X["b"]), 5)

    loaded, loader = _round_trip(booster, tmp_path)

    assert loader == {"wrapper": "Booster"}
    np.testing.assert_array_equal(loaded.predict(X), booster.predict(X))


def test_requirements_pin_the_installed_lightgbm(tmp_path: Path) -> None:
    model = lgb.LGBMRegressor(n_estimators=2, verbose=-1).fit(_features(), np.zeros(300))

    assert list(FLAVOR.save(model, tmp_path).requirements) == [f"lightgbm=={lgb.__version__}"]


def test_corrupted_model_file_is_invalid_input_naming_it(tmp_path: Path) -> None:
    model = lgb.LGBMRegressor(n_estimators=2, verbose=-1).fit(_features(), np.zeros(300))
    loader = FLAVOR.save(model, tmp_path).loader
    (tmp_path / MODEL_FILE).write_text("not a model")

    with pytest.raises(InvalidInput, match=MODEL_FILE):
        FLAVOR.load(tmp_path, loader)


def test_unfitted_model_cannot_be_saved(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="LGBMClassifier"):
        FLAVOR.save(lgb.LGBMClassifier(), tmp_path)


def test_labels_that_are_not_json_safe_are_rejected(tmp_path: Path) -> None:
    X = _features()
    y = pd.Series([pd.Timestamp("2024-01-01"), pd.Timestamp("2024-01-02")] * (len(X) // 2))
    model = lgb.LGBMClassifier(n_estimators=2, verbose=-1).fit(X, y)

    with pytest.raises(InvalidInput, match="label"):
        FLAVOR.save(model, tmp_path)


def test_class_count_mismatch_between_loader_and_file_is_rejected(tmp_path: Path) -> None:
    X = _features()
    model = lgb.LGBMClassifier(n_estimators=2, verbose=-1).fit(X, np.arange(len(X)) % 3)
    FLAVOR.save(model, tmp_path)

    with pytest.raises(InvalidInput, match="3-class"):
        FLAVOR.load(tmp_path, {"wrapper": "LGBMClassifier", "classes": ["a", "b"]})


def test_missing_lightgbm_fails_on_use_with_an_install_hint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "lightgbm", None)  # makes `import lightgbm` raise ImportError

    with pytest.raises(InvalidInput, match="pip install lightgbm"):
        FLAVOR.load(tmp_path, {"wrapper": "Booster"})
