"""A pipeline named on a command line or in a rules file: a compiled spec file, or ``module:function``."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

from shipyard.errors import InvalidInput
from shipyard.pipelines.compiler import compile_pipeline
from shipyard.pipelines.dsl import Pipeline
from shipyard.pipelines.spec import PipelineSpec


def load_spec(target: str) -> PipelineSpec:
    """A spec from a YAML file, or compiled from ``module:function`` (importable from the working dir)."""
    path = Path(target)
    if path.suffix in (".yaml", ".yml") or path.is_file():
        if not path.is_file():
            raise InvalidInput(f"pipeline spec file {target!r} does not exist")
        return PipelineSpec.from_yaml(path.read_text(encoding="utf-8"), source=str(path))
    module_name, sep, attribute = target.rpartition(":")
    if not sep or not module_name or not attribute:
        raise InvalidInput(f"{target!r} is neither a spec file (.yaml) nor module:function")
    if module_name.endswith(".py"):
        # path/to/file.py:pipeline — imported by its dotted name from the working directory, the name its
        # steps are recorded under (and found by in a worker or a container).
        source = Path(module_name)
        if not source.is_file():
            raise InvalidInput(f"pipeline file {module_name!r} does not exist")
        try:
            relative = source.resolve().relative_to(Path.cwd().resolve())
        except ValueError as exc:
            raise InvalidInput(
                f"{module_name!r} is outside the working directory; run from the project that holds it"
            ) from exc
        module_name = ".".join(relative.with_suffix("").parts)
    if str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))  # pipelines usually live beside the user's project
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise InvalidInput(f"cannot import module {module_name!r} for {target!r}: {exc}") from exc
    found = getattr(module, attribute, None)
    if not isinstance(found, Pipeline):
        raise InvalidInput(f"{target!r} is not a @pipeline (found {type(found).__name__})")
    return compile_pipeline(found)
