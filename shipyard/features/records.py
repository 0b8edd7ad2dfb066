"""Feature registry records: a definition's stored version and a change an apply makes (plain values; the
stores and the server's routes speak them)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

KINDS = ("entity", "feature_view", "on_demand_feature_view", "feature_service")


def spec_hash(spec: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(spec, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


@dataclass(frozen=True)
class DefinitionVersion:
    """One version of one definition as the registry keeps it."""

    kind: str
    name: str
    version: int
    spec: Mapping[str, Any]
    sha256: str
    deleted: bool
    created_by: str
    created_at: int  # epoch ms

    @property
    def ref(self) -> str:
        return f"{self.kind}:{self.name}@{self.version}"


@dataclass(frozen=True)
class Change:
    """What an apply does to one definition: ``action`` is added, changed or removed."""

    kind: str
    name: str
    action: str
    spec: Mapping[str, Any] | None  # None for a removal
    previous: DefinitionVersion | None = None
    details: tuple[str, ...] = ()  # the schema difference, one line each

    @property
    def sha256(self) -> str:
        return "" if self.spec is None else spec_hash(self.spec)
