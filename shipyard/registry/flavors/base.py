"""The flavor contract: how one kind of model is saved to files and loaded back as a predictor.

A flavor never unpickles unless the caller passed ``trusted=True``; formats that cannot run code on load
(skops with a type allow-list, ONNX, XGBoost/LightGBM native files, TorchScript, safetensors) are the
default. Flavors write into a folder they are given and return what they wrote; the package layer
(``registry/package.py``) hashes the files, writes ``MODEL.yaml`` and verifies hashes before ``load``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from types import ModuleType
from typing import Any, ClassVar, Protocol, runtime_checkable

from shipyard.errors import InvalidInput


@dataclass(frozen=True)
class SavedModel:
    """What a flavor wrote.

    Attributes:
        files: paths relative to the package folder, primary file first.
        loader: flavor-specific facts ``load`` needs (JSON/YAML-safe values only), stored in MODEL.yaml.
        requirements: pinned pip requirements to run the model (``"scikit-learn==1.9.1"``).
    """

    files: Sequence[str]
    loader: Mapping[str, Any] = field(default_factory=dict)
    requirements: Sequence[str] = ()


@runtime_checkable
class Predictor(Protocol):
    """A loaded model. ``predict`` takes the (signature-checked) input and returns an array or DataFrame."""

    def predict(self, data: Any) -> Any: ...


class Flavor(Protocol):
    """One model family. Implementations are stateless; every method is thread-safe."""

    name: ClassVar[str]

    def handles(self, model: Any) -> bool:
        """True when this flavor can save ``model`` (checked by type, without importing heavy modules)."""
        ...

    def save(self, model: Any, directory: Path, *, input_example: Any | None = None) -> SavedModel:
        """Write ``model`` into ``directory`` (which exists and is empty)."""
        ...

    def load(self, directory: Path, loader: Mapping[str, Any], *, trusted: bool = False) -> Predictor:
        """Load from ``directory`` (hashes already verified). Raise `UntrustedArtifact` rather than unpickle
        without ``trusted=True``; raise `InvalidInput` naming the file if it is not a valid model."""
        ...


def installed_pins(*distributions: str) -> list[str]:
    """``name==version`` for each installed distribution (build labels like ``+cpu`` dropped); absent ones
    are skipped, so alternatives (``xgboost`` / ``xgboost-cpu``) can be listed together."""
    pins = []
    for distribution in distributions:
        try:
            version = metadata.version(distribution)
        except metadata.PackageNotFoundError:
            continue
        pins.append(f"{distribution}=={version.split('+')[0]}")
    return pins


def derives_from(model: Any, library: str, class_names: tuple[str, ...]) -> bool:
    """True when ``model``'s MRO has a class named in ``class_names`` from package ``library`` (no import)."""
    return any(
        cls.__module__.split(".")[0] == library and cls.__name__ in class_names for cls in type(model).__mro__
    )


def exported_class(library: ModuleType, model: Any, bases: tuple[type, ...], hint: str) -> type:
    """The first class in ``model``'s MRO that ``library`` exports and that derives from ``bases``
    (``XGBClassifier`` for a user subclass of it); `InvalidInput` with ``hint`` when there is none."""
    for cls in type(model).__mro__:
        if getattr(library, cls.__name__, None) is cls and issubclass(cls, bases):
            return cls
    raise InvalidInput(
        f"cannot save {type(model).__qualname__}: it derives from no class {library.__name__} exports "
        f"({', '.join(base.__name__ for base in bases)} or their subclasses); {hint}"
    )


def module_root(obj: Any) -> str:
    """The top-level package an object's class comes from (``sklearn``, ``xgboost``, ``torch``…)."""
    return type(obj).__module__.split(".")[0]
