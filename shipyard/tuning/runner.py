"""Running a tuning experiment: Optuna samples and prunes, Shipyard records, executes and resumes.

The experiment is a parent run (spec, best value so far after each trial, final state); every trial is a
nested run with its parameters, intermediate and final metrics and its outcome (``shipyard.tuning.state``
tag: COMPLETE, PRUNED or FAIL). The Optuna study lives beside the records — by default a journal file under
``<home>/tuning/`` (a few ms per trial; Optuna's SQLite storage costs ~30 ms), or any Optuna storage URL
given as ``storage`` (a PostgreSQL database, for several machines) — so a search killed midway resumes
where it stopped (:func:`resume`), failing the trials that were running.

The driver asks Optuna for each trial and suggests its parameters (the space is declarative), so a sampler
and its seed behave as in plain Optuna; trials run in this process (``parallel_trials=1``), in worker
processes, or as Ray tasks, and report intermediate values to the study themselves, so pruning decisions
see every trial's progress.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import importlib
import logging
import math
import pickle
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from shipyard.config import Settings, get_settings
from shipyard.errors import InvalidInput, NotFound
from shipyard.processes import interruption, sigterm_raises
from shipyard.tracking import ActiveRun, RunStatus, TrackingClient, get_client, start_run
from shipyard.tuning.main_guard import check_main_guard
from shipyard.tuning.spec import TuningSpec, make_pruner, make_sampler
from shipyard.workers import Call, InlinePool, Pool, RayPool, Resources, WorkerPool

log = logging.getLogger("shipyard.tuning")

TrialPruned = optuna.TrialPruned
STUDY_TAG = "shipyard.tuning.study"
STORAGE_TAG = "shipyard.tuning.storage"
STATE_TAG = "shipyard.tuning.state"
NAME_TAG = "shipyard.tuning.name"
TRIAL_TAG = "shipyard.tuning.trial"
PARENT_TAG = "shipyard.tuning.parent"
SPEC_ARTIFACT = "tuning/spec.yaml"
TRIALS_ARTIFACT = "tuning/trials.json"
REPORT_ARTIFACT = "tuning/report.html"


class TrialContext:
    """What a trial function gets: its parameters, its run, and a way to report progress.

    Attributes:
        params: the suggested parameters (a conditional one only when its condition held).
        number: the trial's number in the study (0, 1, …).
        run: the trial's nested tracked run (log anything else on it).
    """

    def __init__(
        self,
        trial: optuna.Trial,
        params: dict[str, Any],
        run: ActiveRun,
        metric: str,
        settings: Settings | None = None,
    ) -> None:
        self._trial = trial
        self.params = params
        self.number = trial.number
        self.run = run
        self.settings = settings or get_settings()
        self._metric = metric
        self.last_step: int | None = None
        self.last_value: float | None = None

    def report(self, value: float, step: int) -> None:
        """An intermediate value of the objective (after an epoch, a fold, a boosting round): logged as the
        objective metric at ``step`` and shown to early stopping.

        Raises:
            TrialPruned: early stopping ended this trial; let it propagate.
        """
        value = float(value)
        self.run.log_metric(self._metric, value, step=step)
        self._trial.report(value, step)
        self.last_step, self.last_value = step, value
        if self._trial.should_prune():
            raise TrialPruned(
                f"trial {self.number} stopped early at step {step} ({self._metric} {value:.6g})"
            )

    def should_prune(self) -> bool:
        return self._trial.should_prune()

    def log_metric(self, key: str, value: float, step: int = 0) -> None:
        self.run.log_metric(key, value, step=step)

    def log_metrics(self, values: Mapping[str, float], step: int = 0) -> None:
        self.run.log_metrics(values, step=step)


TrialFunction = Callable[[TrialContext], float | Mapping[str, float] | None]


@dataclass(frozen=True)
class TrialRecord:
    """One finished trial. ``values`` follow the objective's metrics (None unless COMPLETE; a pruned trial's
    last intermediate value is in ``intermediate``)."""

    number: int
    state: str
    params: dict[str, Any]
    values: list[float] | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    run_id: str | None = None
    error: str | None = None
    intermediate: float | None = None
    seconds: float = 0.0

    @property
    def value(self) -> float | None:
        return None if not self.values else self.values[0]


@dataclass(frozen=True)
class TuningResult:
    """The outcome of :func:`tune` or :func:`resume`.

    Attributes:
        state: completed (the budget was spent), goal_reached, timeout, or failed (max_failed_trials).
        best: the best complete trial (single objective); ``pareto``: the non-dominated ones (several).
    """

    run_id: str
    name: str
    study_name: str
    storage: str
    state: str
    metrics: list[str]
    directions: list[str]
    trials: list[TrialRecord]
    best: TrialRecord | None
    pareto: list[TrialRecord]

    @property
    def best_params(self) -> dict[str, Any]:
        if self.best is None:
            raise NotFound(f"tuning run {self.run_id} has no complete trial")
        return dict(self.best.params)

    @property
    def best_value(self) -> float | None:
        return None if self.best is None else self.best.value

    def count(self, state: str) -> int:
        return sum(t.state == state for t in self.trials)


# -- the trial, wherever it runs -----------------------------------------------------------------------------


@dataclass(frozen=True)
class _TrialTask:
    function: TrialFunction | str
    number: int
    trial_id: int
    params: dict[str, Any]
    spec_yaml: str
    study_name: str
    storage: str
    parent_run_id: str
    parent_name: str
    settings: Settings


_studies: dict[tuple[str, str], optuna.Study] = {}  # per worker process: loading a journal costs a replay


@functools.lru_cache(maxsize=8)
def _spec_of(text: str) -> TuningSpec:
    return TuningSpec.model_validate(_yaml_load(text))


def _worker_study(task: _TrialTask) -> optuna.Study:
    key = (task.storage, task.study_name)
    if key not in _studies:
        spec = _spec_of(task.spec_yaml)
        _studies[key] = optuna.load_study(
            study_name=task.study_name, storage=open_storage(task.storage), pruner=make_pruner(spec)
        )
    return _studies[key]


def _run_in_worker(task: _TrialTask) -> TrialRecord:
    study = _worker_study(task)
    return _run_trial(task, optuna.Trial(study, task.trial_id))


def _run_trial(task: _TrialTask, trial: optuna.Trial) -> TrialRecord:
    """Run one trial in its nested run; never raises for the trial's own failure (it is recorded)."""
    spec = _spec_of(task.spec_yaml)
    names = spec.objective.names
    started = time.perf_counter()
    function = resolve_function(task.function) if isinstance(task.function, str) else task.function
    if _is_pipeline(function):
        function = functools.partial(run_pipeline_trial, function)
    tags = {PARENT_TAG: task.parent_run_id, TRIAL_TAG: f"{task.parent_run_id}:{task.number}"}
    with start_run(
        spec.experiment,
        f"{task.parent_name}-trial-{task.number}",
        parent=task.parent_run_id,
        tags=tags,
        log_system_metrics=False,
        settings=task.settings,
    ) as run:
        run.log_params(task.params)
        context = TrialContext(trial, task.params, run, names[0], task.settings)
        state, values, error, metrics = "COMPLETE", None, None, {}
        try:
            returned = function(context)
            metrics = _returned_metrics(returned, names)
            if metrics:
                run.log_metrics(metrics, step=(context.last_step or 0))
            values = _objective_values(names, metrics, run)
        except TrialPruned:
            state = "PRUNED"
        except Exception as exc:  # the trial's own failure: recorded, the search goes on
            state, error = "FAIL", f"{type(exc).__name__}: {exc}"
            log.warning("trial %d failed: %s", task.number, error)
        run.set_tag(STATE_TAG, state)
        if error is not None:
            run.set_tag("shipyard.tuning.error", error[:5000])
        run_id = run.run_id
        if state == "FAIL":
            run.end(RunStatus.FAILED)
    return TrialRecord(
        number=task.number,
        state=state,
        params=task.params,
        values=values,
        metrics=metrics,
        run_id=run_id,
        error=error,
        intermediate=context.last_value,
        seconds=time.perf_counter() - started,
    )


