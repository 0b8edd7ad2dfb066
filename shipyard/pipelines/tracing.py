"""Placeholders a pipeline body works with while it is traced, and the trace that records them.

A ``@pipeline`` function runs once at compile time. Its arguments are :class:`PipelineParam` placeholders,
each component call returns a task whose outputs are :class:`TaskOutput` placeholders, and comparing a
placeholder with a literal gives a :class:`Condition` for ``If``. The trace lives in a context variable, so
nothing global is mutated and concurrent compiles do not see each other.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from shipyard.errors import PipelineDefinitionError

if TYPE_CHECKING:
    from shipyard.pipelines.dsl import Task

OPERATORS = ("==", "!=", "<", "<=", ">", ">=")


class Ref:
    """A value known only when the pipeline runs: a pipeline parameter, a step output or a loop item."""

    type_name: str = ""

    def _compare(self, op: str, other: object) -> Condition:
        if isinstance(other, Collected):
            raise PipelineDefinitionError(
                f"conditions compare with a literal, a parameter or one output, not with {other!r}"
            )
        return Condition(self, op, other)

    def __eq__(self, other: object) -> Condition:  # type: ignore[override]
        return self._compare("==", other)

    def __ne__(self, other: object) -> Condition:  # type: ignore[override]
        return self._compare("!=", other)

    def __lt__(self, other: object) -> Condition:
        return self._compare("<", other)

    def __le__(self, other: object) -> Condition:
        return self._compare("<=", other)

    def __gt__(self, other: object) -> Condition:
        return self._compare(">", other)

    def __ge__(self, other: object) -> Condition:
        return self._compare(">=", other)

    __hash__ = object.__hash__

    def __bool__(self) -> bool:
        # NOTE: `if step.output > 0.9:` in a pipeline body would silently pick one branch at compile time.
        raise PipelineDefinitionError(
            f"{self!r} has no value while the pipeline is traced; use `with If(...)` instead of `if`"
        )


class PipelineParam(Ref):
    """A pipeline parameter, named in the spec and bound when a run starts."""

    def __init__(self, name: str, type_name: str) -> None:
        self.name = name
        self.type_name = type_name

    def __repr__(self) -> str:
        return f"PipelineParam({self.name!r})"


class TaskOutput(Ref):
    """One output of a traced step."""

    def __init__(self, task: Task, name: str, type_name: str, kind: str) -> None:
        self.task = task
        self.name = name
        self.type_name = type_name
        self.kind = kind

    def __repr__(self) -> str:
        return f"{self.task.step_id}.outputs[{self.name!r}]"


class LoopItem(Ref):
    """The current item of a ``ParallelFor``; its type is not checked at compile time."""

    def __init__(self, loop: Loop) -> None:
        self.loop = loop

    def __repr__(self) -> str:
        return f"LoopItem({self.loop.loop_id!r})"


class Collected:
    """Fan-in: the list of one output over every iteration of the loop that produced it.

    Use it as an input of a step after the loop: ``summarize(scores=Collected(train.outputs["acc"]))``.
    """

    def __init__(self, output: TaskOutput) -> None:
        if not isinstance(output, TaskOutput):
            raise PipelineDefinitionError(
                f"Collected takes a step output such as task.outputs['x'], not {output!r}"
            )
        self.output = output
        self.type_name = "list"

    def __repr__(self) -> str:
        return f"Collected({self.output!r})"


@dataclass(frozen=True, eq=False)
class Condition:
    """``left op right``: a placeholder compared with a literal or another placeholder (a pipeline
    parameter, a step output); ``negated`` for Elif/Else branches."""

    left: Ref
    op: str
    right: Any
    negated: bool = False

    def __invert__(self) -> Condition:
        return Condition(self.left, self.op, self.right, not self.negated)

    def __bool__(self) -> bool:
        raise PipelineDefinitionError(
            f"{self.left!r} {self.op} {self.right!r} is decided at run time; use `with If(...)`"
        )


@dataclass(frozen=True, eq=False)
class Loop:
    """One ``ParallelFor`` block."""

    loop_id: str
    items: Any
    parallelism: int | None


@dataclass
class Trace:
    """Everything one traced pipeline body did, in call order."""

    tasks: list[Task] = field(default_factory=list)
    name_counts: dict[str, int] = field(default_factory=dict)
    condition_blocks: list[list[Condition]] = field(default_factory=list)
    # The conditions of the If/Elif chain just closed, and the depth it was at, so Elif/Else can negate them.
    chain: tuple[int, list[Condition]] | None = None
    loop: Loop | None = None
    loop_count: int = 0
    exit_scopes: list[list[Task]] = field(default_factory=list)

    def new_step_id(self, base: str) -> str:
        count = self.name_counts.get(base, 0) + 1
        self.name_counts[base] = count
        return base if count == 1 else f"{base}-{count}"

    @property
    def conditions(self) -> tuple[Condition, ...]:
        return tuple(c for block in self.condition_blocks for c in block)

    def add(self, task: Task) -> None:
        self.tasks.append(task)
        for scope in self.exit_scopes:
            scope.append(task)
        if self.chain is not None and self.chain[0] == len(self.condition_blocks):
            self.chain = None


CURRENT_TRACE: ContextVar[Trace | None] = ContextVar("shipyard_pipeline_trace", default=None)


def current_trace(what: str) -> Trace:
    """The trace in progress, or a PipelineDefinitionError: ``what`` only works inside a pipeline body."""
    trace = CURRENT_TRACE.get()
    if trace is None:
        raise PipelineDefinitionError(f"{what} can only be used inside a @pipeline function")
    return trace
