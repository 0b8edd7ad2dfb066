"""``@component`` and ``@pipeline``: plain typed Python functions become steps and pipelines.

Outside a pipeline body a component is its function and can be called (and unit-tested) directly. Inside a
``@pipeline`` body, which runs once at compile time, calling it records a :class:`Task` instead.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from shipyard.errors import PipelineDefinitionError
from shipyard.pipelines.spec import ParameterSpec, parse_size
from shipyard.pipelines.tracing import CURRENT_TRACE, Condition, Loop, PipelineParam, TaskOutput, Trace
from shipyard.pipelines.types import Interface, IOKind, read_interface


@dataclass(frozen=True)
class StepOptions:
    """How a step runs: retries with exponential backoff, a timeout, caching and resource hints."""

    retries: int = 0
    retry_backoff_s: float = 1.0
    timeout_s: float | None = None
    cache: bool = True
    cpus: float | None = None
    gpus: int | None = None
    memory: str | None = None
    workers: int = 1

    def __post_init__(self) -> None:
        if self.retries < 0 or self.retry_backoff_s < 0:
            raise PipelineDefinitionError(
                f"retries and retry_backoff_s must be >= 0, got {self.retries}, {self.retry_backoff_s}"
            )
        if self.timeout_s is not None and self.timeout_s <= 0:
            raise PipelineDefinitionError(f"timeout_s must be > 0, got {self.timeout_s}")
        if (self.cpus is not None and self.cpus < 0) or (self.gpus is not None and self.gpus < 0):
            raise PipelineDefinitionError(f"cpus and gpus must be >= 0, got {self.cpus}, {self.gpus}")
        if self.memory is not None:
            parse_size(self.memory)
        if isinstance(self.workers, bool) or not isinstance(self.workers, int) or self.workers < 1:
            raise PipelineDefinitionError(f"workers must be an integer >= 1, got {self.workers!r}")


class Component:
    """A typed function usable as a pipeline step. Create with :func:`component`."""

    def __init__(self, func: Callable[..., Any], options: StepOptions, version: str) -> None:
        self.func = func
        self.options = options
        self.version = version
        self.interface: Interface = read_interface(func)
        self.name = func.__name__
        functools.update_wrapper(self, func)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        trace = CURRENT_TRACE.get()
        if trace is None:
            return self.func(*args, **kwargs)
        step_id = trace.new_step_id(self.name.replace("_", "-"))
        try:
            bound = inspect.signature(self.func).bind_partial(*args, **kwargs)
        except TypeError as exc:
            raise PipelineDefinitionError(f"step {step_id!r}: {exc}") from exc
        for arg in bound.arguments:
            if arg in self.interface.outputs:
                raise PipelineDefinitionError(
                    f"step {step_id!r}: argument {arg!r} is an Output artifact; do not pass it"
                )
        task = Task(self, step_id, dict(bound.arguments), trace)
        trace.add(task)
        return task

    def __repr__(self) -> str:
        return f"<component {self.func.__module__}.{self.name}>"

    def __reduce__(self) -> tuple[Any, tuple[str, str]]:
        # By reference, like the function it wraps (whose module attribute is this component, so the
        # function itself cannot pickle): a training job's workers import it again.
        return _import_attribute, (self.func.__module__, self.func.__qualname__)


def component(
    func: Callable[..., Any] | None = None,
    *,
    retries: int = 0,
    retry_backoff_s: float = 1.0,
    timeout_s: float | None = None,
    cache: bool = True,
    cpus: float | None = None,
    gpus: int | None = None,
    memory: str | None = None,
    workers: int = 1,
    version: str = "1",
) -> Any:
    """Turn a type-annotated function into a :class:`Component`; usable bare or with options.

    Args:
        retries: extra attempts after a failure; waits ``retry_backoff_s * 2**attempt`` between them.
        timeout_s: wall-clock limit per attempt.
        cache: whether an identical earlier run's outputs may be reused.
        cpus, gpus, memory: resource hints for the executor (``memory`` like ``"2Gi"``).
        workers: run the step as a data-parallel training job of this many processes
            (:func:`shipyard.training.run`: ``shipyard.training.context()`` inside gives each its rank;
            rank 0's return value is the step's; on CUDA when ``gpus`` is set). Like the resource hints,
            not part of the cache key. Write artifact outputs from rank 0 only.
        version: bump to invalidate cached results when behaviour changes without a code change.
    """
    options = StepOptions(retries, retry_backoff_s, timeout_s, cache, cpus, gpus, memory, workers)
    if func is not None:
        return Component(func, options, version)
    return lambda f: Component(f, options, version)


def _import_attribute(module: str, qualname: str) -> Any:
    target: Any = importlib.import_module(module)
    for part in qualname.split("."):
        target = getattr(target, part)
    return target


class Task:
    """One call of a component inside a pipeline body: a step of the compiled pipeline."""

    def __init__(self, component: Component, step_id: str, arguments: dict[str, Any], trace: Trace) -> None:
        self.component = component
        self.step_id = step_id
        self.arguments = arguments
        self.options = component.options
        self.upstream: list[Task] = []
        self.conditions: tuple[Condition, ...] = trace.conditions
        self.loop: Loop | None = trace.loop
        self.is_exit_handler = False

    @property
    def outputs(self) -> Mapping[str, TaskOutput]:
        """The step's outputs by name, parameters and artifacts alike."""
        return _Outputs(self)

    @property
    def output(self) -> TaskOutput:
        """The returned value (output ``"output"``), or the only output; else an error naming the outputs."""
        names = list(self.component.interface.outputs)
        if "output" in names:
            return self.outputs["output"]
        if len(names) != 1:
            raise PipelineDefinitionError(f"step {self.step_id!r} has outputs {names}; use .outputs[name]")
        return self.outputs[names[0]]

    def after(self, *tasks: Task) -> Task:
        """Run this step only after ``tasks`` finish, even when no data flows between them."""
        for task in tasks:
            if not isinstance(task, Task):
                raise PipelineDefinitionError(f"step {self.step_id!r}: after() takes tasks, got {task!r}")
            self.upstream.append(task)
        return self

    def set_retries(self, retries: int, backoff_s: float | None = None) -> Task:
        backoff = self.options.retry_backoff_s if backoff_s is None else backoff_s
        self.options = dataclasses.replace(self.options, retries=retries, retry_backoff_s=backoff)
        return self

    def set_timeout(self, timeout_s: float | None) -> Task:
        self.options = dataclasses.replace(self.options, timeout_s=timeout_s)
        return self

    def set_caching(self, cache: bool) -> Task:
        self.options = dataclasses.replace(self.options, cache=cache)
        return self

    def set_resources(
        self, *, cpus: float | None = None, gpus: int | None = None, memory: str | None = None
    ) -> Task:
        self.options = dataclasses.replace(self.options, cpus=cpus, gpus=gpus, memory=memory)
        return self

    def __repr__(self) -> str:
        return f"<task {self.step_id}>"


