"""What a pipeline run looks like from its records: its steps' states, their captured output, the runs list.

Read from a tracking client (embedded, or the server's own stores), so the platform server's pipeline
routes and ``shipyard pipeline status`` answer the same way. A step shows up once its step run exists; the
spec's steps that have none yet are PENDING while the pipeline runs and NOT_RUN after (skipped, or never
reached). Captured output is attached to a step run when the step ends, so a running step has none yet.
"""

from __future__ import annotations

import dataclasses
import hashlib
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from shipyard.errors import InvalidInput, NotFound, PipelineDefinitionError
from shipyard.pipelines.cache import CACHED_FROM_TAG
from shipyard.pipelines.executors.engine import PIPELINE_FILE, RESUMED_FROM_TAG
from shipyard.pipelines.executors.step_runs import CAPTURED_OUTPUT
from shipyard.pipelines.spec import PipelineSpec
from shipyard.tracking import RunStatus, TrackingClient
from shipyard.tracking.records import Run

PIPELINE_TAG = "shipyard.pipeline"
STEP_TAG = "shipyard.step"
ATTEMPTS_TAG = "shipyard.attempts"
PIPELINE_RUNS_FILTER = f"tags.`{PIPELINE_TAG}` is not null"
MAX_LOG_BYTES = 1 << 20  # a step's captured output beyond this is cut, keeping its end (where errors are)
_PAGE = 1000
_PARSED: OrderedDict[bytes, PipelineSpec] = OrderedDict()  # sha256 of a stored spec -> the spec
_PARSED_LOCK = threading.Lock()
_PARSED_KEPT = 16


@dataclass(frozen=True)
class StepState:
    """One step (or loop iteration) of a pipeline run. ``run_id`` is its step run (None before it starts);
    times are epoch ms."""

    key: str
    status: str
    run_id: str | None = None
    start_time: int | None = None
    end_time: int | None = None
    attempts: int = 0
    cached: bool = False
    cached_from: str | None = None


@dataclass(frozen=True)
class PipelineRunState:
    """A pipeline run and (from :func:`pipeline_state`; empty in lists) its steps. ``status`` is LOST for a
    run whose driver stopped beating; ``process`` is the driver's ``pid@host``."""

    run_id: str
    name: str
    pipeline: str
    experiment_id: str
    status: str
    start_time: int
    end_time: int | None = None
    user: str | None = None
    process: str | None = None
    resumed_from: str | None = None
    steps: tuple[StepState, ...] = ()

    @property
    def ended(self) -> bool:
        return self.status not in (RunStatus.RUNNING.value, "LOST")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PipelineRunState:
        """From :meth:`to_dict`'s form (fields a newer server adds are ignored)."""
        steps = tuple(StepState(**_known(StepState, s)) for s in data.get("steps", ()))
        return cls(**{**_known(cls, data), "steps": steps})


@dataclass(frozen=True)
class StepLogs:
    """What a step printed (its last attempt's output, after earlier attempts'), cut to its last MiB."""

    run_id: str
    step: str
    step_run_id: str
    stdout: str
    stderr: str


def pipeline_run(client: TrackingClient, run_id: str) -> Run:
    """The run ``run_id``, which must be a pipeline run (`NotFound` otherwise)."""
    run = client.get_run(run_id)
    if PIPELINE_TAG not in run.tags:
        raise NotFound(f"run {run_id} is not a pipeline run (it has no {PIPELINE_TAG} tag)")
    return run


def summary(run: Run) -> PipelineRunState:
    """The pipeline run ``run`` without its steps."""
    return PipelineRunState(
        run.run_id,
        run.name,
        run.tags.get(PIPELINE_TAG, ""),
        run.experiment_id,
        run.display_status,
        run.start_time,
        run.end_time,
        run.user,
        run.process,
        run.tags.get(RESUMED_FROM_TAG),
    )


def pipeline_state(client: TrackingClient, run_id: str, spec: PipelineSpec | None = None) -> PipelineRunState:
    """The pipeline run ``run_id`` with every step's state, in spec order (loop iterations in order).

    ``spec``: the run's spec when the caller has read it already (:func:`pipeline_spec`); else it is read.
    """
    run = pipeline_run(client, run_id)
    found = {r.tags[STEP_TAG]: _step(r) for r in step_runs(client, run) if STEP_TAG in r.tags}
    pending = "PENDING" if run.status is RunStatus.RUNNING else "NOT_RUN"
    steps: list[StepState] = []
    if spec is None:
        spec = pipeline_spec(client, run_id)
    names = set() if spec is None else set(spec.steps)
    by_step: dict[str, list[str]] = {}  # spec step -> its keys: itself, or its loop iterations (``step.3``)
    for key in found:
        by_step.setdefault(_owner(key, names), []).append(key)
    for step_id in [] if spec is None else spec.steps:  # no spec: the steps with runs are all to show
        mine = sorted(by_step.pop(step_id, ()), key=_iteration)
        steps.extend(found.pop(k) for k in mine)
        if not mine:
            steps.append(StepState(step_id, pending))
    steps.extend(found.values())  # a step the spec does not name (never expected; shown, not hidden)
    return dataclasses.replace(summary(run), steps=tuple(steps))