def _returned_metrics(returned: Any, names: list[str]) -> dict[str, float]:
    if returned is None:
        return {}
    if isinstance(returned, Mapping):
        return {str(k): float(v) for k, v in returned.items()}
    if isinstance(returned, int | float) and not isinstance(returned, bool):
        if len(names) > 1:
            raise InvalidInput(
                f"the trial returned one number; this objective needs {', '.join(names)}: return a dict"
            )
        return {names[0]: float(returned)}
    raise InvalidInput(f"a trial returns a number, a dict of metrics or None, not {type(returned).__name__}")


def _objective_values(names: list[str], metrics: Mapping[str, float], run: ActiveRun) -> list[float]:
    """The objective values: returned, else the last value the trial logged for each metric."""
    logged = run.info.metrics if any(n not in metrics for n in names) else {}
    values = []
    for name in names:
        value = metrics.get(name, logged.get(name))
        if value is None:
            raise InvalidInput(
                f"the trial never reported the objective metric {name!r}: return it, or log it on the "
                "trial's run"
            )
        if not math.isfinite(value):
            raise InvalidInput(f"the trial's objective metric {name!r} is {value}, not a finite number")
        values.append(float(value))
    return values


def _is_pipeline(function: Any) -> bool:
    from shipyard.pipelines.dsl import Pipeline

    return isinstance(function, Pipeline)


