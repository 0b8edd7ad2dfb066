"""Real notebooks for the tests, written with nbformat: code cells with tags, and markdown between them."""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook


def code(source: str, *tags: str) -> nbformat.NotebookNode:
    """A code cell with ``tags`` in its metadata."""
    cell = new_code_cell(source)
    if tags:
        cell.metadata["tags"] = list(tags)
    return cell


def markdown(text: str) -> nbformat.NotebookNode:
    return new_markdown_cell(text)


def write_notebook(path: Path, *cells: nbformat.NotebookNode) -> Path:
    """Write ``cells`` as a notebook at ``path`` (on a python3 kernel, as Jupyter saves one)."""
    notebook = new_notebook(cells=list(cells))
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(notebook, path)
    return path
