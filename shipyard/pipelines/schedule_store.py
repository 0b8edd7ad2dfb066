"""`ScheduleClient`: pipeline schedules, kept by the deployment's schedule store (SQL, or the server).

A schedule is *claimed* by a compare-and-set on ``next_run_at`` (:meth:`ScheduleClient.claim`), so any number
of schedulers on one database never run the same tick twice. Claiming advances ``next_run_at`` before the run
starts: a scheduler killed mid-run does not re-run that tick (at most once).
"""

from __future__ import annotations

import builtins
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from shipyard.errors import InvalidInput, NotFound
from shipyard.pipelines.binding import bind_parameters
from shipyard.pipelines.executors import EXECUTORS
from shipyard.pipelines.schedule import (
    Catchup,
    due_ticks,
    from_ms,
    next_tick,
    to_ms,
    validate_cron,
    validate_timezone,
)
from shipyard.pipelines.spec import PipelineSpec
from shipyard.tracking import naming

if TYPE_CHECKING:
    from shipyard.store.protocol import ScheduleStore
    from shipyard.tracking.client import TrackingClient

# Run names are "<schedule>-YYYYMMDD-HHMM[-n]" and at most 256 characters: leave room for the suffix.
_MAX_NAME = 200


@dataclass(frozen=True)
class Schedule:
    """A registered recurring run of a pipeline spec. Times are epoch milliseconds (UTC).

    Attributes:
        parameters: the values given at registration, coerced to the parameters' types; the other
            parameters take the spec's defaults at each run.
        last_status: "succeeded", "failed" or "killed" for the latest run (``None`` before the first).
        created_by: who created it (the signed-in user on a platform server); its runs are recorded as
            this user's. ``None`` for schedules from before owners were kept.
    """

    schedule_id: str
    name: str
    pipeline_name: str
    spec_yaml: str
    parameters: dict[str, Any]
    cron: str
    timezone: str
    catchup: Catchup
    experiment: str | None
    executor: str
    cache: bool
    paused: bool
    next_run_at: int
    last_run_at: int | None
    last_run_id: str | None
    last_status: str | None
    created_at: int
    updated_at: int
    created_by: str | None = None

    @property
    def spec(self) -> PipelineSpec:
        """The pipeline spec as registered."""
        return PipelineSpec.from_yaml(self.spec_yaml, source=f"schedule {self.name!r}")


