"""The ``sklearn`` flavor: scikit-learn estimators saved with skops, plus an ONNX copy when one verifies.

Files: ``model.skops`` always; ``model.onnx`` when skl2onnx converts the model and onnxruntime reproduces
scikit-learn's predictions on the input example.

Security: skops never unpickles; it rebuilds objects from a JSON schema, importing and sometimes calling what
the file names. :meth:`SklearnFlavor.load` lets it build only what `skops_types` approves: scikit-learn model
classes (estimators and the trees, losses, kernels… they hold) and the NumPy/SciPy types skops trusts itself —
never a function or other callable, whatever the file's manifest records. Anything else — ``builtins.eval``,
``numpy.lib._datasource.open``, ``scipy.sparse.save_npz``, a class of your own — raises `UntrustedArtifact`
naming it unless the caller passes ``trusted=True``.
"""

from __future__ import annotations

import importlib.util
import io
import json
import logging
import threading
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from shipyard.errors import InvalidInput, UntrustedArtifact
from shipyard.registry.flavors.base import SavedModel, installed_pins, module_root
from shipyard.registry.flavors.onnx import INSTALL_HINT as ONNX_HINT
from shipyard.registry.flavors.onnx import MODEL_FILE as ONNX_FILE
from shipyard.registry.flavors.onnx import OnnxPredictor, open_session, require
from shipyard.registry.flavors.skops_types import refused_types

if TYPE_CHECKING:
    import numpy as np

MODEL_FILE = "model.skops"
INSTALL_HINT = "pip install 'skops>=0.10' (a Shipyard dependency)"
PREFERENCES = ("native", "onnx", "auto")

_log = logging.getLogger(__name__)


class SklearnPredictor:
    """A loaded estimator run by scikit-learn. ``predict`` takes a DataFrame or an array."""

    runtime = "native"

    def __init__(self, estimator: Any) -> None:
        self.estimator = estimator

    def predict(self, data: Any) -> np.ndarray:
        import numpy as np

        return np.asarray(self.estimator.predict(data))


class ProbabilisticSklearnPredictor(SklearnPredictor):
    """A `SklearnPredictor` whose estimator has ``predict_proba``."""

    def predict_proba(self, data: Any) -> np.ndarray:
        import numpy as np

        return np.asarray(self.estimator.predict_proba(data))

    @property
    def classes(self) -> list[Any] | None:
        """The class labels, in the column order of ``predict_proba`` (None if the estimator lacks them)."""
        classes = getattr(self.estimator, "classes_", None)
        return _labels(classes) if classes is not None else None


class SklearnOnnxPredictor:
    """The ONNX copy of an estimator, run by onnxruntime; shapes match scikit-learn's ``predict``."""

    runtime = "onnx"

    def __init__(self, model: OnnxPredictor, facts: Mapping[str, Any]) -> None:
        self.model = model
        self._facts = facts
        self._in_order: Any = None  # the last column Index found in training order

    def predict(self, data: Any) -> np.ndarray:
        outputs = self.model.predict_all(self._matrix(data))
        label = outputs[self._facts.get("label_output", self.model.output_names[0])]
        if self._facts.get("output_ndim") == 1 and label.ndim == 2 and label.shape[1] == 1:
            return label[:, 0]
        return label

    def _matrix(self, data: Any) -> Any:
        if module_root(data) != "pandas":
            return data
        names = self._facts.get("feature_names")
        if names and not (self._in_order is not None and data.columns.equals(self._in_order)):
            if data.columns.tolist() == list(names):
                self._in_order = data.columns  # equals() on the next frame's Index is half tolist()'s cost
            else:
                missing = [n for n in names if n not in data.columns]
                if missing:
                    raise InvalidInput(
                        f"input lacks columns {', '.join(missing)}; the model takes: {', '.join(names)}"
                    )
                data = data[list(names)]  # the ONNX graph takes one matrix: columns in training order
        return data.to_numpy()


class ProbabilisticSklearnOnnxPredictor(SklearnOnnxPredictor):
    """A `SklearnOnnxPredictor` with the classifier's verified probabilities output."""

    def predict_proba(self, data: Any) -> np.ndarray:
        return self.model.predict_all(self._matrix(data))[self._facts["proba_output"]]

    @property
    def classes(self) -> list[Any] | None:
        """The class labels recorded at export (None for a package exported before they were)."""
        classes = self._facts.get("classes")
        return list(classes) if classes is not None else None


