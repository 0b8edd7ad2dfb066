"""Notebooks: the Jupyter extension (``%load_ext shipyard``), Kale-tagged notebooks as pipelines
(:mod:`~shipyard.notebooks.tags`, :mod:`~shipyard.notebooks.analysis`, :mod:`~shipyard.notebooks.codegen`,
:mod:`~shipyard.notebooks.marshal`), and a whole notebook as a pipeline step (:func:`notebook_component`)."""

from shipyard.notebooks.analysis import NotebookPlan, plan_notebook
from shipyard.notebooks.codegen import import_notebook_pipeline, notebook_to_module
from shipyard.notebooks.execute import notebook_component

__all__ = [
    "NotebookPlan",
    "import_notebook_pipeline",
    "notebook_component",
    "notebook_to_module",
    "plan_notebook",
]