class _Outputs(Mapping[str, TaskOutput]):
    def __init__(self, task: Task) -> None:
        self._task = task
        self._specs = task.component.interface.outputs

    def __getitem__(self, name: str) -> TaskOutput:
        if name not in self._specs:
            raise PipelineDefinitionError(
                f"step {self._task.step_id!r} has no output {name!r}; it has: {', '.join(self._specs)}"
            )
        spec = self._specs[name]
        return TaskOutput(self._task, name, spec.type_name, spec.kind.value)

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._specs)

    def __len__(self) -> int:
        return len(self._specs)


class Pipeline:
    """A composition of components. Create with :func:`pipeline`; compile with ``compile_pipeline``."""

    def __init__(self, func: Callable[..., Any], name: str | None, cache: bool = True) -> None:
        self.func = func
        self.name = name or func.__name__.replace("_", "-")
        self.cache = cache
        hints = read_interface(func).inputs
        self.parameters: dict[str, ParameterSpec] = {}
        for arg, spec in hints.items():
            if spec.kind is IOKind.ARTIFACT:
                raise PipelineDefinitionError(
                    f"pipeline {self.name!r}: parameter {arg!r} must be a plain value, not an artifact"
                )
            self.parameters[arg] = ParameterSpec(spec.type_name, not spec.has_default, spec.default)
        functools.update_wrapper(self, func)

    def trace(self) -> Trace:
        """Run the body once with placeholders and return what it recorded."""
        trace = Trace()
        token = CURRENT_TRACE.set(trace)
        try:
            self.func(**{n: PipelineParam(n, p.type_name) for n, p in self.parameters.items()})
        finally:
            CURRENT_TRACE.reset(token)
        return trace


def pipeline(func: Callable[..., Any] | None = None, *, name: str | None = None, cache: bool = True) -> Any:
    """Turn a function that calls components into a :class:`Pipeline`; bare or ``@pipeline(name=…)``.

    Args:
        name: the pipeline's name (default: the function's, with dashes).
        cache: ``False`` compiles every step with caching off (a step's own ``cache=False`` always holds).
    """
    if func is not None:
        return Pipeline(func, name, cache)
    return lambda f: Pipeline(f, name, cache)
