"""One process context for every part of Shipyard that starts worker processes.

Workers come from a fork server: a clean, single-threaded process that imported the workers' modules once,
so a new worker is a fork of it (milliseconds), not a fresh interpreter importing Shipyard again. Python has
one fork server per process, started on first use with the modules asked for until then; each user names
the modules its workers need, and all are preloaded.
"""

from __future__ import annotations

import multiprocessing
from typing import Any

_preload: set[str] = set()


def worker_context(*modules: str) -> Any:
    """The multiprocessing context for workers that run code from ``modules`` (preloaded when the fork
    server starts after this call; on platforms without fork, each worker is a fresh interpreter)."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    if not set(modules) <= _preload:
        _preload.update(modules)
        context.set_forkserver_preload(sorted(_preload))
    return context


__all__ = ["worker_context"]