class ScheduleClient:
    """Pipeline schedules in one metadata store. Thread-safe; any number may share a database."""

    def __init__(self, where: TrackingClient | ScheduleStore) -> None:
        """``where``: a tracking client (its deployment's schedules) or a schedule store itself."""
        stores = getattr(where, "stores", None)
        self.backend: ScheduleStore = stores.schedules if stores is not None else where  # type: ignore[assignment]

    def create(
        self,
        spec: PipelineSpec,
        cron: str,
        *,
        name: str | None = None,
        parameters: Mapping[str, Any] | None = None,
        timezone: str = "UTC",
        catchup: Catchup | str = Catchup.ONCE,
        experiment: str | None = None,
        executor: str = "local",
        cache: bool = True,
        now: datetime | None = None,
    ) -> Schedule:
        """Register ``spec`` to run at each tick of ``cron``, the first after ``now``.

        Args:
            name: unique among schedules (default: the pipeline's name).
            parameters: parameter values (strings are coerced as on the command line).
            experiment: where runs are tracked (default: the pipeline's name).

        Raises:
            InvalidInput: a bad cron expression, timezone, catch-up policy, executor, name or parameter.
            AlreadyExists: a schedule with this name exists.
        """
        name = naming.check_name(spec.name if name is None else name, "schedule name")
        if len(name) > _MAX_NAME:
            raise InvalidInput(f"schedule name {name[:40]!r}… must be at most {_MAX_NAME} characters")
        validate_cron(cron)
        validate_timezone(timezone)
        try:
            policy = Catchup(catchup)
        except ValueError as exc:
            valid = ", ".join(c.value for c in Catchup)
            raise InvalidInput(f"catch-up policy {catchup!r} is not one of: {valid}") from exc
        if executor not in EXECUTORS:
            raise InvalidInput(f"executor {executor!r} is not available; use one of: {', '.join(EXECUTORS)}")
        if experiment is not None:
            naming.check_name(experiment, "experiment name")
        given = dict(parameters or {})
        bound = bind_parameters(spec, given)  # names the unknown, missing or mistyped parameter
        stamp = to_ms(datetime.now(UTC))
        row = {
            "schedule_id": uuid.uuid4().hex,
            "name": name,
            "pipeline_name": spec.name,
            "spec_yaml": spec.to_yaml(),
            "parameters_json": json.dumps({k: bound[k] for k in given}, sort_keys=True),
            "cron": cron,
            "timezone": timezone,
            "catchup": policy.value,
            "experiment": experiment,
            "executor": executor,
            "cache": cache,
            "paused": False,
            "next_run_at": to_ms(next_tick(cron, timezone, now or datetime.now(UTC))),
            "last_run_at": None,
            "last_run_id": None,
            "last_status": None,
            "created_at": stamp,
            "updated_at": stamp,
        }
        return self.backend.insert(row)

    def get(self, name: str) -> Schedule:
        """The schedule called ``name``; `NotFound` listing the known names."""
        found = self.backend.get(name)
        if found is None:
            known = [s.name for s in self.backend.list()]
            raise NotFound(f"no schedule named {name!r}; schedules: {', '.join(known) or '(none)'}")
        return found

    def list(self) -> builtins.list[Schedule]:
        """Every schedule, by name."""
        return self.backend.list()

    def pause(self, name: str) -> Schedule:
        """Stop running ``name`` until it is resumed (a paused schedule is never claimed)."""
        return self._update(self.get(name), paused=True)

    def resume(self, name: str, *, now: datetime | None = None) -> Schedule:
        """Run ``name`` again from its first tick after ``now``: the paused period is not replayed."""
        schedule = self.get(name)
        if not schedule.paused:
            return schedule
        upcoming = next_tick(schedule.cron, schedule.timezone, now or datetime.now(UTC))
        return self._update(schedule, paused=False, next_run_at=to_ms(upcoming))

    def delete(self, name: str) -> None:
        """Remove ``name``; a run it already started goes on."""
        if not self.backend.delete(name):
            self.get(name)  # raises NotFound with the known names

    def due(self, now: datetime) -> builtins.list[Schedule]:
        """Unpaused schedules whose next tick is at or before ``now``, earliest first (then by name)."""
        return self.backend.due(to_ms(now))

    def next_wake(self) -> datetime | None:
        """The earliest ``next_run_at`` of the unpaused schedules (``None`` when there are none)."""
        earliest = self.backend.earliest_next_run()
        return None if earliest is None else from_ms(earliest)

    def claim(self, schedule: Schedule, now: datetime) -> builtins.list[datetime] | None:
        """Take the ticks of ``schedule`` due at ``now`` for this caller to run.

        Compare-and-set on ``next_run_at``: of any number of callers holding the same ``schedule`` record,
        exactly one gets the ticks; the others (and any caller after a pause, resume or earlier claim) get
        ``None``. An empty list means nothing was due.
        """
        ticks, upcoming = due_ticks(
            schedule.cron, schedule.timezone, from_ms(schedule.next_run_at), now, schedule.catchup
        )
        if to_ms(upcoming) == schedule.next_run_at:
            return ticks
        won = self.backend.advance(
            schedule.schedule_id, schedule.next_run_at, to_ms(upcoming), to_ms(datetime.now(UTC))
        )
        return ticks if won else None

    def record_run(self, schedule_id: str, *, run_id: str | None, status: str, at: datetime) -> None:
        """Note the latest run of a schedule (a schedule deleted meanwhile is left deleted)."""
        self.backend.update(
            schedule_id,
            {"last_run_at": to_ms(at), "last_run_id": run_id, "last_status": status, "updated_at": to_ms(at)},
        )

    def _update(self, schedule: Schedule, **values: Any) -> Schedule:
        values["updated_at"] = to_ms(datetime.now(UTC))
        self.backend.update(schedule.schedule_id, values)
        return self.get(schedule.name)
