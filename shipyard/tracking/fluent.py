"""The module-level API: ``shipyard.start_run`` and MLflow-style shortcuts on the active run.

One `TrackingClient` and one `MetricWriter` per store per process. Open runs are ended on interpreter exit
(FINISHED, or FAILED after an uncaught exception) and on SIGTERM (KILLED); both flush buffered metrics.
"""

from __future__ import annotations

import atexit
import dataclasses
import logging
import os
import signal
import sys
import threading
import traceback
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from types import FrameType, TracebackType
from typing import TYPE_CHECKING, Any

from shipyard.config import Settings, get_settings
from shipyard.errors import InvalidInput
from shipyard.tracking.client import DEFAULT_EXPERIMENT, TrackingClient
from shipyard.tracking.records import Experiment, Metric, Run, RunList, RunStatus
from shipyard.tracking.run import ActiveRun
from shipyard.tracking.writer import MetricWriter, flush_all

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)

_lock = threading.RLock()
_clients: dict[tuple[str, str, str], tuple[TrackingClient, MetricWriter]] = {}
_open_runs: dict[str, ActiveRun] = {}
_stack = threading.local()
_hooks_installed = False
_uncaught_exception = False
_uncaught_traceback = ""  # kept by the open runs an uncaught exception ends FAILED
# The experiment `set_experiment` chose for this process (MLflow keeps one likewise).
_default_experiment: str | None = None


def get_client(settings: Settings | None = None) -> TrackingClient:
    """The process-wide client for ``settings`` (default: read from the environment now)."""
    return _client_and_writer(settings or get_settings())[0]


def _client_and_writer(settings: Settings) -> tuple[TrackingClient, MetricWriter]:
    key = (settings.db_url, settings.artifact_root, settings.tracking_uri or "")
    pair = _clients.get(key)
    if pair is None:
        with _lock:
            pair = _clients.get(key)
            if pair is None:
                client = TrackingClient(settings)
                writer = MetricWriter(
                    client, interval=settings.flush_interval, heartbeat_interval=settings.heartbeat_interval
                )
                pair = (client, writer)
                _clients[key] = pair
    return pair


def set_experiment(name: str, *, settings: Settings | None = None) -> Experiment:
    """Make ``name`` the experiment of later runs that name none (created when missing), like MLflow's.

    Returns:
        The experiment record. ``start_run(experiment=...)`` still wins over it.
    """
    global _default_experiment
    experiment = get_client(settings).get_or_create_experiment(name)
    _default_experiment = name
    return experiment


def start_run(
    experiment: str | None = None,
    name: str | None = None,
    *,
    run_name: str | None = None,
    parent: ActiveRun | str | None = None,
    nested: bool = False,
    run_id: str | None = None,
    tags: Mapping[str, Any] | None = None,
    log_system_metrics: bool | None = None,
    system_metrics_interval: float | None = None,
    settings: Settings | None = None,
) -> ActiveRun:
    """Start (or resume, with ``run_id``) a run; use it as a context manager.

    Args:
        experiment: experiment name, created when missing (default: the parent's experiment for a nested
            run, else the one `set_experiment` chose, else ``$SHIPYARD_EXPERIMENT`` or "Default").
        name: run name, unique in the experiment; generated when omitted.
        run_name: MLflow's spelling of ``name``.
        parent: the parent run (an `ActiveRun` or a run id) for a nested run.
        nested: MLflow's way to nest: the parent is this thread's active run (none: a top-level run).
        run_id: resume this existing run instead of creating one.
        tags: tags to set at creation.
        log_system_metrics: sample CPU/memory/IO/GPU in the background (default from settings).
        system_metrics_interval: seconds between samples (default from settings).
        settings: where to store it (default: from the environment and ``shipyard.toml``).
    """
    if run_name is not None:
        if name is not None and name != run_name:
            raise InvalidInput(f"start_run got name={name!r} and run_name={run_name!r}; pass one of them")
        name = run_name
    if nested and parent is None:
        parent = active_run()
    settings = settings or get_settings()
    client, writer = _client_and_writer(settings)
    if run_id is not None:
        if name is not None or parent is not None:
            raise InvalidInput("pass run_id to resume a run, or name/parent to create one, not both")
        record, pk = client.resume_run(run_id)
        if tags:
            client.set_tags(pk, tags)
    else:
        parent_id = parent.run_id if isinstance(parent, ActiveRun) else parent
        if experiment is None and parent_id is not None:
            # A child belongs with its parent unless told otherwise (an id is found like a name).
            if isinstance(parent, ActiveRun):
                experiment = parent.experiment_id
            else:
                experiment = client.get_run(parent_id).experiment_id
        experiment = (
            experiment or _default_experiment or os.environ.get("SHIPYARD_EXPERIMENT") or DEFAULT_EXPERIMENT
        )
        record, pk = client.create_run(experiment, name=name, parent_run_id=parent_id, tags=tags)
    run = ActiveRun(client, writer, record, pk, beat=True)
    _install_hooks()
    with _lock:
        _open_runs[run.run_id] = run
    _thread_stack().append(run)
    run._on_end.append(_forget)
    enabled = settings.system_metrics if log_system_metrics is None else log_system_metrics
    if enabled:
        run.start_system_metrics(system_metrics_interval or settings.system_metrics_interval)
    return run


