"""The PyTorch flavor: an ``nn.Module`` saved as TorchScript, or as safetensors weights plus a code reference.

Two formats, both loadable without unpickling arbitrary Python (``torch.load(weights_only=False)`` is never
used):

- ``torchscript`` (``model.pt``): ``torch.jit.script``, or ``torch.jit.trace`` on the input example when
  scripting fails. A trace that raises a ``TracerWarning`` (data-dependent control flow, tensors turned
  into Python values or NumPy arrays) is rejected: it would silently hard-code this example's path.
- ``state_dict`` (``model.safetensors``): the weights, plus ``module_factory`` (``"package.module:Class"``)
  and ``init`` (``Class(**init)`` rebuilds the module). Used when TorchScript fails or when asked for
  (``save(..., prefer="state_dict")``); the class must be importable and have ``get_config()`` or a
  constructor that takes no arguments.

NOTE: TorchScript is deprecated upstream; its ``DeprecationWarning`` is silenced here (while saving and
loading) because it is still the format that loads without running pickled code. ``warnings.catch_warnings``
changes process-wide state, so concurrent saves may see each other's warning filters.

NOTE: this module is named like the library it wraps. ``import torch`` inside a function is an absolute
import and finds the real package; never import it at module level, so ``import shipyard`` stays fast.
"""

from __future__ import annotations

import importlib
import inspect
import itertools
import json
import logging
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any, ClassVar, Literal

from shipyard.errors import InvalidInput
from shipyard.registry.flavors.base import SavedModel, installed_pins

TORCHSCRIPT_FILE = "model.pt"
STATE_DICT_FILE = "model.safetensors"
TORCHSCRIPT = "torchscript"
STATE_DICT = "state_dict"
_HINT = "pip install torch safetensors"

logger = logging.getLogger(__name__)


def _import_torch() -> ModuleType:
    try:
        import torch
    except ImportError as exc:
        raise InvalidInput(f"the torch flavor needs PyTorch, which is not installed: {_HINT}") from exc
    return torch


def _import_safetensors() -> ModuleType:
    try:
        import safetensors.torch  # binds the package; the submodule becomes its ``torch`` attribute
    except ImportError as exc:
        raise InvalidInput(
            f"the torch flavor stores weights with safetensors, which is not installed: {_HINT}"
        ) from exc
    return safetensors


def _is_torch_module(model: Any) -> bool:
    return any(
        cls.__name__ == "Module" and cls.__module__ == "torch.nn.modules.module"
        for cls in type(model).__mro__
    )


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


@contextmanager
def _quiet_torchscript_deprecation() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"`torch\.jit\.", category=DeprecationWarning)
        yield


