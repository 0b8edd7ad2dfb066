"""What each container of an exported KFP pipeline runs: one Shipyard step, by module and function.

``python -m shipyard.export.kfp_runner --component MODULE:FUNCTION --pipeline NAME --step ID
[--input NAME:TYPE=VALUE] [--input-artifact NAME:TYPE=PATH] [--output NAME:TYPE=FILE]
[--output-artifact NAME:TYPE=PATH]``

KFP fills the values and paths in (its placeholders); parameters arrive as text and are converted to their
declared types, parameter outputs are written where KFP reads them (JSON, or the text itself for a string).
The step runs inside a tracked run named after it, in experiment NAME, in whatever store the container's
settings name (``SHIPYARD_TRACKING_URI`` for a platform server), so ``shipyard.log_metric`` in a step works
as it does in ``shipyard pipeline run``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from typing import Any

from shipyard.errors import InvalidInput, ShipyardError
from shipyard.pipelines.executors.worker import ArtifactRef, Task, run_task
from shipyard.pipelines.types import ARTIFACT_TYPES

_PARAMETER_TYPES = ("str", "int", "float", "bool", "list", "dict")


def parse_value(name: str, type_name: str, text: str) -> Any:
    """``text`` (as KFP renders a parameter) as a value of ``type_name``; InvalidInput names the input."""
    try:
        if type_name == "str":
            return text
        if type_name == "int":
            number = float(text)
            if not number.is_integer():
                raise ValueError(f"{text!r} is not a whole number")
            return int(number)  # KFP keeps numbers as doubles: 3 may arrive as "3.0"
        if type_name == "float":
            return float(text)
        if type_name == "bool":
            lowered = text.strip().lower()
            if lowered not in ("true", "false"):
                raise ValueError(f"{text!r} is not true or false")
            return lowered == "true"
        value = json.loads(text)
        expected = list if type_name == "list" else dict
        if not isinstance(value, expected):
            raise ValueError(f"{text[:80]!r} is not a JSON {type_name}")
        return value
    except (ValueError, json.JSONDecodeError) as exc:
        raise InvalidInput(f"input {name!r} ({type_name}): {exc}") from exc


def _entry(text: str, option: str, types: Sequence[str]) -> tuple[str, str, str]:
    head, sep, value = text.partition("=")
    name, colon, type_name = head.partition(":")
    if not sep or not colon or not name or type_name not in types:
        raise InvalidInput(f"{option} {text!r}: expected NAME:TYPE=VALUE with TYPE one of {', '.join(types)}")
    return name, type_name, value


def run(argv: Sequence[str]) -> dict[str, Any]:
    """Run the step ``argv`` describes; its parameter outputs by name."""
    parser = argparse.ArgumentParser(prog="python -m shipyard.export.kfp_runner")
    parser.add_argument("--component", required=True)
    parser.add_argument("--pipeline", required=True)
    parser.add_argument("--step", required=True)
    for option in ("--input", "--input-artifact", "--output", "--output-artifact"):
        parser.add_argument(option, action="append", default=[])
    args = parser.parse_args(list(argv))
    module, sep, function = args.component.partition(":")
    if not sep:
        raise InvalidInput(f"--component {args.component!r}: expected MODULE:FUNCTION")
    artifact_types = tuple(ARTIFACT_TYPES)
    parameters = {}
    for text in args.input:
        name, type_name, value = _entry(text, "--input", _PARAMETER_TYPES)
        parameters[name] = parse_value(name, type_name, value)
    artifacts = {}
    for text in args.input_artifact:
        name, type_name, path = _entry(text, "--input-artifact", artifact_types)
        artifacts[name] = ArtifactRef(type_name, path, path)
    for text in args.output_artifact:
        name, type_name, path = _entry(text, "--output-artifact", artifact_types)
        # KFP makes the artifact's folder on its volume, but not always its parent folders.
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        artifacts[name] = ArtifactRef(type_name, path, path, output=True)
    outputs = {}
    for text in args.output:
        name, type_name, path = _entry(text, "--output", _PARAMETER_TYPES)
        outputs[name] = (type_name, path)
    task = Task(
        module=module,
        function=function,
        parameters=parameters,
        artifacts=artifacts,
        returns={name: type_name for name, (type_name, _) in outputs.items()},
        log_dir="",
    )
    import shipyard

    with shipyard.start_run(args.pipeline, name=args.step):
        values = run_task(task).values
    for name, (type_name, path) in outputs.items():
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        value = values[name]
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(value if type_name == "str" else json.dumps(value))
    return values


def main(argv: Sequence[str] | None = None) -> int:
    try:
        run(sys.argv[1:] if argv is None else argv)
    except ShipyardError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 2 if isinstance(exc, InvalidInput) else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
