"""Values handed between a notebook's steps: each kind round-trips in its safe format, and nothing is pickled
or unpickled, nor an untrusted skops type loaded, without being allowed explicitly."""

from __future__ import annotations

import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from shipyard.errors import PipelineError, UntrustedArtifact
from shipyard.notebooks.marshal import load_value, save_value, value_format, write_metrics
from shipyard.pipelines.types import Artifact, Metrics


class HouseScaler(StandardScaler):
    """An estimator of a type skops does not know, so does not trust."""


def _round_trip(tmp_path: Path, value: object, **load: object) -> tuple[str, object]:
    artifact = Artifact(str(tmp_path / "value"))
    fmt = save_value(artifact, value, name="v", step="s", allow_pickle=bool(load.get("allow_pickle")))
    assert value_format(artifact.path) == fmt
    return fmt, load_value(artifact, **load)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("value", "fmt"),
    [
        ({"a": [1, 2.5, None, True, "x"]}, "json"),
        ((1, "two"), "json"),
        (pd.DataFrame({"a": [1, 2], "b": ["x", "y"]}, index=[10, 20]), "parquet"),
        (pd.Series([1.5, 2.5], name="price"), "parquet"),
        (pd.DataFrame(np.eye(2)), "parquet"),
        (np.arange(6).reshape(2, 3), "npy"),
        (np.float32(1.5), "npy"),
    ],
    ids=["json", "tuple", "dataframe", "series", "int-columns", "array", "numpy-scalar"],
)
def test_plain_values_round_trip_in_their_safe_format(tmp_path: Path, value: object, fmt: str) -> None:
    used, loaded = _round_trip(tmp_path, value)
    assert used == fmt
    if isinstance(value, pd.DataFrame | pd.Series):
        assert value.equals(loaded) and getattr(value, "name", None) == getattr(loaded, "name", None)
    elif isinstance(value, np.ndarray | np.generic):
        assert type(loaded) is type(value) and np.array_equal(loaded, value)
    else:
        assert loaded == value and type(loaded) is type(value)


def test_an_estimator_goes_through_skops_and_an_untrusted_type_needs_trust(tmp_path: Path) -> None:
    x = np.array([[0.0], [1.0], [2.0], [3.0]])
    model = LogisticRegression().fit(x, [0, 0, 1, 1])
    fmt, loaded = _round_trip(tmp_path / "a", model)
    assert fmt == "skops" and list(loaded.predict(x)) == [0, 0, 1, 1]

    scaler = HouseScaler().fit(x)
    artifact = Artifact(str(tmp_path / "b"))
    assert save_value(artifact, scaler, name="scaler", step="prep") == "skops"
    kind = f"{HouseScaler.__module__}.HouseScaler"
    with pytest.raises(UntrustedArtifact, match=f"variable 'scaler' of step 'prep'.*{kind}.*--trust"):
        load_value(artifact)
    assert isinstance(load_value(artifact, trusted=(kind,)), HouseScaler)


def test_a_value_without_a_safe_format_is_refused_unless_pickling_is_allowed(tmp_path: Path) -> None:
    artifact = Artifact(str(tmp_path / "gen"))
    with pytest.raises(PipelineError) as caught:
        save_value(artifact, {1: "int key"}, name="lookup", step="prep")
    assert "step 'prep': variable 'lookup' is a dict" in str(caught.value) and "--allow-pickle" in str(
        caught.value
    )
    with pytest.raises(PipelineError, match="variable 'when' is a datetime.date"):
        save_value(artifact, datetime.date(2024, 1, 2), name="when", step="prep")

    fmt, loaded = _round_trip(tmp_path / "p", {1: "int key"}, allow_pickle=True)
    assert fmt == "pickle" and loaded == {1: "int key"}
    with pytest.raises(UntrustedArtifact, match="variable 'v' of step 's' \\(dict\\) was pickled"):
        load_value(Artifact(str(tmp_path / "p" / "value")))


def test_an_object_array_is_not_written_with_pickle_inside(tmp_path: Path) -> None:
    with pytest.raises(PipelineError, match="variable 'v' \\(numpy.ndarray\\) could not be written safely"):
        save_value(Artifact(str(tmp_path / "o")), np.array([{}, []], dtype=object), name="v", step="s")


def test_torch_tensors_load_with_weights_only(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    state = {"weight": torch.ones(2, 2), "bias": torch.zeros(2)}
    fmt, loaded = _round_trip(tmp_path, state)
    assert fmt == "torch" and torch.equal(loaded["weight"], state["weight"])
    with pytest.raises(PipelineError, match="variable 'net' is a torch.nn.modules.linear.Linear"):
        save_value(Artifact(str(tmp_path / "m")), torch.nn.Linear(2, 2), name="net", step="fit")


def test_metrics_are_numbers(tmp_path: Path) -> None:
    artifact = Metrics(str(tmp_path / "metrics"))
    assert write_metrics(artifact, {"acc": np.float64(0.5), "n": 3}, step="m") == {"acc": 0.5, "n": 3.0}
    with pytest.raises(PipelineError, match="step 'm': metric 'names' is a list, not a number"):
        write_metrics(artifact, {"names": ["a"]}, step="m")
