"""The engine both executors share: it walks a compiled spec and hands ready steps to a pool.

Parameters flow by value and artifacts by path under the pipeline run's artifact folder: local paths on a
local artifact root, URIs on an object store (each worker then downloads its inputs and uploads its outputs,
see :mod:`shipyard.pipelines.staging`); a dataset version (``data:customers@3``) is pinned once per run
and read from a local copy the worker builds (:mod:`shipyard.pipelines.datasets`). A step that
crashes its worker fails alone. A step whose cache key matches an earlier finished step run reuses that
run's outputs (:mod:`shipyard.pipelines.cache`); ``resume`` re-runs a failed pipeline run from its failed
steps on. What differs between executors is only the pool that runs one step attempt: local
worker processes (:mod:`.local`) or Ray tasks (:mod:`.ray`), both from :mod:`shipyard.workers`.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import tempfile
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlparse

from shipyard.config import Settings, get_settings
from shipyard.datasets.records import DatasetVersion
from shipyard.datasets.refs import is_dataset_uri
from shipyard.errors import Conflict, InvalidInput, NotFound, PipelineError, ShipyardError
from shipyard.lineage import ArtifactType, LineageClient
from shipyard.pipelines import cache, staging
from shipyard.pipelines.binding import bind_parameters
from shipyard.pipelines.datasets import DatasetPins, check_reference, pinned_from
from shipyard.pipelines.executors.resolve import holds, resolve
from shipyard.pipelines.executors.results import PipelineRunResult, StepResult, StepStatus
from shipyard.pipelines.executors.step_runs import close_step_run, log_metrics_file, open_step_run
from shipyard.pipelines.executors.worker import ArtifactRef, StepFailure, StepReturn, Task, run_captured
from shipyard.pipelines.spec import PipelineSpec, StepSpec
from shipyard.pipelines.types import ARTIFACT_TYPES
from shipyard.processes import interruption, sigterm_raises
from shipyard.store.artifacts import ArtifactStore
from shipyard.tracking import ActiveRun, RunStatus, TrackingClient, get_client, start_run
from shipyard.tracking.datasets import version_input
from shipyard.workers import Call, Outcome, Pool, Resources

# A step's key, and None when it starts or its result when it ends.
StepCallback = Callable[[str, StepResult | None], None]
# The pipeline run's id, once the run exists with its spec and parameters (before any step starts).
StartCallback = Callable[[str], None]

PIPELINE_FILE = "pipeline.yaml"
PARAMETERS_FILE = "parameters.json"
RESUMED_FROM_TAG = "shipyard.resumed_from"


class PipelineExecutor(ABC):
    """Runs :class:`PipelineSpec` s with up to ``max_parallel`` steps at once, each pipeline a tracked run.

    Subclasses say where steps run by making the :class:`shipyard.workers.Pool`.
    """

    def __init__(self, max_parallel: int | None = None, settings: Settings | None = None) -> None:
        self.max_parallel = max(1, max_parallel or os.cpu_count() or 1)
        self.settings = settings
        # A platform server's driver clears this: steps then import code from the workers' own path and
        # `code_dir` only, never from the spec's project_dir (a folder on whichever machine compiled it).
        self.trust_project_dir = True
        self.code_dir: str | None = None

    @abstractmethod
    def _make_pool(self, settings: Settings) -> Pool:
        """The pool one pipeline run's steps run in (closed by the engine when the run ends)."""

    def _call(self, task: Task) -> Call:
        """What a worker of this executor's pool runs for one step attempt."""
        return Call(run_captured, (task,))

    def run(
        self,
        spec: PipelineSpec,
        parameters: dict[str, Any] | None = None,
        *,
        experiment: str | None = None,
        run_name: str | None = None,
        cache: bool = True,
        tags: Mapping[str, str] | None = None,
        on_step: StepCallback | None = None,
        on_start: StartCallback | None = None,
    ) -> PipelineRunResult:
        """Run ``spec`` to the end and return every step's result; a failed step fails the run.

        Args:
            cache: reuse the outputs of earlier identical step runs (steps built with ``cache=False`` never
                do). Cache keys are recorded either way, so later runs can reuse this one's.
            tags: extra tags for the pipeline run (a scheduler tags the runs it starts).
            on_step: called with a step's key and None when it starts, and with its result when it ends
                (succeeded, failed, cached or skipped): for progress displays.
            on_start: called with the pipeline run's id once it is recorded, before any step starts.

        Raises:
            InvalidInput: a parameter that is unknown, missing or of the wrong type, or a dataset version
                reference (``data:customers@3``) that does not parse or cannot feed its input.
            NotFound: a dataset version a step reads does not exist (the step and input named).
        """
        params = bind_parameters(spec, parameters or {})
        name = experiment or spec.name
        return self._run(spec, params, name, run_name, cache, {}, {}, dict(tags or {}), on_step, on_start)

    def resume(
        self,
        run_id: str,
        *,
        run_name: str | None = None,
        tags: Mapping[str, str] | None = None,
        on_step: StepCallback | None = None,
        on_start: StartCallback | None = None,
    ) -> PipelineRunResult:
        """Re-run a failed (or killed) pipeline run from its failed steps on, as a new pipeline run.

        Steps that finished in ``run_id`` are not run again: their recorded outputs are reused (whatever the
        cache switches say) and they show as cached. The new run is tagged ``shipyard.resumed_from``.

        A run still RUNNING is resumed only once its driver has stopped beating (it shows as LOST): it is
        ended KILLED first. One whose driver is alive is refused, or its steps would run twice.

        Raises:
            NotFound: no run ``run_id``.
            InvalidInput: the run succeeded (nothing to resume), or no executor started it.
            Conflict: the run's driver is alive (its heartbeat is fresh); the message names its pid and host.
        """
        settings = self.settings or get_settings()
        client = get_client(settings)
        original = client.get_run(run_id)
        if original.status is RunStatus.FINISHED:
            raise InvalidInput(f"pipeline run {run_id} succeeded; there is nothing to resume")
        if original.status is RunStatus.RUNNING and original.heartbeat_at is not None:
            if not original.lost:
                age = max(0.0, time.time() - original.heartbeat_at / 1000)
                raise Conflict(
                    f"pipeline run {run_id} is still running: its driver, process {original.process}, beat "
                    f"{age:.1f} s ago; stop it first, or resume once it has not beaten for "
                    f"{settings.heartbeat_timeout:g} s (heartbeat_timeout)"
                )
            # Its driver is gone (kill -9): end it, so it does not stay RUNNING beside its resumption.
            client.set_terminated(client.run_pk(run_id), RunStatus.KILLED)
        try:
            spec = PipelineSpec.from_yaml(client.read_artifact(run_id, PIPELINE_FILE).decode("utf-8"))
            params = json.loads(client.read_artifact(run_id, PARAMETERS_FILE))
        except NotFound as exc:
            raise InvalidInput(
                f"run {run_id} has no {PIPELINE_FILE} and {PARAMETERS_FILE}; only pipeline runs started by "
                "an executor's run() can be resumed"
            ) from exc
        experiment = client.get_experiment(original.experiment_id).name
        reuse = _finished_steps(client, run_id)
        extra = {**(tags or {}), RESUMED_FROM_TAG: run_id}
        pinned = pinned_from(original.tags)  # the dataset versions its finished steps read
        return self._run(
            spec,
            bind_parameters(spec, params),
            experiment,
            run_name,
            True,
            reuse,
            pinned,
            extra,
            on_step,
            on_start,
        )

    def _run(
        self,
        spec: PipelineSpec,
        params: dict[str, Any],
        experiment: str,
        run_name: str | None,
        use_cache: bool,
        reuse: dict[str, tuple[str, dict[str, Any]]],
        pinned: dict[str, str],
        tags: dict[str, str],
        on_step: StepCallback | None = None,
        on_start: StartCallback | None = None,
    ) -> PipelineRunResult:
        settings = self.settings or get_settings()
        pins = DatasetPins(get_client(settings), pinned)
        pins.pin(spec, params)  # before the run exists: a missing dataset version starts nothing
        pool = self._make_pool(settings)
        with start_run(experiment, run_name, settings=settings, log_system_metrics=False) as run:
            run.log_params(params)
            run.set_tags({"shipyard.pipeline": spec.name, **tags, **(pins.tag() if pins.pinned else {})})
            run.log_text(spec.to_yaml(), PIPELINE_FILE)
            run.log_dict(params, PARAMETERS_FILE)
            engine = _Engine(spec, params, run, experiment, settings, pool, pins, self._call)
            engine.use_cache, engine.reuse, engine.on_step = use_cache, reuse, on_step
            if not self.trust_project_dir:
                engine.project_dir = self.code_dir
            try:
                with sigterm_raises():  # before on_start: a cancel may come as soon as the id is known
                    if on_start is not None:
                        on_start(run.run_id)
                    steps = engine.run()
            except BaseException as exc:
                # Ctrl-C (KeyboardInterrupt) or SIGTERM (SystemExit, see below): kill the running steps and
                # mark them, and then the pipeline run (by the `with`), KILLED rather than FINISHED.
                pool.close()
                engine.abort(RunStatus.KILLED if interruption(exc) is not None else RunStatus.FAILED)
                raise
            finally:
                pool.close()
                shutil.rmtree(engine.logs, ignore_errors=True)  # captured output is in the step runs now
            failed = any(r.status is StepStatus.FAILED for r in steps.values())
            run.end(RunStatus.FAILED if failed else RunStatus.FINISHED)
        status = StepStatus.FAILED if failed else StepStatus.SUCCEEDED
        return PipelineRunResult(run.run_id, status, steps)


