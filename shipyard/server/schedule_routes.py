"""Pipeline schedules over REST, with the compare-and-set that lets any number of schedulers share them."""

from __future__ import annotations

import contextlib
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict

from shipyard.auth.records import Role
from shipyard.errors import Forbidden, NotFound
from shipyard.server.guard import EDIT, READ, Guard, guard
from shipyard.store import wire
from shipyard.store.protocol import ScheduleStore

router = APIRouter(tags=["schedules"])


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Row(_Body):
    row: dict[str, Any]


class Values(_Body):
    values: dict[str, Any]


class Advance(_Body):
    expected_next_run_at: int
    next_run_at: int
    updated_at: int


def _store(request: Request) -> ScheduleStore:
    return request.app.state.stores.schedules


def _may_change(g: Guard, experiment: str | None, doing: str) -> None:
    # A schedule starts runs: an editor's, with EDIT on the experiment they go to (when it names one).
    g.role(Role.EDITOR, doing)
    if experiment:
        g.experiment_name(experiment, EDIT)


def _may_read(g: Guard, experiment: str | None) -> bool:
    if not experiment:
        return True
    try:
        g.experiment(experiment, READ)
    except NotFound:
        return True
    except Forbidden:
        return False
    return True


def _target(schedule: Any) -> str | None:
    """The experiment a schedule's runs go to (the pipeline's name unless it names one)."""
    return schedule.experiment or schedule.pipeline_name


def _by_id(request: Request, schedule_id: str) -> Any:
    for found in _store(request).list():
        if found.schedule_id == schedule_id:
            return found
    raise NotFound(f"no schedule with id {schedule_id!r}")


@router.post("/schedules", status_code=201)
def insert(body: Row, request: Request) -> dict[str, Any]:
    _may_change(
        guard(request), body.row.get("experiment") or body.row.get("pipeline_name"), "create schedules"
    )
    return wire.to_json(_store(request).insert(body.row))


@router.get("/schedules")
def list_schedules(request: Request) -> list[dict[str, Any]]:
    g = guard(request)
    return wire.to_json([found for found in _store(request).list() if _may_read(g, _target(found))])


@router.get("/schedules/due")
def due(now_ms: int, request: Request) -> list[dict[str, Any]]:
    g = guard(request)
    g.role(Role.EDITOR, "run the scheduler")
    return wire.to_json([found for found in _store(request).due(now_ms) if _may_read(g, _target(found))])


@router.get("/schedules/earliest-next-run")
def earliest_next_run(request: Request) -> dict[str, int | None]:
    g = guard(request)
    g.role(Role.EDITOR, "run the scheduler")
    if g.principal is None:
        return {"next_run_at": _store(request).earliest_next_run()}
    ticks = [s.next_run_at for s in _store(request).list() if not s.paused and _may_read(g, _target(s))]
    return {"next_run_at": min(ticks, default=None)}


@router.get("/schedules/{name}")
def get(name: str, request: Request) -> dict[str, Any]:
    found = _store(request).get(name)
    if found is None:
        raise NotFound(f"no schedule named {name!r}")
    if _target(found):
        # Its experiment may not exist before the first run: readable then, as in the list.
        with contextlib.suppress(NotFound):
            guard(request).experiment(_target(found), READ)
    return wire.to_json(found)


@router.delete("/schedules/{name}")
def delete(name: str, request: Request) -> dict[str, bool]:
    found = _store(request).get(name)
    _may_change(guard(request), _target(found) if found else None, "delete schedules")
    return {"deleted": _store(request).delete(name)}


@router.patch("/schedules/by-id/{schedule_id}", status_code=204)
def update(schedule_id: str, body: Values, request: Request) -> None:
    g = guard(request)
    _may_change(g, _target(_by_id(request, schedule_id)) if g.principal else None, "change schedules")
    if "experiment" in body.values:
        _may_change(g, body.values["experiment"], "change schedules")
    _store(request).update(schedule_id, body.values)


@router.post("/schedules/by-id/{schedule_id}/advance")
def advance(schedule_id: str, body: Advance, request: Request) -> dict[str, bool]:
    """Compare-and-set the next tick: exactly one of any number of concurrent callers wins."""
    g = guard(request)
    _may_change(g, _target(_by_id(request, schedule_id)) if g.principal else None, "run the scheduler")
    won = _store(request).advance(schedule_id, body.expected_next_run_at, body.next_run_at, body.updated_at)
    return {"won": won}
