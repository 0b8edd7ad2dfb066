"""Control flow inside a pipeline body: ``If``/``Elif``/``Else``, ``ParallelFor`` and ``ExitHandler``.

Each is a context manager that changes what the steps created inside it carry: their conditions, their
loop, or the exit step they are guarded by. Branches are compiled to plain conditions (``Elif`` becomes
"not the earlier ones, and this one"), so the spec needs no branch objects.
"""

from __future__ import annotations

import abc
from types import TracebackType
from typing import Any

from shipyard.errors import PipelineDefinitionError
from shipyard.pipelines.dsl import Task
from shipyard.pipelines.tracing import Collected, Condition, Loop, LoopItem, Ref, Trace, current_trace


class _Branch(abc.ABC):
    _name = "If"

    def __init__(self, condition: Condition | None = None) -> None:
        if condition is not None and not isinstance(condition, Condition):
            raise PipelineDefinitionError(
                f"{self._name} takes a comparison such as step.outputs['acc'] > 0.9, got {condition!r}"
            )
        self.condition = condition
        self._trace: Trace | None = None
        self._chain: list[Condition] = []

    def _previous(self, trace: Trace) -> list[Condition]:
        depth = len(trace.condition_blocks)
        if trace.chain is None or trace.chain[0] != depth:
            raise PipelineDefinitionError(f"{self._name} must directly follow an If or Elif block")
        return trace.chain[1]

    @abc.abstractmethod
    def _block(self, trace: Trace) -> list[Condition]:
        """The conditions that must all hold inside this branch (If, Elif and Else each define it)."""

    def __enter__(self) -> None:
        trace = current_trace(self._name)
        self._trace = trace
        block = self._block(trace)
        trace.condition_blocks.append(block)

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._trace is not None
        self._trace.condition_blocks.pop()
        depth = len(self._trace.condition_blocks)
        self._trace.chain = (depth, self._chain) if self._chain else None


class If(_Branch):
    """Run the steps inside only when ``condition`` holds: ``with If(eval.outputs["acc"] > 0.9):``."""

    def _block(self, trace: Trace) -> list[Condition]:
        assert self.condition is not None
        self._chain = [self.condition]
        return [self.condition]


class Elif(_Branch):
    """Run the steps inside when every earlier branch of the chain failed and ``condition`` holds."""

    _name = "Elif"

    def _block(self, trace: Trace) -> list[Condition]:
        assert self.condition is not None
        previous = self._previous(trace)
        self._chain = [*previous, self.condition]
        return [~c for c in previous] + [self.condition]


class Else(_Branch):
    """Run the steps inside when every branch of the preceding If/Elif chain failed."""

    _name = "Else"

    def __init__(self) -> None:
        super().__init__(None)

    def _block(self, trace: Trace) -> list[Condition]:
        return [~c for c in self._previous(trace)]


class ParallelFor:
    """Run the steps inside once per item, at most ``parallelism`` at a time.

    ``items`` is a literal list or a list-typed pipeline parameter or step output. ``with`` yields the
    current item; gather outputs after the loop with ``Collected(task.outputs["x"])``.
    """

    def __init__(self, items: Any, parallelism: int | None = None) -> None:
        if isinstance(items, Ref):
            if isinstance(items, LoopItem) or items.type_name != "list":
                raise PipelineDefinitionError(
                    f"ParallelFor items must be a list, got {items!r} of type {items.type_name!r}"
                )
        elif isinstance(items, Collected) or not isinstance(items, list):
            raise PipelineDefinitionError(
                f"ParallelFor items must be a list or a list-typed output, got {items!r}"
            )
        if parallelism is not None and parallelism < 1:
            raise PipelineDefinitionError(f"ParallelFor parallelism must be >= 1, got {parallelism}")
        self.items = items
        self.parallelism = parallelism
        self._trace: Trace | None = None

    def __enter__(self) -> LoopItem:
        trace = current_trace("ParallelFor")
        if trace.loop is not None:
            raise PipelineDefinitionError(
                f"nested ParallelFor is not supported yet (inside {trace.loop.loop_id!r})"
            )
        trace.loop_count += 1
        trace.loop = Loop(f"loop-{trace.loop_count}", self.items, self.parallelism)
        self._trace = trace
        return LoopItem(trace.loop)

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._trace is not None
        self._trace.loop = None


class ExitHandler:
    """Run ``exit_task`` after the steps inside, whether they succeed or fail.

    ``exit_task`` is created before the block: ``with ExitHandler(notify(msg="done")):``.
    """

    def __init__(self, exit_task: Task) -> None:
        if not isinstance(exit_task, Task):
            raise PipelineDefinitionError(f"ExitHandler takes a task, got {exit_task!r}")
        if exit_task.conditions or exit_task.loop is not None:
            raise PipelineDefinitionError(
                f"exit step {exit_task.step_id!r} must not be inside If or ParallelFor"
            )
        self.exit_task = exit_task
        self._trace: Trace | None = None

    def __enter__(self) -> Task:
        self._trace = current_trace("ExitHandler")
        self._trace.exit_scopes.append([])
        return self.exit_task

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._trace is not None
        guarded = self._trace.exit_scopes.pop()
        self.exit_task.is_exit_handler = True
        self.exit_task.after(*guarded)
