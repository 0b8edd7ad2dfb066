"""Hand a notebook variable from one step to the next as a file, in a format that loads without running code.

========================================  ==================  ==============================================
value                                     file                loaded with
========================================  ==================  ==============================================
None, bool, int, float, str, and lists,   ``value.json``      ``json`` (a tuple at the top comes back a tuple)
dicts (str keys) of them
pandas DataFrame, Series                  ``value.parquet``   ``pandas.read_parquet``
numpy array or scalar                     ``value.npy``       ``numpy.load(allow_pickle=False)``
scikit-learn estimator                    ``value.skops``     ``skops.io.load``: a type skops does not trust
                                                              is refused unless named in ``trusted``
torch tensor, or a dict of them           ``value.pt``        ``torch.load(weights_only=True)``
(a ``state_dict``)
anything else                             ``value.pickle``    only with ``allow_pickle=True``
========================================  ==================  ==============================================

An artifact is a folder: the value's file and ``shipyard-value.json`` (its format, type, variable and step).
Nothing is ever unpickled without ``allow_pickle=True``: a pickle runs arbitrary code when it loads.
"""

from __future__ import annotations

import json
import os
import pickle
import sys
from pathlib import Path
from typing import Any

import numpy as np

from shipyard.errors import PipelineError, UntrustedArtifact
from shipyard.pipelines.types import Artifact

META_FILE = "shipyard-value.json"
SAFE_KINDS = (
    "JSON values, pandas DataFrames and Series, numpy arrays, scikit-learn estimators and torch tensors"
)


def save_value(artifact: Artifact, value: Any, *, name: str, step: str, allow_pickle: bool = False) -> str:
    """Write ``value`` (the variable ``name`` of step ``step``) into ``artifact``; returns the format used.

    Raises:
        PipelineError: the value has no safe format (or its safe format failed) and ``allow_pickle`` is
            False; the message names the variable, the step and the value's type.
    """
    folder = Path(artifact.path)
    folder.mkdir(parents=True, exist_ok=True)
    kind = _type_name(value)
    meta: dict[str, Any] = {"type": kind, "variable": name, "step": step}
    try:
        fmt = _write_safe(folder, value, meta)
    except Exception as exc:  # pyarrow, numpy, skops: each raises its own kinds on a value it cannot write
        if not allow_pickle:
            raise PipelineError(
                f"step {step!r}: variable {name!r} ({kind}) could not be written safely: {exc}"
            ) from exc
        fmt = None
    if fmt is None:
        if not allow_pickle:
            raise PipelineError(
                f"step {step!r}: variable {name!r} is a {kind}, which cannot be handed to later steps "
                f"without pickling (safe: {SAFE_KINDS}); convert it, or allow pickling "
                "(`shipyard notebook run --allow-pickle`, or `to-pipeline --allow-pickle`)"
            )
        with open(folder / "value.pickle", "wb") as out:
            pickle.dump(value, out, protocol=pickle.HIGHEST_PROTOCOL)
        fmt = "pickle"
    meta["format"] = fmt
    (folder / META_FILE).write_text(json.dumps(meta, sort_keys=True), encoding="utf-8")
    return fmt