class SklearnFlavor:
    """scikit-learn estimators and pipelines: skops file, optional verified ONNX copy."""

    name: ClassVar[str] = "sklearn"

    def handles(self, model: Any) -> bool:
        return module_root(model) == "sklearn" and not isinstance(model, type)

    def save(self, model: Any, directory: Path, *, input_example: Any | None = None) -> SavedModel:
        """Write ``model.skops`` and, when it verifies on ``input_example``, ``model.onnx``.

        ``loader["types"]`` records, for information, the types skops does not trust by default that this
        model needs (whoever writes a file writes its manifest too, so no type is trusted for being listed);
        ``loader["onnx"]`` says whether the ONNX copy exists, and if not, why.
        """
        sio = require("skops.io", INSTALL_HINT)
        path = directory / MODEL_FILE
        sio.dump(model, path)
        loader: dict[str, Any] = {"format": "skops", "types": sio.get_untrusted_types(file=path)}
        requirements = installed_pins("scikit-learn", "skops")
        loader["onnx"] = _export_onnx(model, directory, input_example)
        files = [MODEL_FILE]
        if loader["onnx"]["available"]:
            files.append(ONNX_FILE)
            requirements += installed_pins("skl2onnx", "onnxruntime")
        return SavedModel(files=files, loader=loader, requirements=requirements)

    def load(
        self,
        directory: Path,
        loader: Mapping[str, Any],
        *,
        trusted: bool = False,
        prefer: str = "native",
        threads: int | None = None,
    ) -> SklearnPredictor | SklearnOnnxPredictor:
        """Load the estimator (``prefer="native"``) or its ONNX copy (``prefer="onnx"``); ``"auto"`` takes
        the ONNX copy when the package has one (it is kept only when it reproduced scikit-learn's
        predictions at save time) and scikit-learn otherwise — what ``shipyard serve`` asks for.

        ``prefer="onnx"`` falls back to scikit-learn, with a warning, when the model has no verified ONNX
        copy; the returned object's ``runtime`` says which one runs. The ONNX path never reads the skops
        file, so it needs no type review. ``threads``: the ONNX session's intra-op threads (default: the
        CPUs this process may use).

        Raises:
            UntrustedArtifact: the skops file names an object `skops_types` does not approve (a function,
                another callable, a class outside the list) and ``trusted`` is False.
            InvalidInput: ``model.skops`` is not a valid skops file, or ``prefer`` is unknown.
        """
        if prefer not in PREFERENCES:
            raise InvalidInput(f"prefer must be one of {', '.join(PREFERENCES)}, got {prefer!r}")
        facts = loader.get("onnx") or {}
        # "auto" needs onnxruntime installed (the onnx extra); "onnx" without it says how to install it.
        has_runtime = importlib.util.find_spec("onnxruntime") is not None
        usable = prefer == "onnx" or (prefer == "auto" and has_runtime)
        if usable and facts.get("available"):
            runner = OnnxPredictor(open_session(directory / ONNX_FILE, threads=threads))
            cls = ProbabilisticSklearnOnnxPredictor if facts.get("proba_output") else SklearnOnnxPredictor
            return cls(runner, facts)
        if prefer == "onnx":
            _log.warning(
                "no ONNX copy of this model (%s); running it with scikit-learn",
                facts.get("reason", "not exported"),
            )
        estimator = _load_estimator(directory / MODEL_FILE, trusted=trusted)
        cls = ProbabilisticSklearnPredictor if hasattr(estimator, "predict_proba") else SklearnPredictor
        return cls(estimator)


# skops rebuilds objects through Python's ast; CPython 3.11 before 3.11.8 raises "AST constructor recursion
# depth mismatch" when two threads build ASTs at once (a server loading several versions). One at a time.
_SKOPS_LOADS = threading.Lock()


def _load_estimator(path: Path, *, trusted: bool) -> Any:
    sio = require("skops.io", INSTALL_HINT)
    # One read: the bytes reviewed are the bytes loaded.
    data = path.read_bytes()
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            schema = json.loads(archive.read("schema.json"))
        found = sio.get_untrusted_types(data=data)
    except Exception as exc:  # BadZipFile, KeyError, JSONDecodeError, RecursionError…: a non-skops file
        raise InvalidInput(f"{path} is not a readable skops file: {exc}") from exc
    refused = refused_types(schema, found)
    if refused and not trusted:
        named = "; ".join(f"{name} (as {', '.join(kinds) or 'no node'})" for name, kinds in refused.items())
        raise UntrustedArtifact(
            f"{path.name} asks skops to build objects Shipyard does not build without trusted=True: {named}. "
            "Without it, Shipyard builds only scikit-learn model classes (estimators and the trees, losses, "
            "kernels… they hold) and the NumPy/SciPy types skops trusts itself; never a function or other "
            "callable, which skops would call or hand to the model (at load or predict time, with arguments "
            "from the file), so the file may have been crafted to run code. Pass trusted=True only if you "
            "trust the file's origin."
        )
    try:
        with _SKOPS_LOADS:
            return sio.loads(data, trusted=found)
    except Exception as exc:  # skops raises TypeError/AttributeError/ImportError for a schema it cannot build
        raise InvalidInput(f"{path} could not be loaded by skops: {exc}") from exc


