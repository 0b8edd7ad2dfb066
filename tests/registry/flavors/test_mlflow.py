"""The mlflow flavor reads a package MLflow's client wrote; its MLmodel is hostile input: it cannot point
outside the package, and a pickle never loads without trust."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
from sklearn.linear_model import LogisticRegression

from shipyard.errors import InvalidInput, UntrustedArtifact
from shipyard.registry.flavors.mlflow import MlflowFlavor


def package(tmp_path: Path, model_file: str, form: str) -> Path:
    folder = tmp_path / "model"
    folder.mkdir(parents=True)
    (folder / "MLmodel").write_text(
        f"flavors:\n  sklearn:\n    pickled_model: {model_file}\n    serialization_format: {form}\n"
    )
    return folder


@pytest.mark.parametrize("escape", ["../outside.pkl", "/etc/passwd", "a/../../outside.pkl"])
def test_an_mlmodel_cannot_name_a_file_outside_its_package(tmp_path: Path, escape: str) -> None:
    (tmp_path / "outside.pkl").write_bytes(pickle.dumps(LogisticRegression()))
    with pytest.raises(InvalidInput, match="is not a path inside the package"):
        MlflowFlavor().load(package(tmp_path, escape, "pickle"), {}, trusted=True)


def test_a_pickled_model_loads_only_when_trusted(tmp_path: Path) -> None:
    folder = package(tmp_path, "model.pkl", "cloudpickle")
    model = LogisticRegression().fit([[0.0], [1.0], [2.0], [3.0]], [0, 0, 1, 1])
    (folder / "model.pkl").write_bytes(pickle.dumps(model))
    with pytest.raises(UntrustedArtifact, match="saved with cloudpickle, and unpickling runs arbitrary code"):
        MlflowFlavor().load(folder, {})
    assert MlflowFlavor().load(folder, {}, trusted=True).predict([[3.0]]).tolist() == [1]


def test_other_flavors_and_broken_mlmodels_are_named(tmp_path: Path) -> None:
    folder = tmp_path / "torch-model"
    folder.mkdir()
    (folder / "MLmodel").write_text("flavors:\n  pytorch: {}\n  python_function: {}\n")
    with pytest.raises(InvalidInput, match="has flavors python_function, pytorch; Shipyard loads MLflow's"):
        MlflowFlavor().load(folder, {})
    (folder / "MLmodel").write_text("flavors: [unclosed")
    with pytest.raises(InvalidInput, match="no readable MLmodel"):
        MlflowFlavor().load(folder, {})
    with pytest.raises(InvalidInput, match="unknown sklearn serialization_format 'joblib'"):
        MlflowFlavor().load(package(tmp_path / "j", "model.pkl", "joblib"), {}, trusted=True)
