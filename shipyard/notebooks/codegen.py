"""Write a planned notebook as a readable Python module: one ``@component`` per step and a ``@pipeline``.

The imports and functions cells come first, as written; each step is a function whose body is its cells.
Its inputs are arguments: a pipeline parameter as a typed value (``lr: float``), an earlier step's variable as
an ``Input[Artifact]`` read with :func:`~shipyard.notebooks.marshal.load_value`. Each variable a later step
reads is written with :func:`~shipyard.notebooks.marshal.save_value` to an ``Output[Artifact]`` named
``<variable>_out``. The metrics cell becomes a last step, ``pipeline-metrics``, whose ``Metrics`` output the
executor logs as its run's metrics.

The module is as lint-clean as the notebook's code: the cells are copied as written.
"""

from __future__ import annotations

import builtins
import hashlib
import importlib.util
import io
import keyword
import re
import sys
import tokenize
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from shipyard.errors import InvalidInput, PipelineDefinitionError
from shipyard.notebooks.analysis import NotebookPlan, Step, plan_notebook, plan_writes
from shipyard.notebooks.tags import Cell
from shipyard.pipelines.dsl import Pipeline

LINE_LENGTH = 110
METRICS_STEP = "pipeline_metrics"
_OURS = (
    "Artifact",
    "Input",
    "Metrics",
    "Output",
    "component",
    "pipeline",
    "load_value",
    "save_value",
    "write_metrics",
)
_TAKEN = frozenset(keyword.kwlist) | frozenset(dir(builtins)) | frozenset(_OURS)
_WORD = re.compile(r"[A-Za-z_]\w*")


def notebook_to_module(
    path: str | Path, *, allow_pickle: bool = False, trusted: Iterable[str] = (), target: str | None = None
) -> str:
    """Plan the notebook at ``path`` and write its module's source (see :func:`write_module`)."""
    return write_module(plan_notebook(path), allow_pickle=allow_pickle, trusted=trusted, target=target)