def _forget(run: ActiveRun) -> None:
    with _lock:
        _open_runs.pop(run.run_id, None)
    stack = _thread_stack()
    if run in stack:
        stack.remove(run)


def _thread_stack() -> list[ActiveRun]:
    stack = getattr(_stack, "runs", None)
    if stack is None:
        stack = _stack.runs = []
    return stack


def active_run() -> ActiveRun | None:
    """The innermost run started (or attached) in this thread and not yet ended."""
    stack = _thread_stack()
    if stack:
        return stack[-1]
    pending = getattr(_stack, "pending", None)
    if pending is None:
        return None
    settings, record = pending
    run = run_handle(record, settings)
    _stack.pending = None
    _stack.attached = run
    stack.append(run)
    return run


@contextmanager
def attached_run(record: Run, settings: Settings) -> Iterator[None]:
    """Within the block, make ``record`` — a RUNNING run that another process owns and will end — this
    thread's active run: what is logged goes to it and is flushed when the block exits, but the run is not
    ended here, nor by this process's exit hooks. (A pipeline step's worker logs into the step's run.)

    The handle is built on first use, so attaching costs nothing when the code inside logs nothing.
    """
    if _thread_stack():
        raise InvalidInput(f"cannot attach run {record.run_id}: run {_thread_stack()[-1].run_id} is active")
    _stack.pending = (settings, record)
    try:
        yield
    finally:
        _stack.pending = None
        run = getattr(_stack, "attached", None)
        _stack.attached = None
        if run is not None:
            stack = _thread_stack()
            if run in stack:
                stack.remove(run)
            run.flush()


def run_handle(record: Run, settings: Settings) -> ActiveRun:
    """A handle to log into ``record``, a RUNNING run that another process owns and will end (it does not
    beat, and ending it is the owner's job); not made this thread's active run."""
    client, writer = _client_and_writer(settings)
    return ActiveRun(client, writer, record, client.run_pk(record.run_id))


class _Dropped:
    """What the fluent calls log into in a :func:`muted` block: every method takes anything, keeps nothing."""

    def __getattr__(self, name: str) -> Any:
        return lambda *args, **kwargs: None


@contextmanager
def muted() -> Iterator[None]:
    """Within the block, this thread's fluent logging calls (``log_metric``, ``log_param``, ``set_tag``,
    ``log_artifact`` …) are accepted and dropped when no run is active, instead of raising: a distributed
    training job's workers other than rank 0 run the same code as rank 0, whose calls are the ones kept."""
    before = getattr(_stack, "muted", False)
    _stack.muted = True
    try:
        yield
    finally:
        _stack.muted = before


def _require_active() -> ActiveRun:
    run = active_run()
    if run is None and getattr(_stack, "muted", False):
        return _Dropped()  # type: ignore[return-value]
    if run is None:
        raise InvalidInput(
            "no active run: call shipyard.start_run() first (or use `with shipyard.start_run():`)"
        )
    return run


def end_run(status: RunStatus | str = RunStatus.FINISHED) -> None:
    """End the active run."""
    _require_active().end(status)


def log_param(key: str, value: Any) -> None:
    _require_active().log_param(key, value)


def log_params(values: Mapping[str, Any]) -> None:
    _require_active().log_params(values)


def log_metric(key: str, value: float, step: int = 0, timestamp: int | None = None) -> None:
    _require_active().log_metric(key, value, step, timestamp)


def log_metrics(values: Mapping[str, float], step: int = 0) -> None:
    _require_active().log_metrics(values, step)


def set_tag(key: str, value: Any) -> None:
    _require_active().set_tag(key, value)


def set_tags(values: Mapping[str, Any]) -> None:
    _require_active().set_tags(values)