def _resolve_device(torch: ModuleType, device: str) -> Any:
    """``"auto"`` → CUDA when available, else CPU; otherwise any torch device string (``"cuda:1"``)."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise InvalidInput(f"device {device!r} is not a torch device; use 'auto', 'cpu' or 'cuda'") from exc
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise InvalidInput(
            f"device {device!r} asked for, but CUDA is not available here; use 'cpu' or 'auto'"
        )
    return resolved


def _to_tensor(torch: ModuleType, data: Any, device: Any) -> Any:
    """A tensor as is; a DataFrame, array or nested list as a float32 tensor."""
    if isinstance(data, torch.Tensor):
        return data.to(device)
    import numpy as np

    try:
        array = data.to_numpy(dtype=np.float32) if hasattr(data, "columns") else np.asarray(data, np.float32)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"torch models take numeric input; cannot make a float32 tensor: {exc}") from exc
    return torch.from_numpy(np.ascontiguousarray(array)).to(device)


def _to_numpy(torch: ModuleType, output: Any) -> Any:
    if isinstance(output, torch.Tensor):
        return output.detach().cpu().numpy()
    if isinstance(output, tuple | list):
        return type(output)(_to_numpy(torch, item) for item in output)
    if isinstance(output, Mapping):
        return {key: _to_numpy(torch, value) for key, value in output.items()}
    return output


class TorchPredictor:
    """A loaded module in eval mode on ``device``.

    Attributes:
        module: the ``torch.jit.ScriptModule`` or rebuilt ``nn.Module``.
        device: the ``torch.device`` inputs are moved to.
    """

    def __init__(self, module: Any, device: Any) -> None:
        self.module = module
        self.device = device

    def predict(self, data: Any) -> Any:
        """Run the module under ``torch.no_grad()``.

        A DataFrame or array becomes a float32 tensor on ``device`` (a tensor is only moved); tensors in the
        output come back as NumPy arrays on the CPU (tuples, lists and dicts of them keep their shape).
        """
        torch = _import_torch()
        tensor = _to_tensor(torch, data, self.device)
        with torch.no_grad():
            return _to_numpy(torch, self.module(tensor))


class TorchFlavor:
    """Saves any ``torch.nn.Module`` (``torch.jit.ScriptModule`` included); see the module docstring.

    ``loader`` records ``format`` (``"torchscript"`` with ``method`` ``"script"`` or ``"trace"``, or
    ``"state_dict"`` with ``module_factory`` and ``init``) and may carry ``device`` (default ``"auto"``).
    """

    name: ClassVar[str] = "torch"

    def handles(self, model: Any) -> bool:
        """True for an ``nn.Module`` instance, judged from its class's MRO without importing torch."""
        return _is_torch_module(model)

    def save(
        self,
        model: Any,
        directory: Path,
        *,
        input_example: Any | None = None,
        prefer: Literal["torchscript", "state_dict"] = TORCHSCRIPT,
    ) -> SavedModel:
        """Write ``model.pt`` (TorchScript) or, failing that or if preferred, ``model.safetensors``.

        Args:
            model: the module; it is put in eval mode while scripting/tracing and restored afterwards.
            directory: the empty folder to write into.
            input_example: one input batch (DataFrame, array or tensor); needed only for tracing.
            prefer: ``"torchscript"`` (try scripting, then tracing, then the state dict) or ``"state_dict"``.

        Raises:
            InvalidInput: when no format works; the message says why each failed and what to change.
        """
        if prefer not in (TORCHSCRIPT, STATE_DICT):
            raise InvalidInput(f"prefer must be {TORCHSCRIPT!r} or {STATE_DICT!r}, got {prefer!r}")
        torch = _import_torch()
        failures: list[str] = []
        if prefer == TORCHSCRIPT:
            compiled = _torchscript(torch, model, input_example, failures)
            if compiled is not None:
                method, script = compiled
                with _quiet_torchscript_deprecation():
                    torch.jit.save(script, str(directory / TORCHSCRIPT_FILE))
                return SavedModel(
                    files=[TORCHSCRIPT_FILE],
                    loader={"format": TORCHSCRIPT, "method": method},
                    requirements=installed_pins("torch"),
                )
        reference = _code_reference(torch, model, failures)
        if reference is None:
            raise InvalidInput(
                f"cannot save {type(model).__qualname__}: " + "; ".join(failures) + ". Make forward() "
                "scriptable, pass an input_example it can be traced on, or define the class at module level "
                "(not in __main__ or a function) with get_config() returning its constructor keyword "
                "arguments or a constructor that takes none"
            )
        factory, init = reference
        _import_safetensors().torch.save_model(model, str(directory / STATE_DICT_FILE))
        return SavedModel(
            files=[STATE_DICT_FILE],
            loader={"format": STATE_DICT, "module_factory": factory, "init": init},
            requirements=installed_pins("torch", "safetensors"),
        )

    def load(
        self,
        directory: Path,
        loader: Mapping[str, Any],
        *,
        trusted: bool = False,
        device: str | None = None,
    ) -> TorchPredictor:
        """Load onto ``device`` (else ``loader["device"]``, else ``"auto"``: CUDA when available).

        TorchScript is read with ``torch.jit.load``; a state dict by importing ``module_factory`` (which must
        name an ``nn.Module`` subclass), calling it with ``init`` and loading the safetensors weights.
        Neither unpickles, so ``trusted`` is not needed.
        """
        torch = _import_torch()
        target = _resolve_device(torch, str(device if device is not None else loader.get("device", "auto")))
        kind = loader.get("format", TORCHSCRIPT)
        if kind == TORCHSCRIPT:
            module = _load_torchscript(torch, directory / TORCHSCRIPT_FILE, target)
        elif kind == STATE_DICT:
            module = _load_state_dict(torch, directory / STATE_DICT_FILE, loader, target)
        else:
            raise InvalidInput(f"loader.format {kind!r} is not {TORCHSCRIPT!r} or {STATE_DICT!r}")
        return TorchPredictor(module.to(target).eval(), target)


def _module_device(torch: ModuleType, module: Any) -> Any:
    for tensor in itertools.chain(module.parameters(), module.buffers()):
        return tensor.device
    return torch.device("cpu")


def _torchscript(
    torch: ModuleType, model: Any, input_example: Any | None, failures: list[str]
) -> tuple[str, Any] | None:
    """``("script" | "trace", ScriptModule)``, or None with the reasons appended to ``failures``."""
    was_training = model.training
    model.eval()  # NOTE: a trace in training mode would bake in dropout and batch statistics
    try:
        with _quiet_torchscript_deprecation():
            try:
                return "script", torch.jit.script(model)
            except Exception as exc:  # scripting fails in many ways: RuntimeError, OSError, …
                failures.append(f"torch.jit.script failed ({_first_line(exc)})")
            if input_example is None:
                failures.append("tracing needs an input_example")
                return None
            example = _to_tensor(torch, input_example, _module_device(torch, model))
            warnings.simplefilter("error", torch.jit.TracerWarning)
            try:
                traced = torch.jit.trace(model, example)
            except Exception as exc:  # a TracerWarning turned error surfaces as whatever torch wraps it in
                failures.append(f"torch.jit.trace failed ({_first_line(exc)})")
                return None
            logger.info("%s could not be scripted; saved a trace", type(model).__qualname__)
            return "trace", traced
    finally:
        model.train(was_training)