def load_value(artifact: Artifact, *, allow_pickle: bool = False, trusted: tuple[str, ...] = ()) -> Any:
    """Read a value :func:`save_value` wrote.

    Args:
        allow_pickle: load a pickled value (it runs arbitrary code as it loads).
        trusted: type names (``module.Class``) to load from a skops file although skops does not trust them.

    Raises:
        UntrustedArtifact: a pickle without ``allow_pickle``, or a skops file with types neither skops nor
            ``trusted`` trusts (each named).
        PipelineError: the folder holds no value written by a step.
    """
    folder = Path(artifact.path)
    try:
        meta = json.loads((folder / META_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise PipelineError(f"{artifact.path!r} holds no step value ({META_FILE}): {exc}") from exc
    fmt, where = meta.get("format"), f"variable {meta.get('variable')!r} of step {meta.get('step')!r}"
    if fmt == "json":
        data = json.loads((folder / "value.json").read_text(encoding="utf-8"))
        return tuple(data) if meta.get("tuple") else data
    if fmt == "parquet":
        import pandas as pd

        frame = pd.read_parquet(folder / "value.parquet")
        if meta.get("series"):
            return frame.iloc[:, 0].rename(meta.get("series_name"))
        return frame.set_axis(meta["columns"], axis=1) if "columns" in meta else frame
    if fmt == "npy":
        array = np.load(folder / "value.npy", allow_pickle=False)
        return array[()] if meta.get("scalar") else array
    if fmt == "skops":
        return _load_skops(folder / "value.skops", trusted, where)
    if fmt == "torch":
        import torch

        return torch.load(folder / "value.pt", weights_only=True)
    if fmt == "pickle":
        if not allow_pickle:
            raise UntrustedArtifact(
                f"{where} ({meta.get('type')}) was pickled, and loading a pickle runs arbitrary code; allow "
                "it only for pipelines you trust (`--allow-pickle`)"
            )
        with open(folder / "value.pickle", "rb") as handle:
            return pickle.load(handle)  # allow_pickle was given explicitly
    raise PipelineError(f"{where}: unknown format {fmt!r} in {artifact.path!r}")


def write_metrics(artifact: Artifact, values: dict[str, Any], *, step: str) -> dict[str, float]:
    """Write ``values`` as a ``Metrics`` file (``{name: number}``); the executor logs them on the step's run.

    Raises:
        PipelineError: a value that is not a real number (naming the metric and its type).
    """
    numbers: dict[str, float] = {}
    for name, value in values.items():
        number = _as_number(value)
        if number is None:
            raise PipelineError(
                f"step {step!r}: metric {name!r} is a {_type_name(value)}, not a number; a metric is an int "
                "or a float"
            )
        numbers[name] = number
    Path(artifact.path).parent.mkdir(parents=True, exist_ok=True)
    Path(artifact.path).write_text(json.dumps(numbers), encoding="utf-8")
    return numbers


def _write_safe(folder: Path, value: Any, meta: dict[str, Any]) -> str | None:
    """Write ``value`` in its safe format and return the format's name; ``None`` when it has none."""
    if _json_plain(value) or (isinstance(value, tuple) and all(_json_plain(v) for v in value)):
        meta["tuple"] = isinstance(value, tuple)
        (folder / "value.json").write_text(json.dumps(list(value) if meta["tuple"] else value), "utf-8")
        return "json"
    pandas = sys.modules.get("pandas")  # a value can only be a DataFrame when pandas is imported
    if pandas is not None and isinstance(value, pandas.Series):
        meta["series"] = True
        meta["series_name"] = value.name if _json_plain(value.name) else None
        value.to_frame(name="value").to_parquet(folder / "value.parquet")
        return "parquet"
    if pandas is not None and isinstance(value, pandas.DataFrame):
        names = list(value.columns)
        if not all(type(n) is str for n in names) and all(_json_plain(n) for n in names):
            # Parquet takes only str column names; int ones (a DataFrame made from an array) come back.
            meta["columns"] = names
            value = value.set_axis([str(n) for n in names], axis=1)
        value.to_parquet(folder / "value.parquet")
        return "parquet"
    if isinstance(value, np.ndarray | np.generic):
        meta["scalar"] = isinstance(value, np.generic)
        with open(folder / "value.npy", "wb") as out:
            np.save(out, value, allow_pickle=False)
        return "npy"
    base = sys.modules.get("sklearn.base")
    if base is not None and isinstance(value, base.BaseEstimator):
        import skops.io

        skops.io.dump(value, folder / "value.skops")
        return "skops"
    torch = sys.modules.get("torch")
    if torch is not None and _is_tensors(value, torch):
        torch.save(value, folder / "value.pt")
        return "torch"
    return None


def _load_skops(path: Path, trusted: tuple[str, ...], where: str) -> Any:
    import skops.io

    untrusted = skops.io.get_untrusted_types(file=path)
    refused = [t for t in untrusted if t not in trusted]
    if refused:
        raise UntrustedArtifact(
            f"{where}: the skops file holds types skops does not trust: {', '.join(refused)}; if you trust "
            f"this pipeline's code, pass them with --trust (e.g. --trust {refused[0]})"
        )
    return skops.io.load(path, trusted=untrusted)


def _json_plain(value: Any) -> bool:
    """Whether JSON keeps ``value`` exactly (no tuples, no non-str keys, no subclasses like numpy's)."""
    if value is None or type(value) in (bool, int, float, str):
        return True
    if type(value) is list:
        return all(_json_plain(v) for v in value)
    if type(value) is dict:
        return all(type(k) is str and _json_plain(v) for k, v in value.items())
    return False


def _is_tensors(value: Any, torch: Any) -> bool:
    if isinstance(value, torch.Tensor):
        return True
    return (
        isinstance(value, dict)
        and bool(value)
        and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in value.items())
    )


def _as_number(value: Any) -> float | None:
    if isinstance(value, bool | np.bool_):
        return None
    if isinstance(value, int | float | np.integer | np.floating):
        return float(value)
    item = getattr(value, "item", None)  # a 0-d numpy array or torch tensor
    if callable(item) and getattr(value, "ndim", None) == 0:
        return _as_number(item())
    return None


def _type_name(value: Any) -> str:
    kind = type(value)
    return kind.__qualname__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}"


def value_format(folder: str | os.PathLike[str]) -> str | None:
    """The format of the value saved in ``folder`` (``json``, ``parquet``…), or None when it holds none."""
    try:
        return json.loads((Path(folder) / META_FILE).read_text(encoding="utf-8")).get("format")
    except (OSError, ValueError):
        return None
