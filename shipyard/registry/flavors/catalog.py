"""Which flavor saves a model, and the flavor named in a manifest."""

from __future__ import annotations

import importlib
from typing import Any

from shipyard.errors import InvalidInput
from shipyard.registry.flavors.base import Flavor

# name -> (module, class). Order matters for detection: specific families first, pyfunc last.
_FLAVORS: dict[str, tuple[str, str]] = {
    "sklearn": ("shipyard.registry.flavors.sklearn", "SklearnFlavor"),
    "xgboost": ("shipyard.registry.flavors.xgboost", "XGBoostFlavor"),
    "lightgbm": ("shipyard.registry.flavors.lightgbm", "LightGBMFlavor"),
    "torch": ("shipyard.registry.flavors.torch", "TorchFlavor"),
    "onnx": ("shipyard.registry.flavors.onnx", "OnnxFlavor"),
    "mlflow": ("shipyard.registry.flavors.mlflow", "MlflowFlavor"),  # loads only: MLflow's client logs them
    "pyfunc": ("shipyard.registry.flavors.pyfunc", "PyfuncFlavor"),
}


def flavor_names() -> list[str]:
    return list(_FLAVORS)


def get_flavor(name: str) -> Flavor:
    """The flavor called ``name``; `InvalidInput` lists the known ones."""
    if name not in _FLAVORS:
        raise InvalidInput(f"unknown flavor {name!r}; known flavors: {', '.join(_FLAVORS)}")
    module, cls = _FLAVORS[name]
    return getattr(importlib.import_module(module), cls)()


def flavor_for(model: Any) -> Flavor:
    """The first flavor that handles ``model``; `InvalidInput` if none does."""
    for name in _FLAVORS:
        flavor = get_flavor(name)
        if flavor.handles(model):
            return flavor
    raise InvalidInput(
        f"no flavor can save a {type(model).__module__}.{type(model).__name__}: "
        "give it a predict(data) method "
        f"(pyfunc) or pass flavor= one of {', '.join(_FLAVORS)}"
    )
