"""The worker side of both executors: one step attempt, run by a :mod:`shipyard.workers` worker.

:func:`run_captured` imports the step's component by module and function name (the spec, not pickled
Python objects, is what runs), calls it with its stdout and stderr redirected to the task's log files, and
returns a :class:`StepReturn`, or a :class:`StepFailure` with the traceback of what the step raised.
Artifacts on an object-store root are downloaded before the call and uploaded after it
(:mod:`shipyard.pipelines.staging`).
A step that kills its process (``os._exit``, a segfault, ``sys.exit``) never answers; the engine sees the
dead process instead.
"""

from __future__ import annotations

import importlib
import os
import sys
import traceback
from dataclasses import dataclass
from typing import Any

from shipyard.config import Settings, using_settings
from shipyard.errors import PipelineError
from shipyard.pipelines.staging import staged, upload_outputs
from shipyard.pipelines.types import ARTIFACT_TYPES, Artifact
from shipyard.tracking.fluent import attached_run
from shipyard.tracking.records import Run

_PYTHON_TYPES: dict[str, type | tuple[type, ...]] = {
    "str": str,
    "int": int,
    "float": (int, float),
    "bool": bool,
    "list": list,
    "dict": dict,
}


@dataclass(frozen=True)
class ArtifactRef:
    """An artifact handed to a step: its type name, local path and URI.

    An empty ``path`` with an object-store ``uri`` is staged by the worker: an input (``output`` False) is
    downloaded and checked against ``sha256``; an output gets a local temp path and is uploaded afterwards.
    """

    type_name: str
    path: str
    uri: str
    sha256: str | None = None
    output: bool = False


@dataclass(frozen=True)
class StepReturn:
    """What a step attempt that ran to the end sends back.

    Attributes:
        values: its parameter outputs by name.
        artifact_sha256: the sha256 of each output the worker uploaded to an object store (none when the
            outputs are local files, which the engine hashes itself).
    """

    values: dict[str, Any]
    artifact_sha256: dict[str, str]


@dataclass(frozen=True)
class Task:
    """One attempt of one step, as sent to a worker.

    Attributes:
        module, function: where the component lives.
        parameters: parameter inputs by value.
        artifacts: artifact inputs and outputs by argument name.
        returns: declared parameter outputs (name → type name), in return order.
        log_dir: folder for ``stdout.txt`` and ``stderr.txt`` (appended to across attempts).
        run, settings: the step's tracked run and the executor's settings; while the component runs, that
            run is the active run and those settings are what ``get_settings()`` returns, so
            ``shipyard.log_metric`` or ``shipyard.models.register`` inside a step use the executor's store.
        project_dir: the folder the spec was compiled in, searched for ``module`` when it is not found on
            the worker's own path (a scheduler or a run started from another folder).
        workers, device: above one worker, the component runs as a training job of that many processes
            on ``device`` (:func:`shipyard.training.run`), nested under the step's run.
    """

    module: str
    function: str
    parameters: dict[str, Any]
    artifacts: dict[str, ArtifactRef]
    returns: dict[str, str]
    log_dir: str
    run: Run | None = None
    settings: Settings | None = None
    project_dir: str | None = None
    workers: int = 1
    device: str = "cpu"


@dataclass(frozen=True)
class StepFailure:
    """A step attempt that raised: its traceback, exactly as written to its ``stderr.txt`` (so the logs
    can tell the two are the same text and show it once)."""

    traceback: str


def run_captured(task: Task) -> StepReturn | StepFailure:
    """Run ``task``, its stdout/stderr going to its log files: its outputs, or the traceback of what it
    raised (written to its stderr too)."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    # NOTE: redirect the file descriptors, not sys.stdout, so output of C code and subprocesses is captured.
    with (
        open(os.path.join(task.log_dir, "stdout.txt"), "ab") as out,
        open(os.path.join(task.log_dir, "stderr.txt"), "ab") as err,
    ):
        os.dup2(out.fileno(), 1)
        os.dup2(err.fileno(), 2)
        try:
            return run_task(task)
        except Exception:
            text = traceback.format_exc()
            sys.stderr.write(text)
            return StepFailure(text)
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


def import_component(module: str, function: str, project_dir: str | None) -> Any:
    """``module.function``, looking in ``project_dir`` too (after the worker's own path, as ``python -m``
    would from there).

    Raises:
        PipelineError: one line naming the module, the folders searched and how to make it importable.
    """
    if project_dir and project_dir not in sys.path:
        sys.path.append(project_dir)
    try:
        return getattr(importlib.import_module(module), function)
    except ModuleNotFoundError as exc:
        searched = ", ".join(p or "." for p in dict.fromkeys([project_dir or "", *sys.path]) if p)
        raise PipelineError(
            f"cannot import component {module}.{function}: no module named {exc.name!r} "
            f"(searched: {searched}); run from the project's folder, recompile the spec there, or add the "
            "folder to PYTHONPATH"
        ) from exc
    except (ImportError, AttributeError) as exc:
        raise PipelineError(f"cannot import component {module}.{function}: {exc}") from exc


def run_task(task: Task) -> StepReturn:
    """Import and call the component; return its parameter outputs by name, type-checked.

    Raises:
        PipelineError: the component cannot be imported, returned a value of the wrong type, or did not
            write a remote artifact output.
        IntegrityError: a remote artifact input does not match its recorded sha256.
    """
    target = import_component(task.module, task.function, task.project_dir)
    func = getattr(target, "func", target)  # a Component wraps the plain function
    with staged(task.artifacts, task.settings) as local:
        kwargs = dict(task.parameters)
        for name, ref in local.items():
            kwargs[name] = ARTIFACT_TYPES.get(ref.type_name, Artifact)(ref.path, ref.uri)
        if task.run is not None and task.settings is not None:
            with using_settings(task.settings), attached_run(task.run, task.settings):
                returned = _call(task, target, func, kwargs)
        else:
            returned = _call(task, target, func, kwargs)
        values = _check_returns(task, returned)
        return StepReturn(values, upload_outputs(task.artifacts, local, task.settings))


def _call(task: Task, target: Any, func: Any, kwargs: dict[str, Any]) -> Any:
    if task.workers == 1:
        return func(**kwargs)
    from shipyard import training  # torch: only for a step that trains

    # The component, not its function: it pickles by reference, so each rank imports it again.
    return training.run(target, workers=task.workers, device=task.device, **kwargs).value


def _check_returns(task: Task, returned: Any) -> dict[str, Any]:
    where = f"component {task.module}.{task.function}"
    if not task.returns:
        return {}
    if list(task.returns) == ["output"]:
        values = {"output": returned}
    elif hasattr(returned, "_asdict"):
        values = dict(returned._asdict())
    else:
        raise PipelineError(
            f"{where} declares outputs {list(task.returns)} (a NamedTuple) but returned "
            f"{type(returned).__name__}"
        )
    for name, type_name in task.returns.items():
        value = values.get(name)
        expected = _PYTHON_TYPES.get(type_name, object)
        bad_bool = isinstance(value, bool) and type_name in ("int", "float")
        if bad_bool or not isinstance(value, expected):
            raise PipelineError(
                f"{where} output {name!r} is declared {type_name} but the function returned "
                f"{type(value).__name__} ({value!r:.80})"
            )
        if type_name == "float":
            values[name] = float(value)
    return {name: values[name] for name in task.returns}
