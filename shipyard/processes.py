"""One process context and one parent-death rule for every part of Shipyard that starts worker processes.

Workers come from a fork server: a clean, single-threaded process that imported the workers' modules once,
so a new worker is a fork of it (milliseconds), not a fresh interpreter importing Shipyard again. Python has
one fork server per process, started on first use with the modules asked for until then; each user names
the modules its workers need, and all are preloaded.

Workers die with the process that started them (the *driver*), however it ends — ``kill -9`` included:

- a **lifeline**: the driver holds the write end of a pipe that it never writes; each worker gets the read
  end (:func:`lifeline`) and a daemon thread blocks reading it (:func:`die_with_parent`). When the driver
  dies, the kernel closes its end, the read returns EOF and the worker kills itself — and the processes its
  step started, when it leads its own process group. This works on every POSIX system and through the fork
  server, whose children are not the driver's children (so a parent-death signal alone would point at the
  fork server);
- on Linux also ``prctl(PR_SET_PDEATHSIG, SIGKILL)``, so a worker dies at once when its direct parent (the
  fork server) is killed.

The fork server and the resource tracker then exit by themselves: each lives while any process holding its
pipe does, and the only holders left were the driver and its workers.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import multiprocessing
import os
import signal
import socket
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from multiprocessing.connection import Connection
from types import FrameType
from typing import Any

_preload: set[str] = set()
_lifeline: tuple[Connection, Connection, int] | None = None  # read end, write end, owner pid
_lifeline_lock = threading.Lock()
_PR_SET_PDEATHSIG = 1


@functools.cache
def host_name() -> str:
    """This machine's name as runs, heartbeats and drivers record it (cut to the stored column's 256
    characters, so a comparison with a stored name holds)."""
    return socket.gethostname()[:256]


def usable_cpus(cgroup_root: str = "/sys/fs/cgroup") -> int:
    """The CPUs this process may run on: its affinity mask (``taskset``, a CPU set), narrowed by a cgroup
    v2 CPU quota (a container's or a Kubernetes pod's CPU limit, rounded up); at least 1.

    ``os.cpu_count()`` counts the machine's cores, so thread pools sized by it oversubscribe a process
    that is allowed fewer.
    """
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    with contextlib.suppress(OSError, ValueError):
        with open(os.path.join(cgroup_root, "cpu.max"), encoding="ascii") as handle:
            quota, period = handle.read().split()[:2]
        if quota != "max" and int(period) > 0:
            cpus = min(cpus, -(-int(quota) // int(period)))
    return max(1, cpus)


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


def lifeline() -> Connection:
    """The read end of this process's lifeline, to hand to a worker (as a ``Process`` argument or a pool
    initializer's argument) that then calls :func:`die_with_parent` with it.

    The write end stays open in this process until it exits; it is close-on-exec and never written.
    """
    with _lifeline_lock:
        if _lifeline is None or _lifeline[2] != os.getpid():
            # NOTE: a child forked with os.fork inherits its parent's lifeline; it makes its own, so its
            # workers watch it, not the grandparent.
            _make_lifeline()
        assert _lifeline is not None
        return _lifeline[0]


def _make_lifeline() -> None:
    global _lifeline
    reader, writer = multiprocessing.Pipe(duplex=False)
    _lifeline = (reader, writer, os.getpid())


def die_with_parent(line: Connection | None) -> None:
    """In a worker: be killed (SIGKILL) when the driver that sent ``line`` dies, and when this process's
    direct parent dies (Linux). A worker that leads its own process group takes the group with it, so the
    processes its task started go too. Call once, first thing in the worker."""
    _set_parent_death_signal()
    if line is None:
        return
    thread = threading.Thread(target=_watch, args=(line,), name="shipyard-lifeline", daemon=True)
    thread.start()


def _watch(line: Connection) -> None:
    with contextlib.suppress(EOFError, OSError):
        line.recv_bytes()  # the driver never writes: this returns only by EOF, when it is gone
    _kill_self()


def _kill_self() -> None:
    pid = os.getpid()
    try:
        if hasattr(os, "getpgid") and os.getpgid(0) == pid:
            os.killpg(pid, signal.SIGKILL)
    except OSError:
        pass
    os.kill(pid, signal.SIGKILL if hasattr(signal, "SIGKILL") else signal.SIGTERM)


def _set_parent_death_signal() -> None:
    """Linux only: SIGKILL this process when its parent thread exits (a no-op elsewhere)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        parent = os.getppid()
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the parent died before the signal was armed
        _kill_self()


@contextmanager
def sigterm_raises() -> Iterator[None]:
    """While the block runs, SIGTERM raises ``SystemExit(143)`` in the main thread, as Ctrl-C raises
    KeyboardInterrupt, so a driver stops its workers and marks its runs KILLED instead of dying at once
    (``kill``, a scheduler's stop, a container's shutdown). Elsewhere than the main thread, a no-op: signals
    reach only the main thread, and whoever owns it decides."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def terminate(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    except BaseException as exc:
        stop = interruption(exc)
        if stop is None or stop is exc:
            raise
        raise stop from exc  # the caller sees the stop (exit 143/130), not the cleanup error it caused
    finally:
        signal.signal(signal.SIGTERM, previous)


def interruption(exc: BaseException) -> KeyboardInterrupt | SystemExit | None:
    """The Ctrl-C or stop signal behind ``exc``: ``exc`` itself, or the one that cleanup code replaced.

    A signal lands anywhere, a library's ``finally`` included: Optuna's journal lock, interrupted while it
    releases, raises ``FileNotFoundError`` for the lock file it had just removed, and that error (with the
    ``SystemExit`` as its ``__context__``) is what propagates. A stopped search or pipeline must still be
    marked stopped and exit 143, not be reported as a crash.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, KeyboardInterrupt) or (
            isinstance(current, SystemExit) and current.code not in (0, None)
        ):
            return current
        seen.add(id(current))
        current = current.__context__
    return None


__all__ = ["die_with_parent", "interruption", "lifeline", "sigterm_raises", "worker_context"]
