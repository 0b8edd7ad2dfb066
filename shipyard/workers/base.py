"""The contract every pool keeps: calls in, outcomes out."""

from __future__ import annotations

import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

OutcomeKind = Literal["ok", "error", "died"]


@dataclass(frozen=True)
class Call:
    """``function(*args)``, to run in a worker. Both must pickle (by reference for a function: defined at
    the top level of an importable module) for every pool but :class:`~shipyard.workers.InlinePool`."""

    function: Callable[..., Any]
    args: tuple[Any, ...] = ()


@dataclass(frozen=True)
class Outcome:
    """How a call ended: ``ok`` (``value`` is what it returned), ``error`` (it raised: ``value`` is the
    traceback text) or ``died`` (its process died or was lost: ``value`` says how)."""

    key: Any
    kind: OutcomeKind
    value: Any

    @property
    def error_line(self) -> str:
        """The error in one line: the traceback's last line (``ValueError: …``) or how the process died."""
        lines = str(self.value).strip().splitlines()
        return lines[-1] if lines else str(self.value)


@dataclass(frozen=True)
class Resources:
    """What one call needs. Ray places calls by it; local workers do not enforce it (the pool's size bounds
    the load)."""

    cpus: float | None = None
    gpus: float | None = None
    memory_bytes: int | None = None
    extra: dict[str, float] = field(default_factory=dict)


class Pool(Protocol):
    """Runs calls somewhere and reports how each ended. Used from one thread."""

    @property
    def size(self) -> int:
        """The most calls that run at once."""
        ...

    @property
    def free(self) -> int:
        """How many more calls can start now."""
        ...

    def submit(self, key: Any, call: Call, resources: Resources | None = None) -> None:
        """Start ``call``; ``key`` names it in its :class:`Outcome`."""
        ...

    def wait(self, timeout: float | None) -> list[Outcome]:
        """Outcomes of the calls that ended within ``timeout`` seconds (maybe none; None: until one ends)."""
        ...

    def kill(self, key: Any) -> None:
        """Stop the call ``key`` at once (a timeout); no outcome follows for it."""
        ...

    def close(self) -> None:
        """Stop everything, killing calls still running."""
        ...


class KeyedCalls:
    """What every process-backed pool keeps the same way: its running calls by key, at most ``size``."""

    size: int
    _busy: dict[Any, Any]

    @property
    def free(self) -> int:
        """How many more calls can start now."""
        return self.size - len(self._busy)

    @property
    def running(self) -> list[Any]:
        """The keys of the calls still running."""
        return list(self._busy)

    def _refuse_running(self, key: Any) -> None:
        if key in self._busy:
            raise ValueError(f"a call keyed {key!r} is already running")


def execute(call: Call) -> tuple[OutcomeKind, Any]:
    """Run ``call`` here: ``("ok", value)``, or ``("error", traceback)`` when it raised an ``Exception``
    (anything else, ``KeyboardInterrupt`` or ``SystemExit``, propagates)."""
    try:
        return "ok", call.function(*call.args)
    except Exception:
        return "error", traceback.format_exc()
