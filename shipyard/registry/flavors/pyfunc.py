"""The ``pyfunc`` flavor: any Python object with ``predict(df)``, or a module-level ``predict`` function.

Secure by default, models are saved as a *code reference*, never as code:

* a module-level function: ``loader = {"function": "package.module:predict"}``;
* an instance of an importable class (not ``__main__``, not defined inside a function) that either
  implements the **config protocol** — ``get_config() -> dict`` of JSON-safe values such that
  ``cls(**obj.get_config())`` recreates the object — or has no instance state and a no-argument
  constructor: ``loader = {"callable": "package.module:ClassName", "init": {...}}``.

Loading a code reference imports the module from *your environment* — the installed package, not the
model folder — and calls ``cls(**init)`` with JSON values, so a package cannot carry code in. The reference
itself is a name stored in MODEL.yaml; to keep a tampered one from naming something dangerous, load refuses
references into the standard library and requires the target to still follow the protocol (a class with
``predict``, and ``get_config`` when ``init`` is not empty; or a plain Python function).

Anything else falls back to plain ``pickle`` (``model.pkl``, ``loader = {"format": "pickle"}``), which runs
arbitrary code on load, so :meth:`PyfuncFlavor.load` refuses it without ``trusted=True``.
"""

from __future__ import annotations

import importlib
import inspect
import json
import pickle
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar

from shipyard.errors import InvalidInput, UntrustedArtifact
from shipyard.registry.flavors.base import Predictor, SavedModel

PICKLE_FILE = "model.pkl"


class FunctionPredictor:
    """A module-level ``predict(data)`` function as a predictor."""

    def __init__(self, function: Callable[[Any], Any]) -> None:
        self.function = function

    def predict(self, data: Any) -> Any:
        return self.function(data)


class PyfuncFlavor:
    """Generic Python models: code reference (function, or class + JSON config), else trusted-only pickle."""

    name: ClassVar[str] = "pyfunc"

    def handles(self, model: Any) -> bool:
        if inspect.isfunction(model):
            return True
        return not isinstance(model, type) and callable(getattr(model, "predict", None))

    def save(self, model: Any, directory: Path, *, input_example: Any | None = None) -> SavedModel:
        """Save a code reference when possible, else ``model.pkl`` (``loader["reason"]`` says why).

        Raises:
            InvalidInput: a function that is not module-level (lambda, nested, ``__main__``), a
                ``get_config()`` that does not return a JSON-safe dict, or an object pickle cannot save.
        """
        del input_example
        if inspect.isfunction(model):
            reference, problem = _reference(model)
            if reference is None:
                raise InvalidInput(
                    f"pyfunc saves functions by name and {model.__qualname__!r} {problem}; move "
                    "it to a module-level function in an importable module"
                )
            return SavedModel(files=[], loader={"function": reference})
        cls = type(model)
        reference, problem = _reference(cls)
        if reference is not None:
            if callable(getattr(model, "get_config", None)):
                return SavedModel(files=[], loader={"callable": reference, "init": _config(model)})
            if _is_stateless(model):
                return SavedModel(files=[], loader={"callable": reference, "init": {}})
            problem = "has instance state and no get_config() method"
        return _save_pickle(model, directory, reason=f"class {cls.__qualname__!r} {problem}")

    def load(self, directory: Path, loader: Mapping[str, Any], *, trusted: bool = False) -> Predictor:
        """Import a code reference, or unpickle ``model.pkl`` when ``trusted`` is True.

        Raises:
            UntrustedArtifact: the model was pickled and ``trusted`` is False.
            InvalidInput: the referenced module or name cannot be imported, does not follow the protocol,
                or the pickle file is unreadable.
        """
        if "function" in loader:
            function = _resolve(str(loader["function"]))
            if not inspect.isfunction(function):
                raise InvalidInput(f"code reference {loader['function']!r} is not a Python function")
            return FunctionPredictor(function)
        if "callable" in loader:
            return _construct(str(loader["callable"]), loader.get("init") or {})
        if loader.get("format") == "pickle":
            return _load_pickle(directory / PICKLE_FILE, trusted=trusted)
        raise InvalidInput(
            "pyfunc loader needs 'function', 'callable' or format 'pickle'; got keys: "
            f"{', '.join(sorted(loader)) or 'none'}"
        )


