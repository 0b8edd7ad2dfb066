"""The pyfunc flavor: code references by default, pickle only with trusted=True."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from shipyard.errors import InvalidInput, UntrustedArtifact
from shipyard.registry.flavors.pyfunc import PyfuncFlavor
from tests.registry.flavors.pyfunc_models import (
    BadConfig,
    Memorizer,
    RowCount,
    ScaledSum,
    double_first_column,
)

FLAVOR = PyfuncFlavor()
MODULE = "tests.registry.flavors.pyfunc_models"


@pytest.fixture
def frame() -> pd.DataFrame:
    return pd.DataFrame({"key": ["a", "b", "c"], "x": [1.0, 2.0, 3.0], "y": [10.0, 20.0, 30.0]})


def test_config_protocol_class_is_saved_as_code_reference(tmp_path: Path, frame: pd.DataFrame) -> None:
    model = ScaledSum(factor=0.5, columns=["x", "y"])
    saved = FLAVOR.save(model, tmp_path)

    assert list(saved.files) == []
    assert dict(saved.loader) == {
        "callable": f"{MODULE}:ScaledSum",
        "init": {"factor": 0.5, "columns": ["x", "y"]},
    }
    assert list(tmp_path.iterdir()) == []  # nothing executable, nothing at all, in the package

    loaded = FLAVOR.load(tmp_path, saved.loader)
    assert isinstance(loaded, ScaledSum)
    np.testing.assert_allclose(loaded.predict(frame), model.predict(frame))


def test_stateless_class_is_saved_as_code_reference(tmp_path: Path, frame: pd.DataFrame) -> None:
    saved = FLAVOR.save(RowCount(), tmp_path)
    assert dict(saved.loader) == {"callable": f"{MODULE}:RowCount", "init": {}}
    assert FLAVOR.load(tmp_path, saved.loader).predict(frame) == [3, 3, 3]


def test_module_level_function_is_saved_as_code_reference(tmp_path: Path, frame: pd.DataFrame) -> None:
    assert FLAVOR.handles(double_first_column)
    saved = FLAVOR.save(double_first_column, tmp_path)
    assert dict(saved.loader) == {"function": f"{MODULE}:double_first_column"}

    loaded = FLAVOR.load(tmp_path, saved.loader)
    np.testing.assert_array_equal(loaded.predict(frame[["x"]]), [2.0, 4.0, 6.0])


def test_nested_function_and_lambda_are_refused(tmp_path: Path) -> None:
    def nested(df: Any) -> Any:
        return df

    for function in (nested, lambda df: df):
        with pytest.raises(InvalidInput, match="inside a function or is a lambda"):
            FLAVOR.save(function, tmp_path)


def test_stateful_class_without_config_falls_back_to_pickle(tmp_path: Path, frame: pd.DataFrame) -> None:
    model = Memorizer().fit(["a", "c"], [1.5, 3.5])
    saved = FLAVOR.save(model, tmp_path)

    assert list(saved.files) == ["model.pkl"]
    assert saved.loader["format"] == "pickle"
    assert "has instance state and no get_config()" in saved.loader["reason"]

    with pytest.raises(UntrustedArtifact, match="unpickling runs arbitrary code") as refused:
        FLAVOR.load(tmp_path, saved.loader)
    assert "trusted=True only if you trust who wrote it" in str(refused.value)
    assert "get_config()" in str(refused.value)

    loaded = FLAVOR.load(tmp_path, saved.loader, trusted=True)
    assert loaded.predict(frame) == [1.5, 0.0, 3.5]


def test_local_class_that_pickle_cannot_save_is_refused_with_the_reason(tmp_path: Path) -> None:
    class Local:
        def predict(self, df: Any) -> Any:
            return df

    with pytest.raises(InvalidInput, match="is defined inside a function.*pickle cannot save it"):
        FLAVOR.save(Local(), tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_get_config_must_be_json_safe(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match=r"get_config\(\) must return a dict of JSON values"):
        FLAVOR.save(BadConfig(), tmp_path)


def test_corrupt_pickle_is_invalid_input_naming_the_file(tmp_path: Path) -> None:
    (tmp_path / "model.pkl").write_bytes(b"not a pickle")
    with pytest.raises(InvalidInput, match=r"model\.pkl could not be unpickled"):
        FLAVOR.load(tmp_path, {"format": "pickle"}, trusted=True)


@pytest.mark.parametrize(
    ("loader", "message"),
    [
        ({"function": "os:system"}, "points into the standard library"),
        ({"function": "builtins:eval"}, "points into the standard library"),
        ({"callable": "subprocess:Popen", "init": {"args": "true"}}, "points into the standard library"),
        ({"callable": f"{MODULE}:RowCount", "init": {"x": 1}}, "has no get_config"),
        ({"callable": f"{MODULE}:double_first_column"}, "is not a class with a predict method"),
        ({"function": f"{MODULE}:ScaledSum"}, "is not a Python function"),
        ({"callable": "no_such_package.models:Model"}, "cannot be imported"),
        ({"function": "no-colon"}, "must look like 'package.module:Name'"),
        ({}, "needs 'function', 'callable' or format 'pickle'"),
    ],
)
def test_tampered_or_broken_code_reference_is_refused(
    tmp_path: Path, loader: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidInput, match=message):
        FLAVOR.load(tmp_path, loader)


def test_handles_objects_with_predict_and_functions() -> None:
    assert FLAVOR.handles(RowCount())
    assert FLAVOR.handles(double_first_column)
    assert not FLAVOR.handles(RowCount)  # the class, not an instance
    assert not FLAVOR.handles(object())
