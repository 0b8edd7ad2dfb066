"""`Scheduler`: claim the due pipeline schedules and run them, once or in a loop.

Any number of schedulers may serve one metadata database: each due tick is claimed by exactly one of them
(:meth:`ScheduleClient.claim`). Runs happen one after another in the calling thread, so a long run delays
the schedules due behind it; their catch-up policy decides what the delay costs.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from shipyard.auth.records import ACTOR
from shipyard.config import Settings, get_settings
from shipyard.errors import AlreadyExists
from shipyard.pipelines.executors import PipelineRunResult, StepStatus, executor_for
from shipyard.pipelines.schedule_store import Schedule, ScheduleClient
from shipyard.pipelines.spec import PipelineSpec
from shipyard.tracking import get_client

SCHEDULE_TAG = "shipyard.schedule"
_NAME_ATTEMPTS = 20  # run names tried per tick ("nightly-20260101-0000", "…-2", …) before giving up


class SpecRunner(Protocol):
    """What a scheduler needs of an executor: the signature of :meth:`PipelineExecutor.run`."""

    def run(
        self,
        spec: PipelineSpec,
        parameters: dict[str, Any] | None = None,
        *,
        experiment: str | None = None,
        run_name: str | None = None,
        cache: bool = True,
        tags: Mapping[str, str] | None = None,
    ) -> PipelineRunResult: ...


ExecutorFactory = Callable[[str], SpecRunner]


@dataclass(frozen=True)
class ScheduledRun:
    """One run a scheduler started for a schedule's tick.

    Attributes:
        status: "succeeded" or "failed" (the pipeline failed, or could not start).
        run_id: the pipeline run, or ``None`` when it could not start.
        error: which steps failed, or why the run could not start (a bad spec, an unknown executor, …).
    """

    schedule: str
    tick: datetime
    status: str
    run_id: str | None = None
    error: str | None = None


class Scheduler:
    """Runs due schedules of one metadata store. Not thread-safe: one per thread (or process).

    Args:
        settings: the store and artifact root (default: from the environment).
        executor_factory: the executor for a schedule's executor name (default: `executor_for`).
        clock: the current time (inject a fixed clock in tests).
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        executor_factory: ExecutorFactory | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.settings = settings or get_settings()
        self.client = ScheduleClient(get_client(self.settings))
        self.executor_factory = executor_factory or self._default_executor
        self.clock = clock or (lambda: datetime.now(UTC))

    def run_pending(
        self, now: datetime | None = None, *, stop: threading.Event | None = None
    ) -> list[ScheduledRun]:
        """Claim every schedule due at ``now`` and run its ticks; a failing pipeline does not stop the rest.

        Args:
            stop: when set, no further schedule is claimed (the run in progress finishes).
        """
        now = now or self.clock()
        done: list[ScheduledRun] = []
        for schedule in self.client.due(now):
            if stop is not None and stop.is_set():
                break
            for tick in self.client.claim(schedule, now) or []:  # None: another scheduler has it
                done.append(self._run(schedule, tick))
        return done

    def serve(
        self,
        poll_interval_s: float = 30.0,
        stop_event: threading.Event | None = None,
        max_iterations: int | None = None,
        on_run: Callable[[ScheduledRun], None] | None = None,
    ) -> None:
        """Run pending schedules until ``stop_event`` is set (or ``max_iterations`` passes).

        Between passes it sleeps until the earliest next tick or ``poll_interval_s``, whichever is first; the
        poll catches schedules registered or resumed meanwhile. ``on_run`` is called after each run.
        """
        stop = stop_event or threading.Event()
        passes = 0
        while not stop.is_set():
            for run in self.run_pending(stop=stop):
                if on_run is not None:
                    on_run(run)
            passes += 1
            if max_iterations is not None and passes >= max_iterations:
                return
            wake = self.client.next_wake()
            delay = poll_interval_s
            if wake is not None:
                delay = min(delay, max((wake - self.clock()).total_seconds(), 0.0))
            stop.wait(delay)

    def _run(self, schedule: Schedule, tick: datetime) -> ScheduledRun:
        started = self.clock()
        try:
            result = self._start(schedule, tick)
        except Exception as exc:  # a bad stored spec or executor must not stop the other schedules
            self.client.record_run(schedule.schedule_id, run_id=None, status="failed", at=started)
            return ScheduledRun(schedule.name, tick, "failed", error=f"{type(exc).__name__}: {exc}")
        except BaseException:  # Ctrl-C or SIGTERM: the executor marked the run killed; record it, then stop
            self.client.record_run(schedule.schedule_id, run_id=None, status="killed", at=started)
            raise
        status = result.status.value
        self.client.record_run(schedule.schedule_id, run_id=result.run_id, status=status, at=started)
        failed = [key for key, step in result.steps.items() if step.status is StepStatus.FAILED]
        error = f"step(s) {', '.join(failed)} failed" if failed else None
        return ScheduledRun(schedule.name, tick, status, result.run_id, error)

    def _start(self, schedule: Schedule, tick: datetime) -> PipelineRunResult:
        executor = self.executor_factory(schedule.executor)
        base = f"{schedule.name}-{tick.astimezone(UTC):%Y%m%d-%H%M}"
        # Run names are unique per experiment: a second run for the same minute (a re-created schedule, a
        # seconds-level cron) takes a suffix. The executor raises the clash before anything runs.
        names = [base, *(f"{base}-{n}" for n in range(2, _NAME_ATTEMPTS + 1))]

        spec = schedule.spec

        def attempt(run_name: str) -> PipelineRunResult:
            # The run is the schedule's creator's, as if they had started it (ACTOR: see acting_user).
            token = ACTOR.set(schedule.created_by) if schedule.created_by else None
            try:
                return executor.run(
                    spec,
                    dict(schedule.parameters),
                    experiment=schedule.experiment,
                    run_name=run_name,
                    cache=schedule.cache,
                    tags={SCHEDULE_TAG: schedule.name},
                )
            finally:
                if token is not None:
                    ACTOR.reset(token)

        for name in names[:-1]:
            with contextlib.suppress(AlreadyExists):
                return attempt(name)
        return attempt(names[-1])

    def _default_executor(self, name: str) -> SpecRunner:
        return executor_for(name, settings=self.settings)  # InvalidInput for an unknown name