def run_pipeline_trial(pipeline: Any, trial: TrialContext) -> dict[str, float]:
    """A trial that is a pipeline: run it on local workers with the trial's parameters as the pipeline's;
    its numbers are the objective's candidates — each step's single output under the step's name, other
    outputs as ``step.output``, and every metric the steps logged.

    Raises:
        InvalidInput: a parameter the pipeline does not take.
        PipelineError: the pipeline run failed (its failed steps named).
    """
    from shipyard.errors import PipelineError
    from shipyard.pipelines import compile_pipeline
    from shipyard.pipelines.executors import LocalExecutor

    spec = compile_pipeline(pipeline)
    unknown = sorted(set(trial.params) - set(spec.parameters))
    if unknown:
        raise InvalidInput(
            f"pipeline {spec.name!r} takes no parameter {', '.join(map(repr, unknown))}; "
            f"it takes {', '.join(spec.parameters) or 'none'}"
        )
    experiment = get_client(trial.settings).get_experiment(trial.run.experiment_id).name
    result = LocalExecutor(settings=trial.settings).run(
        spec, dict(trial.params), experiment=experiment, tags={"shipyard.tuning.trial_run": trial.run.run_id}
    )
    trial.run.set_tag("shipyard.tuning.pipeline_run", result.run_id)
    failed = [key for key, step in result.steps.items() if step.status.value == "failed"]
    if failed:
        raise PipelineError(f"pipeline run {result.run_id} failed at step(s) {', '.join(failed)}")
    client = get_client(trial.settings)
    numbers: dict[str, float] = {}
    for key, step in result.steps.items():
        if step.run_id:
            numbers.update(client.get_run(step.run_id).metrics)
        for name, value in step.outputs.items():
            if isinstance(value, int | float) and not isinstance(value, bool):
                numbers[key if name == "output" else f"{key}.{name}"] = float(value)
    return {k: v for k, v in numbers.items() if not k.startswith("system/")}


