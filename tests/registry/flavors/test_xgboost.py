"""The XGBoost flavor: native UBJSON round trips that predict exactly like the original."""

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
from shipyard.registry.flavors.xgboost import MODEL_FILE, XGBoostFlavor, _import_xgboost

xgb = pytest.importorskip("xgboost")

FLAVOR = XGBoostFlavor()


def _features(rows: int = 120) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(rng.normal(size=(rows, 4)), columns=["a", "b", "c", "d"])


def _round_trip(model: object, tmp_path: Path) -> tuple[Predictor, dict]:
    saved = FLAVOR.save(model, tmp_path)
    assert list(saved.files) == [MODEL_FILE]
    loader = json.loads(json.dumps(dict(saved.loader)))  # what MODEL.yaml can hold
    return FLAVOR.load(tmp_path, loader), loader


def test_flavor_module_imports_the_real_xgboost_not_itself() -> None:
    assert _import_xgboost() is sys.modules["xgboost"]
    assert hasattr(_import_xgboost(), "XGBClassifier")


def test_importing_the_flavor_does_not_import_xgboost() -> None:
    code = "import sys, shipyard.registry.flavors.xgboost; assert 'xgboost' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_handles_boosters_and_wrappers_only() -> None:
    class MyClassifier(xgb.XGBClassifier):
        pass

    assert FLAVOR.handles(xgb.XGBClassifier())
    assert FLAVOR.handles(xgb.XGBRegressor())
    assert FLAVOR.handles(MyClassifier())
    assert FLAVOR.handles(xgb.Booster())
    assert not FLAVOR.handles(object())
    assert not FLAVOR.handles(np.zeros(3))


def test_multiclass_classifier_predicts_the_same_labels_and_probabilities(tmp_path: Path) -> None:
    X = _features()
    y = np.arange(len(X)) % 3
    model = xgb.XGBClassifier(n_estimators=8, max_depth=3).fit(X, y)

    loaded, loader = _round_trip(model, tmp_path)

    assert loader == {"wrapper": "XGBClassifier", "n_classes": 3, "classes": [0, 1, 2]}
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    np.testing.assert_array_equal(loaded.predict(X.to_numpy()), model.predict(X))
    np.testing.assert_allclose(loaded.predict_proba(X), model.predict_proba(X), rtol=1e-6)


def test_binary_classifier_round_trip(tmp_path: Path) -> None:
    X = _features()
    y = (X["a"] + X["b"] > 0).astype(int)
    model = xgb.XGBClassifier(n_estimators=8).fit(X.to_numpy(), y)

    loaded, loader = _round_trip(model, tmp_path)

    assert loader["n_classes"] == 2
    np.testing.assert_array_equal(loaded.predict(X.to_numpy()), model.predict(X.to_numpy()))
    np.testing.assert_allclose(
        loaded.predict_proba(X.to_numpy()), model.predict_proba(X.to_numpy()), rtol=1e-6
    )


def test_regressor_round_trip_has_no_predict_proba(tmp_path: Path) -> None:
    X = _features()
    model = xgb.XGBRegressor(n_estimators=8).fit(X, X["a"] * 2 - X["c"])

    loaded, loader = _round_trip(model, tmp_path)

    assert loader == {"wrapper": "XGBRegressor"}
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    assert not hasattr(loaded, "predict_proba")


def test_subclassed_wrapper_is_saved_as_its_xgboost_base(tmp_path: Path) -> None:
    class MyRegressor(xgb.XGBRegressor):
        pass

    X = _features()
    model = MyRegressor(n_estimators=4).fit(X, X["b"])

    loaded, loader = _round_trip(model, tmp_path)

    assert loader["wrapper"] == "XGBRegressor"
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))


def test_raw_booster_predicts_from_dataframes_arrays_and_dmatrices(tmp_path: Path) -> None:
    X = _features()
    booster = xgb.train({"objective": "binary:logistic"}, xgb.DMatrix(X, label=X["a"] > 0), num_boost_round=6)
    expected = booster.predict(xgb.DMatrix(X))

    loaded, loader = _round_trip(booster, tmp_path)

    assert loader == {"wrapper": "Booster"}
    np.testing.assert_array_equal(loaded.predict(X), expected)
    np.testing.assert_array_equal(loaded.predict(X.to_numpy()), expected)  # feature names come from the model
    np.testing.assert_array_equal(loaded.predict(xgb.DMatrix(X)), expected)


def test_requirements_pin_the_installed_xgboost(tmp_path: Path) -> None:
    model = xgb.XGBRegressor(n_estimators=2).fit(_features(), np.zeros(120))

    (requirement,) = FLAVOR.save(model, tmp_path).requirements

    assert requirement.endswith(f"=={xgb.__version__}")
    assert requirement.startswith("xgboost")


def test_corrupted_model_file_is_invalid_input_naming_it(tmp_path: Path) -> None:
    model = xgb.XGBClassifier(n_estimators=2).fit(_features(), np.arange(120) % 2)
    loader = FLAVOR.save(model, tmp_path).loader
    (tmp_path / MODEL_FILE).write_bytes(b"not a model")

    with pytest.raises(InvalidInput, match=MODEL_FILE):
        FLAVOR.load(tmp_path, loader)


def test_unfitted_model_cannot_be_saved(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="XGBClassifier"):
        FLAVOR.save(xgb.XGBClassifier(), tmp_path)


def test_loader_naming_a_non_model_class_is_rejected(tmp_path: Path) -> None:
    model = xgb.XGBRegressor(n_estimators=2).fit(_features(), np.zeros(120))
    FLAVOR.save(model, tmp_path)

    with pytest.raises(InvalidInput, match="DMatrix"):
        FLAVOR.load(tmp_path, {"wrapper": "DMatrix"})


def test_class_count_mismatch_between_loader_and_file_is_rejected(tmp_path: Path) -> None:
    model = xgb.XGBClassifier(n_estimators=2).fit(_features(), np.arange(120) % 3)
    loader = dict(FLAVOR.save(model, tmp_path).loader)

    with pytest.raises(InvalidInput, match="3-class"):
        FLAVOR.load(tmp_path, {**loader, "n_classes": 4})


def test_missing_xgboost_fails_on_use_with_an_install_hint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "xgboost", None)  # makes `import xgboost` raise ImportError

    with pytest.raises(InvalidInput, match="pip install xgboost"):
        FLAVOR.load(tmp_path, {"wrapper": "Booster"})
