"""Store calls off the event loop, at the cost of one executor hop.

Starlette's ``run_in_threadpool`` goes through anyio (a capacity limiter, a cancel scope, an async-library
lookup per call): on the routes a training script calls per run and per flush that was a tenth of each
request's server time. This is asyncio's own executor hop, with the caller's context (the signed-in user,
see :data:`shipyard.auth.records.ACTOR`) carried into the thread as anyio carries it.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

_T = TypeVar("_T")
# As many as anyio's default limiter allows: a slow store call must not hold up the others.
_POOL = ThreadPoolExecutor(max_workers=40, thread_name_prefix="shipyard-store")


async def in_thread(work: Callable[..., _T], *args: Any) -> _T:
    """``work(*args)`` in a worker thread, in the caller's context."""
    context = contextvars.copy_context()
    return await asyncio.get_running_loop().run_in_executor(_POOL, context.run, work, *args)