def resolve_function(target: str) -> TrialFunction:
    """``module:function`` as the function (importable from the working directory).

    Raises:
        InvalidInput: naming the target when the module or the function is missing.
    """
    module_name, sep, attribute = target.partition(":")
    if not sep or not module_name or not attribute:
        raise InvalidInput(f"trial {target!r} must be module:function")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise InvalidInput(f"trial {target!r}: cannot import {module_name!r}: {exc}") from exc
    function = getattr(module, attribute, None)
    if not (callable(function) or _is_pipeline(function)):
        raise InvalidInput(f"trial {target!r}: module {module_name!r} has no function {attribute!r}")
    return function  # type: ignore[no-any-return]


# -- storage -------------------------------------------------------------------------------------------------


def open_storage(url: str) -> optuna.storages.BaseStorage:
    """``journal:<path>`` as a journal file storage; anything else as an Optuna RDB storage URL."""
    if url.startswith("journal:"):
        path = Path(url.removeprefix("journal:"))
        path.parent.mkdir(parents=True, exist_ok=True)
        backend = optuna.storages.journal.JournalFileBackend(str(path))
        return optuna.storages.JournalStorage(backend)
    return optuna.storages.RDBStorage(url)


def _yaml_load(text: str) -> Any:
    import yaml

    return yaml.safe_load(text)


# -- where trials run ----------------------------------------------------------------------------------------


def _run_here(task: _TrialTask, study: optuna.Study) -> TrialRecord:
    return _run_trial(task, optuna.Trial(study, task.trial_id))


# Worker pools kept for the next search in this process, which then starts its trials at once instead of
# after the workers' imports. A search takes its pool out while it runs: pools are not shared by threads.
_warm: dict[int, WorkerPool] = {}
_warm_lock = threading.Lock()


def _close_warm_pools() -> None:
    with _warm_lock:
        while _warm:
            _warm.popitem()[1].close()


atexit.register(_close_warm_pools)


class _Trials:
    """Where a search's trials run: :mod:`shipyard.workers` pools, keyed by trial number."""

    def __init__(self, spec: TuningSpec, study: optuna.Study, settings: Settings) -> None:
        self.pool: Pool
        self.study = study
        self.warm = spec.executor != "ray" and spec.parallel_trials > 1
        if spec.executor == "ray":
            self.pool = RayPool(spec.parallel_trials, settings.ray_address)
        elif spec.parallel_trials == 1:
            self.pool = InlinePool()
        else:
            with _warm_lock:
                pool = _warm.pop(spec.parallel_trials, None)
            self.pool = pool or WorkerPool(spec.parallel_trials, preload=[__name__])

    def submit(self, task: _TrialTask) -> None:
        if isinstance(self.pool, InlinePool):
            self.pool.submit(task.number, Call(_run_here, (task, self.study)))
            return
        if isinstance(self.pool, RayPool):  # sent by value (cloudpickle), as Ray's own tasks are
            self.pool.submit(task.number, Call(_run_in_worker, (task,)), Resources(cpus=1))
            return
        try:
            pickle.dumps(task.function)
        except (pickle.PicklingError, AttributeError, TypeError) as exc:
            raise InvalidInput(
                f"trial function {task.function!r} cannot be sent to worker processes ({exc}); define it at "
                "the top level of an importable module, or run with parallel_trials=1"
            ) from None
        self.pool.submit(task.number, Call(_run_in_worker, (task,)), Resources(cpus=1))

    def close(self, *, kill: bool = False) -> None:
        """End the search's use of the pool: kept warm for the next search unless ``kill`` (interrupted:
        the running trials are killed with their workers)."""
        if self.warm and not kill and isinstance(self.pool, WorkerPool) and not self.pool.running:
            with _warm_lock:
                if self.pool.size not in _warm:
                    _warm[self.pool.size] = self.pool
                    return
        self.pool.close()


# -- the search ----------------------------------------------------------------------------------------------


