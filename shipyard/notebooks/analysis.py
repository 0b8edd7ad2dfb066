"""From a notebook's tagged cells to a plan of steps: what each step reads, from whom, and what it hands on.

A step's inputs are the names its cells read before binding them, other than builtins and what the imports
and functions cells define; each comes from the latest earlier step that binds it (the notebook's top-to-
bottom order), else from the parameters cell. That step becomes a dependency. A step's outputs are the names
later steps (or the metrics cell) take from it.

Assigning to an item or attribute (``df["y"] = …``, ``model.coef_ = …``) counts as binding the variable, so a
later step sees the change. A change made by a method call (``df.dropna(inplace=True)``, ``rows.append(x)``)
does not: assign the result for later steps to see it.
"""

from __future__ import annotations

import ast
import builtins
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any

from shipyard.errors import InvalidInput
from shipyard.notebooks.tags import Cell, CellRole, code_cells, read_notebook

PARAMETER_TYPES = (bool, int, float, str, list, dict)
_BUILTINS = frozenset(dir(builtins))
# NOTE: a module's own dunders resolve in the generated module as they did in the kernel.
_MODULE_NAMES = frozenset({"__name__", "__file__", "__doc__"})


@dataclass(frozen=True)
class Read:
    """Where a step first reads a name it does not bind before: the cell and the line in that cell."""

    cell: int
    line: int


@dataclass(frozen=True)
class Step:
    """One pipeline step: consecutive cells under one ``step:NAME`` tag.

    Attributes:
        name: the tag's name.
        cells: its cells, in order.
        inputs: each name it reads → the step that provides it (``None``: the pipeline parameter).
        outputs: the names it binds that later steps or the metrics cell read, in the order it binds them.
        after: the earlier steps it waits for (its ``after:`` tags and its inputs' steps), in order.
        explicit_after: the steps its ``after:`` tags name.
    """

    name: str
    cells: tuple[Cell, ...]
    inputs: dict[str, str | None]
    outputs: tuple[str, ...]
    after: tuple[str, ...]
    explicit_after: tuple[str, ...] = ()


@dataclass(frozen=True)
class NotebookPlan:
    """Everything the module writer needs, checked.

    Attributes:
        name: the notebook's file stem (the pipeline's name).
        file: the notebook's file name, for docstrings.
        imports, functions: the cells copied to the top of the module.
        parameters: the parameters cell's names and default values.
        steps: the steps in notebook order.
        metrics: each metric's name → the step that provides it.
        metrics_cell: the index of the (first) metrics cell.
    """

    name: str
    file: str
    imports: tuple[Cell, ...]
    functions: tuple[Cell, ...]
    parameters: dict[str, Any]
    steps: tuple[Step, ...]
    metrics: dict[str, str] = field(default_factory=dict)
    metrics_cell: int | None = None

    @cached_property
    def module_names(self) -> frozenset[str]:
        """The names the imports and functions cells define at the top of the module."""
        return frozenset(_flow([*self.imports, *self.functions]).writes)


