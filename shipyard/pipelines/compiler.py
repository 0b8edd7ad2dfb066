"""Compile a traced ``@pipeline`` into a :class:`PipelineSpec`, rejecting what cannot run.

Checked here, each error naming the step and argument: missing required inputs, type mismatches between
steps (``int`` may feed ``float``), artifacts given as literals (other than a dataset version,
``data:customers@3``, for a Dataset input), loop items used outside their loop,
``Collected`` misuse, and cycles through ``.after``.
"""

from __future__ import annotations

import hashlib
import inspect
import sys
import textwrap
from pathlib import Path
from typing import Any

from shipyard.datasets.refs import is_dataset_uri
from shipyard.errors import InvalidInput, PipelineDefinitionError
from shipyard.pipelines.datasets import DATASET_INPUT_TYPES, check_reference
from shipyard.pipelines.dsl import Pipeline, Task
from shipyard.pipelines.spec import (
    ComponentRef,
    ConditionSpec,
    InputSpec,
    LoopSpec,
    OutputSpec,
    PipelineSpec,
    Resources,
    StepSpec,
)
from shipyard.pipelines.tracing import Collected, LoopItem, PipelineParam, Ref, TaskOutput
from shipyard.pipelines.types import PARAMETER_TYPES, IOKind, IOSpec, is_assignable


def source_sha256(func: Any) -> str:
    """sha256 of the function's dedented source, so a code change changes the spec (and the cache key)."""
    return hashlib.sha256(textwrap.dedent(inspect.getsource(func)).encode()).hexdigest()


def compile_pipeline(pipeline: Pipeline) -> PipelineSpec:
    """Trace ``pipeline`` once and compile it.

    Raises:
        PipelineDefinitionError: the first problem found, naming the step and argument (or a cycle's steps).
    """
    if not isinstance(pipeline, Pipeline):
        raise PipelineDefinitionError(f"compile_pipeline takes a @pipeline function, got {pipeline!r}")
    trace = pipeline.trace()
    steps = {task.step_id: _compile_step(task, pipeline.cache) for task in trace.tasks}
    _reject_cycles(steps)
    _, project_dir = importable_module(pipeline.func)
    return PipelineSpec(pipeline.name, dict(pipeline.parameters), steps, project_dir=project_dir)


def importable_module(obj: Any) -> tuple[str, str | None]:
    """The name a worker process imports ``obj``'s module by, and the folder that name resolves from.

    A pipeline started with ``python -m pkg.mod`` or ``python pkg/mod.py`` defines its components in
    ``__main__``, which no other process can import: they get the module's real name (``pkg.mod``), so the
    spec — and its cache keys — are the same whichever way the pipeline was started.
    """
    name = obj.__module__
    module = sys.modules.get(name)
    path = getattr(module, "__file__", None)
    if name == "__main__" and module is not None:
        spec = getattr(module, "__spec__", None)
        if spec is not None and spec.name and spec.name != "__main__":
            name = spec.name.removesuffix(".__main__")
        elif path is not None:
            try:
                relative = Path(path).resolve().relative_to(Path.cwd().resolve())
            except ValueError:
                return name, None  # a script outside the working directory: no importable name
            name = ".".join(relative.with_suffix("").parts)
    if path is None:
        return name, None
    depth = len(name.split(".")) + (1 if Path(path).name == "__init__.py" else 0)
    return name, str(Path(path).resolve().parents[depth - 1])


def _compile_step(task: Task, pipeline_cache: bool) -> StepSpec:
    iface, opts, func = task.component.interface, task.options, task.component.func
    inputs: dict[str, InputSpec] = {}
    for arg, declared in iface.inputs.items():
        if arg in task.arguments:
            inputs[arg] = InputSpec(declared.type_name, _source(task, arg, declared, task.arguments[arg]))
        elif declared.has_default:
            inputs[arg] = InputSpec(declared.type_name, {"value": declared.default})
        else:
            raise PipelineDefinitionError(
                f"step {task.step_id!r}: missing required input {arg!r} ({declared.type_name})"
            )
    loop = None
    if task.loop is not None:
        items = task.loop.items
        items_source = (
            _ref_source(task, "ParallelFor items", items) if isinstance(items, Ref) else {"value": items}
        )
        loop = LoopSpec(task.loop.loop_id, items_source, task.loop.parallelism)
    return StepSpec(
        component=ComponentRef(
            importable_module(func)[0], func.__qualname__, source_sha256(func), task.component.version
        ),
        inputs=inputs,
        outputs={n: OutputSpec(o.type_name, o.kind.value) for n, o in iface.outputs.items()},
        after=tuple(dict.fromkeys(t.step_id for t in task.upstream)),
        conditions=tuple(
            ConditionSpec(
                _ref_source(task, "condition", c.left),
                c.op,
                None if isinstance(c.right, Ref) else c.right,
                c.negated,
                _ref_source(task, "condition", c.right) if isinstance(c.right, Ref) else None,
            )
            for c in task.conditions
        ),
        loop=loop,
        retries=opts.retries,
        retry_backoff_s=opts.retry_backoff_s,
        timeout_s=opts.timeout_s,
        cache=opts.cache and pipeline_cache,
        resources=Resources(opts.cpus, opts.gpus, opts.memory),
        is_exit_handler=task.is_exit_handler,
        workers=opts.workers,
    )


