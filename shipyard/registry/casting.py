"""Value conversion for signature enforcement: numpy/pandas values → a column's declared dtype.

Only safe casts pass (no precision loss, no silent truncation, no missing value where none is allowed);
the first value that cannot convert raises `InvalidInput` naming the column, the expected dtype and the
value. Pure functions over arrays; the signature types live in :mod:`shipyard.registry.signature`.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from shipyard.errors import InvalidInput

if TYPE_CHECKING:
    from shipyard.registry.signature import ColumnSpec

INT_DTYPES = ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64")
FLOAT_DTYPES = ("float16", "float32", "float64")
DATETIME = "datetime64[ns]"


def mask_or_none(missing: np.ndarray | None, out: np.ndarray) -> np.ndarray:
    return missing if missing is not None else np.zeros(out.shape, dtype=bool)


# -- enforcement: value conversion --------------------------------------------------------------------------


class _Rejected(Exception):
    """A value that cannot convert; ``reason`` says why (internal, becomes `InvalidInput`)."""

    def __init__(self, reason: str = "") -> None:
        super().__init__(reason)
        self.reason = reason


def conform(
    flat: np.ndarray, mask: np.ndarray | None, spec: ColumnSpec, where: str, locate: Callable[[int], str]
) -> tuple[np.ndarray, np.ndarray | None]:
    """Convert 1-D ``flat`` values to ``spec.dtype``; returns the values and the mask of missing ones.

    Missing positions hold a harmless fill (0, False, NaN, NaT, None). Raises `InvalidInput` for the first
    value that cannot convert, and for a missing value where ``spec`` is neither nullable nor float.
    """
    target = spec.dtype

    def fail(i: int, reason: str = "", type_name: str | None = None) -> InvalidInput:
        value = pd.NA if mask is not None and mask[i] else flat[i]
        shown = type_name or (str(value.dtype) if isinstance(value, np.generic) else type(value).__name__)
        return InvalidInput(
            f"{where} expects {target}; got {_show(value)} ({shown}) at {locate(i)}"
            + (f": {reason}" if reason else "")
        )

    if flat.dtype.kind == "O" or (flat.dtype.kind in "US" and target == DATETIME):
        out, missing = _conform_objects(flat.astype(object, copy=False), mask, target, fail)
    else:
        out, missing = _conform_typed(flat, mask, target, fail)
    if missing is not None and missing.any():
        if target in FLOAT_DTYPES:
            out = out.copy()
            out[missing] = np.nan
            missing = None
        elif not spec.nullable:
            raise fail(int(np.argmax(missing)), f"{where} is not nullable")
    return out, missing


def _conform_typed(
    flat: np.ndarray, mask: np.ndarray | None, target: str, fail: Callable[..., InvalidInput]
) -> tuple[np.ndarray, np.ndarray | None]:
    src = flat.dtype
    kind = src.kind
    type_name = {"U": "str", "S": "bytes"}.get(kind, str(src))
    valid = np.ones(flat.shape, dtype=bool) if mask is None else ~mask

    def first(bad: np.ndarray, reason: str) -> None:
        bad = bad & valid
        if bad.any():
            raise fail(int(np.argmax(bad)), reason, type_name)

    with np.errstate(all="ignore"):
        if target == "bool" and kind == "b":
            return flat, mask
        if target in INT_DTYPES and kind in "iu":
            if not np.can_cast(src, target):
                info = np.iinfo(target)
                first((flat < info.min) | (flat > info.max), f"out of range for {target}")
            return flat.astype(target, copy=False), mask
        if target in INT_DTYPES and kind == "f":
            info = np.iinfo(target)
            missing = np.isnan(flat) if mask is None else (np.isnan(flat) | mask)
            first(~missing & (flat != np.floor(flat)), "not a whole number")
            first(
                ~missing & ~((flat >= float(info.min)) & (flat < float(info.max + 1))),
                f"out of range for {target}",
            )
            return np.where(missing, 0, flat).astype(target), missing
        if target in FLOAT_DTYPES and kind in "iu":
            if not _ints_exact_in(src, target):
                limit = 2 ** (np.finfo(target).nmant + 1)
                first((flat > limit) | (flat < -limit), _inexact_reason(target))
            return flat.astype(target), mask
        if target in FLOAT_DTYPES and kind == "f":
            if np.can_cast(src, target):
                return flat.astype(target, copy=False), mask
            out = flat.astype(target)
            back = out.astype(src)
            first(
                ~((back == flat) | (np.isnan(back) & np.isnan(flat))),
                f"not exactly representable in {target}",
            )
            return out, mask
        if target == DATETIME and kind == "M":
            out = flat.astype(target)
            nat = np.isnat(flat)
            first(~nat & ((out.astype(src) != flat) | np.isnat(out)), _DATETIME_RANGE)
            return out, nat if mask is None else (nat | mask)
        if target == "string" and kind == "U":
            return flat, mask
        if target == "object" and kind == "S":
            return flat.astype(object), mask
    if not valid.any():  # nothing but missing values: there is no value of the wrong type to object to
        return np.full(flat.shape, _TARGET_FILL.get(target, 0), dtype=_numpy_dtype(target)), ~valid
    first(np.ones(flat.shape, dtype=bool), "")
    raise AssertionError("unreachable")  # pragma: no cover


def _ints_exact_in(src: np.dtype, target: str) -> bool:
    """Whether every value of int dtype ``src`` is exactly representable in float dtype ``target``."""
    magnitude_bits = src.itemsize * 8 - (1 if src.kind == "i" else 0)
    return magnitude_bits <= np.finfo(target).nmant + 1


def _inexact_reason(target: str) -> str:
    return f"beyond ±2**{np.finfo(target).nmant + 1}, {target} cannot hold it exactly"


_DATETIME_RANGE = "out of range for datetime64[ns] (1677-09-21 to 2262-04-11)"
_TARGET_FILL: dict[str, Any] = {
    "bool": False,
    "string": None,
    "object": None,
    DATETIME: np.datetime64("NaT"),
}
_TARGET_FILL.update({name: np.nan for name in FLOAT_DTYPES})


def _numpy_dtype(target: str) -> np.dtype:
    return np.dtype(object) if target in ("string", "object") else np.dtype(target)


def _conform_objects(
    flat: np.ndarray, mask: np.ndarray | None, target: str, fail: Callable[..., InvalidInput]
) -> tuple[np.ndarray, np.ndarray | None]:
    fast = _conform_uniform_objects(flat, mask, target, fail)
    if fast is not None:
        return fast
    convert = _element_converter(target)
    fill = _TARGET_FILL.get(target, 0)
    missing = np.zeros(flat.shape, dtype=bool) if mask is None else mask.copy()
    out: list[Any] = []
    for i, value in enumerate(flat):
        if missing[i] or is_missing(value):
            missing[i] = True
            out.append(fill)
            continue
        try:
            out.append(convert(value))
        except _Rejected as rejected:
            raise fail(i, rejected.reason) from None
    array = np.empty(len(out), dtype=object) if target in ("string", "object") else None
    if array is not None:
        array[:] = out
    else:
        array = np.array(out, dtype=_numpy_dtype(target)).reshape(flat.shape)
    return array, missing


def _conform_uniform_objects(
    flat: np.ndarray, mask: np.ndarray | None, target: str, fail: Callable[..., InvalidInput]
) -> tuple[np.ndarray, np.ndarray | None] | None:
    """A vectorized shortcut for the common JSON cases (all str, int or float); None where it does not apply.

    Same outcome as the element-by-element path, only faster.
    """
    kinds = set(map(type, flat))
    if (target == "string" and kinds <= {str}) or (target == "object" and kinds <= {bytes}):
        return flat, mask
    if target == "bool" and kinds <= {bool}:
        return flat.astype(bool), mask
    if target in FLOAT_DTYPES and kinds <= {float}:
        wide = flat.astype(np.float64)
        with np.errstate(over="ignore"):
            out = wide.astype(target)
        overflow = np.isfinite(wide) & ~np.isfinite(out)
        if overflow.any():
            raise fail(int(np.argmax(overflow)), f"out of range for {target}")
        return out, mask
    if (target in INT_DTYPES or target in FLOAT_DTYPES) and kinds <= {int}:
        try:
            typed = flat.astype(np.int64)
        except OverflowError:
            return None
        return _conform_typed(typed, mask, target, lambda i, reason="", type_name=None: fail(i, reason))
    return None


def _element_converter(target: str) -> Callable[[Any], Any]:
    if target == "bool":
        return _to_bool
    if target in INT_DTYPES:
        return _int_converter(target)
    if target in FLOAT_DTYPES:
        return _float_converter(target)
    if target == "string":
        return _to_str
    if target == "object":
        return _to_bytes
    return _to_datetime


def _to_bool(value: Any) -> bool:
    if isinstance(value, bool | np.bool_):
        return bool(value)
    raise _Rejected()


def _to_str(value: Any) -> str:
    if isinstance(value, str):
        return str(value)
    raise _Rejected()


def _to_bytes(value: Any) -> bytes:
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    raise _Rejected()


def _int_converter(target: str) -> Callable[[Any], int]:
    info = np.iinfo(target)

    def convert(value: Any) -> int:
        if isinstance(value, bool | np.bool_):
            raise _Rejected("a bool is not an integer")
        if isinstance(value, int | np.integer):
            number = int(value)
        elif isinstance(value, float | np.floating):
            as_float = float(value)
            if not math.isfinite(as_float) or as_float != math.floor(as_float):
                raise _Rejected("not a whole number")
            number = int(as_float)
        else:
            raise _Rejected()
        if not info.min <= number <= info.max:
            raise _Rejected(f"out of range for {target}")
        return number

    return convert


def _float_converter(target: str) -> Callable[[Any], float]:
    finfo = np.finfo(target)
    limit, largest = 2 ** (finfo.nmant + 1), float(finfo.max)

    def convert(value: Any) -> float:
        if isinstance(value, bool | np.bool_):
            raise _Rejected("a bool is not a number")
        if isinstance(value, int | np.integer):
            if abs(int(value)) > limit:
                raise _Rejected(_inexact_reason(target))
            return float(value)
        if isinstance(value, float | np.floating):
            number = float(value)
            if math.isfinite(number) and abs(number) > largest:
                raise _Rejected(f"out of range for {target}")
            return number
        raise _Rejected()

    return convert


def _to_datetime(value: Any) -> np.datetime64:
    if isinstance(value, str):
        if not value[:1].isdigit():  # NOTE: pandas would also take "now" and "today"
            raise _Rejected("not an ISO 8601 datetime")
        try:
            stamp = pd.to_datetime(value, format="ISO8601")
        except (ValueError, OverflowError):
            raise _Rejected("not an ISO 8601 datetime") from None
    elif isinstance(value, dt.datetime | np.datetime64):
        try:
            stamp = pd.Timestamp(value)
        except (ValueError, OverflowError):
            raise _Rejected(_DATETIME_RANGE) from None
    else:
        raise _Rejected()
    if stamp is pd.NaT:
        raise _Rejected("not an ISO 8601 datetime")
    if stamp.tzinfo is not None:
        raise _Rejected("timezone-aware; convert to naive UTC first")
    try:
        return stamp.as_unit("ns").to_datetime64()
    except (ValueError, OverflowError):
        raise _Rejected(_DATETIME_RANGE) from None


def is_missing(value: Any) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    if isinstance(value, float | np.floating):
        return bool(value != value)
    return isinstance(value, np.datetime64) and bool(np.isnat(value))


def _show(value: Any) -> str:
    if isinstance(value, np.generic) and not isinstance(value, np.datetime64 | np.timedelta64):
        value = value.item()
    text = str(value) if isinstance(value, np.datetime64) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
