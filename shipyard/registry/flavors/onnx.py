"""The ``onnx`` flavor: an ``onnx.ModelProto`` saved as ``model.onnx`` and run with onnxruntime.

ONNX files hold a computation graph and weights, never Python code, so loading one needs no
``trusted=True``. :func:`open_session` and :class:`OnnxPredictor` are also what the sklearn flavor uses
when a model was exported to ONNX and loaded with ``prefer="onnx"``.

``onnx`` and ``onnxruntime`` are optional: they are imported on use, and a missing one raises
`InvalidInput` with the install hint ``pip install 'shipyard[onnx]'``.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import logging
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, ClassVar

from shipyard.errors import InvalidInput
from shipyard.processes import usable_cpus
from shipyard.registry.flavors.base import SavedModel, installed_pins, module_root

if TYPE_CHECKING:
    import numpy as np
    import onnxruntime

MODEL_FILE = "model.onnx"
INSTALL_HINT = "pip install 'shipyard[onnx]'"
DEVICES = ("cpu", "cuda")

_log = logging.getLogger(__name__)

# ONNX tensor element types -> numpy dtype names (what inputs are cast to before running).
_ELEMENT_DTYPES = {
    "tensor(float)": "float32",
    "tensor(double)": "float64",
    "tensor(float16)": "float16",
    "tensor(int64)": "int64",
    "tensor(int32)": "int32",
    "tensor(int16)": "int16",
    "tensor(int8)": "int8",
    "tensor(uint8)": "uint8",
    "tensor(bool)": "bool",
    "tensor(string)": "object",
}


def require(module: str, hint: str = INSTALL_HINT) -> ModuleType:
    """Import an optional dependency on use, or raise `InvalidInput` naming it with the install ``hint``."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        raise InvalidInput(f"{module} is not installed; install it with: {hint}") from exc


def open_session(
    path: Path, *, device: str = "cpu", threads: int | None = None
) -> onnxruntime.InferenceSession:
    """An onnxruntime session for ``path`` on ``device`` ("cpu" or "cuda"), with ``threads`` intra-op
    threads (default: the CPUs this process may use).

    "cuda" uses onnxruntime's CUDA provider when this onnxruntime build has it and falls back to the CPU
    (with a warning) when it does not. An unreadable or invalid file raises `InvalidInput` naming it.
    """
    if device not in DEVICES:
        raise InvalidInput(f"device must be one of {', '.join(DEVICES)}, got {device!r}")
    ort = require("onnxruntime")
    providers = ["CPUExecutionProvider"]
    if device == "cuda":
        if "CUDAExecutionProvider" in ort.get_available_providers():
            providers.insert(0, "CUDAExecutionProvider")
        else:
            _log.warning("device='cuda' asked for, but this onnxruntime has no CUDA provider; using the CPU")
    if not path.is_file():
        raise InvalidInput(f"ONNX model file {str(path)!r} does not exist")
    try:
        options = _session_options(ort, threads)
        return ort.InferenceSession(str(path), sess_options=options, providers=providers)
    except Exception as exc:  # onnxruntime raises its own pybind error types (InvalidProtobuf, Fail, …)
        raise InvalidInput(f"{path} is not a valid ONNX model: {exc}") from exc


def _session_options(ort: ModuleType, threads: int | None = None) -> onnxruntime.SessionOptions:
    if threads is not None and threads < 1:
        raise InvalidInput(f"threads must be at least 1, got {threads}")
    options = ort.SessionOptions()
    # onnxruntime sizes its thread pool by the machine's cores, not by those this process may use: a server
    # pinned to one core (taskset, a container's CPU limit) got a second pool thread that spun beside the
    # request threads on that core — 6-15% of a single-core server's throughput, measured.
    options.intra_op_num_threads = threads or usable_cpus()
    return options