def _resolve(module_name: str, qualname: str) -> Any:
    target: Any = importlib.import_module(module_name)
    for part in qualname.split("."):
        target = getattr(target, part)
    return target


def _code_reference(torch: ModuleType, model: Any, failures: list[str]) -> tuple[str, dict[str, Any]] | None:
    """``("module:Class", init)`` that rebuilds ``model``'s architecture, or None with reasons appended."""
    cls = type(model)
    if cls.__module__ == "__main__" or "<locals>" in cls.__qualname__:
        failures.append(f"{cls.__qualname__} is defined in __main__ or a function, so it cannot be imported")
        return None
    try:
        importable = _resolve(cls.__module__, cls.__qualname__) is cls
    except (ImportError, AttributeError):
        importable = False
    if not importable:
        failures.append(f"{cls.__module__}:{cls.__qualname__} cannot be imported")
        return None
    init = _init_arguments(cls, model, failures)
    if init is None:
        return None
    factory = f"{cls.__module__}:{cls.__qualname__}"
    problem = _architecture_mismatch(torch, cls, init, model)
    if problem is not None:
        failures.append(f"{factory}(**init) does not rebuild the model: {problem}")
        return None
    return factory, init


def _init_arguments(cls: type, model: Any, failures: list[str]) -> dict[str, Any] | None:
    get_config = getattr(model, "get_config", None)
    if callable(get_config):
        config = get_config()
        if not isinstance(config, Mapping) or not all(isinstance(key, str) for key in config):
            failures.append("get_config() must return a dict of constructor keyword arguments")
            return None
        try:
            return json.loads(json.dumps(dict(config)))
        except (TypeError, ValueError) as exc:
            failures.append(f"get_config() returned values that are not JSON-safe ({exc})")
            return None
    try:
        parameters = inspect.signature(cls).parameters.values()
    except (TypeError, ValueError):
        parameters = None
    optional = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    if parameters is None or any(p.default is p.empty and p.kind not in optional for p in parameters):
        failures.append(f"{cls.__qualname__} has no get_config() and its constructor needs arguments")
        return None
    return {}


def _architecture_mismatch(torch: ModuleType, cls: type, init: Mapping[str, Any], model: Any) -> str | None:
    """Build ``cls(**init)`` (on the meta device when it allows) and compare its state-dict shapes."""
    try:
        with torch.device("meta"):
            probe = cls(**init)
    except Exception:  # some constructors compute on their tensors; the meta device cannot
        try:
            probe = cls(**init)
        except Exception as exc:  # the user's constructor may raise anything
            return f"the constructor raised {type(exc).__name__}: {_first_line(exc)}"
    want = {key: tuple(value.shape) for key, value in model.state_dict().items()}
    got = {key: tuple(value.shape) for key, value in probe.state_dict().items()}
    if want == got:
        return None
    differing = sorted(key for key in want.keys() | got.keys() if want.get(key) != got.get(key))
    return "state-dict entries differ: " + ", ".join(differing[:5])


def _load_torchscript(torch: ModuleType, path: Path, device: Any) -> Any:
    try:
        with _quiet_torchscript_deprecation():
            return torch.jit.load(str(path), map_location=device)
    except (RuntimeError, ValueError, OSError) as exc:
        raise InvalidInput(f"{path} is not a valid TorchScript archive: {_first_line(exc)}") from exc


def _load_state_dict(torch: ModuleType, path: Path, loader: Mapping[str, Any], device: Any) -> Any:
    reference = str(loader.get("module_factory", ""))
    module_name, _, qualname = reference.partition(":")
    if not module_name or not qualname:
        raise InvalidInput(f"loader.module_factory must look like 'package.module:Class', got {reference!r}")
    try:
        factory = _resolve(module_name, qualname)
    except (ImportError, AttributeError) as exc:
        raise InvalidInput(
            f"loader.module_factory {reference!r} cannot be imported ({exc}); install the code defining it"
        ) from exc
    # NOTE: only an nn.Module subclass is called, so a crafted MODEL.yaml cannot name e.g. subprocess:run.
    if not (isinstance(factory, type) and issubclass(factory, torch.nn.Module)):
        raise InvalidInput(f"loader.module_factory {reference!r} is not a torch.nn.Module subclass")
    init = loader.get("init") or {}
    if not isinstance(init, Mapping):
        raise InvalidInput(f"loader.init must be a mapping of constructor arguments, got {init!r}")
    try:
        module = factory(**init)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"{reference}(**loader.init) failed: {exc}") from exc
    safetensors = _import_safetensors()
    try:
        safetensors.torch.load_model(module, str(path), strict=True, device=str(device))
    except (safetensors.SafetensorError, RuntimeError, OSError) as exc:
        raise InvalidInput(
            f"{path} is not valid safetensors weights for {reference}: {_first_line(exc)}"
        ) from exc
    return module