def _ref_source(task: Task, arg: str, ref: Ref) -> dict[str, Any]:
    where = f"step {task.step_id!r} argument {arg!r}"
    if isinstance(ref, PipelineParam):
        return {"param": ref.name}
    if isinstance(ref, LoopItem):
        if task.loop is not ref.loop:
            raise PipelineDefinitionError(
                f"{where}: uses the item of {ref.loop.loop_id!r} outside that ParallelFor"
            )
        return {"loop_item": ref.loop.loop_id}
    assert isinstance(ref, TaskOutput)
    producer = ref.task
    if producer.loop is not None and producer.loop is not task.loop:
        raise PipelineDefinitionError(
            f"{where}: output {ref.name!r} of step {producer.step_id!r} is produced once per loop item; "
            "wrap it in Collected(...) to use the list after the loop"
        )
    return {"step": producer.step_id, "output": ref.name}


def _source(task: Task, arg: str, declared: IOSpec, value: Any) -> dict[str, Any]:
    where = f"step {task.step_id!r} argument {arg!r}"
    if isinstance(value, Collected):
        producer = value.output.task
        if producer.loop is None:
            raise PipelineDefinitionError(
                f"{where}: Collected needs an output of a step inside ParallelFor, "
                f"but {producer.step_id!r} is not in a loop"
            )
        if task.loop is producer.loop:
            raise PipelineDefinitionError(
                f"{where}: Collected is for steps after the loop, not inside {producer.loop.loop_id!r}"
            )
        if declared.type_name != "list":
            raise PipelineDefinitionError(
                f"{where}: Collected gives a list but the argument is {declared.type_name}"
            )
        return {"collected": {"step": producer.step_id, "output": value.output.name}}
    if isinstance(value, Ref):
        source = _ref_source(task, arg, value)
        # A str parameter may name a dataset version for a Dataset input; its value is checked at run start.
        names_dataset = (
            isinstance(value, PipelineParam)
            and value.type_name == "str"
            and declared.type_name in DATASET_INPUT_TYPES
        )
        if value.type_name and not names_dataset and not is_assignable(value.type_name, declared.type_name):
            origin = (
                f"step {value.task.step_id!r}"
                if isinstance(value, TaskOutput)
                else f"pipeline parameter {value!r}"
            )
            raise PipelineDefinitionError(
                f"{where} expects {declared.type_name} but {origin} gives {value.type_name}"
                + (f" (output {value.name!r})" if isinstance(value, TaskOutput) else "")
            )
        return source
    if declared.kind is IOKind.ARTIFACT:
        if is_dataset_uri(value):
            try:
                check_reference(where, declared.type_name, value)
            except InvalidInput as exc:
                raise PipelineDefinitionError(str(exc)) from exc
            return {"value": value}
        raise PipelineDefinitionError(
            f"{where} is a {declared.type_name} artifact; pass a step output or a dataset version "
            f"(data:name@version), not {value!r}"
        )
    if isinstance(value, Task):
        raise PipelineDefinitionError(
            f"{where}: pass an output such as {value.step_id}.output, not the task itself"
        )
    if _holds_placeholder(value):
        raise PipelineDefinitionError(
            f"{where}: pipeline values cannot be nested in a literal; pass them directly or use Collected"
        )
    literal_type = PARAMETER_TYPES.get(type(value))
    if literal_type is None or not is_assignable(literal_type, declared.type_name):
        raise PipelineDefinitionError(f"{where} expects {declared.type_name}, got {value!r}")
    return {"value": value}


def _holds_placeholder(value: Any) -> bool:
    if isinstance(value, Ref | Collected | Task):
        return True
    if isinstance(value, list | tuple):
        return any(_holds_placeholder(v) for v in value)
    return isinstance(value, dict) and any(_holds_placeholder(v) for v in value.values())


def _reject_cycles(steps: dict[str, StepSpec]) -> None:
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(sid: str) -> None:
        state[sid] = 1
        path.append(sid)
        for up in sorted(steps[sid].upstream()):
            if state.get(up) == 1:
                cycle = [*path[path.index(up) :], up]
                raise PipelineDefinitionError(f"pipeline has a cycle: {' -> '.join(reversed(cycle))}")
            if up not in state:
                visit(up)
        path.pop()
        state[sid] = 2

    for sid in steps:
        if sid not in state:
            visit(sid)