# ---------------------------------------------------------------------- ONNX export
def _export_onnx(model: Any, directory: Path, example: Any | None) -> dict[str, Any]:
    """Write ``model.onnx`` if skl2onnx converts ``model`` and onnxruntime matches it on ``example``."""
    import numpy as np

    if example is None:
        return _unavailable("no input_example was given, so the ONNX input type is unknown")
    matrix = _float_matrix(example)
    if matrix is None:
        return _unavailable(
            "the input example is not a numeric 2-D table (ONNX export needs one float tensor)"
        )
    for module in ("skl2onnx", "onnxruntime"):
        if importlib.util.find_spec(module) is None:
            return _unavailable(f"{module} is not installed ({ONNX_HINT})")
    from skl2onnx import to_onnx
    from sklearn.base import is_classifier

    classifier = is_classifier(model)
    try:
        proto = to_onnx(model, matrix[:1], options={"zipmap": False} if classifier else None)
    except Exception as exc:  # skl2onnx raises RuntimeError, NameError, MissingShapeCalculator…
        return _unavailable(f"skl2onnx cannot convert {type(model).__name__}: {_first_line(exc)}")
    path = directory / ONNX_FILE
    path.write_bytes(proto.SerializeToString())
    facts: dict[str, Any] = {"available": True, "verified_on_example": True}
    try:
        runner = OnnxPredictor(open_session(path))
        expected = np.asarray(model.predict(example))
        outputs = runner.predict_all(matrix)
        label = outputs[runner.output_names[0]]
        problem = _difference(
            expected,
            label.reshape(expected.shape) if label.size == expected.size else label,
            exact=classifier or expected.dtype.kind not in "fc",
        )
    except InvalidInput as exc:
        problem = f"onnxruntime cannot run the converted model: {exc}"
    if problem:
        path.unlink()
        return _unavailable(problem)
    facts |= {"label_output": runner.output_names[0], "output_ndim": expected.ndim}
    names = getattr(model, "feature_names_in_", None)
    if names is not None:
        facts["feature_names"] = [str(n) for n in names]
    proba = runner.output_names[1] if len(runner.output_names) > 1 else None
    if classifier and proba and hasattr(model, "predict_proba"):
        same = np.allclose(model.predict_proba(example), outputs[proba], rtol=1e-3, atol=1e-4)
        if same:
            facts["proba_output"] = proba
            if getattr(model, "classes_", None) is not None:
                facts["classes"] = _labels(model.classes_)
    return facts


def _labels(classes: Any) -> list[Any]:
    """Class labels as plain JSON values (numpy scalars become Python ones)."""
    values = classes.tolist() if hasattr(classes, "tolist") else list(classes)
    return [v.item() if hasattr(v, "item") else v for v in values]


def _unavailable(reason: str) -> dict[str, Any]:
    return {"available": False, "reason": reason}


def _float_matrix(example: Any) -> np.ndarray | None:
    import numpy as np

    if module_root(example) == "pandas":
        if example.ndim != 2 or any(dtype.kind not in "biuf" for dtype in example.dtypes):
            return None
        return example.to_numpy(dtype=np.float32)
    try:
        array = np.asarray(example)
    except (TypeError, ValueError):
        return None
    if array.ndim != 2 or array.dtype.kind not in "biuf":
        return None
    return array.astype(np.float32)


def _difference(expected: np.ndarray, got: np.ndarray, *, exact: bool) -> str | None:
    import numpy as np

    if expected.shape != got.shape:
        return f"ONNX output has shape {got.shape}, scikit-learn's predict {expected.shape}"
    if exact:
        differ = int(np.sum(expected != got))
        return (
            f"ONNX labels differ from scikit-learn's on {differ} of {expected.size} rows" if differ else None
        )
    if np.allclose(expected, got, rtol=1e-4, atol=1e-5):
        return None
    worst = float(np.max(np.abs(expected.astype(np.float64) - got.astype(np.float64))))
    return f"ONNX predictions differ from scikit-learn's by up to {worst:.3g} (rtol=1e-4, atol=1e-5)"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0][:300] if text else "") or type(exc).__name__
