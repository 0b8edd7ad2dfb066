"""Pipeline schedules over REST, with the compare-and-set that lets any number of schedulers share them."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict

from shipyard.errors import NotFound
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


@router.post("/schedules", status_code=201)
def insert(body: Row, request: Request) -> dict[str, Any]:
    return wire.to_json(_store(request).insert(body.row))


@router.get("/schedules")
def list_schedules(request: Request) -> list[dict[str, Any]]:
    return wire.to_json(_store(request).list())


@router.get("/schedules/due")
def due(now_ms: int, request: Request) -> list[dict[str, Any]]:
    return wire.to_json(_store(request).due(now_ms))


@router.get("/schedules/earliest-next-run")
def earliest_next_run(request: Request) -> dict[str, int | None]:
    return {"next_run_at": _store(request).earliest_next_run()}


@router.get("/schedules/{name}")
def get(name: str, request: Request) -> dict[str, Any]:
    found = _store(request).get(name)
    if found is None:
        raise NotFound(f"no schedule named {name!r}")
    return wire.to_json(found)


@router.delete("/schedules/{name}")
def delete(name: str, request: Request) -> dict[str, bool]:
    return {"deleted": _store(request).delete(name)}


@router.patch("/schedules/by-id/{schedule_id}", status_code=204)
def update(schedule_id: str, body: Values, request: Request) -> None:
    _store(request).update(schedule_id, body.values)


@router.post("/schedules/by-id/{schedule_id}/advance")
def advance(schedule_id: str, body: Advance, request: Request) -> dict[str, bool]:
    """Compare-and-set the next tick: exactly one of any number of concurrent callers wins."""
    won = _store(request).advance(schedule_id, body.expected_next_run_at, body.next_run_at, body.updated_at)
    return {"won": won}
