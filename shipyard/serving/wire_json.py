"""Tensor values as JSON ``data`` arrays in v2 REST messages: checked on the way in, flattened on the way out.

On the way in, ``data`` is flat or nested row-major (nested data must match the shape level by level) and
values are checked, never coerced: BOOL takes ``true``/``false``; INT*/UINT* take JSON integers in range
(``1.0`` is refused, as Triton does); FP* take numbers and the ``NaN``/``Infinity`` tokens, refusing a
finite value that overflows FP16/FP32 (a literal past float64, ``1e400``, already reads as infinity in
Python's json); BYTES takes strings, kept as ``str``. On the way out, ``data`` is flat row-major Python
scalars; BYTES elements go as strings, so bytes that are not UTF-8 are refused (the spec has no base64).
Pure logic.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

import numpy as np

from shipyard.errors import InvalidInput
from shipyard.serving.datatypes import DATATYPES

_NUMBER_TYPES = frozenset((int, float))


def json_type(value: Any) -> str:
    """How a JSON value's type reads in an error message (``an object``, ``null``, …)."""
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean", type(None): "null"}
    return names.get(type(value), "a number")


def values_from_json(data: Any, datatype: str, shape: tuple[int, ...], where: str) -> np.ndarray:
    """Checks a JSON ``data`` value against a datatype and shape and returns its values as a flat array.

    Args:
        data: the parsed ``data`` member (None when absent).
        datatype: the v2 datatype (a key of :data:`~shipyard.serving.datatypes.DATATYPES`).
        shape: the tensor's shape.
        where: names the tensor in error messages (``"input 'x'"``).

    Raises:
        InvalidInput: missing data, nesting that does not match ``shape``, a wrong element count, or the
            first value that does not fit ``datatype`` (its index and value named).
    """
    if data is None:
        raise InvalidInput(f"{where}: has no data (give data, or parameters.binary_data_size)")
    if not isinstance(data, list):
        raise InvalidInput(f"{where}: data must be an array, not {json_type(data)}")
    # The element types, collected in C: the per-element checks below run only when one is wrong.
    types = set(map(type, data))
    flat = _flatten(data, shape, where) if list in types else data
    if flat is not data:
        types = set(map(type, flat))
    count, dtype = math.prod(shape), DATATYPES[datatype]
    if len(flat) != count:
        raise InvalidInput(f"{where}: shape {list(shape)} holds {count} elements but data has {len(flat)}")
    if datatype == "BYTES":
        if not types <= {str}:
            _first_bad(flat, lambda v: type(v) is str, where, "a string (datatype BYTES)")
        out = np.empty(count, dtype=object)
        out[:] = flat
        return out
    if datatype == "BOOL":
        if not types <= {bool}:
            _first_bad(flat, lambda v: type(v) is bool, where, "true or false (datatype BOOL)")
        return np.array(flat, dtype=dtype)
    if dtype.kind in "iu":
        if not types <= {int}:
            _first_bad(flat, lambda v: type(v) is int, where, f"an integer (datatype {datatype})")
        info = np.iinfo(dtype)
        if flat and (min(flat) < info.min or max(flat) > info.max):
            bounds = f"in {datatype}'s range [{info.min}, {info.max}]"
            _first_bad(flat, lambda v: info.min <= v <= info.max, where, bounds)
        return np.array(flat, dtype=dtype)
    if not types <= _NUMBER_TYPES:
        _first_bad(flat, lambda v: type(v) in _NUMBER_TYPES, where, f"a number (datatype {datatype})")
    try:
        wide = np.array(flat, dtype=np.float64)
    except OverflowError:  # a Python int past float64's range
        _first_bad(flat, _fits_float64, where, f"in {datatype}'s range")
        raise
    with np.errstate(over="ignore"):
        out = wide.astype(dtype)
    overflow = np.isinf(out) & np.isfinite(wide)
    if overflow.any():
        index = int(np.argmax(overflow))
        raise InvalidInput(f"{where}: element {index} is {flat[index]!r}, which overflows {datatype}")
    return out


def values_to_json(flat: np.ndarray, datatype: str, where: str) -> list[Any]:
    """A flat array's values as JSON-ready Python scalars (BYTES as ``str``).

    Raises:
        InvalidInput: a BYTES element that is neither str nor bytes, or bytes that are not UTF-8.
    """
    if datatype != "BYTES":
        return flat.tolist()
    out: list[Any] = []
    for index, item in enumerate(flat.tolist()):
        if isinstance(item, bytes):
            try:
                item = item.decode("utf-8")
            except UnicodeDecodeError:
                raise InvalidInput(
                    f"{where}: BYTES element {index} is not valid UTF-8, which JSON cannot carry; "
                    "request this output as binary (parameters.binary_data: true)"
                ) from None
        elif not isinstance(item, str):
            raise InvalidInput(f"{where}: BYTES element {index} is {type(item).__name__}, not str or bytes")
        out.append(item)
    return out


def _flatten(data: list[Any], shape: tuple[int, ...], where: str) -> list[Any]:
    """Nested ``data`` (some item is a list) as a flat list, checked level by level against ``shape``."""
    if not shape:
        raise InvalidInput(f"{where}: data nests deeper than shape []; give [value]")
    flat: list[Any] = []

    def walk(node: Any, depth: int, path: str) -> None:
        if not isinstance(node, list) or len(node) != shape[depth]:
            got = f"{len(node)} items" if isinstance(node, list) else "a scalar"
            raise InvalidInput(
                f"{where}: nested data does not match shape {list(shape)}: "
                f"data{path} has {got}, expected {shape[depth]}"
            )
        if depth < len(shape) - 1:
            for position, child in enumerate(node):
                walk(child, depth + 1, f"{path}[{position}]")
        elif any(isinstance(item, list) for item in node):  # the innermost level: values, no paths built
            position = next(i for i, item in enumerate(node) if isinstance(item, list))
            raise InvalidInput(f"{where}: data{path}[{position}] nests deeper than shape {list(shape)}")
        else:
            flat.extend(node)

    walk(data, 0, "")
    return flat


def _first_bad(flat: list[Any], ok: Callable[[Any], bool], where: str, expected: str) -> None:
    for index, value in enumerate(flat):
        if not ok(value):
            shown = str(value if type(value) in (int, float) else json.dumps(value))
            shown = shown if len(shown) <= 60 else f"{shown[:57]}..."
            raise InvalidInput(f"{where}: element {index} is {shown}, not {expected}")


def _fits_float64(value: int | float) -> bool:
    try:
        float(value)
    except OverflowError:
        return False
    return True
