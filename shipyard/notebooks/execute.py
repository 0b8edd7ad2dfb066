"""A whole notebook as one pipeline step: run headless with nbclient, kept as ``.ipynb`` and HTML.

Inside a ``@pipeline``::

    eda = notebook_component("eda.ipynb", parameters={"sample": 1000})
    train(data=ingest_task.outputs["data"]).after(eda)

The parameters go into a cell tagged ``injected-parameters`` after the cell tagged ``parameters`` (at the
top when there is none), as papermill does. The notebook runs in its own folder on a ``python3`` kernel (the
worker's Python). The executed notebook and its HTML rendering are the step's outputs ``notebook`` and
``html``, and artifacts of its run; when a cell raises, they are still logged, and the step fails naming the
cell's index and the error.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

from shipyard.errors import InvalidInput, PipelineDefinitionError, PipelineError
from shipyard.notebooks.tags import read_notebook
from shipyard.pipelines.dsl import Component, Task, component
from shipyard.pipelines.types import HTML, Artifact, Output
from shipyard.tracking import active_run

INSTALL_HINT = "pip install 'shipyard[notebook]'"
INJECTED_TAG = "injected-parameters"


def notebook_component(
    path: str | Path,
    parameters: dict[str, Any] | None = None,
    *,
    name: str | None = None,
    kernel: str = "python3",
    timeout_s: float = 600.0,
) -> Task:
    """A step that runs the notebook at ``path``; call it inside a ``@pipeline`` body.

    Args:
        parameters: values for the notebook's parameters (JSON values), injected after its parameters cell.
        name: the step's name (default: the notebook's stem).
        kernel: the Jupyter kernel to run it on.
        timeout_s: the longest one cell may run.

    Raises:
        InvalidInput: ``path`` is not a notebook.
        PipelineDefinitionError: a parameter value that is not a JSON value.
    """
    file = Path(path).resolve()
    read_notebook(file)
    try:
        encoded = json.dumps(parameters or {}, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise PipelineDefinitionError(
            f"notebook {file.name!r}: parameters are JSON values given when the pipeline is defined: {exc}"
        ) from exc
    step = Component(run_notebook.func, run_notebook.options, run_notebook.version)
    step.name = name or re.sub(r"\W", "_", file.stem).strip("_").lower() or "notebook"
    return step(  # type: ignore[no-any-return]
        path=str(file),
        sha256=hashlib.sha256(file.read_bytes()).hexdigest(),  # so an edit changes the cache key
        parameters=encoded,
        kernel=kernel,
        timeout_s=timeout_s,
    )


@component
def run_notebook(
    path: str,
    sha256: str,
    parameters: str,
    notebook: Output[Artifact],
    html: Output[HTML],
    kernel: str = "python3",
    timeout_s: float = 600.0,
) -> None:
    """Run the notebook at ``path`` with ``parameters`` (JSON); write it executed and as HTML.

    Raises:
        PipelineError: the notebook changed since the pipeline was compiled (``sha256``), or a cell raised
            (its index and error named), timed out or killed the kernel.
    """
    file = Path(path)
    if hashlib.sha256(file.read_bytes()).hexdigest() != sha256:
        raise PipelineError(f"notebook {path!r} changed since the pipeline was compiled; compile it again")
    nbformat, client_class, exporter = _jupyter()
    executed = inject_parameters(nbformat.read(file, as_version=4), json.loads(parameters))
    client = client_class(
        executed, timeout=timeout_s, kernel_name=kernel, resources={"metadata": {"path": str(file.parent)}}
    )
    failure: Exception | None = None
    try:
        client.execute()
    except Exception as exc:  # a cell's error, a timeout, a dead kernel: keep what ran, then fail the step
        failure = exc
    with tempfile.TemporaryDirectory() as scratch:
        kept = Path(scratch) / f"{file.stem}.ipynb"
        rendered = Path(scratch) / f"{file.stem}.html"
        nbformat.write(executed, kept)
        rendered.write_text(exporter().from_notebook_node(executed)[0], encoding="utf-8")
        run = active_run()
        if run is not None:
            run.log_artifact(kept)
            run.log_artifact(rendered)
        shutil.copyfile(kept, notebook.path)
        shutil.copyfile(rendered, html.path)
    if failure is not None:
        failed = _failed_cell(executed)
        if failed is None:
            raise PipelineError(f"notebook {file.name!r} failed: {type(failure).__name__}: {failure}")
        raise PipelineError(f"notebook {file.name!r} failed at cell {failed[0]}: {failed[1]}")


def inject_parameters(notebook: Any, values: dict[str, Any]) -> Any:
    """Put ``values`` in a cell tagged ``injected-parameters`` after the cell tagged ``parameters`` (first
    when there is none), replacing an earlier injected cell; returns ``notebook``, changed in place."""
    nbformat = _jupyter()[0]
    cells = [c for c in notebook.cells if INJECTED_TAG not in c.get("metadata", {}).get("tags", [])]
    after = next(
        (i + 1 for i, c in enumerate(cells) if "parameters" in c.get("metadata", {}).get("tags", [])), 0
    )
    if values:
        lines = ["# Parameters"] + [f"{name} = {value!r}" for name, value in values.items()]
        injected = nbformat.v4.new_code_cell("\n".join(lines) + "\n")
        injected.metadata["tags"] = [INJECTED_TAG]
        cells.insert(after, injected)
    notebook.cells = cells
    return notebook


def _failed_cell(notebook: Any) -> tuple[int, str] | None:
    """The index of the cell whose output is an error, and ``ename: evalue``."""
    for index, cell in enumerate(notebook.cells):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                return index, f"{output.get('ename')}: {output.get('evalue')}"
    return None


def _jupyter() -> tuple[Any, Any, Any]:
    """nbformat, nbclient's NotebookClient and nbconvert's HTMLExporter: optional, imported on use."""
    try:
        import nbformat
        from nbclient import NotebookClient
        from nbconvert import HTMLExporter
    except ImportError as exc:
        raise InvalidInput(f"running notebooks needs nbclient and nbconvert: {INSTALL_HINT}") from exc
    return nbformat, NotebookClient, HTMLExporter
