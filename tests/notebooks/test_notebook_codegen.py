"""The module written from a notebook: names that would shadow builtins, parameters or the notebook's own
functions are renamed, Shipyard's names are not taken over, and the flags for pickling and trusted types reach
every step's code (each step is called here in-process, as a plain function)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from shipyard.errors import InvalidInput, PipelineError
from shipyard.notebooks.codegen import import_notebook_pipeline, notebook_to_module
from shipyard.pipelines import compile_pipeline
from shipyard.pipelines.types import Artifact
from tests.notebooks.builders import code, write_notebook


def _dates(path: Path) -> Path:
    return write_notebook(
        path,
        code("import datetime", "imports"),
        code("def shift(day, days):\n    return day + datetime.timedelta(days=days)", "functions"),
        code("days = 2\nmap = 'x'", "parameters"),
        code("when = datetime.date(2024, 1, 1)", "step:map"),
        code("later = shift(when, days)", "step:shift"),
    )


def test_step_names_that_would_shadow_something_are_renamed(tmp_path: Path) -> None:
    source = notebook_to_module(_dates(tmp_path / "dates.ipynb"))
    # `map` is a builtin and a parameter, `shift` the notebook's own function: the steps keep their names
    # as step ids (map-step, shift-step), their functions do not take those names over.
    assert "def map_step(map: str, when_out: Output[Artifact]) -> None:" not in source
    assert "def map_step(when_out: Output[Artifact]) -> None:" in source
    assert "def shift_step(when: Input[Artifact], days: int) -> None:" in source
    assert 'def dates_pipeline(days: int = 2, map: str = "x") -> None:' in source
    assert "map_step_task = map_step()" in source
    assert 'shift_step(when=map_step_task.outputs["when_out"], days=days)' in source


def test_a_value_without_a_safe_format_needs_allow_pickle_in_every_step(tmp_path: Path) -> None:
    notebook = _dates(tmp_path / "dates.ipynb")
    refused = import_notebook_pipeline(notebook, tmp_path / "modules")
    module = sys.modules[refused.func.__module__]
    when = Artifact(str(tmp_path / "when"))
    with pytest.raises(PipelineError, match="step 'map': variable 'when' is a datetime.date"):
        module.map_step(when_out=when)

    allowed = import_notebook_pipeline(notebook, tmp_path / "modules", allow_pickle=True)
    module = sys.modules[allowed.func.__module__]
    assert module.__name__ == refused.func.__module__  # the same module, written again with the flag
    module.map_step(when_out=when)
    module.shift_step(when=when, days=3)  # loads the pickle; it ran, nothing to return
    spec = compile_pipeline(allowed)
    assert list(spec.steps) == ["map-step", "shift-step"]
    assert spec.project_dir == str(tmp_path / "modules")  # where the workers import the module from
    source = (tmp_path / "modules" / f"{module.__name__}.py").read_text()
    assert "when = load_value(when, allow_pickle=True)" in source


def test_trusted_types_and_explicit_dependencies_reach_the_module(tmp_path: Path) -> None:
    notebook = write_notebook(
        tmp_path / "t.ipynb",
        code("x = 1", "step:a"),
        code("y = x", "step:b"),
        code("print('after b, with no data from it')", "step:c", "after:b"),
        code("y", "metrics"),
    )
    source = notebook_to_module(notebook, trusted=["xgboost.core.Booster"])
    assert 'b_task = b(x=a_task.outputs["x_out"])\n    c().after(b_task)\n' in source
    assert "x = load_value(x, trusted=('xgboost.core.Booster',))" in source
    assert "write_metrics(metrics, {\"y\": load_value(y, trusted=('xgboost.core.Booster',))}" in source


def test_shipyards_names_are_not_taken_over(tmp_path: Path) -> None:
    notebook = write_notebook(
        tmp_path / "hf.ipynb", code("from transformers import pipeline", "imports"), code("x = 1", "step:a")
    )
    with pytest.raises(InvalidInput, match="define pipeline, which the generated module uses"):
        notebook_to_module(notebook)


def test_a_notebook_without_steps_is_refused(tmp_path: Path) -> None:
    notebook = write_notebook(tmp_path / "none.ipynb", code("import os", "imports"))
    with pytest.raises(InvalidInput, match="'none.ipynb' has no step"):
        notebook_to_module(notebook)