def tune(
    spec: TuningSpec | Mapping[str, Any] | str | Path,
    trial: TrialFunction | str | None = None,
    *,
    settings: Settings | None = None,
    on_trial: Callable[[TrialRecord, TuningResult], None] | None = None,
    report: bool = True,
    on_start: Callable[[str], None] | None = None,
) -> TuningResult:
    """Run a tuning experiment.

    Args:
        spec: the experiment (a :class:`TuningSpec`, its dict, or a YAML file in Shipyard's or Katib's form).
        trial: the objective, ``f(trial: TrialContext) -> float | dict | None`` or ``module:function``
            (default: the spec's ``trial``); it returns the objective value(s), or logs them on ``trial.run``.
            A ``@pipeline`` (or ``module:pipeline``) runs with the trial's parameters; see
            :func:`run_pipeline_trial` for where its objective is read.
        on_trial: called after each trial with it and the result so far (progress displays).
        report: write ``tuning/report.html`` on the parent run at the end (optimization history,
            parameter importances, parallel coordinates; or the Pareto front), self-contained (~5 MB).
        on_start: called with the parent run's id once it exists (to say what to resume if stopped).

    Ctrl-C (KeyboardInterrupt) or SIGTERM (``SystemExit(143)``) kill the running trials, mark the search
    stopped and its run KILLED, and propagate; :func:`resume` continues it.

    Raises:
        InvalidInput: a bad spec (the field or parameter named), or no trial function.
    """
    spec = _as_spec(spec)
    function = _function(spec, trial)
    if spec.executor != "ray" and spec.parallel_trials > 1:
        check_main_guard(sys._getframe(1))
    settings = settings or get_settings()
    # Run names are unique in an experiment; the same spec is tuned many times.
    name = f"{spec.name}-{uuid.uuid4().hex[:6]}"
    with (
        sigterm_raises(),
        start_run(spec.experiment, name, log_system_metrics=False, settings=settings) as parent,
    ):
        if on_start is not None:
            on_start(parent.run_id)
        storage = spec.storage or f"journal:{settings.home / 'tuning' / (parent.run_id + '.journal')}"
        study_name = f"{spec.name}-{parent.run_id}"
        parent.set_tags(
            {STUDY_TAG: study_name, STORAGE_TAG: storage, STATE_TAG: "running", NAME_TAG: spec.name}
        )
        parent.log_params(_spec_params(spec))
        parent.log_text(spec.to_yaml(), SPEC_ARTIFACT)
        with _quiet_optuna():
            optuna.create_study(
                study_name=study_name,
                storage=open_storage(storage),
                directions=spec.objective.all_directions,
            )
        return _search(spec, function, parent, study_name, storage, settings, on_trial, report)


def resume(
    run_id: str,
    trial: TrialFunction | str | None = None,
    *,
    settings: Settings | None = None,
    on_trial: Callable[[TrialRecord, TuningResult], None] | None = None,
    report: bool = True,
) -> TuningResult:
    """Continue a tuning run that stopped before its end (killed, interrupted, or out of time): trials left
    running are failed (marked stale, not counted against ``max_failed_trials``), then the search goes on
    until the spec's budget is spent.

    Raises:
        NotFound: no such run, or it is not a tuning run.
        InvalidInput: the run already finished.
    """
    settings = settings or get_settings()
    client = get_client(settings)
    record = client.get_run(run_id)
    if STUDY_TAG not in record.tags:
        raise NotFound(f"run {run_id} is not a tuning run (it has no {STUDY_TAG} tag)")
    if record.status is RunStatus.FINISHED:
        done = record.tags.get(STATE_TAG, "finished")
        raise InvalidInput(
            f"tuning run {record.name} ({run_id}) already finished ({done}); start a new one to search again"
        )
    spec = TuningSpec.parse(_yaml_load(client.read_artifact(run_id, SPEC_ARTIFACT).decode("utf-8")))
    function = _function(spec, trial)
    study_name, storage = record.tags[STUDY_TAG], record.tags[STORAGE_TAG]
    with sigterm_raises(), start_run(run_id=run_id, log_system_metrics=False, settings=settings) as parent:
        _fail_stale(study_name, storage, run_id, settings)
        parent.set_tag(STATE_TAG, "running")
        return _search(spec, function, parent, study_name, storage, settings, on_trial, report)


