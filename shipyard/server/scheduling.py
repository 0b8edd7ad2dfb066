"""The server's scheduler: one loop per ``shipyard server`` that runs due schedules in pipeline drivers.

It is a :class:`~shipyard.pipelines.scheduler.Scheduler` whose executor starts a driver process per run
(:mod:`shipyard.server.pipeline_driver`), so a scheduled run imports server-installed code only, exactly as
a submitted one, and can be cancelled through the API like one. Claims are compare-and-set, so schedulers
elsewhere (``shipyard schedule serve``) may share the store: each tick still runs once.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from typing import Any

from shipyard.auth.records import ACTOR
from shipyard.errors import ShipyardError
from shipyard.pipelines.executors import PipelineRunResult, StepResult, StepStatus
from shipyard.pipelines.run_status import pipeline_state
from shipyard.pipelines.scheduler import Scheduler
from shipyard.pipelines.spec import PipelineSpec
from shipyard.server.pipeline_driver import SUBMITTED_BY_TAG, DriverConfig, Job, launch
from shipyard.tracking import get_client

log = logging.getLogger("shipyard.server.scheduler")

_STEP_STATUSES = {"FINISHED": StepStatus.SUCCEEDED}


class DriverRunner:
    """Runs a spec in a driver process and waits for it: the executor a server's scheduler uses."""

    def __init__(self, config: DriverConfig, executor: str) -> None:
        self.config, self.executor = config, executor

    def run(
        self,
        spec: PipelineSpec,
        parameters: dict[str, Any] | None = None,
        *,
        experiment: str | None = None,
        run_name: str | None = None,
        cache: bool = True,
        tags: Mapping[str, str] | None = None,
    ) -> PipelineRunResult:
        """Run ``spec`` to the end in a driver; raises as `PipelineExecutor.run` does when it cannot start."""
        job = Job(
            "run",
            self.executor,
            spec_yaml=spec.to_yaml(),
            parameters=dict(parameters or {}),
            experiment=experiment,
            run_name=run_name,
            cache=cache,
            tags={**(tags or {}), SUBMITTED_BY_TAG: "scheduler"},
            user=ACTOR.get(),  # the schedule's creator (the scheduler sets it), else the server's user
        )
        started = launch(self.config, job, reap=False)
        started.wait()
        state = pipeline_state(get_client(self.config.settings), started.run_id)
        steps = {
            s.key: StepResult(
                StepStatus.CACHED if s.cached else _STEP_STATUSES.get(s.status, StepStatus.FAILED),
                attempts=s.attempts,
                run_id=s.run_id or "",
                cached_from=s.cached_from or "",
            )
            for s in state.steps
            if s.run_id is not None
        }
        ok = state.status == "FINISHED"
        return PipelineRunResult(state.run_id, StepStatus.SUCCEEDED if ok else StepStatus.FAILED, steps)


def start_scheduler(config: DriverConfig, poll_interval_s: float) -> threading.Event:
    """Run the scheduler in a daemon thread until the returned event is set."""
    stop = threading.Event()
    scheduler = Scheduler(config.settings, executor_factory=lambda name: DriverRunner(config, name))

    def loop() -> None:
        while not stop.is_set():
            try:
                scheduler.serve(poll_interval_s, stop, on_run=_report)
            except ShipyardError as exc:  # the store is down, say: try again, do not stop scheduling for good
                log.warning("scheduler pass failed, retrying in %gs: %s", poll_interval_s, exc)
                stop.wait(poll_interval_s)

    threading.Thread(target=loop, name="shipyard-scheduler", daemon=True).start()
    return stop


def _report(run: Any) -> None:
    detail = f" ({run.error})" if run.error else ""
    log.info("schedule %s ran %s: %s%s", run.schedule, run.run_id or "-", run.status, detail)
