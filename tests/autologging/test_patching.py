"""Autologging's promises: training behaves as without it, ``disable`` restores, patching twice is once."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from pathlib import Path
from types import ModuleType

import lightgbm as lgb
import numpy as np
import pytest
import xgboost as xgb
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import shipyard
from shipyard import InvalidInput, RunStatus, Settings
from shipyard.autologging import AutologWarning
from shipyard.autologging.imports import when_imported
from shipyard.autologging.xgboost import autolog as xgboost_autolog
from tests.autologging.runs import only_run
from tests.conftest import make_settings

X = np.random.default_rng(3).normal(size=(60, 3))
Y = (X[:, 0] > 0).astype(int)


class FlakyPredictions(LogisticRegression):
    """Fits fine; predicting fails, so autologging cannot score it nor log it as a model."""

    def predict(self, X: object) -> np.ndarray:
        raise RuntimeError("predict is broken")


def _originals() -> dict[str, object]:
    return {
        "LogisticRegression.fit": vars(LogisticRegression)["fit"],
        "xgboost.train": xgb.train,
        "XGBClassifier.fit": vars(xgb.XGBClassifier)["fit"],
        "lightgbm.train": lgb.train,
        "LGBMRegressor.fit": vars(lgb.LGBMRegressor)["fit"],
    }


def test_disable_restores_every_patched_entry_point(settings: Settings) -> None:
    before = _originals()
    shipyard.autolog(settings=settings)
    try:
        patched = _originals()
        assert all(patched[name] is not before[name] for name in before), patched
    finally:
        shipyard.autolog(disable=True)
    assert _originals() == before
    LogisticRegression().fit(X, Y)
    assert list(shipyard.get_client(settings).search_runs()) == []


def test_autolog_twice_patches_once_and_takes_the_new_options(autologged: Settings) -> None:
    original = vars(LogisticRegression)["fit"].__wrapped__
    shipyard.autolog(settings=autologged, log_models=False)
    assert vars(LogisticRegression)["fit"].__wrapped__ is original
    LogisticRegression().fit(X, Y)
    run = only_run(autologged)
    assert shipyard.get_client(autologged).list_artifacts(run.run_id) == []


def test_a_failure_of_autologging_warns_once_and_training_goes_on(autologged: Settings) -> None:
    with warnings.catch_warnings(record=True) as first:
        warnings.simplefilter("always")
        model = FlakyPredictions(C=0.3).fit(X, Y)
    assert model.coef_.shape == (1, 3)  # trained as without autologging
    messages = [str(w.message) for w in first if issubclass(w.category, AutologWarning)]
    assert any("could not score the training data: RuntimeError: predict is broken" in m for m in messages)
    assert any("could not log the model 'model'" in m for m in messages)
    run = only_run(autologged)
    assert run.status is RunStatus.FINISHED
    assert run.params["C"] == "0.3"
    with warnings.catch_warnings(record=True) as second:
        warnings.simplefilter("always")
        FlakyPredictions().fit(X, Y)
    assert [w for w in second if issubclass(w.category, AutologWarning)] == []


def test_an_unreachable_store_warns_and_trains_without_logging(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the store's folder should be")
    broken = make_settings(tmp_path / "home", db_url=f"sqlite:///{blocker}/store.db")
    shipyard.autolog(settings=broken, libraries=["sklearn"])
    try:
        with pytest.warns(AutologWarning, match="could not start a run"):
            model = LogisticRegression().fit(X, Y)
    finally:
        shipyard.autolog(disable=True)
    assert model.predict(X).shape == (60,)


def test_a_wrapper_inside_a_pipeline_is_logged_once_as_the_pipeline(autologged: Settings) -> None:
    shipyard.autolog(settings=autologged, log_models=False)
    make_pipeline(StandardScaler(), xgb.XGBClassifier(n_estimators=2)).fit(X, Y)

    run = only_run(autologged)
    assert run.tags["estimator_name"] == "Pipeline"
    assert run.params["xgbclassifier__n_estimators"] == "2"
    assert not any(key.startswith("validation_0") for key in run.metrics)


def test_unknown_options_and_libraries_are_refused() -> None:
    with pytest.raises(InvalidInput, match="knows no library tensorflow; it knows: sklearn"):
        shipyard.autolog(libraries=["tensorflow"])
    with pytest.raises(InvalidInput, match="max_tuning_runs must be None or an int >= 0"):
        shipyard.autolog(max_tuning_runs=-1)


def test_a_library_imported_later_is_handled_right_after_its_import(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "late_library.py").write_text("VALUE = 42\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    seen: list[ModuleType] = []
    when_imported("late_library", seen.append)
    assert seen == []
    try:
        import late_library  # noqa: F401  (imported for the hook)

        assert [module.VALUE for module in seen] == [42]
        when_imported("late_library", seen.append)  # already imported: at once
        assert len(seen) == 2
    finally:
        sys.modules.pop("late_library", None)


def test_silent_autologging_fails_without_a_warning(autologged: Settings) -> None:
    shipyard.autolog(settings=autologged, silent=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        FlakyPredictions().fit(X, Y)
    assert [w for w in caught if issubclass(w.category, AutologWarning)] == []
    assert only_run(autologged).params["C"] == "1.0"


def test_one_library_alone_through_its_own_module(settings: Settings) -> None:
    before = _originals()
    xgboost_autolog(settings=settings)
    try:
        assert vars(LogisticRegression)["fit"] is before["LogisticRegression.fit"]
        assert xgb.train is not before["xgboost.train"]
        LogisticRegression().fit(X, Y)
        xgb.XGBRegressor(n_estimators=2).fit(X, X[:, 0])
    finally:
        xgboost_autolog(disable=True)
    assert xgb.train is before["xgboost.train"]
    run = only_run(settings)
    assert run.tags["estimator_name"] == "XGBRegressor"


def test_autolog_imports_no_library_and_patches_one_imported_afterwards(tmp_path: Path) -> None:
    script = """
import sys
import shipyard
shipyard.autolog()
heavy = ("sklearn", "xgboost", "lightgbm", "torch", "lightning")
print(",".join(name for name in heavy if name in sys.modules))
from sklearn.linear_model import LinearRegression
LinearRegression().fit([[0.0], [1.0], [2.0]], [0.0, 2.0, 4.0])
[run] = shipyard.search_runs()
print(run.tags["estimator_name"], round(run.metrics["training_r2_score"], 6))
"""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHIPYARD_")}
    env["SHIPYARD_HOME"] = str(tmp_path / "home")
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["", "LinearRegression 1.0"]