def _fail_stale(study_name: str, storage_url: str, parent_id: str, settings: Settings) -> None:
    storage = open_storage(storage_url)
    study = optuna.load_study(study_name=study_name, storage=storage)
    client = get_client(settings)
    for stale in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        storage.set_trial_user_attr(stale._trial_id, "stale", True)
        study.tell(stale.number, state=TrialState.FAIL)
        _fail_trial_run(client, parent_id, stale.number, "stale")
        log.warning("trial %d was left running by an earlier process; marked failed", stale.number)


_DIED = (
    "the worker process died (killed, out of memory, a crash in native code; or the script that started "
    "the tuning lacks an `if __name__ == '__main__':` guard)"
)


def _fail_trial_run(client: TrackingClient, parent_id: str, number: int, error: str) -> str | None:
    """End a trial's run that its process could not end; its run id, if it got one."""
    for run in client.runs_with_tag(TRIAL_TAG, f"{parent_id}:{number}", limit=1):
        if not run.status.is_terminal:
            pk = client.run_pk(run.run_id)
            client.set_tags(pk, {STATE_TAG: "FAIL", "shipyard.tuning.error": error[:5000]})
            client.set_terminated(pk, RunStatus.FAILED)
        return run.run_id
    return None


def _stopped(parent: ActiveRun, running: list[int], settings: Settings) -> None:
    """Mark an interrupted search stopped, and the runs of the trials it killed KILLED (their Optuna trials
    stay RUNNING: :func:`resume` fails them as stale)."""
    client = get_client(settings)
    parent.set_tag(STATE_TAG, "stopped")
    for number in running:
        for run in client.runs_with_tag(TRIAL_TAG, f"{parent.run_id}:{number}", limit=1):
            if not run.status.is_terminal:
                pk = client.run_pk(run.run_id)
                client.set_tags(pk, {STATE_TAG: "FAIL", "shipyard.tuning.error": "stopped"})
                client.set_terminated(pk, RunStatus.KILLED)


def _lost(number: int, params: dict[str, Any], parent_id: str, settings: Settings, error: str) -> TrialRecord:
    log.warning("trial %d failed: %s", number, error)
    run_id = _fail_trial_run(get_client(settings), parent_id, number, error)
    return TrialRecord(number=number, state="FAIL", params=params, run_id=run_id, error=error)