def plan_notebook(path: str | Path) -> NotebookPlan:
    """Read the notebook at ``path`` and plan its pipeline.

    Raises:
        InvalidInput: not a notebook, a bad tag, a parameters cell with more than literal assignments, a
            cell that is not valid Python, or a step reading a name that nothing before it defines (each
            naming the file, cell, line, step or variable).
    """
    file = Path(path)
    cells = code_cells(read_notebook(file))
    by_role: dict[CellRole, list[Cell]] = {role: [] for role in CellRole}
    for cell in cells:
        by_role[cell.role].append(cell)
    module_defined = _flow([*by_role[CellRole.IMPORTS], *by_role[CellRole.FUNCTIONS]]).writes
    parameters: dict[str, Any] = {}
    for cell in by_role[CellRole.PARAMETERS]:
        parameters.update(parse_parameters(cell))
    known = _BUILTINS | _MODULE_NAMES | set(module_defined)

    grouped = _group_steps(by_role[CellRole.STEP])
    steps: list[Step] = []
    writes_of: dict[str, list[str]] = {}
    code_of: dict[str, set[str]] = {}
    provider_of: dict[str, str | None] = {name: None for name in parameters}
    for name, step_cells in grouped.items():
        flow = _flow(step_cells)
        reads = {n: r for n, r in flow.reads.items() if n not in known}
        inputs: dict[str, str | None] = {}
        for var, where in reads.items():
            if var not in provider_of:
                raise InvalidInput(
                    f"step {name!r} reads variable {var!r} (cell {where.cell}, line {where.line}), which no "
                    "earlier step, the parameters cell or the imports and functions cells define"
                )
            provider = provider_of[var]
            if provider is not None and var in code_of[provider]:
                raise InvalidInput(
                    f"step {name!r} uses {var!r} (cell {where.cell}, line {where.line}), which step "
                    f"{provider!r} imports or defines: move that import or definition to an imports or "
                    "functions cell, so every step has it"
                )
            inputs[var] = provider
        explicit = _explicit_after(name, step_cells, [s.name for s in steps])
        after = tuple(dict.fromkeys([*explicit, *(p for p in inputs.values() if p is not None)]))
        steps.append(Step(name, tuple(step_cells), inputs, (), after, explicit))
        writes_of[name], code_of[name] = flow.writes, flow.code
        provider_of.update((var, name) for var in flow.writes)

    metrics, metrics_cell = _metrics(by_role[CellRole.METRICS], cells, grouped)
    taken: dict[str, set[str]] = {s.name: set() for s in steps}
    for step in steps:
        for var, provider in step.inputs.items():
            if provider is not None:
                taken[provider].add(var)
    for var, provider in metrics.items():
        taken[provider].add(var)
    steps = [replace(s, outputs=tuple(v for v in writes_of[s.name] if v in taken[s.name])) for s in steps]
    return NotebookPlan(
        name=file.stem,
        file=file.name,
        imports=tuple(by_role[CellRole.IMPORTS]),
        functions=tuple(by_role[CellRole.FUNCTIONS]),
        parameters=parameters,
        steps=tuple(steps),
        metrics=metrics,
        metrics_cell=metrics_cell,
    )


def parse_parameters(cell: Cell) -> dict[str, Any]:
    """The ``name = literal`` assignments of a parameters cell, in order.

    Raises:
        InvalidInput: any other statement, or a value that is not a str, int, float, bool, list or dict
            literal (naming the cell and the line).
    """
    values: dict[str, Any] = {}
    lines = cell.source.splitlines()
    for statement in _parse(cell).body:
        line = lines[statement.lineno - 1].strip() if statement.lineno <= len(lines) else ""
        untagged = ", untagged, so continuing the parameters cell before it" if cell.continued else ""
        where = f"cell {cell.index} (parameters{untagged}), line {statement.lineno}: {line!r}"
        target = _assigned_name(statement)
        if target is None:
            raise InvalidInput(
                f"{where} is not a plain assignment; a parameters cell holds only name = literal lines"
            )
        try:
            value = ast.literal_eval(statement.value)  # type: ignore[attr-defined, arg-type]
        except ValueError:
            raise InvalidInput(
                f"{where} does not assign a literal (a number, string, bool, or a list or dict of them)"
            ) from None
        if not isinstance(value, PARAMETER_TYPES):
            raise InvalidInput(
                f"{where}: a parameter is a str, int, float, bool, list or dict, not {value!r}"
            )
        values[target] = value
    return values


def _assigned_name(statement: ast.stmt) -> str | None:
    if isinstance(statement, ast.Assign) and len(statement.targets) == 1:
        target = statement.targets[0]
    elif isinstance(statement, ast.AnnAssign) and statement.value is not None:
        target = statement.target
    else:
        return None
    return target.id if isinstance(target, ast.Name) else None


def _group_steps(cells: list[Cell]) -> dict[str, list[Cell]]:
    """Cells by step, in order; a step's cells must be consecutive among the steps' cells."""
    grouped: dict[str, list[Cell]] = {}
    last: str | None = None
    for cell in cells:
        assert cell.step is not None
        if cell.step in grouped and cell.step != last:
            first = grouped[cell.step][0].index
            raise InvalidInput(
                f"cell {cell.index} is tagged step:{cell.step} again (the step starts at cell {first}, and "
                "another step came between); a step's cells are consecutive: rename one of them"
            )
        grouped.setdefault(cell.step, []).append(cell)
        last = cell.step
    functions = {name.replace("-", "_"): name for name in grouped}
    if len(functions) != len(grouped):
        raise InvalidInput(f"step names differ only in - and _: {', '.join(grouped)}; rename one")
    return grouped


def _explicit_after(name: str, cells: list[Cell], earlier: list[str]) -> list[str]:
    after: list[str] = []
    for cell in cells:
        for other in cell.after:
            if other == name:
                raise InvalidInput(f"cell {cell.index}: step {name!r} cannot come after itself")
            if other not in earlier:
                known = ", ".join(earlier) or "(none)"
                raise InvalidInput(
                    f"cell {cell.index}: after:{other} names no step before {name!r}; earlier steps: {known}"
                )
            after.append(other)
    return after


