"""A small JSON Schema checker for the pipeline spec, and the schema file it reads.

NOTE: ``jsonschema`` is not a dependency of Shipyard, so this checks the subset of JSON Schema the spec's
schema uses (type, enum, const, required, properties, additionalProperties, items, oneOf, minimum, $ref
to ``#/$defs``). Each problem comes back with its path into the document, so callers can name a YAML line.
"""

from __future__ import annotations

import functools
import json
from importlib import resources
from typing import Any

SCHEMA_FILE = "pipeline_spec.schema.json"
_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "null": (type(None),),
}

Path = tuple[str | int, ...]


@functools.cache
def pipeline_spec_schema() -> dict[str, Any]:
    """The JSON schema of the pipeline spec shipped with the package."""
    text = resources.files("shipyard.pipelines").joinpath(SCHEMA_FILE).read_text(encoding="utf-8")
    return json.loads(text)


def _is_type(value: Any, name: str) -> bool:
    if isinstance(value, bool) and name in ("integer", "number"):
        return False
    return isinstance(value, _TYPES[name])


def schema_problems(
    value: Any, schema: dict[str, Any], root: dict[str, Any], path: Path = ()
) -> list[tuple[Path, str]]:
    """Every way ``value`` breaks ``schema``, as (path, message), first one first."""
    if "$ref" in schema:
        name = schema["$ref"].removeprefix("#/$defs/")
        return schema_problems(value, root["$defs"][name], root, path)
    if "oneOf" in schema:
        matches = [s for s in schema["oneOf"] if not schema_problems(value, s, root, path)]
        return (
            []
            if len(matches) == 1
            else [(path, f"{value!r} matches {len(matches)} of the allowed forms, not 1")]
        )
    if "type" in schema:
        names = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if not any(_is_type(value, n) for n in names):
            return [(path, f"expected {' or '.join(names)}, got {type(value).__name__}")]
    if "const" in schema and value != schema["const"]:
        return [(path, f"expected {schema['const']!r}, got {value!r}")]
    if "enum" in schema and value not in schema["enum"]:
        return [(path, f"{value!r} is not one of {schema['enum']}")]
    if "minimum" in schema and isinstance(value, int | float) and value < schema["minimum"]:
        return [(path, f"{value!r} is below the minimum {schema['minimum']}")]
    problems: list[tuple[Path, str]] = []
    if isinstance(value, dict):
        for key in schema.get("required", []):
            if key not in value:
                problems.append((path, f"missing required field {key!r}"))
        props = schema.get("properties", {})
        extra = schema.get("additionalProperties", True)
        for key, item in value.items():
            if key in props:
                problems += schema_problems(item, props[key], root, (*path, key))
            elif extra is False:
                problems.append(((*path, key), f"unknown field {key!r}"))
            elif isinstance(extra, dict):
                problems += schema_problems(item, extra, root, (*path, key))
    if isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            problems += schema_problems(item, schema["items"], root, (*path, i))
    return problems