@dataclass
class _Instance:
    """A step, or one iteration of a step inside a ParallelFor, while it runs (engine-private state)."""

    key: str
    step_id: str
    index: int | None = None
    item: Any = None
    result: StepResult | None = None
    attempts: int = 0
    not_before: float = 0.0
    started: float = 0.0
    deadline: float = float("inf")
    first_start: float = 0.0
    run: ActiveRun | None = None
    log_dir: str = ""
    artifact_paths: dict[str, str] = field(default_factory=dict)
    input_paths: dict[str, str] = field(default_factory=dict)
    input_hashes: dict[str, str] = field(default_factory=dict)
    datasets: dict[str, DatasetVersion] = field(default_factory=dict)  # dataset version inputs by name
    cache_key: str | None = None
    cache_checked: bool = False

    @property
    def name(self) -> str:
        """The step run's name within the pipeline run: ``score[1]`` → ``score.1``."""
        return self.key.replace("[", ".").replace("]", "")


class _Engine:
    def __init__(
        self,
        spec: PipelineSpec,
        params: dict[str, Any],
        run: ActiveRun,
        experiment: str,
        settings: Settings,
        pool: Pool,
        pins: DatasetPins,
        call_for: Callable[[Task], Call],
    ) -> None:
        self.spec, self.params, self.run_, self.experiment = spec, params, run, experiment
        self.settings, self.pool, self.pins, self.call_for = settings, pool, pins, call_for
        # A local root: step outputs are paths under it. An object store: URIs under it, staged by workers.
        self.root = _local_path(run.artifact_uri)
        self.store = None if self.root is not None else ArtifactStore.configured(settings, run.artifact_uri)
        # sha256 of the artifact locations seen (written by a step, or verified cached outputs), so inputs on
        # an object store are not streamed again to be hashed.
        self.sha256: dict[str, str] = {}
        self.logs = tempfile.mkdtemp(prefix="shipyard-steps-")
        self.expanded: dict[str, list[_Instance]] = {}
        self.unexpanded = list(spec.steps)
        self.open: dict[str, _Instance] = {}  # expanded, no result yet (so no pass walks finished steps)
        self.settled = 0
        self.running: dict[str, _Instance] = {}
        # Upstream steps outside the step's own loop (wait for all their iterations) and inside it.
        self.outer = {
            sid: [u for u in st.upstream() if not self._same_loop(st, u)] for sid, st in spec.steps.items()
        }
        self.inner = {
            sid: [u for u in st.upstream() if self._same_loop(st, u)] for sid, st in spec.steps.items()
        }
        self.use_cache = True
        self.reuse: dict[str, tuple[str, dict[str, Any]]] = {}
        self.on_step: StepCallback | None = None
        self.project_dir = spec.project_dir  # where workers look for step code beyond their own path
        self.client = get_client(settings)
        self.lineage = LineageClient(self.client)

    def run(self) -> dict[str, StepResult]:
        while True:
            state = None
            while state != (state := self._progress()):  # skips and expansions can unblock more steps
                self._expand_ready()
                self._start_ready()
            if not self.unexpanded and not self.open:
                return {i.key: i.result for i in self._instances() if i.result is not None}
            if not self.running and not self._waiting():
                raise PipelineError(f"pipeline {self.spec.name!r} cannot make progress (a dependency cycle?)")
            now = time.monotonic()
            wake = min([i.deadline for i in self.running.values()] + [i.not_before for i in self._waiting()])
            timeout = min(max(wake - now, 0.0), 0.5)
            if self.running:
                for outcome in self.pool.wait(timeout):
                    self._finish(outcome)
            else:
                time.sleep(timeout)
            now = time.monotonic()
            for inst in [i for i in self.running.values() if i.deadline <= now]:
                self.pool.kill(inst.key)
                step = self.spec.steps[inst.step_id]
                self._fail(
                    inst, f"step {inst.key!r} timed out after {step.timeout_s}s; its worker was killed"
                )

    def abort(self, status: RunStatus) -> None:
        """End the nested runs of steps still running (their workers are already gone) with ``status``."""
        for inst in list(self.running.values()):
            if inst.run is not None:
                inst.run.set_tags({"shipyard.attempts": inst.attempts})
                inst.run.end(status)

    def _progress(self) -> tuple[int, int, int]:
        return len(self.expanded), self.settled, len(self.running)

    def _instances(self) -> list[_Instance]:
        return [i for group in self.expanded.values() for i in group]

    def _waiting(self) -> list[_Instance]:
        return [i for i in self.open.values() if i.key not in self.running and i.attempts]

    def _same_loop(self, step: StepSpec, other: str) -> bool:
        loop = self.spec.steps[other].loop
        return step.loop is not None and loop is not None and loop.loop_id == step.loop.loop_id

    def _expand_ready(self) -> None:
        for sid in list(self.unexpanded):
            step, outer = self.spec.steps[sid], self.outer[sid]
            if any(u not in self.expanded or any(i.result is None for i in self.expanded[u]) for u in outer):
                continue
            bad = [u for u in outer if any(not i.result.status.ok for i in self.expanded[u])]  # type: ignore[union-attr]
            if step.loop is None or (bad and not step.is_exit_handler):
                self._expand(sid, [_Instance(sid, sid)])
                if bad and not step.is_exit_handler:
                    self._skip(self.expanded[sid][0], f"upstream step {bad[0]!r} did not succeed")
                continue
            items = resolve(step.loop.items, self.params, self._lookup(None), self._collected)
            self._expand(sid, [_Instance(f"{sid}[{n}]", sid, n, x) for n, x in enumerate(items)])

    def _expand(self, step_id: str, instances: list[_Instance]) -> None:
        self.expanded[step_id] = instances
        self.unexpanded.remove(step_id)
        self.open.update((i.key, i) for i in instances)

    def _settle(self, inst: _Instance, result: StepResult) -> None:
        inst.result = result
        self.open.pop(inst.key, None)
        self.settled += 1
        if self.on_step is not None:
            self.on_step(inst.key, result)

    def _lookup(self, index: int | None) -> Any:
        def output(step_id: str, name: str) -> Any:
            inst = self._peer(step_id, index)
            assert inst.result is not None
            return inst.result.outputs[name]

        return output

    def _collected(self, step_id: str, name: str) -> list[Any]:
        return [i.result.outputs.get(name) for i in self.expanded[step_id] if i.result is not None]

    def _start_ready(self) -> None:
        now = time.monotonic()
        for inst in list(self.open.values()):
            if inst.result is not None or inst.key in self.running or inst.not_before > now:
                continue
            step = self.spec.steps[inst.step_id]
            if any(u not in self.expanded for u in self.inner[inst.step_id]):
                continue
            inner = [self._peer(u, inst.index) for u in self.inner[inst.step_id]]
            if any(u.result is None for u in inner):
                continue
            bad = [u.key for u in inner if not u.result.status.ok]  # type: ignore[union-attr]
            if bad:
                self._skip(inst, f"upstream step {bad[0]!r} did not succeed")
                continue
            lookup = self._lookup(inst.index)
            try:
                if not all(
                    holds(
                        c,
                        resolve(c.left, self.params, lookup, self._collected, inst.item),
                        c.right
                        if c.right_source is None
                        else resolve(c.right_source, self.params, lookup, self._collected, inst.item),
                    )
                    for c in step.conditions
                ):
                    self._skip(inst, "its condition is false")
                    continue
                task = self._task(inst, step, lookup)
            except (PipelineError, KeyError) as exc:
                self._skip(inst, f"cannot resolve its inputs: {exc}", failed=True)
                continue
            if not inst.cache_checked and self._reused(inst, step, task):
                continue
            if self.pool.free <= 0 or not self._loop_has_room(step):
                continue
            self._submit(inst, step, task)

    def _peer(self, step_id: str, index: int | None) -> _Instance:
        """The same iteration of another step of the loop (or its one instance when it was skipped)."""
        group = self.expanded[step_id]
        return (
            group[index]
            if index is not None and index < len(group) and group[0].index is not None
            else group[0]
        )

    def _loop_has_room(self, step: StepSpec) -> bool:
        if step.loop is None or step.loop.parallelism is None:
            return True
        loop_id = step.loop.loop_id
        busy = [
            i
            for i in self.running.values()
            if (lp := self.spec.steps[i.step_id].loop) and lp.loop_id == loop_id
        ]
        return len(busy) < step.loop.parallelism

    def _task(self, inst: _Instance, step: StepSpec, lookup: Any) -> Task:
        params: dict[str, Any] = {}
        artifacts: dict[str, ArtifactRef] = {}
        for name, spec in step.inputs.items():
            value = resolve(spec.source, self.params, lookup, self._collected, inst.item)
            if spec.type_name in ARTIFACT_TYPES and is_dataset_uri(value):
                version = self._dataset(f"step {inst.key!r} input {name!r}", spec.type_name, value)
                # The worker builds the local copy: it may be a Ray node that shares no disk with us.
                artifacts[name] = ArtifactRef(spec.type_name, "", version.uri, version.sha256)
                inst.input_paths[name] = version.uri
                inst.datasets[name] = version
            elif spec.type_name in ARTIFACT_TYPES:
                if staging.is_remote(value):
                    artifacts[name] = ArtifactRef(spec.type_name, "", value, self._sha256(value))
                else:
                    artifacts[name] = ArtifactRef(spec.type_name, value, "file://" + value)
                inst.input_paths[name] = value
            else:
                params[name] = value
        parts = ["steps", inst.step_id, *([str(inst.index)] if inst.index is not None else [])]
        for name, out in step.outputs.items():
            if out.kind != "artifact":
                continue
            if self.store is not None:
                uri = self.store.uri("/".join([*parts, name]))
                inst.artifact_paths[name] = uri
                artifacts[name] = ArtifactRef(out.type_name, "", uri, output=True)
            else:
                path = os.path.join(self.root or "", *parts, name)
                inst.artifact_paths[name] = path
                artifacts[name] = ArtifactRef(out.type_name, path, "file://" + path)
        if self.store is None:
            os.makedirs(os.path.join(self.root or "", *parts), exist_ok=True)
        if not inst.log_dir:
            inst.log_dir = tempfile.mkdtemp(prefix=f"{inst.step_id}-", dir=self.logs)
        returns = {n: o.type_name for n, o in step.outputs.items() if o.kind != "artifact"}
        c = step.component
        return Task(
            c.module,
            c.function,
            params,
            artifacts,
            returns,
            inst.log_dir,
            project_dir=self.project_dir,
            workers=step.workers,
            device="cuda" if step.resources.gpus else "cpu",
        )

    def _dataset(self, where: str, type_name: str, ref: str) -> DatasetVersion:
        """The version a ``data:`` input reads in this run, its hash remembered for the cache key."""
        known = len(self.pins.pinned)
        try:
            check_reference(where, type_name, ref)
            version = self.pins.resolve(ref, where)
        except (InvalidInput, NotFound) as exc:
            raise PipelineError(str(exc)) from exc
        self.sha256[version.uri] = version.sha256
        if len(self.pins.pinned) != known:  # a loop item named a new one: resumptions must see it too
            self.run_.set_tags(self.pins.tag())
        return version

    def _reused(self, inst: _Instance, step: StepSpec, task: Task) -> bool:
        """Compute the step's cache key; on a hit (or a resumed step) end it as cached and say so."""
        inst.cache_checked = True
        try:
            # Hashed once: the same digests key the cache and identify the inputs in lineage.
            inst.input_hashes = {name: self._sha256(path) for name, path in inst.input_paths.items()}
            inst.cache_key = cache.cache_key(step.component, task.parameters, inst.input_hashes)
        except (OSError, ShipyardError):
            inst.cache_key = None  # NOTE: an unreadable input: run it and let the step report the problem
        hit = self.reuse.get(inst.name)
        if hit is None and inst.cache_key and self.use_cache and step.cache:
            hit = cache.lookup(self.client, inst.cache_key, self.sha256)
        if hit is None:
            return False
        source, outputs = hit
        start = time.monotonic()
        run = open_step_run(
            self.run_,
            self.experiment,
            inst.name,
            task.parameters,
            self.settings,
            {cache.CACHED_FROM_TAG: source},
        )
        artifacts = {n: outputs[n] for n, o in step.outputs.items() if o.kind == "artifact" and n in outputs}
        for name, path in artifacts.items():
            if step.outputs[name].type_name == "Metrics":
                log_metrics_file(run, path, self.settings)
        values = {n: v for n, v in outputs.items() if n not in artifacts}
        hashes = {n: self._sha256(p) for n, p in artifacts.items()}
        run.set_tags(cache.output_tags(run, inst.cache_key, values, artifacts, hashes))
        run.end(RunStatus.FINISHED)
        duration = time.monotonic() - start
        self._settle(inst, StepResult(StepStatus.CACHED, outputs, 0, None, duration, run.run_id, source))
        return True

    def _submit(self, inst: _Instance, step: StepSpec, task: Task) -> None:
        now = time.monotonic()
        if inst.run is None:
            inst.first_start = now
            name = inst.key.replace("[", ".").replace("]", "")
            inst.run = open_step_run(self.run_, self.experiment, name, task.parameters, self.settings)
            for arg, version in inst.datasets.items():
                inst.run.log_dataset(version_input(version, context=arg))
        inst.attempts += 1
        inst.started = now
        inst.deadline = now + step.timeout_s if step.timeout_s else float("inf")
        self.running[inst.key] = inst
        task = dataclasses.replace(task, run=inst.run.record, settings=self.settings)
        hints = step.resources
        # A training step's processes each take a CPU unless the step says otherwise.
        cpus = hints.cpus if hints.cpus is not None or step.workers == 1 else float(step.workers)
        self.pool.submit(inst.key, self.call_for(task), Resources(cpus, hints.gpus, hints.memory_bytes))
        if self.on_step is not None:
            self.on_step(inst.key, None)

    def _finish(self, outcome: Outcome) -> None:
        inst = self.running[outcome.key]
        if outcome.kind == "died":
            self._fail(inst, f"step {inst.key!r}: its worker process died ({outcome.value}); replaced")
        elif outcome.kind == "error":
            self._fail(inst, outcome.value)
        elif isinstance(outcome.value, StepFailure):
            self._fail(inst, outcome.value.traceback)
        else:
            returned: StepReturn = outcome.value
            # Remote outputs were checked and hashed by the worker that uploaded them.
            local = {n: p for n, p in inst.artifact_paths.items() if n not in returned.artifact_sha256}
            missing = [f"{n!r} at {p}" for n, p in local.items() if not os.path.exists(p)]
            if missing:
                self._fail(inst, f"step {inst.key!r} did not write artifact output {', '.join(missing)}")
                return
            del self.running[inst.key]
            for name, path in inst.artifact_paths.items():
                if self.spec.steps[inst.step_id].outputs[name].type_name == "Metrics":
                    log_metrics_file(inst.run, path, self.settings)  # type: ignore[arg-type]
            hashes = {name: cache.path_sha256(path) for name, path in local.items()}
            hashes.update(returned.artifact_sha256)
            self.sha256.update((inst.artifact_paths[n], h) for n, h in hashes.items())
            tags = cache.output_tags(inst.run, inst.cache_key, returned.values, inst.artifact_paths, hashes)  # type: ignore[arg-type]
            self._record_lineage(inst, hashes)
            self._end(inst, StepStatus.SUCCEEDED, {**returned.values, **inst.artifact_paths}, None, tags)

    def _sha256(self, location: str) -> str:
        """The digest of an artifact location: remembered, else hashed (streamed from an object store)."""
        if location not in self.sha256:
            if staging.is_remote(location):
                self.sha256[location] = staging.uri_sha256(location, self.settings)
            else:
                return cache.path_sha256(location)  # a local file may change between runs; never remembered
        return self.sha256[location]

    def _record_lineage(self, inst: _Instance, output_hashes: dict[str, str]) -> None:
        """The step as a lineage execution: the artifact files it read and the ones it wrote."""
        step = self.spec.steps[inst.step_id]
        inputs = [
            (
                staging.artifact_uri(path),
                ArtifactType.DATASET if name in inst.datasets else ArtifactType(step.inputs[name].type_name),
                inst.input_hashes.get(name, ""),
                name,
            )
            for name, path in inst.input_paths.items()
        ]
        outputs = [
            (
                staging.artifact_uri(path),
                ArtifactType(step.outputs[name].type_name),
                output_hashes[name],
                name,
            )
            for name, path in inst.artifact_paths.items()
        ]
        if not inputs and not outputs:
            return  # a step that passed only values has no artifacts to link; its run records it
        self.lineage.record(
            "pipeline_step",
            name=inst.key,
            run_id=inst.run.run_id if inst.run is not None else None,
            pipeline_run_id=self.run_.run_id,
            inputs=inputs,
            outputs=outputs,
        )

    def _fail(self, inst: _Instance, error: str) -> None:
        self.running.pop(inst.key, None)
        step = self.spec.steps[inst.step_id]
        if inst.attempts <= step.retries:
            inst.not_before = time.monotonic() + step.retry_backoff_s * 2 ** (inst.attempts - 1)
            return
        self._end(inst, StepStatus.FAILED, {}, error)

    def _skip(self, inst: _Instance, reason: str, *, failed: bool = False) -> None:
        status = StepStatus.FAILED if failed else StepStatus.SKIPPED
        self._settle(
            inst, StepResult(status, error=f"step {inst.key!r} {'failed' if failed else 'skipped'}: {reason}")
        )

    def _end(
        self,
        inst: _Instance,
        status: StepStatus,
        outputs: dict[str, Any],
        error: str | None,
        tags: dict[str, str] | None = None,
    ) -> None:
        duration = time.monotonic() - inst.first_start
        run_id = ""
        if inst.run is not None:
            close_step_run(inst.run, inst.log_dir, error, inst.attempts, tags)
            run_id = inst.run.run_id
        self._settle(inst, StepResult(status, outputs, inst.attempts, error, duration, run_id))


def _finished_steps(client: TrackingClient, run_id: str) -> dict[str, tuple[str, dict[str, Any]]]:
    """The finished step runs of a pipeline run with intact outputs: step run name → (run id, outputs)."""
    found: dict[str, tuple[str, dict[str, Any]]] = {}
    token = None
    while True:
        page = client.search_runs(
            None,
            f"attributes.parent_run_id = '{run_id}' and attributes.status = 'FINISHED'",
            page_token=token,
        )
        for run in page:  # type: ignore[union-attr]
            step = run.tags.get("shipyard.step")
            outputs = cache.recorded_outputs(client, run)
            if step and outputs is not None:
                found[step] = (run.run_id, outputs)
        token = page.next_page_token  # type: ignore[union-attr]
        if not token:
            return found


def _local_path(uri: str) -> str | None:
    """The local folder of a run's artifact URI, or None for an object store."""
    parsed = urlparse(uri)
    if parsed.scheme in ("", "file"):
        return unquote(parsed.path) if parsed.scheme else uri
    return None
