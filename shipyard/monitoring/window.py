"""Time windows and JSON-safe numbers, shared by the monitoring job and the performance computation."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

Window = tuple[datetime | None, datetime | None]


def utc(value: datetime | None) -> datetime | None:
    """``value`` in UTC; a naive datetime is taken as UTC."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def finite(value: Any) -> Any:
    """``value`` with every non-finite float (in nested dicts and lists too) replaced by None."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [finite(v) for v in value]
    return value


def describe(window: Window) -> str:
    """A window for messages: ``[since, until)``, with open ends named."""
    since, until = window
    if since is None and until is None:
        return "all logged payloads"
    return f"[{iso(since) or 'start'}, {iso(until) or 'now'})"