def _metrics(
    metric_cells: list[Cell], cells: list[Cell], grouped: dict[str, list[Cell]]
) -> tuple[dict[str, str], int | None]:
    """The metrics cells' names → the latest step before the cell that binds each."""
    metrics: dict[str, str] = {}
    for cell in metric_cells:
        binders: dict[str, str] = {}
        for name, step_cells in grouped.items():
            before = [c for c in step_cells if c.index < cell.index]
            binders.update((var, name) for var in _flow(before).writes)
        for var, line in _metric_names(cell):
            if var not in binders:
                raise InvalidInput(
                    f"cell {cell.index} (metrics), line {line}: {var!r} is not a variable that a step before "
                    "the cell defines"
                )
            metrics[var] = binders[var]
    return metrics, (metric_cells[0].index if metric_cells else None)


def _metric_names(cell: Cell) -> list[tuple[str, int]]:
    """``acc`` or ``print(acc, f1)`` lines (Kale's form), as (name, line)."""
    names: list[tuple[str, int]] = []
    for statement in _parse(cell).body:
        value = statement.value if isinstance(statement, ast.Expr) else None
        if isinstance(value, ast.Call) and isinstance(value.func, ast.Name) and value.func.id == "print":
            args = value.args if not value.keywords else []
        else:
            args = [value] if value is not None else []
        if not args or not all(isinstance(a, ast.Name) for a in args):
            raise InvalidInput(
                f"cell {cell.index} (metrics), line {statement.lineno}: a metrics cell holds variable names, "
                "one a line (or print(name))"
            )
        names += [(a.id, statement.lineno) for a in args]  # type: ignore[attr-defined]
    return names


def plan_writes(cells: Iterable[Cell]) -> list[str]:
    """The names ``cells`` bind at their top level, in order."""
    return _flow(cells).writes


def _parse(cell: Cell) -> ast.Module:
    try:
        return ast.parse(cell.source)
    except SyntaxError as exc:
        raise InvalidInput(f"cell {cell.index}, line {exc.lineno}: not valid Python: {exc.msg}") from exc


@dataclass
class _Flow:
    reads: dict[str, Read]
    writes: list[str]
    code: set[str]  # names last bound by an import, def or class: code, not data


def _flow(cells: Iterable[Cell]) -> _Flow:
    """What ``cells``, run in order as one block of module-level code, read before binding, and bind."""
    visitor = _FlowVisitor()
    for cell in cells:
        visitor.cell = cell.index
        visitor.visit(_parse(cell))
    reads = dict(visitor.reads)
    for name, read in visitor.deferred.items():
        if name not in visitor.bound:
            reads.setdefault(name, read)
    return _Flow(reads, visitor.writes, visitor.code)


