"""MLflow packages (an ``MLmodel`` and its files), logged by MLflow's client and registered as they are.

Shipyard never writes one; it loads the scikit-learn ones. MLflow 3 saves scikit-learn models with skops by
default: those load as Shipyard's own do, through skops with the same type allow-list (no trust needed). A
pickled (``pickle``/``cloudpickle``) one runs code from the file when unpickled, so it loads only with
``trusted=True``. Other MLflow flavors (a custom ``python_function``, PyTorch, …) need MLflow itself:
``mlflow.pyfunc.load_model`` after downloading the verified files.
"""

from __future__ import annotations

import pickle
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any, ClassVar

from shipyard.errors import InvalidInput, UntrustedArtifact
from shipyard.registry.flavors.base import Predictor, SavedModel

MLMODEL = "MLmodel"
_PICKLES = ("pickle", "cloudpickle")


class MlflowFlavor:
    name: ClassVar[str] = "mlflow"

    def handles(self, model: Any) -> bool:
        return False  # MLflow's client writes these packages; Shipyard saves models in its own flavors

    def save(self, model: Any, directory: Path, *, input_example: Any | None = None) -> SavedModel:
        raise InvalidInput("MLflow packages are logged by MLflow's client; Shipyard saves its own flavors")

    def load(self, directory: Path, loader: Mapping[str, Any], *, trusted: bool = False) -> Predictor:
        """The scikit-learn model of an MLflow package.

        Raises:
            UntrustedArtifact: it is pickled and ``trusted`` is False, or its skops file names types outside
                the allow-list.
            InvalidInput: no readable ``MLmodel``, or no scikit-learn flavor in it (the flavors it has named).
        """
        import yaml

        from shipyard.registry.flavors import sklearn

        try:
            mlmodel = yaml.safe_load((directory / MLMODEL).read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise InvalidInput(f"the MLflow package has no readable {MLMODEL}: {exc}") from exc
        flavors = mlmodel.get("flavors") if isinstance(mlmodel, dict) else None
        if not isinstance(flavors, dict):
            raise InvalidInput(f"{MLMODEL} lists no flavors")
        facts = flavors.get("sklearn")
        if not isinstance(facts, dict):
            raise InvalidInput(
                f"this MLflow package has flavors {', '.join(sorted(flavors))}; Shipyard loads MLflow's "
                "sklearn flavor only: load it with mlflow.pyfunc.load_model after `shipyard models download`"
            )
        path = _inside(directory, facts.get("pickled_model"))
        form = str(facts.get("serialization_format") or "")
        if form == "skops":
            estimator = sklearn._load_estimator(path, trusted=trusted)
        elif form in _PICKLES:
            estimator = _unpickle(path, form, trusted=trusted)
        else:
            raise InvalidInput(f"{MLMODEL}: unknown sklearn serialization_format {form!r}")
        has_proba = hasattr(estimator, "predict_proba")
        return (sklearn.ProbabilisticSklearnPredictor if has_proba else sklearn.SklearnPredictor)(estimator)


def _inside(directory: Path, name: Any) -> Path:
    """The package file ``name`` (relative, no ``..``): an MLmodel cannot point outside its package."""
    if not isinstance(name, str) or not name:
        raise InvalidInput(f"{MLMODEL}: the sklearn flavor names no model file")
    rel = PurePosixPath(name)
    if rel.is_absolute() or ".." in rel.parts:
        raise InvalidInput(f"{MLMODEL}: model file {name!r} is not a path inside the package")
    return directory.joinpath(*rel.parts)


def _unpickle(path: Path, form: str, *, trusted: bool) -> Any:
    if not trusted:
        raise UntrustedArtifact(
            f"{path.name} is an MLflow model saved with {form}, and unpickling runs arbitrary code from the "
            "file. Pass trusted=True (shipyard serve --trusted, or trusted: true in deploy.yaml) only if you "
            "trust who logged it; MLflow 3 saves scikit-learn models with skops by default (off Databricks), "
            "which Shipyard loads without trust."
        )
    try:
        with path.open("rb") as fh:
            return pickle.load(fh)  # cloudpickle's output loads with pickle where cloudpickle is installed
    except (OSError, pickle.UnpicklingError, EOFError, ImportError, AttributeError) as exc:
        raise InvalidInput(f"{path} could not be unpickled: {exc}") from exc
