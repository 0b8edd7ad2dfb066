"""The feature registry over REST: the current version of every feature definition, one definition's
history, and recording an apply (an editor's)."""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from shipyard.auth.records import Role
from shipyard.errors import InvalidInput
from shipyard.features.records import KINDS, Change, DefinitionVersion
from shipyard.server.guard import guard
from shipyard.store.protocol import FeatureRegistryStore

router = APIRouter(tags=["features"])

Kind = Literal["entity", "feature_view", "on_demand_feature_view", "feature_service"]
assert set(Kind.__args__) == set(KINDS)  # type: ignore[attr-defined]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Version(_Body):
    kind: Kind
    name: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    version: int = Field(ge=1)
    spec: dict[str, Any]
    sha256: str = Field(max_length=64)
    deleted: bool
    created_by: str = Field(max_length=256)
    created_at: int


class ChangeBody(_Body):
    kind: Kind
    name: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    action: Literal["added", "changed", "removed"]
    spec: dict[str, Any] | None
    previous: Version | None = None
    details: list[str] = Field(default_factory=list, max_length=1000)


class Apply(_Body):
    changes: list[ChangeBody] = Field(max_length=10_000)


def _store(request: Request) -> FeatureRegistryStore:
    return request.app.state.stores.features


def version_json(found: DefinitionVersion) -> dict[str, Any]:
    return dataclasses.asdict(found)


def version_of(data: dict[str, Any]) -> DefinitionVersion:
    return DefinitionVersion(**data)


@router.get("/features/definitions")
def current(request: Request) -> list[dict[str, Any]]:
    """The newest version of every definition ever applied (removed ones marked deleted)."""
    guard(request).role(Role.VIEWER, "read feature definitions")
    return [version_json(v) for v in _store(request).current()]


@router.get("/features/definitions/{kind}/{name}")
def history(kind: Kind, name: str, request: Request) -> list[dict[str, Any]]:
    """Every version of one definition, oldest first."""
    guard(request).role(Role.VIEWER, "read feature definitions")
    return [version_json(v) for v in _store(request).history(kind, name)]


@router.post("/features/definitions", status_code=201)
def record(body: Apply, request: Request) -> list[dict[str, Any]]:
    """Record an apply: one new version for each change, in one transaction."""
    g = guard(request)
    g.role(Role.EDITOR, "apply feature definitions")
    for c in body.changes:
        if (c.action == "removed") != (c.spec is None):
            raise InvalidInput(f"changes: {c.kind} {c.name}: a removal has no spec, and only a removal")
    changes = [
        Change(
            c.kind,
            c.name,
            c.action,
            c.spec,
            None if c.previous is None else version_of(c.previous.model_dump()),
            tuple(c.details),
        )
        for c in body.changes
    ]
    return [version_json(v) for v in _store(request).record(changes, g.user)]