class _FlowVisitor(ast.NodeVisitor):
    """Walks statements in evaluation order, noting names loaded before they are bound.

    Names used inside a function, lambda, class or comprehension are read when it runs, not where it is
    defined; they count as reads only when the block never binds them (``deferred``).
    """

    def __init__(self) -> None:
        self.cell = 0
        self.bound: set[str] = set()
        self.reads: dict[str, Read] = {}
        self.deferred: dict[str, Read] = {}
        self.writes: list[str] = []
        self.code: set[str] = set()

    def load(self, name: str, line: int) -> None:
        if name not in self.bound:
            self.reads.setdefault(name, Read(self.cell, line))

    def store(self, name: str, code: bool = False) -> None:
        self.bound.add(name)
        (self.code.add if code else self.code.discard)(name)
        if name not in self.writes:
            self.writes.append(name)

    def visit_Name(self, node: ast.Name) -> None:
        if isinstance(node.ctx, ast.Store):
            self.store(node.id)
        else:  # Load, and Del (deleting needs the name bound)
            self.load(node.id, node.lineno)

    def _store_into(self, node: ast.Attribute | ast.Subscript) -> None:
        """``df["y"] = …``: reads ``df``, then counts as binding it (the value changed)."""
        self.generic_visit(node)
        root: ast.expr = node
        while isinstance(root, ast.Attribute | ast.Subscript):
            root = root.value
        if isinstance(root, ast.Name) and not isinstance(node.ctx, ast.Load):
            self.store(root.id)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        self._store_into(node)

    def visit_Subscript(self, node: ast.Subscript) -> None:
        self._store_into(node)

    def visit_Assign(self, node: ast.Assign) -> None:
        self.visit(node.value)
        for target in node.targets:
            self.visit(target)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        if node.value is not None:  # the annotation is not evaluated inside a step's function
            self.visit(node.value)
            self.visit(node.target)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        if isinstance(node.target, ast.Name):
            self.load(node.target.id, node.lineno)
        self.visit(node.value)
        self.visit(node.target)

    def visit_NamedExpr(self, node: ast.NamedExpr) -> None:
        self.visit(node.value)
        self.visit(node.target)

    def visit_For(self, node: ast.For | ast.AsyncFor) -> None:
        self.visit(node.iter)
        self.visit(node.target)
        for statement in [*node.body, *node.orelse]:
            self.visit(statement)

    visit_AsyncFor = visit_For

    def visit_With(self, node: ast.With | ast.AsyncWith) -> None:
        for item in node.items:
            self.visit(item.context_expr)
            if item.optional_vars is not None:
                self.visit(item.optional_vars)
        for statement in node.body:
            self.visit(statement)

    visit_AsyncWith = visit_With

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        for expr in [*node.decorator_list, *node.args.defaults, *(d for d in node.args.kw_defaults if d)]:
            self.visit(expr)
        self._defer([node.args, *node.body])
        self.store(node.name, code=True)

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        for expr in [*node.decorator_list, *node.bases, *(k.value for k in node.keywords)]:
            self.visit(expr)
        self._defer(node.body)
        self.store(node.name, code=True)

    def visit_Lambda(self, node: ast.Lambda) -> None:
        for expr in [*node.args.defaults, *(d for d in node.args.kw_defaults if d)]:
            self.visit(expr)
        self._defer([node.args, node.body])

    def _comprehension(self, node: ast.ListComp | ast.SetComp | ast.GeneratorExp | ast.DictComp) -> None:
        # Its variables are its own; what else it reads is read right here.
        for name, line in _free_names([node], set()).items():
            self.load(name, line)

    visit_ListComp = visit_SetComp = visit_GeneratorExp = visit_DictComp = _comprehension

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self.store(alias.asname or alias.name.partition(".")[0], code=True)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        for alias in node.names:
            if alias.name != "*":
                self.store(alias.asname or alias.name, code=True)

    def visit_ExceptHandler(self, node: ast.ExceptHandler) -> None:
        if node.type is not None:
            self.visit(node.type)
        if node.name:
            self.store(node.name)
        for statement in node.body:
            self.visit(statement)

    def visit_MatchAs(self, node: ast.MatchAs) -> None:
        if node.pattern is not None:
            self.visit(node.pattern)
        if node.name:
            self.store(node.name)

    def visit_MatchStar(self, node: ast.MatchStar) -> None:
        if node.name:
            self.store(node.name)

    def visit_MatchMapping(self, node: ast.MatchMapping) -> None:
        self.generic_visit(node)
        if node.rest:
            self.store(node.rest)

    def _defer(self, nodes: list[Any]) -> None:
        for name, line in _free_names(nodes, set()).items():
            if name not in self.bound:
                self.deferred.setdefault(name, Read(self.cell, line))
        for node in nodes:
            for sub in ast.walk(node):
                if isinstance(sub, ast.Global):
                    for name in sub.names:
                        self.store(name)


def _free_names(nodes: list[Any], bound: set[str]) -> dict[str, int]:
    """Names loaded inside ``nodes`` (a nested scope) that the scope does not bind itself."""
    loads: dict[str, int] = {}
    local = set(bound)
    for node in nodes:
        for sub in ast.walk(node):
            if isinstance(sub, ast.Name):
                if isinstance(sub.ctx, ast.Load):
                    loads.setdefault(sub.id, sub.lineno)
                else:
                    local.add(sub.id)
            elif isinstance(sub, ast.arg):
                local.add(sub.arg)
            elif isinstance(sub, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                local.add(sub.name)
            elif isinstance(sub, ast.alias):
                local.add(sub.asname or sub.name.partition(".")[0])
            elif isinstance(sub, ast.ExceptHandler | ast.MatchAs | ast.MatchStar) and sub.name:
                local.add(sub.name)
            elif isinstance(sub, ast.Global | ast.Nonlocal):
                local.difference_update(sub.names)
    globals_ = {n for node in nodes for s in ast.walk(node) if isinstance(s, ast.Global) for n in s.names}
    return {name: line for name, line in loads.items() if name not in local or name in globals_}
