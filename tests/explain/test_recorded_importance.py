"""Global importance recorded on a registered version, as a tag, and read back for the model card."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import RandomForestRegressor

import shipyard
from shipyard.errors import InvalidInput
from shipyard.explain import IMPORTANCE_TAG, RecordedImportance, record_importance, recorded_importance
from shipyard.tracking.values import MAX_TEXT_VALUE

pytest.importorskip("shap", reason="shap is the explain extra (pip install 'shipyard[explain]')")


def _register(
    frame: pd.DataFrame, amount: np.ndarray, settings: shipyard.Settings, *, baseline: bool = True
) -> str:
    forest = RandomForestRegressor(n_estimators=10, max_depth=6, random_state=0).fit(frame, amount)
    options = {"baseline": frame} if baseline else {}
    with shipyard.start_run("importance", settings=settings) as run:
        info = shipyard.models.log(forest, name="model", run=run, input_example=frame.head(3), **options)
    return shipyard.models.register(info.uri, "amounts", settings=settings).uri


def test_importance_is_recorded_on_the_version_and_read_back(
    frame: pd.DataFrame, amount: np.ndarray, settings: shipyard.Settings
) -> None:
    uri = _register(frame, amount, settings)
    recorded = record_importance(uri, max_rows=200, settings=settings)
    assert list(recorded.importance)[:2] == ["signal", "minor"]
    assert (recorded.method, recorded.rows, recorded.features) == ("shap", 200, 4)
    version = shipyard.models.get(uri, settings=settings)
    tag = version.tags[IMPORTANCE_TAG]
    assert json.loads(tag)["importance"] == dict(recorded.importance)
    assert " " not in tag  # compact
    assert recorded_importance(version) == recorded
    card = recorded.to_markdown()
    assert card.startswith("## Feature importance") and "| signal |" in card


def test_registering_alone_records_nothing(
    frame: pd.DataFrame, amount: np.ndarray, settings: shipyard.Settings
) -> None:
    version = shipyard.models.get(_register(frame, amount, settings), settings=settings)
    assert recorded_importance(version) is None


def test_a_version_without_a_baseline_or_not_registered_is_refused(
    frame: pd.DataFrame, amount: np.ndarray, settings: shipyard.Settings
) -> None:
    uri = _register(frame, amount, settings, baseline=False)
    with pytest.raises(InvalidInput, match=r"models:/amounts/1 has no baseline.*baseline="):
        record_importance(uri, settings=settings)
    source = shipyard.models.get(uri, settings=settings).source_uri
    with pytest.raises(InvalidInput, match="not a registered version"):
        record_importance(source, settings=settings)


def test_many_features_keep_the_most_important_within_a_tag() -> None:
    importance = {f"feature_{i:05d}": 1.0 / (i + 1) for i in range(3000)}
    recorded = RecordedImportance("shap", "TreeExplainer/interventional", "raw", 100, 3000, importance, "now")
    text = recorded.to_json()
    assert len(text) <= MAX_TEXT_VALUE
    kept = RecordedImportance.from_json(text)
    assert kept.features == 3000 and 100 < len(kept.importance) < 3000
    assert list(kept.importance) == list(importance)[: len(kept.importance)]
    assert "less important features not listed" in kept.to_markdown()


def test_a_tag_that_is_not_importance_is_named() -> None:
    with pytest.raises(InvalidInput, match=IMPORTANCE_TAG):
        RecordedImportance.from_json('{"method": "shap"}')
