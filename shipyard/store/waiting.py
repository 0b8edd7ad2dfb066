"""Store calls that must not wait: the server's event loop runs short store work itself, and hands to a
thread only what would wait (see :func:`without_waiting`; :mod:`shipyard.store.db` keeps the rule)."""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator

__all__ = ["WouldWait", "without_waiting"]


class WouldWait(Exception):
    """Under :func:`without_waiting`: the call would have waited (a lock another writer holds, a full pool).
    Nothing was written; the caller may retry where waiting is allowed."""


class NoWait:
    __slots__ = ("began",)

    def __init__(self) -> None:
        self.began = False  # a write began: from then on the call waits as usual (never half-done twice)


_NO_WAIT: contextvars.ContextVar[NoWait | None] = contextvars.ContextVar("shipyard_no_wait", default=None)


@contextlib.contextmanager
def without_waiting() -> Iterator[None]:
    """SQLite store calls in this block raise :class:`WouldWait` instead of waiting, until one of them
    has begun a write transaction (the rest of the block then waits as usual: what began is finished).

    For the server's event loop, where a call that waits would stop every other request. On PostgreSQL
    every statement waits on the network: there each call that would run one is refused (answers from
    caches are not), and what must be written goes through :mod:`shipyard.store.async_pg` or a thread.
    """
    token = _NO_WAIT.set(NoWait())
    try:
        yield
    finally:
        _NO_WAIT.reset(token)


def must_not_wait() -> NoWait | None:
    state = _NO_WAIT.get()
    return state if state is not None and not state.began else None
