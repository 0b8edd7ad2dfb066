"""Time windows and JSON-safe numbers, shared by the monitoring job and the performance computation."""

from __future__ import annotations

from datetime import UTC, datetime

Window = tuple[datetime | None, datetime | None]


def utc(value: datetime | None) -> datetime | None:
    """``value`` in UTC; a naive datetime is taken as UTC."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def describe(window: Window) -> str:
    """A window for messages: ``[since, until)``, with open ends named."""
    since, until = window
    if since is None and until is None:
        return "all logged payloads"
    return f"[{iso(since) or 'start'}, {iso(until) or 'now'})"