def import_notebook_pipeline(
    path: str | Path, folder: str | Path, *, allow_pickle: bool = False, trusted: Iterable[str] = ()
) -> Pipeline:
    """Write the notebook's module into ``folder`` and import its ``@pipeline``, ready to compile and run.

    The module is named after the notebook's stem and the hash of its absolute path, so it keeps its name
    while the notebook changes (unchanged steps keep their cache keys) and two notebooks never share one.
    Workers import it from ``folder``, the compiled spec's ``project_dir``.

    Raises:
        InvalidInput: what :func:`plan_notebook` and :func:`write_module` raise.
        PipelineDefinitionError: the written module does not import (its error named).
    """
    file = Path(path)
    plan = plan_notebook(file)
    stem = re.sub(r"\W", "_", plan.name).strip("_").lower() or "notebook"
    name = f"nb_{stem}_{hashlib.sha256(str(file.resolve()).encode()).hexdigest()[:10]}"
    where = Path(folder)
    where.mkdir(parents=True, exist_ok=True)
    module_file = where / f"{name}.py"
    source = write_module(plan, allow_pickle=allow_pickle, trusted=trusted, target=str(module_file))
    if not module_file.is_file() or module_file.read_text(encoding="utf-8") != source:
        # NOTE: a .pyc is trusted by mtime and size: a rewrite in the same second could load the old code.
        for stale in (where / "__pycache__").glob(f"{name}.*.pyc"):
            stale.unlink(missing_ok=True)
        module_file.write_text(source, encoding="utf-8")
    # Loaded from its file, not through sys.path: a notebook run before in this process gets what was just
    # written, and nothing else on the path changes. The workers find it through the spec's project_dir.
    spec = importlib.util.spec_from_file_location(name, module_file)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # the notebook's own imports and functions cells run here
        sys.modules.pop(name, None)
        raise PipelineDefinitionError(
            f"the module written from {file.name!r} ({module_file}) does not import: "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    return getattr(module, pipeline_function_name(plan))


def pipeline_function_name(plan: NotebookPlan) -> str:
    """The name of the generated ``@pipeline`` function: the notebook's stem, as an identifier."""
    stem = re.sub(r"\W", "_", plan.name).strip("_").lower() or "notebook"
    return _unique(f"{'nb_' if stem[0].isdigit() else ''}{stem}_pipeline", _TAKEN | plan.module_names, "_")


def write_module(
    plan: NotebookPlan, *, allow_pickle: bool = False, trusted: Iterable[str] = (), target: str | None = None
) -> str:
    """The source of a module holding the notebook's steps as components and its ``@pipeline``.

    Args:
        allow_pickle: pickle (and unpickle) values that have no safe format, instead of failing the step.
        trusted: type names the steps may load from skops files although skops does not trust them.
        target: how to name the pipeline in the docstring's run command (``path.py:function``).

    Raises:
        InvalidInput: a notebook without steps, or whose imports or functions cells define a name the
            module needs for Shipyard's own (``pipeline``, ``component``…).
    """
    if not plan.steps:
        raise InvalidInput(f"{plan.file!r} has no step: tag a code cell step:NAME to start one")
    clashes = sorted(plan.module_names & set(_OURS))
    if clashes:
        raise InvalidInput(
            f"{plan.file!r}: the imports or functions cells define {', '.join(clashes)}, which the generated "
            "module uses for Shipyard's own; import under another name (import x as y)"
        )
    options = _Options(allow_pickle, tuple(trusted))
    taken = set(_TAKEN | plan.module_names | set(plan.parameters))
    functions: dict[str, str] = {}
    for step in plan.steps:
        functions[step.name] = _unique(step.name.replace("-", "_"), taken)
        taken.add(functions[step.name])
    pipeline_name = pipeline_function_name(plan)
    taken.add(pipeline_name)
    metrics_name = _unique(METRICS_STEP, taken) if plan.metrics else ""
    taken.add(metrics_name)

    ids = {name: function.replace("_", "-") for name, function in functions.items()}
    if plan.metrics:
        ids[""] = metrics_name.replace("_", "-")
    top = [_header(plan, pipeline_name, ids, target, options)]
    if any(set(plan_writes(s.cells)) - set(s.outputs) for s in plan.steps):
        # A step's variables that no later step reads are locals it never uses, as they were in the notebook.
        top.append("# ruff: noqa: F841")
    top.append(_imports(plan))
    top += [f"# cell {c.index} (imports)\n{_clean(c.source)}" for c in plan.imports]
    parts = ["\n\n".join(top)]
    parts += [f"# cell {c.index} (functions)\n{_clean(c.source)}" for c in plan.functions]
    outputs = {step.name: _output_names(step, plan) for step in plan.steps}
    parts += [_step_function(s, functions[s.name], outputs[s.name], plan, options) for s in plan.steps]
    if plan.metrics:
        parts.append(_metrics_function(plan, metrics_name, options))
    parts.append(_pipeline_function(plan, pipeline_name, functions, outputs, metrics_name, taken))
    return "\n\n\n".join(p.strip("\n") for p in parts if p.strip()) + "\n"


class _Options:
    def __init__(self, allow_pickle: bool, trusted: tuple[str, ...]) -> None:
        self.allow_pickle = allow_pickle
        self.trusted = trusted

    def load(self, argument: str) -> str:
        extra = ", allow_pickle=True" if self.allow_pickle else ""
        extra += f", trusted={self.trusted!r}" if self.trusted else ""
        return f"load_value({argument}{extra})"

    def save(self, artifact: str, variable: str, step: str) -> str:
        extra = ", allow_pickle=True" if self.allow_pickle else ""
        return f"save_value({artifact}, {variable}, name={_quote(variable)}, step={_quote(step)}{extra})"


def _header(
    plan: NotebookPlan, pipeline_name: str, ids: dict[str, str], target: str | None, options: _Options
) -> str:
    """The module docstring: where it came from, its steps (by step id) and how to run it."""
    lines = [f'"""The pipeline of {plan.file}, written by `shipyard notebook to-pipeline`.', ""]
    lines.append("Edit the notebook and write this again; the steps, in order:")
    lines.append("")
    for step in plan.steps:
        tag = f" (step:{step.name})" if ids[step.name] != step.name else ""
        after = f", after {', '.join(ids[a] for a in step.after)}" if step.after else ""
        lines.append(f"- {ids[step.name]}{tag}: {_cell_list(step.cells)}{after}")
    if plan.metrics:
        lines.append(f"- {ids['']}: logs {', '.join(plan.metrics)} (cell {plan.metrics_cell})")
    lines += ["", f"Run it: shipyard pipeline run {target or 'MODULE'}:{pipeline_name}"]
    if options.allow_pickle:
        lines += ["", "Values without a safe format are pickled (written with --allow-pickle)."]
    return "\n".join(lines) + '\n"""'


def _imports(plan: NotebookPlan) -> str:
    has_inputs = any(_artifact_inputs(s) for s in plan.steps)
    has_outputs = any(s.outputs for s in plan.steps)
    metrics = bool(plan.metrics)
    uses = {
        "load_value": has_inputs or metrics,
        "save_value": has_outputs,
        "write_metrics": metrics,
        "Artifact": has_inputs or has_outputs or metrics,
        "Input": has_inputs or metrics,
        "Metrics": metrics,
        "Output": has_outputs or metrics,
    }
    marshal = [n for n in ("load_value", "save_value", "write_metrics") if uses[n]]
    types = [n for n in ("Artifact", "Input", "Metrics", "Output") if uses[n]]
    lines = []
    if marshal:
        lines.append(f"from shipyard.notebooks.marshal import {', '.join(marshal)}")
    lines.append(f"from shipyard.pipelines import {', '.join([*types, 'component', 'pipeline'])}")
    if plan.imports or plan.functions:
        lines += ["", "# isort: split"]  # the notebook's imports follow as a block of their own, in its order
    return "\n".join(lines)


def _artifact_inputs(step: Step) -> list[str]:
    return [var for var, provider in step.inputs.items() if provider is not None]


def _output_names(step: Step, plan: NotebookPlan) -> dict[str, str]:
    """Each output variable's ``Output`` argument: ``<variable>_out``, unless the step uses that name."""
    words = set(_WORD.findall("\n".join(c.source for c in step.cells))) | _TAKEN | plan.module_names
    names: dict[str, str] = {}
    for var in step.outputs:
        names[var] = _unique(f"{var}_out", words, "_")
        words.add(names[var])
    return names


def _step_function(
    step: Step, function: str, outputs: dict[str, str], plan: NotebookPlan, options: _Options
) -> str:
    arguments: list[str] = []
    loads: list[str] = []
    for var, provider in step.inputs.items():
        if provider is None:
            arguments.append(f"{var}: {_type_of(plan.parameters[var])}")
        else:
            arguments.append(f"{var}: Input[Artifact]")
            loads.append(f"{var} = {options.load(var)}")
    saves: list[str] = []
    for var, out in outputs.items():
        arguments.append(f"{out}: Output[Artifact]")
        saves.append(options.save(out, var, step.name))
    body = [f'"""{_cell_list(step.cells).capitalize()} of {plan.file}."""']
    if loads:
        body += [*loads, ""]
    for cell in step.cells:
        code = _clean(cell.source)
        if code:
            body += [f"# cell {cell.index}", *code.splitlines(), ""]
    body += saves
    return "@component\n" + _def(function, arguments, "None", _indent("\n".join(body).rstrip("\n")))


def _metrics_function(plan: NotebookPlan, function: str, options: _Options) -> str:
    out = _unique("metrics", set(plan.metrics), "_")
    arguments = [*(f"{var}: Input[Artifact]" for var in plan.metrics), f"{out}: Output[Metrics]"]
    values = ", ".join(f"{_quote(var)}: {options.load(var)}" for var in plan.metrics)
    step_id = function.replace("_", "-")
    body = [
        f'"""The metrics cell (cell {plan.metrics_cell}) of {plan.file}, logged on this step\'s run."""',
        f"write_metrics({out}, {{{values}}}, step={_quote(step_id)})",
    ]
    return "@component\n" + _def(function, arguments, "None", _indent("\n".join(body)))


def _pipeline_function(
    plan: NotebookPlan,
    name: str,
    functions: dict[str, str],
    outputs: dict[str, dict[str, str]],
    metrics_function: str,
    taken: set[str],
) -> str:
    arguments = []
    for var, value in plan.parameters.items():
        mutable = "  # noqa: B006" if isinstance(value, list | dict) else ""
        arguments.append(f"{var}: {_type_of(value)} = {_quote(value)}{mutable}")
    needed = {p for s in plan.steps for p in (*s.after, *_artifact_inputs(s))} | set(plan.metrics.values())
    tasks: dict[str, str] = {}
    body = [f'"""{plan.file} as a pipeline."""']
    for step in plan.steps:
        call_args = []
        for var, provider in step.inputs.items():
            if provider is None:
                call_args.append(f"{var}={var}")
            else:
                call_args.append(f'{var}={tasks[provider]}.outputs["{outputs[provider][var]}"]')
        data = {p for p in step.inputs.values() if p is not None}
        explicit = [tasks[a] for a in step.explicit_after if a not in data]
        after = f".after({', '.join(explicit)})" if explicit else ""
        assign = ""
        if step.name in needed:
            tasks[step.name] = _unique(f"{functions[step.name]}_task", taken, "_")
            taken.add(tasks[step.name])
            assign = f"{tasks[step.name]} = "
        body.append(_call(assign + functions[step.name], call_args, after))
    if plan.metrics:
        args = [f'{v}={tasks[p]}.outputs["{outputs[p][v]}"]' for v, p in plan.metrics.items()]
        body.append(_call(metrics_function, args))
    decorator = f"@pipeline(name={_quote(plan.name)})"
    return decorator + "\n" + _def(name, arguments, "None", _indent("\n".join(body)))


def _def(name: str, arguments: list[str], returns: str, body: str) -> str:
    """A ``def`` on one line when it fits (and has no comment), else one argument a line."""
    line = f"def {name}({', '.join(arguments)}) -> {returns}:"
    if len(line) <= LINE_LENGTH and "#" not in line:
        return f"{line}\n{body}\n"
    listed = "\n".join(_with_comma(f"    {a}") for a in arguments)
    return f"def {name}(\n{listed}\n) -> {returns}:\n{body}\n"


def _call(function: str, arguments: list[str], suffix: str = "") -> str:
    """A call inside a function body: on one line when it fits, else one argument a line."""
    line = f"{function}({', '.join(arguments)}){suffix}"
    if len(line) + 4 <= LINE_LENGTH:
        return line
    listed = "\n".join(f"    {a}," for a in arguments)
    return f"{function}(\n{listed}\n){suffix}"


def _with_comma(argument: str) -> str:
    code, sep, comment = argument.partition("  #")
    return f"{code},{sep}{comment}"


def _quote(value: Any) -> str:
    """A literal in the house style: double quotes for plain strings."""
    if isinstance(value, str) and value.isprintable() and '"' not in value and "\\" not in value:
        return f'"{value}"'
    return repr(value)


def _type_of(value: Any) -> str:
    for kind in (bool, int, float, str, list, dict):
        if isinstance(value, kind):
            return kind.__name__
    raise InvalidInput(f"parameter value {value!r} has no pipeline type")


def _unique(name: str, taken: set[str] | frozenset[str], suffix: str = "_step") -> str:
    """``name``, or ``name`` + ``suffix`` (then more ``_``) when taken (a builtin, keyword, other name)."""
    if name not in taken:
        return name
    name += suffix
    while name in taken:
        name += "_"
    return name


def _cell_list(cells: tuple[Cell, ...]) -> str:
    """``cell 4`` or ``cells 4, 5 and 7``."""
    indexes = [str(c.index) for c in cells]
    if len(indexes) == 1:
        return f"cell {indexes[0]}"
    return f"cells {', '.join(indexes[:-1])} and {indexes[-1]}"


def _clean(source: str) -> str:
    """The cell's code, trailing spaces and blank lines at either end gone (not inside strings)."""
    keep = _string_lines(source)
    lines = [line if number in keep else line.rstrip() for number, line in enumerate(source.splitlines(), 1)]
    return "\n".join(lines).strip("\n")


def _indent(code: str) -> str:
    """Indent ``code`` as a function body, leaving the inside of multi-line strings as it is."""
    keep = _string_lines(code)
    return "\n".join(
        line if number in keep or not line.strip() else f"    {line}"
        for number, line in enumerate(code.splitlines(), 1)
    )


def _string_lines(code: str) -> set[int]:
    """Line numbers (from 1) that continue a multi-line string: indenting them would change the string."""
    inside: set[int] = set()
    fstring_start = getattr(tokenize, "FSTRING_START", None)  # Python 3.12+ splits f-strings into tokens
    fstring_end = getattr(tokenize, "FSTRING_END", None)
    opened: list[int] = []
    try:
        for token in tokenize.generate_tokens(io.StringIO(code).readline):
            if token.type == fstring_start:
                opened.append(token.start[0])
            elif token.type == fstring_end and opened:
                start = opened.pop()
                if not opened:
                    inside.update(range(start + 1, token.end[0] + 1))
            elif token.type == tokenize.STRING and token.end[0] > token.start[0]:
                inside.update(range(token.start[0] + 1, token.end[0] + 1))
    except (tokenize.TokenError, SyntaxError):
        pass  # the analysis parsed it already; a tokenizer quirk only costs exact string indentation
    return inside
