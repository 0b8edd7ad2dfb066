"""A notebook's code cells and what their tags (Kubeflow Kale's names) make of them.

Each code cell gets one role from its ``tags`` (cell metadata):

- ``imports``, ``functions``: copied to the top of the generated module, for every step to use;
- ``parameters`` (papermill's ``injected-parameters`` too): ``name = literal`` lines, the pipeline's
  parameters;
- ``step:NAME`` (Kale's ``block:NAME``): starts the step NAME; ``after:A,B`` (Kale's ``prev:A``) adds explicit
  dependencies on earlier steps;
- ``metrics`` (Kale's ``pipeline-metrics``): bare names (or ``print(name)``) to log as the run's metrics;
- ``skip``: left out.

A code cell with none of these continues the previous code cell's role (Kale's rule): the next cell of a step,
of the imports, of a skipped section. Markdown and raw cells are ignored. Cells are numbered from 0, markdown
cells included, as in the ``.ipynb`` file (and papermill's and nbclient's messages).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from shipyard.errors import InvalidInput

STEP_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")
# IPython's line and cell magics and shell escapes are not Python: the generated module leaves them out.
_MAGIC = re.compile(r"^(%|!)")


class CellRole(StrEnum):
    """What a code cell is for in the pipeline."""

    IMPORTS = "imports"
    FUNCTIONS = "functions"
    PARAMETERS = "parameters"
    STEP = "step"
    METRICS = "metrics"
    SKIP = "skip"


_PLAIN_TAGS = {
    "imports": CellRole.IMPORTS,
    "functions": CellRole.FUNCTIONS,
    "parameters": CellRole.PARAMETERS,
    "injected-parameters": CellRole.PARAMETERS,
    "metrics": CellRole.METRICS,
    "pipeline-metrics": CellRole.METRICS,
    "skip": CellRole.SKIP,
}
_STEP_PREFIXES = ("step:", "block:")
_AFTER_PREFIXES = ("after:", "prev:")
KNOWN_TAGS = "imports, functions, parameters, step:NAME, after:A,B, metrics, skip"


@dataclass(frozen=True)
class Cell:
    """One code cell with its role.

    Attributes:
        index: its position in the notebook, from 0, markdown cells included.
        role: what it is for (its own tag, or the role of the code cell before it).
        step: the step it belongs to (``STEP`` cells only).
        after: the steps named by its ``after:`` tags.
        source: its code, IPython magics and ``!`` shell lines commented out.
        continued: it has no role tag of its own and continues the code cell before it.
    """

    index: int
    role: CellRole
    step: str | None
    after: tuple[str, ...]
    source: str
    continued: bool = False


def read_notebook(path: str | Path) -> dict[str, Any]:
    """The notebook's JSON (nbformat 4).

    Raises:
        InvalidInput: the file does not exist, or is not a Jupyter notebook (the file named).
    """
    file = Path(path)
    if not file.is_file():
        raise InvalidInput(f"notebook {str(file)!r} does not exist")
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise InvalidInput(f"{str(file)!r} is not a Jupyter notebook (.ipynb JSON): {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("cells"), list):
        raise InvalidInput(f"{str(file)!r} is not a Jupyter notebook: it has no list of cells")
    if data.get("nbformat") != 4:
        raise InvalidInput(
            f"{str(file)!r} is notebook format {data.get('nbformat')!r}; this reads format 4 "
            "(convert it with `jupyter nbconvert --to notebook`)"
        )
    return data


def code_cells(notebook: dict[str, Any]) -> list[Cell]:
    """The notebook's code cells with their roles, in order.

    Raises:
        InvalidInput: a malformed or unknown tag, two roles on one cell, or an untagged code cell with no
            code cell before it to continue (each naming the cell).
    """
    cells: list[Cell] = []
    previous: Cell | None = None
    for index, raw in enumerate(notebook["cells"]):
        if not isinstance(raw, dict) or raw.get("cell_type") != "code":
            continue
        source = _source(raw.get("source", ""))
        tags = (raw.get("metadata") or {}).get("tags") or []
        role, step, after = _read_tags(index, [str(t) for t in tags])
        continued = role is None
        if role is None:
            if previous is None:
                if not source.strip():
                    continue
                raise InvalidInput(
                    f"cell {index} has no tag and no code cell before it to continue; tag it ({KNOWN_TAGS})"
                )
            role, step = previous.role, previous.step
        if after and role is not CellRole.STEP:
            raise InvalidInput(f"cell {index}: after: tags belong on a step's cells, not on a {role} cell")
        cell = Cell(index, role, step, after, source, continued)
        cells.append(cell)
        previous = cell
    return cells


def _read_tags(index: int, tags: list[str]) -> tuple[CellRole | None, str | None, tuple[str, ...]]:
    roles: list[tuple[CellRole, str | None]] = []
    after: list[str] = []
    for tag in tags:
        if tag in _PLAIN_TAGS:
            roles.append((_PLAIN_TAGS[tag], None))
        elif tag.startswith(_STEP_PREFIXES):
            name = tag.partition(":")[2].strip()
            if not STEP_NAME.match(name):
                raise InvalidInput(
                    f"cell {index}: tag {tag!r} needs a step name of letters, digits, - and _ "
                    "(not starting with a digit)"
                )
            roles.append((CellRole.STEP, name))
        elif tag.startswith(_AFTER_PREFIXES):
            names = [n.strip() for n in tag.partition(":")[2].split(",")]
            if not all(names):
                raise InvalidInput(f"cell {index}: tag {tag!r} needs step names, like after:load,clean")
            after += names
        elif ":" in tag:
            # A Kale tag this does not support (limit:, image:, …) or a typo of one (setp:train): either way
            # the cell would silently land in the wrong step.
            raise InvalidInput(f"cell {index}: unknown tag {tag!r}; the tags are: {KNOWN_TAGS}")
        # Other tags (hide-input, …) belong to other tools.
    distinct = list(dict.fromkeys(roles))
    if len(distinct) > 1:
        named = ", ".join(r.value if s is None else f"step:{s}" for r, s in distinct)
        raise InvalidInput(f"cell {index} has more than one role ({named}); split the cell")
    if distinct:
        return distinct[0][0], distinct[0][1], tuple(after)
    return None, None, tuple(after)


def _source(raw: Any) -> str:
    text = "".join(raw) if isinstance(raw, list) else str(raw)
    if text.lstrip().startswith("%%"):  # a cell magic: the whole cell is not Python
        return "\n".join(f"# {line}" if line.strip() else "" for line in text.splitlines())
    lines = text.splitlines()
    return "\n".join(f"# {line}  (IPython magic, left out)" if _MAGIC.match(line) else line for line in lines)
