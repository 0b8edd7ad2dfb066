"""The XGBoost flavor: a ``Booster`` or a scikit-learn wrapper saved in XGBoost's own UBJSON format.

``model.ubj`` holds the trees and, for the scikit-learn wrappers, the wrapper's attributes (XGBoost writes
them itself). Loading it runs no code: no pickle is involved, so ``trusted`` is never needed.

NOTE: this module is named like the library it wraps. ``import xgboost`` inside a function is an absolute
import and finds the real package; never import it at module level, so ``import shipyard`` stays fast.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from types import ModuleType
from typing import Any, ClassVar

from shipyard.errors import InvalidInput
from shipyard.registry.flavors.base import SavedModel, derives_from, exported_class, installed_pins

MODEL_FILE = "model.ubj"
_BOOSTER = "Booster"


def _import_xgboost() -> ModuleType:
    try:
        import xgboost
    except ImportError as exc:
        raise InvalidInput(
            "the xgboost flavor needs XGBoost, which is not installed: pip install xgboost"
        ) from exc
    return xgboost


def _public_class(xgboost: ModuleType, model: Any) -> type:
    """The class XGBoost exports that ``model`` is (``XGBClassifier`` for a user subclass)."""
    return exported_class(
        xgboost, model, (xgboost.Booster, xgboost.XGBModel), "save model.get_booster() instead"
    )


class XGBoostPredictor:
    """A loaded XGBoost model.

    Attributes:
        model: the native object: the scikit-learn wrapper it was saved as, or an ``xgboost.Booster``.
    """

    def __init__(self, model: Any) -> None:
        self.model = model

    def predict(self, data: Any) -> Any:
        """Predict like the original: labels for a classifier wrapper, the booster's output for a ``Booster``.

        ``data`` is a DataFrame, an array or (for a ``Booster``) an ``xgboost.DMatrix``.
        """
        xgboost = _import_xgboost()
        if not isinstance(self.model, xgboost.Booster):
            return self.model.predict(data)
        return self.model.predict(self._dmatrix(xgboost, data))

    def _dmatrix(self, xgboost: ModuleType, data: Any) -> Any:
        if isinstance(data, xgboost.DMatrix):
            return data
        booster = self.model
        categorical = any(kind == "c" for kind in booster.feature_types or ())
        if hasattr(data, "columns"):  # a DataFrame carries its own feature names
            return xgboost.DMatrix(data, enable_categorical=categorical)
        return xgboost.DMatrix(data, feature_names=booster.feature_names, feature_types=booster.feature_types)


class XGBoostClassifierPredictor(XGBoostPredictor):
    """A loaded XGBoost classifier wrapper; adds ``predict_proba``."""

    def predict_proba(self, data: Any) -> Any:
        """Class probabilities, one column per class in ``model.classes_`` order."""
        return self.model.predict_proba(data)

    @property
    def classes(self) -> list[Any]:
        """The class labels, in the column order of ``predict_proba``."""
        return list(self.model.classes_.tolist())


class XGBoostFlavor:
    """Saves ``xgboost.Booster`` and the scikit-learn wrappers (``XGBClassifier``, ``XGBRegressor``, …).

    ``loader`` records ``wrapper`` (the XGBoost class to recreate, ``"Booster"`` for a raw booster) and, for
    classifiers, ``n_classes`` and ``classes``, checked against the loaded model.
    """

    name: ClassVar[str] = "xgboost"

    def handles(self, model: Any) -> bool:
        """True for a ``Booster`` or an ``XGBModel`` (or a subclass of either), judged without importing."""
        return derives_from(model, "xgboost", (_BOOSTER, "XGBModel"))

    def save(self, model: Any, directory: Path, *, input_example: Any | None = None) -> SavedModel:
        """Write ``model.ubj`` with ``save_model``. ``input_example`` is not needed."""
        xgboost = _import_xgboost()
        cls = _public_class(xgboost, model)
        loader: dict[str, Any] = {"wrapper": cls.__name__}
        try:
            model.save_model(str(directory / MODEL_FILE))
        except (ValueError, AttributeError) as exc:  # sklearn's NotFittedError is both
            raise InvalidInput(f"cannot save {type(model).__qualname__}: {exc}") from exc
        if issubclass(cls, xgboost.XGBClassifier):
            loader.update(n_classes=int(model.n_classes_), classes=model.classes_.tolist())
        return SavedModel(
            files=[MODEL_FILE], loader=loader, requirements=installed_pins("xgboost", "xgboost-cpu")[:1]
        )

    def load(self, directory: Path, loader: Mapping[str, Any], *, trusted: bool = False) -> XGBoostPredictor:
        """Recreate the recorded wrapper (or ``Booster``) and ``load_model`` into it; no unpickling."""
        xgboost = _import_xgboost()
        wrapper = str(loader.get("wrapper", _BOOSTER))
        cls = getattr(xgboost, wrapper, None)
        if not (isinstance(cls, type) and issubclass(cls, (xgboost.Booster, xgboost.XGBModel))):
            raise InvalidInput(f"loader.wrapper {wrapper!r} is not an XGBoost model class")
        path = directory / MODEL_FILE
        model = cls()
        try:
            model.load_model(str(path))
        except (ValueError, TypeError) as exc:  # XGBoostError is a ValueError
            reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise InvalidInput(f"{path} is not a valid XGBoost {wrapper} model: {reason}") from exc
        if not issubclass(cls, xgboost.XGBClassifier):
            return XGBoostPredictor(model)
        expected = loader.get("n_classes")
        if expected is not None and int(expected) != model.n_classes_:
            raise InvalidInput(
                f"{path} holds a {model.n_classes_}-class model but loader.n_classes says {expected}"
            )
        return XGBoostClassifierPredictor(model)