def log_artifact(local_path: str | os.PathLike[str], artifact_path: str | None = None) -> Any:
    return _require_active().log_artifact(local_path, artifact_path)


def log_artifacts(local_dir: str | os.PathLike[str], artifact_path: str | None = None) -> Any:
    return _require_active().log_artifacts(local_dir, artifact_path)


def log_dict(data: Mapping[str, Any], artifact_file: str) -> Any:
    return _require_active().log_dict(data, artifact_file)


def log_text(text: str, artifact_file: str) -> Any:
    return _require_active().log_text(text, artifact_file)


def log_figure(figure: Any, artifact_file: str) -> Any:
    return _require_active().log_figure(figure, artifact_file)


def log_input(data: Any, name: str | None = None, context: str | None = None) -> Any:
    return _require_active().log_input(data, name=name, context=context)


def flush() -> None:
    """Commit every buffered metric point of this process."""
    flush_all()


def get_run(run_id: str | None = None, *, name: str | None = None, experiment: str | None = None) -> Run:
    """A run by id, or by name (within ``experiment`` when given)."""
    client = get_client()
    if run_id is not None:
        record = client.get_run(run_id)
    elif name is None:
        raise InvalidInput("get_run needs a run_id or a name")
    else:
        record = client.find_run(name, experiment)
    return dataclasses.replace(record, _history=metric_history)


def metric_history(run_id: str, key: str) -> list[Metric]:
    flush_all()
    return get_client().metric_history(run_id, key)


def search_runs(
    experiment: str | Sequence[str] | None = None,
    filter: str | None = None,
    *,
    order_by: Sequence[str] | None = None,
    max_results: int = 1000,
    page_token: str | None = None,
    columns: Sequence[str] | None = None,
    include_deleted: bool = False,
    output_format: str = "records",
) -> RunList | pd.DataFrame:
    """Search runs. ``filter`` uses the grammar of :mod:`shipyard.store.sql.search`, e.g.
    ``"metrics.acc > 0.9 and (params.model = 'rf' or tags.stage in ('prod', 'dev'))"``.

    Returns a `RunList` (with ``next_page_token``) or, with ``output_format="pandas"``, a DataFrame.
    Only the page's runs are loaded, and only the keys named in ``columns`` when given.
    """
    return get_client().search_runs(
        experiment,
        filter,
        order_by=order_by,
        max_results=max_results,
        page_token=page_token,
        columns=columns,
        include_deleted=include_deleted,
        output_format=output_format,
    )


# ---------------------------------------------------------------------- process exit and signals
def end_open_runs(status: RunStatus, traceback_text: str = "") -> None:
    """End every open run of this process with ``status`` (each keeping ``traceback_text`` when it is
    given), then flush all buffers."""
    with _lock:
        runs = list(_open_runs.values())
    for run in reversed(runs):  # children before parents
        try:
            if traceback_text:
                run.log_traceback(traceback_text)
            run.end(status)
        except Exception as exc:
            log.error("could not end run %s: %s", run.run_id, exc)
    flush_all()


def _at_exit() -> None:
    if _uncaught_exception:
        end_open_runs(RunStatus.FAILED, _uncaught_traceback)
    else:
        end_open_runs(RunStatus.FINISHED)


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    # NOTE: the handler runs in the main thread, which may be holding the writer's lock mid-flush; ending
    # the runs from another thread (bounded wait) cannot deadlock on it.
    worker = threading.Thread(target=end_open_runs, args=(RunStatus.KILLED,), daemon=True)
    worker.start()
    worker.join(timeout=30)
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


def _install_hooks() -> None:
    global _hooks_installed
    if _hooks_installed:
        return
    with _lock:
        if _hooks_installed:
            return
        _hooks_installed = True
        atexit.register(_at_exit)
        previous_hook = sys.excepthook

        def excepthook(kind: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
            global _uncaught_exception, _uncaught_traceback
            _uncaught_exception = True
            _uncaught_traceback = "".join(traceback.format_exception(kind, exc, tb))
            previous_hook(kind, exc, tb)

        sys.excepthook = excepthook
        # Only take SIGTERM when nobody else has (a server or test runner may own it).
        if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGTERM) in (
            signal.SIG_DFL,
            None,
        ):
            signal.signal(signal.SIGTERM, _on_sigterm)


def _reset_after_fork() -> None:
    # A forked child must not reuse the parent's buffers, threads or open runs.
    _clients.clear()
    _open_runs.clear()
    _stack.__dict__.clear()


os.register_at_fork(after_in_child=_reset_after_fork)