def _search(
    spec: TuningSpec,
    function: TrialFunction | str,
    parent: ActiveRun,
    study_name: str,
    storage_url: str,
    settings: Settings,
    on_trial: Callable[[TrialRecord, TuningResult], None] | None,
    report: bool,
) -> TuningResult:
    space = spec.space()
    storage = open_storage(storage_url)
    study = optuna.load_study(
        study_name=study_name, storage=storage, sampler=make_sampler(spec), pruner=make_pruner(spec)
    )
    records = _records(study, parent, settings)
    spec_yaml = spec.to_yaml()
    started = time.monotonic()
    state = "completed"
    pending: dict[int, dict[str, Any]] = {}  # trial number -> its parameters
    trials = _Trials(spec, study, settings)
    with _quiet_optuna():
        try:
            while True:
                state = _stop_reason(spec, study, records, started) or state
                while (
                    state == "completed"
                    and trials.pool.free > 0
                    and len(pending) < spec.parallel_trials
                    and _room(spec, study)
                ):
                    asked = study.ask()
                    params = space.suggest(asked)
                    task = _TrialTask(
                        function,
                        asked.number,
                        asked._trial_id,
                        params,
                        spec_yaml,
                        study_name,
                        storage_url,
                        parent.run_id,
                        parent.name,
                        settings,
                    )
                    try:
                        trials.submit(task)
                    except BaseException:  # e.g. a function worker processes cannot import
                        study.tell(asked.number, state=TrialState.FAIL)
                        raise
                    pending[asked.number] = params
                if not pending:
                    break
                for outcome in trials.pool.wait(None):
                    number, params = outcome.key, pending.pop(outcome.key)
                    if outcome.kind == "ok":
                        record = outcome.value
                    else:  # died, or the task never ran the trial (Ray, pickling, the store…)
                        error = _DIED if outcome.kind == "died" else outcome.error_line
                        record = _lost(number, params, parent.run_id, settings, error)
                    _tell(study, record)
                    records.append(record)
                    result = _result(spec, parent, study_name, storage_url, "running", records)
                    _log_progress(parent, spec, record, result)
                    if on_trial is not None:
                        on_trial(record, result)
                    if state == "completed" and (reason := _stop_reason(spec, study, records, started)):
                        state = reason
        except BaseException as exc:
            # Interrupted (Ctrl-C, SIGTERM) or failed: kill the running trials, never leave them in a warm
            # pool; an interrupted search is marked stopped, to be resumed (`shipyard tune resume RUN`).
            trials.close(kill=True)
            if interruption(exc) is not None:  # sigterm_raises, around us, hands the caller the stop
                _stopped(parent, list(pending), settings)
            raise
        trials.close()
    result = _result(spec, parent, study_name, storage_url, state, records)
    parent.set_tag(STATE_TAG, state)
    parent.log_metrics(
        {f"trials_{s.lower()}": float(result.count(s)) for s in ("COMPLETE", "PRUNED", "FAIL")}
    )
    parent.log_dict(
        [{**t.__dict__, "params": t.params} for t in sorted(result.trials, key=lambda t: t.number)],
        TRIALS_ARTIFACT,
    )
    if report:
        from shipyard.tuning.report import render_report  # plotly: only when a report is written

        html = render_report(study, title=f"Tuning {parent.name}", metric_names=spec.objective.names)
        parent.log_text(html, REPORT_ARTIFACT)
    if state == "failed":
        parent.end(RunStatus.FAILED)
    return result


def _room(spec: TuningSpec, study: optuna.Study) -> bool:
    """Whether the budget allows asking for another trial (a grid stops when every point was asked)."""
    budget = spec.max_trials
    if spec.algorithm.name == "grid":  # each point once: a grid sampler asked for more repeats points
        budget = min(budget, spec.space().size() or budget)
    return len(study.get_trials(deepcopy=False)) < budget


def _stop_reason(
    spec: TuningSpec, study: optuna.Study, records: list[TrialRecord], started: float
) -> str | None:
    failed = sum(r.state == "FAIL" and r.error != "stale" for r in records)
    if spec.max_failed_trials is not None and failed >= max(spec.max_failed_trials, 1):
        return "failed"
    goal = spec.objective.goal
    if goal is not None:
        maximize = spec.objective.direction == "maximize"
        for record in records:
            value = record.value if record.state == "COMPLETE" else None
            if value is not None and ((value >= goal) if maximize else (value <= goal)):
                return "goal_reached"
    if spec.timeout_s is not None and time.monotonic() - started >= spec.timeout_s:
        return "timeout"
    return None


def _tell(study: optuna.Study, record: TrialRecord) -> None:
    if record.state == "COMPLETE":
        study.tell(record.number, record.values)
    elif record.state == "PRUNED":
        study.tell(record.number, state=TrialState.PRUNED)
    else:
        study.tell(record.number, state=TrialState.FAIL)


def _records(study: optuna.Study, parent: ActiveRun, settings: Settings) -> list[TrialRecord]:
    """The trials an earlier process finished (resume), as records."""
    client = get_client(settings)
    out = []
    for trial in study.get_trials(deepcopy=False):
        if not trial.state.is_finished():
            continue
        runs = client.runs_with_tag(TRIAL_TAG, f"{parent.run_id}:{trial.number}", limit=1)
        stale = trial.user_attrs.get("stale", False)
        out.append(
            TrialRecord(
                number=trial.number,
                state=trial.state.name,
                params=dict(trial.params),
                values=list(trial.values) if trial.values is not None else None,
                run_id=runs[0].run_id if runs else None,
                error="stale" if stale else None,
            )
        )
    return out