class OnnxPredictor:
    """A loaded ONNX model. Thread-safe: onnxruntime sessions may be run concurrently.

    Inputs: a mapping of input name to array; a DataFrame (one input: its columns as one 2-D array; several
    inputs: one column per input, matched by name); or an array-like for a one-input model. Values are cast
    to the dtype each input declares (``tensor(float)`` → float32).
    """

    runtime = "onnx"

    def __init__(self, session: onnxruntime.InferenceSession) -> None:
        self.session = session
        self._inputs = {i.name: i for i in session.get_inputs()}
        self.input_names = list(self._inputs)
        self.output_names = [o.name for o in session.get_outputs()]

    def predict(self, data: Any) -> np.ndarray:
        """The model's first output."""
        return self.predict_all(data)[self.output_names[0]]

    def predict_all(self, data: Any) -> dict[str, Any]:
        """Every output, by name (arrays; ZipMap outputs stay lists of dicts)."""
        import numpy as np

        feeds = self._feeds(data)
        try:
            outputs = self.session.run(None, feeds)
        except Exception as exc:  # onnxruntime's pybind errors: wrong rank, shape or type
            raise InvalidInput(f"the ONNX model rejected the input: {exc}") from exc
        return {
            name: value if isinstance(value, list) else np.asarray(value)
            for name, value in zip(self.output_names, outputs, strict=True)
        }

    def _feeds(self, data: Any) -> dict[str, np.ndarray]:
        if isinstance(data, Mapping):
            missing = [name for name in self.input_names if name not in data]
            if missing:
                raise InvalidInput(
                    f"input is missing {', '.join(missing)}; the model's inputs are: "
                    f"{', '.join(self.input_names)}"
                )
            return {name: self._cast(name, data[name]) for name in self.input_names}
        if _is_dataframe(data) and len(self.input_names) > 1:
            columns = {str(c) for c in data.columns}
            missing = [name for name in self.input_names if name not in columns]
            if missing:
                raise InvalidInput(
                    f"the model has inputs {', '.join(self.input_names)}; the DataFrame lacks columns "
                    f"{', '.join(missing)}"
                )
            return {name: self._column(name, data[name]) for name in self.input_names}
        if len(self.input_names) > 1:
            raise InvalidInput(
                f"the model has {len(self.input_names)} inputs ({', '.join(self.input_names)}); pass a dict "
                "or a DataFrame with those columns"
            )
        name = self.input_names[0]
        return {name: self._cast(name, data.to_numpy() if _is_dataframe(data) else data)}

    def _dtype(self, name: str) -> str | None:
        return _ELEMENT_DTYPES.get(self._inputs[name].type)

    def _cast(self, name: str, value: Any) -> np.ndarray:
        import numpy as np

        try:
            return np.asarray(value, dtype=self._dtype(name))
        except (TypeError, ValueError) as exc:
            raise InvalidInput(
                f"input {name!r} cannot be converted to {self._inputs[name].type}: {exc}"
            ) from exc

    def _column(self, name: str, column: Any) -> np.ndarray:
        array = self._cast(name, column.to_numpy())
        rank = len(self._inputs[name].shape or ())
        return array.reshape(-1, 1) if rank == 2 else array


class OnnxFlavor:
    """Saves an ``onnx.ModelProto`` as ``model.onnx``; loads it into an onnxruntime session.

    ``save`` checks the graph with ``onnx.checker`` and, given an input example and an installed
    onnxruntime, runs the model on it so a model that cannot run fails at save time, not at serving time.
    """

    name: ClassVar[str] = "onnx"

    def handles(self, model: Any) -> bool:
        return type(model).__name__ == "ModelProto" and module_root(model) == "onnx"

    def save(self, model: Any, directory: Path, *, input_example: Any | None = None) -> SavedModel:
        onnx = require("onnx")
        try:
            onnx.checker.check_model(model)
        except onnx.checker.ValidationError as exc:
            raise InvalidInput(f"the ONNX model is not valid: {exc}") from exc
        path = directory / MODEL_FILE
        onnx.save_model(model, str(path))
        loader: dict[str, Any] = {
            "inputs": [i.name for i in model.graph.input],
            "outputs": [o.name for o in model.graph.output],
            "opset": {imp.domain or "ai.onnx": int(imp.version) for imp in model.opset_import},
        }
        if input_example is not None and importlib.util.find_spec("onnxruntime") is not None:
            try:
                OnnxPredictor(open_session(path)).predict_all(input_example)
            except InvalidInput as exc:
                path.unlink()
                raise InvalidInput(f"the ONNX model does not run on the input example: {exc}") from exc
            loader["verified_on_example"] = True
        return SavedModel(files=[MODEL_FILE], loader=loader, requirements=installed_pins("onnxruntime"))

    def load(
        self,
        directory: Path,
        loader: Mapping[str, Any],
        *,
        trusted: bool = False,
        device: str | None = None,
        threads: int | None = None,
    ) -> OnnxPredictor:
        """Load ``model.onnx``. ``trusted`` is accepted for the contract and not needed: ONNX holds no code.

        Args:
            device: "cpu" or "cuda"; defaults to ``loader["device"]``, else "cpu".
            threads: onnxruntime's intra-op threads (default: the CPUs this process may use); batch workers
                take their share.
        """
        del trusted
        chosen = device or str(loader.get("device", "cpu"))
        return OnnxPredictor(open_session(directory / MODEL_FILE, device=chosen, threads=threads))


def _is_dataframe(data: Any) -> bool:
    return module_root(data) == "pandas" and hasattr(data, "columns")
