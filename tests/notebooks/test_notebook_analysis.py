"""Tagged cells to a plan of steps: what each step reads and hands on, and every malformed notebook refused
with an error naming the file, cell, line, step or variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from shipyard.errors import InvalidInput
from shipyard.notebooks.analysis import plan_notebook
from tests.notebooks.builders import code, markdown, write_notebook


def _plan(tmp_path: Path, *cells):  # type: ignore[no-untyped-def]
    return plan_notebook(write_notebook(tmp_path / "nb.ipynb", *cells))


def test_steps_read_from_the_latest_earlier_step_that_binds_a_name(tmp_path: Path) -> None:
    plan = _plan(
        tmp_path,
        markdown("# title"),
        code("import math", "imports"),
        code("def double(x):\n    return 2 * x", "functions"),
        code("n = 3\nscale = 0.5\nname: str = 'a'", "parameters"),
        code("%matplotlib inline\nrows = [double(i) for i in range(n)]", "block:load"),
        code("total = 0\nfor r in rows:\n    total += r"),  # untagged: continues load
        code("rows.append(99)", "skip"),
        code("print('left out too')"),  # untagged after skip: skipped as well
        code("rows = [r * scale for r in rows]\nlabels = {}\nlabels['k'] = name", "step:clean", "prev:load"),
        code(
            "def score(v):\n    return math.sqrt(v) + offset\noffset = 1\nresult = score(total) + len(rows)",
            "step:score",
        ),
        code("result", "pipeline-metrics"),
    )
    assert plan.parameters == {"n": 3, "scale": 0.5, "name": "a"}
    load, clean, score = plan.steps
    assert [c.index for c in load.cells] == [4, 5]
    assert load.inputs == {"n": None} and load.outputs == ("rows", "total")
    assert clean.inputs == {"rows": "load", "scale": None, "name": None}
    assert clean.outputs == ("rows",) and clean.after == ("load",)
    # `offset` is bound by the time score() runs; `rows` comes from clean, which rebound it last.
    assert score.inputs == {"total": "load", "rows": "clean"}
    assert score.after == ("load", "clean") and score.outputs == ("result",)
    assert plan.metrics == {"result": "score"} and plan.metrics_cell == 10


def test_item_assignment_hands_the_changed_variable_on(tmp_path: Path) -> None:
    plan = _plan(
        tmp_path,
        code("import pandas as pd", "imports"),
        code("df = pd.DataFrame({'a': [1]})", "step:make"),
        code("df['b'] = df.a * 2", "step:extend"),
        code("total = int(df.b.sum())", "step:use"),
    )
    assert plan.steps[1].inputs == {"df": "make"} and plan.steps[1].outputs == ("df",)
    assert plan.steps[2].inputs == {"df": "extend"}


@pytest.mark.parametrize(
    ("cells", "message"),
    [
        (
            [code("x = 1", "step:a"), code("y = x + missing", "step:b")],
            "step 'b' reads variable 'missing' (cell 1, line 1)",
        ),
        ([code("x = 1"), code("y = 2", "step:a")], "cell 0 has no tag and no code cell before it"),
        (
            [code("lr = 0.1\nsteps = int('3')", "parameters"), code("x = lr", "step:a")],
            "cell 0 (parameters), line 2: \"steps = int('3')\" does not assign a literal",
        ),
        (
            [code("lr = 0.1\nprint(lr)", "parameters"), code("x = lr", "step:a")],
            "cell 0 (parameters), line 2: 'print(lr)' is not a plain assignment",
        ),
        (
            [code("lr = 0.1", "parameters"), code("lr_decay = lr / 10")],
            "cell 1 (parameters, untagged, so continuing the parameters cell before it), line 1:",
        ),
        ([code("x = 1", "step:")], "cell 0: tag 'step:' needs a step name"),
        (
            [code("x = 1", "step:a"), code("y = 2", "step:b", "after:nope")],
            "cell 1: after:nope names no step before 'b'; earlier steps: a",
        ),
        ([code("x = 1", "setp:a")], "cell 0: unknown tag 'setp:a'"),
        ([code("x = 1", "imports", "step:a")], "cell 0 has more than one role (imports, step:a)"),
        (
            [code("import json", "step:a"), code("y = json.dumps(1)", "step:b")],
            "step 'b' uses 'json' (cell 1, line 1), which step 'a' imports or defines",
        ),
        ([code("x = 1", "step:a"), code("x y", "step:b")], "cell 1, line 1: not valid Python"),
        (
            [code("x = 1", "step:a"), code("x + 1", "metrics")],
            "cell 1 (metrics), line 1: a metrics cell holds",
        ),
        (
            [code("x = 1", "step:a"), code("y = 2", "step:b"), code("z = 3", "step:a")],
            "cell 2 is tagged step:a again",
        ),
    ],
)
def test_a_malformed_notebook_is_refused_naming_the_place(tmp_path: Path, cells: list, message: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        _plan(tmp_path, *cells)
    assert message in str(caught.value)


def test_a_file_that_is_not_a_notebook_is_named(tmp_path: Path) -> None:
    text = tmp_path / "notes.ipynb"
    text.write_text("not json")
    with pytest.raises(InvalidInput, match="'.*notes.ipynb' is not a Jupyter notebook"):
        plan_notebook(text)
    other = tmp_path / "other.ipynb"
    other.write_text('{"a": 1}')
    with pytest.raises(InvalidInput, match="other.ipynb' is not a Jupyter notebook: it has no list of cells"):
        plan_notebook(other)
    with pytest.raises(InvalidInput, match="notebook '.*absent.ipynb' does not exist"):
        plan_notebook(tmp_path / "absent.ipynb")