def step_runs(client: TrackingClient, run: Run) -> list[Run]:
    """The step runs of pipeline run ``run``, every page."""
    found: list[Run] = []
    token = None
    while True:
        page = client.search_runs(
            run.experiment_id,
            f"attributes.parent_run_id = '{run.run_id}'",
            max_results=_PAGE,
            page_token=token,
        )
        found.extend(page)  # type: ignore[arg-type]
        token = page.next_page_token  # type: ignore[union-attr]
        if not token:
            return found


def step_logs(client: TrackingClient, run_id: str, step: str) -> StepLogs:
    """The captured stdout and stderr of step ``step`` (``score.1`` for a loop iteration) of ``run_id``.

    Raises:
        NotFound: no such pipeline run, or it has no step ``step`` (the message lists those it has).
    """
    run = pipeline_run(client, run_id)
    runs = {r.tags[STEP_TAG]: r for r in step_runs(client, run) if STEP_TAG in r.tags}
    found = runs.get(step)
    if found is None:
        known = ", ".join(sorted(runs, key=_iteration)) or "none yet"
        raise NotFound(f"pipeline run {run_id} has no step {step!r}; its steps with runs: {known}")
    stdout, stderr = (_tail(client, found.run_id, name) for name in CAPTURED_OUTPUT)
    return StepLogs(run_id, step, found.run_id, stdout, stderr)


def pipeline_runs(
    client: TrackingClient,
    experiment_ids: list[str],
    *,
    max_results: int = 100,
    page_token: str | None = None,
) -> tuple[list[PipelineRunState], str | None]:
    """A page of the pipeline runs in ``experiment_ids``, newest first, and the next page's token."""
    if not experiment_ids:
        return [], None
    page = client.search_runs(
        experiment_ids,
        PIPELINE_RUNS_FILTER,
        order_by=["attributes.start_time desc"],
        max_results=max_results,
        page_token=page_token,
    )
    return [summary(r) for r in page], page.next_page_token  # type: ignore[union-attr]


def _known(kind: type, data: dict[str, Any]) -> dict[str, Any]:
    names = {f.name for f in dataclasses.fields(kind)}
    return {k: v for k, v in data.items() if k in names}


def _step(run: Run) -> StepState:
    try:
        attempts = int(run.tags.get(ATTEMPTS_TAG, "0"))
    except ValueError:
        attempts = 0
    cached_from = run.tags.get(CACHED_FROM_TAG)
    return StepState(
        run.tags[STEP_TAG],
        run.display_status,
        run.run_id,
        run.start_time,
        run.end_time,
        attempts,
        cached_from is not None,
        cached_from,
    )


def pipeline_spec(client: TrackingClient, run_id: str) -> PipelineSpec | None:
    """The spec pipeline run ``run_id`` ran (None when it kept no readable one).

    Parsed specs are kept by their text's hash (a few of them), shared between callers: do not modify one.
    A run page polls its run every two seconds, and a 2,000-step spec takes most of a second to parse.
    """
    try:
        data = client.read_artifact(run_id, PIPELINE_FILE)
    except (NotFound, InvalidInput):
        return None
    digest = hashlib.sha256(data).digest()
    with _PARSED_LOCK:
        spec = _PARSED.get(digest)
        if spec is not None:
            _PARSED.move_to_end(digest)
            return spec
    try:
        spec = PipelineSpec.from_yaml(data.decode("utf-8"), source=PIPELINE_FILE)
    except (PipelineDefinitionError, UnicodeDecodeError):
        return None
    with _PARSED_LOCK:
        _PARSED[digest] = spec
        while len(_PARSED) > _PARSED_KEPT:
            _PARSED.popitem(last=False)
    return spec


def _owner(key: str, names: set[str]) -> str:
    """The spec step that ``key`` is, or whose loop iteration it is (``score.3``, ``outer.2.1``)."""
    while key not in names and "." in key:
        key = key.rpartition(".")[0]
    return key


def _iteration(key: str) -> tuple[str, int]:
    base, _, index = key.rpartition(".")
    return (base, int(index)) if index.isdigit() else (key, -1)


def _tail(client: TrackingClient, run_id: str, name: str) -> str:
    try:
        data = client.read_artifact(run_id, name)
    except NotFound:
        return ""  # nothing printed (an empty capture is not stored)
    return data[-MAX_LOG_BYTES:].decode("utf-8", errors="replace")
