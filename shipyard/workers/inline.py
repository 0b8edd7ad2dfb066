"""Calls run in this process, one at a time, at submit: for a single worker, where a process per call would
only cost start-up and pickling (a search of one trial at a time)."""

from __future__ import annotations

from typing import Any

from shipyard.workers.base import Call, Outcome, Resources, execute


class InlinePool:
    """Runs each call when it is submitted, in this thread; ``wait`` hands back what ended.

    A call's ``KeyboardInterrupt`` or ``SystemExit`` propagates from ``submit``. ``kill`` cannot stop a call
    (it has ended by the time anyone could ask) and only drops its outcome.
    """

    size = 1

    def __init__(self) -> None:
        self._done: dict[Any, Outcome] = {}

    @property
    def free(self) -> int:
        """1 while no outcome waits to be collected, else 0 (one call at a time, as a pool of one)."""
        return 0 if self._done else 1

    def submit(self, key: Any, call: Call, resources: Resources | None = None) -> None:
        """Run ``call`` now."""
        kind, value = execute(call)
        self._done[key] = Outcome(key, kind, value)

    def wait(self, timeout: float | None) -> list[Outcome]:
        """The outcomes not yet collected (never waits: every call has ended)."""
        outcomes = list(self._done.values())
        self._done.clear()
        return outcomes

    def kill(self, key: Any) -> None:
        """Drop ``key``'s outcome."""
        self._done.pop(key, None)

    def close(self) -> None:
        """Drop every outcome not collected."""
        self._done.clear()