# ---------------------------------------------------------------------- code references
def _reference(target: Any) -> tuple[str | None, str]:
    """``("module:QualName", "")`` if ``target`` can be imported back by name, else ``(None, why not)``."""
    module, qualname = getattr(target, "__module__", None), getattr(target, "__qualname__", "")
    if not module or module == "__main__":
        return None, "is defined in __main__ (a script or notebook), which cannot be imported by name"
    if "<locals>" in qualname or "<lambda>" in qualname:
        return None, "is defined inside a function or is a lambda"
    try:
        found = _resolve(f"{module}:{qualname}")
    except InvalidInput:
        return None, f"cannot be imported back as {module}:{qualname}"
    if found is not target:
        return None, f"is not what {module}:{qualname} names"
    return f"{module}:{qualname}", ""


def _resolve(reference: str) -> Any:
    module_name, _, qualname = reference.partition(":")
    if not module_name or not qualname:
        raise InvalidInput(f"code reference {reference!r} must look like 'package.module:Name'")
    if module_name.split(".")[0] in sys.stdlib_module_names:
        raise InvalidInput(
            f"code reference {reference!r} points into the standard library; pyfunc models "
            "must live in your own package"
        )
    try:
        target: Any = importlib.import_module(module_name)
        for part in qualname.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError) as exc:
        raise InvalidInput(
            f"code reference {reference!r} cannot be imported ({exc}); install the package "
            "that defines the model in this environment"
        ) from exc
    return target


def _construct(reference: str, init: Any) -> Any:
    cls = _resolve(reference)
    if not isinstance(cls, type) or not callable(getattr(cls, "predict", None)):
        raise InvalidInput(f"code reference {reference!r} is not a class with a predict method")
    if not isinstance(init, Mapping):
        raise InvalidInput(f"loader field 'init' must be a mapping, got {type(init).__name__}")
    if init and not callable(getattr(cls, "get_config", None)):
        raise InvalidInput(f"{reference} has no get_config(), so it cannot be built from a saved config")
    try:
        return cls(**init)
    except TypeError as exc:
        raise InvalidInput(f"{reference}(**init) failed: {exc}; does get_config() match __init__?") from exc


def _config(model: Any) -> dict[str, Any]:
    config = model.get_config()
    try:
        safe = isinstance(config, dict) and json.loads(json.dumps(config)) == config
    except (TypeError, ValueError):
        safe = False
    if not safe:
        raise InvalidInput(
            f"{type(model).__qualname__}.get_config() must return a dict of JSON values "
            "(str keys; str, number, bool, None, list, dict) that cls(**config) accepts"
        )
    return config


def _is_stateless(model: Any) -> bool:
    try:
        if vars(model):
            return False
    except TypeError:  # __slots__ without __dict__: state we cannot see
        return False
    try:
        signature = inspect.signature(type(model))
    except (TypeError, ValueError):
        return False
    return all(
        p.default is not p.empty or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        for p in signature.parameters.values()
    )


# ---------------------------------------------------------------------- pickle fallback
def _save_pickle(model: Any, directory: Path, *, reason: str) -> SavedModel:
    try:
        data = pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL)
    except (pickle.PicklingError, TypeError, AttributeError) as exc:
        raise InvalidInput(
            f"cannot save {type(model).__qualname__}: {reason}, and pickle cannot save it "
            f"({exc}); give the class get_config() so it is saved as code + config"
        ) from exc
    (directory / PICKLE_FILE).write_bytes(data)
    return SavedModel(files=[PICKLE_FILE], loader={"format": "pickle", "reason": reason})


def _load_pickle(path: Path, *, trusted: bool) -> Any:
    if not trusted:
        raise UntrustedArtifact(
            f"{path.name} is a pickle, and unpickling runs arbitrary code from the file. Pass trusted=True "
            "only if you trust who wrote it; or give the model's class get_config() (cls(**config) recreates "
            "it) so it is saved as a code reference + JSON config instead."
        )
    try:
        with path.open("rb") as fh:
            return pickle.load(fh)
    except (OSError, pickle.UnpicklingError, EOFError, ImportError, AttributeError) as exc:
        raise InvalidInput(f"{path} could not be unpickled: {exc}") from exc
