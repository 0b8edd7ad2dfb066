"""The LightGBM flavor: a ``Booster`` or a scikit-learn wrapper saved as LightGBM's native text model.

``model.txt`` holds the trees only; what the scikit-learn wrapper adds on top (the class labels) is recorded
in ``loader``. Loading reads the text with ``lightgbm.Booster(model_file=…)``: no pickle, no ``trusted``.

NOTE: this module is named like the library it wraps. ``import lightgbm`` inside a function is an absolute
import and finds the real package; never import it at module level, so ``import shipyard`` stays fast.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any, ClassVar

from shipyard.errors import InvalidInput
from shipyard.registry.flavors.base import SavedModel, derives_from, exported_class, installed_pins

MODEL_FILE = "model.txt"
_BOOSTER = "Booster"
_CLASSIFIER = "LGBMClassifier"


def _import_lightgbm() -> ModuleType:
    try:
        import lightgbm
    except ImportError as exc:
        raise InvalidInput(
            "the lightgbm flavor needs LightGBM, which is not installed: pip install lightgbm"
        ) from exc
    return lightgbm


def _public_class(lightgbm: ModuleType, model: Any) -> type:
    """The class LightGBM exports that ``model`` is (``LGBMClassifier`` for a user subclass)."""
    return exported_class(
        lightgbm, model, (lightgbm.Booster, lightgbm.LGBMModel), "save model.booster_ instead"
    )


def _json_safe_classes(classes: Any) -> list[Any]:
    values = classes.tolist() if hasattr(classes, "tolist") else list(classes)
    for value in values:
        if not isinstance(value, str | int | float | bool):
            raise InvalidInput(
                f"cannot record class label {value!r} ({type(value).__name__}): the lightgbm flavor stores "
                "labels as str, int, float or bool; encode the labels before fitting"
            )
    return values


class LightGBMPredictor:
    """A loaded LightGBM model (not a classifier).

    Attributes:
        booster: the native ``lightgbm.Booster``.
    """

    def __init__(self, booster: Any) -> None:
        self.booster = booster

    def predict(self, data: Any) -> Any:
        """The booster's output for a DataFrame or array, as the original's ``predict`` returns it."""
        return self.booster.predict(data)


class LightGBMClassifierPredictor(LightGBMPredictor):
    """A loaded ``LGBMClassifier``: predicts the original labels and exposes ``predict_proba``.

    Attributes:
        classes: the class labels, in the column order of ``predict_proba``.
    """

    def __init__(self, booster: Any, classes: Sequence[Any]) -> None:
        super().__init__(booster)
        self.classes = list(classes)

    def predict(self, data: Any) -> Any:
        """The most probable label per row, as ``LGBMClassifier.predict`` returns it."""
        import numpy as np

        index = np.argmax(self.predict_proba(data), axis=1)
        return np.asarray(self.classes).take(index)

    def predict_proba(self, data: Any) -> Any:
        """Class probabilities, one column per entry of ``classes``."""
        import numpy as np

        result = self.booster.predict(data)
        if result.ndim == 1:  # binary: LightGBM returns P(classes[1]); argmax then means p > 0.5
            return np.vstack((1.0 - result, result)).transpose()
        return result


class LightGBMFlavor:
    """Saves ``lightgbm.Booster`` and the scikit-learn wrappers (``LGBMClassifier``, ``LGBMRegressor``, …).

    ``loader`` records ``wrapper`` (the LightGBM class the model was) and, for classifiers, ``classes`` (the
    labels as a JSON-safe list) so a loaded classifier predicts the original labels.
    """

    name: ClassVar[str] = "lightgbm"

    def handles(self, model: Any) -> bool:
        """True for a ``Booster`` or an ``LGBMModel`` (or a subclass of either), judged without importing."""
        return derives_from(model, "lightgbm", (_BOOSTER, "LGBMModel"))

    def save(self, model: Any, directory: Path, *, input_example: Any | None = None) -> SavedModel:
        """Write ``model.txt`` with ``Booster.save_model``. ``input_example`` is not needed."""
        lightgbm = _import_lightgbm()
        cls = _public_class(lightgbm, model)
        loader: dict[str, Any] = {"wrapper": cls.__name__}
        try:
            booster = model if isinstance(model, lightgbm.Booster) else model.booster_
        except (ValueError, AttributeError) as exc:  # sklearn's NotFittedError is both
            raise InvalidInput(f"cannot save {type(model).__qualname__}: {exc}") from exc
        # NOTE: with a custom objective LGBMClassifier.predict returns raw scores, not labels.
        if issubclass(cls, lightgbm.LGBMClassifier) and not callable(model.objective):
            loader["classes"] = _json_safe_classes(model.classes_)
        booster.save_model(str(directory / MODEL_FILE))
        return SavedModel(files=[MODEL_FILE], loader=loader, requirements=installed_pins("lightgbm"))

    def load(self, directory: Path, loader: Mapping[str, Any], *, trusted: bool = False) -> LightGBMPredictor:
        """Read ``model.txt`` into a ``lightgbm.Booster``; no unpickling."""
        lightgbm = _import_lightgbm()
        path = directory / MODEL_FILE
        try:
            booster = lightgbm.Booster(model_file=str(path))
        except lightgbm.basic.LightGBMError as exc:
            raise InvalidInput(f"{path} is not a valid LightGBM model: {exc}") from exc
        classes = loader.get("classes")
        if classes is None:
            return LightGBMPredictor(booster)
        if not isinstance(classes, Sequence) or isinstance(classes, str):
            raise InvalidInput(f"loader.classes must be a list of labels, got {classes!r}")
        expected = max(booster.num_model_per_iteration(), 2)
        if len(classes) != expected:
            raise InvalidInput(f"{path} holds a {expected}-class model but loader.classes has {len(classes)}")
        return LightGBMClassifierPredictor(booster, classes)
