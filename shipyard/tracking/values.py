"""Checks on user-given values before they are stored: metric numbers, steps, timestamps, param and tag text.

Everything here raises `InvalidInput` naming the key and what is wrong with the value, never the
``OverflowError``/``ValueError`` Python or the database driver would raise later — by then a metric point
may be half-buffered, or a CLI prints a traceback.
"""

from __future__ import annotations

import json
import math
import numbers
import sys
from collections.abc import Mapping
from typing import Any

from shipyard.errors import Conflict, InvalidInput
from shipyard.tracking import naming

MIN_I64, MAX_I64 = -(2**63), 2**63 - 1
"""The range of a stored step or timestamp (int64 columns and history arrays)."""

MAX_TEXT_VALUE = 8000
"""The longest param or tag value a store keeps."""


def param_changed(key: str, old: str, new: str) -> Conflict:
    """The refusal of a param logged again with another value (params are write-once)."""
    return Conflict(
        f"param {key!r} is already {old!r} in this run; cannot change it to {new!r} "
        "(params are immutable: log a new key or start a new run)"
    )


def checked_texts(values: Mapping[str, Any], what: str) -> dict[str, str]:
    """Params or tags as the text a store keeps, each key and value checked (``what``: param or tag)."""
    if not isinstance(values, Mapping):
        raise InvalidInput(f"{what}s must be a mapping of key to value, got {type(values).__name__}")
    return {
        naming.check_key(key, what): text_value(what, key, value, MAX_TEXT_VALUE)
        for key, value in values.items()
    }


def metric_value(key: str, value: Any) -> float:
    """``value`` as a float (NaN and ±inf are kept); bools, strings and numbers past float64 are refused."""
    cls = value.__class__
    if cls is bool or cls is str or cls is bytes or not isinstance(value, numbers.Real):
        raise InvalidInput(f"metric {key!r} must be a number, got {cls.__name__} {describe_number(value)}")
    try:
        return float(value)
    except OverflowError:
        raise InvalidInput(
            f"metric {key!r} is {describe_number(value)}, too large for a 64-bit float "
            f"(at most ±{sys.float_info.max:.1e})"
        ) from None


def metric_step(key: str, step: Any) -> int:
    """``step`` as an int64."""
    if isinstance(step, bool) or not isinstance(step, numbers.Integral):
        raise InvalidInput(f"step of metric {key!r} must be an integer, got {step!r}")
    if not MIN_I64 <= int(step) <= MAX_I64:
        raise InvalidInput(f"step of metric {key!r} must fit in 64 bits, got {describe_number(step)}")
    return int(step)


def metric_timestamp(key: str, timestamp: Any) -> int:
    """``timestamp`` as non-negative epoch milliseconds that fit in an int64."""
    if (
        isinstance(timestamp, bool)
        or not isinstance(timestamp, numbers.Integral)
        or not 0 <= int(timestamp) <= MAX_I64
    ):
        shown = describe_number(timestamp) if isinstance(timestamp, numbers.Integral) else repr(timestamp)
        raise InvalidInput(
            f"timestamp of metric {key!r} must be epoch milliseconds from 0 to {MAX_I64}, got {shown}"
        )
    return int(timestamp)


def text_value(what: str, key: str, value: Any, max_len: int) -> str:
    """A param or tag value as stored text: a string as is, a dict or list as JSON, else ``str()``."""
    try:
        if isinstance(value, str):
            text = value
        elif isinstance(value, dict | list):
            text = json.dumps(value)
        else:
            text = str(value)
    except ValueError as exc:
        raise InvalidInput(
            f"{what} {key!r} cannot be written as text: {unwritable_reason(value, exc)}"
        ) from None
    except TypeError as exc:
        raise InvalidInput(f"{what} {key!r} cannot be written as JSON: {exc}") from None
    if len(text) > max_len:
        raise InvalidInput(f"{what} {key!r} is {len(text)} characters long; the limit is {max_len}")
    return text


def unwritable_reason(value: Any, exc: ValueError) -> str:
    """Why ``str()`` or ``json.dumps`` refused ``value``: a too-long int inside it is named, by size."""
    # Python refuses to write an int of more than 4,300 digits (by default) as text.
    huge = _first_huge_int(value)
    if huge is None:
        return str(exc)
    return f"it holds {describe_number(huge)}, more than Python writes as text (log it as a string)"


def describe_number(value: Any) -> str:
    """A number for an error message: in full when short, else its size (never 5,000 digits)."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        number = int(value)
        if abs(number) < 10**24:
            return str(number)
        digits = int(abs(number).bit_length() * math.log10(2)) + 1
        return f"an integer of about {digits} digits"
    try:
        text = repr(value)
    except ValueError:
        return f"a {type(value).__name__}"
    return text if len(text) <= 40 else f"{text[:37]}..."


def _first_huge_int(value: Any) -> int | None:
    """The first int in ``value`` (itself, or nested in dicts and lists) too long for ``str()`` to write."""
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            str(value)
        except ValueError:
            return value
        return None
    items = value.values() if isinstance(value, dict) else value if isinstance(value, list | tuple) else ()
    for item in items:
        if (found := _first_huge_int(item)) is not None:
            return found
    return None
