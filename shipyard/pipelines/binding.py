"""Bind run-time values to a compiled pipeline's parameters, coercing CLI strings to the declared types."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from shipyard.errors import InvalidInput
from shipyard.pipelines.spec import PipelineSpec

_TRUE, _FALSE = {"true", "1", "yes", "on"}, {"false", "0", "no", "off"}


def parse_assignments(pairs: Iterable[str]) -> dict[str, str]:
    """``["lr=0.1", "name=x"]`` → ``{"lr": "0.1", "name": "x"}``, as given on a command line."""
    values: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise InvalidInput(f"parameter {pair!r} must look like key=value")
        values[key.strip()] = value
    return values


def _coerce(name: str, type_name: str, value: Any) -> Any:
    if not isinstance(value, str) or type_name == "str":
        expected = {"str": str, "int": int, "float": (int, float), "bool": bool, "list": list, "dict": dict}[
            type_name
        ]
        if (isinstance(value, bool) and type_name in ("int", "float")) or not isinstance(value, expected):
            raise InvalidInput(f"parameter {name!r} expects {type_name}, got {value!r}")
        return float(value) if type_name == "float" else value
    try:
        if type_name == "int":
            return int(value)
        if type_name == "float":
            return float(value)
        if type_name == "bool":
            if value.lower() not in _TRUE | _FALSE:
                raise ValueError(value)
            return value.lower() in _TRUE
        parsed = json.loads(value)
    except ValueError as exc:
        raise InvalidInput(f"parameter {name!r} expects {type_name}, got {value!r}") from exc
    if not isinstance(parsed, list if type_name == "list" else dict):
        raise InvalidInput(f"parameter {name!r} expects {type_name} (as JSON), got {value!r}")
    return parsed


def bind_parameters(spec: PipelineSpec, values: Mapping[str, Any]) -> dict[str, Any]:
    """Every parameter's value for a run: given values (strings coerced), else defaults.

    Raises:
        InvalidInput: an unknown parameter (listing the valid ones), a missing required one, or a value
            that does not convert to the declared type.
    """
    valid = ", ".join(spec.parameters) or "(none)"
    for name in values:
        if name not in spec.parameters:
            raise InvalidInput(f"pipeline {spec.name!r} has no parameter {name!r}; valid parameters: {valid}")
    bound: dict[str, Any] = {}
    for name, param in spec.parameters.items():
        if name in values:
            bound[name] = _coerce(name, param.type_name, values[name])
        elif param.required:
            raise InvalidInput(f"pipeline {spec.name!r} needs parameter {name!r} ({param.type_name})")
        else:
            bound[name] = param.default
    return bound
