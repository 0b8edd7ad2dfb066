"""Functions the worker-layer contract runs in workers (importable by module, as calls must be)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path


def add(a: int, b: int) -> int:
    return a + b


def pid() -> int:
    return os.getpid()


def fail(value: int) -> None:
    raise ValueError(f"bad input {value}")


def hard_exit(code: int) -> None:
    os._exit(code)


def soft_exit(code: int) -> None:
    sys.exit(code)


def nap(seconds: float) -> str:
    time.sleep(seconds)
    return "woke"


def meet(mine: str, other: str, timeout_s: float = 60) -> int:
    """Leave ``mine`` and wait for ``other``: returns only when both calls run at once."""
    Path(mine).write_text(str(os.getpid()))
    deadline = time.monotonic() + timeout_s
    while not Path(other).exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{other} never appeared: the calls did not run at once")
        time.sleep(0.02)
    return os.getpid()


def start_child_and_wait(marker: str) -> None:
    """Start a long-lived child process, write ``<worker pid> <child pid>`` to ``marker`` and sleep."""
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    Path(marker + ".tmp").write_text(f"{os.getpid()} {child.pid}")
    os.replace(marker + ".tmp", marker)
    time.sleep(120)


def interrupt() -> None:
    raise KeyboardInterrupt
