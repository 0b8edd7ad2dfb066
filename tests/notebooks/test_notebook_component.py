"""notebook_component: a notebook as one step of a pipeline, run headless on a real kernel with injected
parameters; the executed notebook and its HTML are artifacts of the step's run, and a raising cell fails the
step naming the cell and the error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shipyard.config import Settings
from shipyard.errors import InvalidInput, PipelineDefinitionError
from shipyard.notebooks.execute import inject_parameters, notebook_component
from shipyard.pipelines import compile_pipeline, pipeline
from shipyard.pipelines.executors import LocalExecutor, StepStatus
from shipyard.tracking import get_client
from tests.notebooks.builders import code, markdown, write_notebook


@pytest.mark.slow(seconds=5)
def test_notebooks_run_as_steps_and_a_raising_cell_fails_its_step(tmp_path: Path, settings: Settings) -> None:
    (tmp_path / "data.txt").write_text("3 4 5")
    eda = write_notebook(
        tmp_path / "eda.ipynb",
        markdown("# EDA"),
        code("sample = 1\nlabel = 'default'", "parameters"),
        code(
            "numbers = [int(x) for x in open('data.txt').read().split()]\nprint(label, sum(numbers) * sample)"
        ),
    )
    broken = write_notebook(
        tmp_path / "broken.ipynb", code("x = 1"), markdown("then"), code("y = x / 0"), code("z = 2")
    )

    @pipeline
    def reports() -> None:
        notebook_component(eda, parameters={"sample": 10, "label": "injected"})
        notebook_component(broken, name="fragile")

    spec = compile_pipeline(reports)
    assert set(spec.steps) == {"eda", "fragile"}
    result = LocalExecutor(max_parallel=2, settings=settings).run(spec)

    ok, failed = result.steps["eda"], result.steps["fragile"]
    assert ok.status is StepStatus.SUCCEEDED, ok.error
    executed = json.loads(Path(ok.outputs["notebook"]).read_text())
    injected = executed["cells"][2]
    assert injected["metadata"]["tags"] == ["injected-parameters"]
    assert "sample = 10" in "".join(injected["source"])
    assert "".join(executed["cells"][3]["outputs"][0]["text"]) == "injected 120\n"  # in the notebook's folder
    assert "injected 120" in Path(ok.outputs["html"]).read_text()
    client = get_client(settings)
    assert {a.path for a in client.list_artifacts(ok.run_id)} >= {"eda.ipynb", "eda.html"}

    assert failed.status is StepStatus.FAILED and result.status is StepStatus.FAILED
    assert "notebook 'broken.ipynb' failed at cell 2: ZeroDivisionError: division by zero" in (
        failed.error or ""
    )
    logged = {a.path for a in client.list_artifacts(failed.run_id)}
    assert {"broken.ipynb", "broken.html"} <= logged  # what ran before the error is kept


def test_parameters_replace_an_earlier_injection_after_the_parameters_cell(tmp_path: Path) -> None:
    import nbformat

    path = write_notebook(
        tmp_path / "p.ipynb",
        code("import os"),
        code("n = 1", "parameters"),
        code("n = 5", "injected-parameters"),
        code("print(n)"),
    )
    notebook = inject_parameters(nbformat.read(path, as_version=4), {"n": 7, "names": ["a"]})
    sources = [c.source for c in notebook.cells]
    assert sources == ["import os", "n = 1", "# Parameters\nn = 7\nnames = ['a']\n", "print(n)"]


def test_a_bad_path_or_parameter_is_refused_when_the_pipeline_is_defined(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="missing.ipynb' does not exist"):
        notebook_component(tmp_path / "missing.ipynb")
    path = write_notebook(tmp_path / "ok.ipynb", code("x = 1"))
    with pytest.raises(PipelineDefinitionError, match="parameters are JSON values"):
        notebook_component(path, parameters={"when": object()})