def _result(
    spec: TuningSpec,
    parent: ActiveRun,
    study_name: str,
    storage: str,
    state: str,
    records: list[TrialRecord],
) -> TuningResult:
    directions = spec.objective.all_directions
    complete = [r for r in records if r.state == "COMPLETE" and r.values is not None]
    signs = [1.0 if d == "maximize" else -1.0 for d in directions]
    best, pareto = None, []
    if complete and len(directions) == 1:
        best = max(complete, key=lambda r: (signs[0] * r.values[0], -r.number))  # type: ignore[index]
        pareto = [best]
    elif complete:  # quadratic, and only for several objectives, whose searches are short
        pareto = [
            r
            for r in complete
            if not any(_dominates(o.values, r.values, signs) for o in complete if o is not r)  # type: ignore[arg-type]
        ]
    return TuningResult(
        run_id=parent.run_id,
        name=spec.name,
        study_name=study_name,
        storage=storage,
        state=state,
        metrics=spec.objective.names,
        directions=list(directions),
        trials=list(records),
        best=best,
        pareto=sorted(pareto, key=lambda r: r.number),
    )


def _dominates(a: list[float], b: list[float], signs: list[float]) -> bool:
    better_or_equal = all(s * x >= s * y for x, y, s in zip(a, b, signs, strict=True))
    return better_or_equal and any(s * x > s * y for x, y, s in zip(a, b, signs, strict=True))


def _log_progress(parent: ActiveRun, spec: TuningSpec, record: TrialRecord, result: TuningResult) -> None:
    if result.best is not None and result.best.values:
        parent.log_metric(f"best_{spec.objective.names[0]}", result.best.values[0], step=record.number)
        parent.set_tag("shipyard.tuning.best_trial", str(result.best.number))


def _spec_params(spec: TuningSpec) -> dict[str, Any]:
    params: dict[str, Any] = {
        "algorithm": spec.algorithm.name,
        "early_stopping": spec.early_stopping.name,
        "objective": ",".join(spec.objective.names),
        "directions": ",".join(spec.objective.all_directions),
        "max_trials": spec.max_trials,
        "parallel_trials": spec.parallel_trials,
        "executor": spec.executor,
    }
    if spec.algorithm.seed is not None:
        params["seed"] = spec.algorithm.seed
    return params


def _as_spec(spec: TuningSpec | Mapping[str, Any] | str | Path) -> TuningSpec:
    if isinstance(spec, TuningSpec):
        return TuningSpec.parse(spec.model_dump())
    if isinstance(spec, str | Path):
        return TuningSpec.load(spec)
    return TuningSpec.parse(spec)


def _function(spec: TuningSpec, trial: TrialFunction | str | None) -> TrialFunction | str:
    chosen = trial if trial is not None else spec.trial
    if chosen is None:
        raise InvalidInput(
            f"tuning {spec.name!r} has no trial function: pass one, or set `trial: module:function`"
        )
    if isinstance(chosen, str):
        resolve_function(chosen)  # fail before the parent run exists
    elif not (callable(chosen) or _is_pipeline(chosen)):
        raise InvalidInput(
            f"trial must be a function, a @pipeline or module:function, not {type(chosen).__name__}"
        )
    return chosen


@contextlib.contextmanager
def _quiet_optuna() -> Iterator[None]:
    """Optuna logs each trial at INFO; Shipyard reports progress itself."""
    before = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        yield
    finally:
        optuna.logging.set_verbosity(before)


__all__ = [
    "TrialContext",
    "TrialFunction",
    "TrialPruned",
    "TrialRecord",
    "TuningResult",
    "open_storage",
    "resolve_function",
    "resume",
    "tune",
]
