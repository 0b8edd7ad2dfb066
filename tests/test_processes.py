"""A stop (SIGTERM, Ctrl-C) stays a stop when cleanup code raises its own error while handling it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from shipyard.processes import interruption, sigterm_raises, usable_cpus


def _replaced(stop: BaseException) -> BaseException:
    """What a ``finally`` that fails while ``stop`` propagates leaves: its own error, ``stop`` as context."""
    try:
        try:
            raise stop
        finally:
            raise FileNotFoundError("lock.rename")
    except BaseException as exc:  # whatever came out, kept
        return exc


@pytest.mark.parametrize("stop", [SystemExit(143), KeyboardInterrupt()], ids=["sigterm", "ctrl-c"])
def test_the_stop_behind_a_cleanup_error_is_found(stop: BaseException) -> None:
    replaced = _replaced(stop)
    assert isinstance(replaced, FileNotFoundError)
    assert interruption(replaced) is stop
    assert interruption(stop) is stop


def test_ordinary_errors_and_clean_exits_are_not_stops() -> None:
    assert interruption(ValueError("bad")) is None
    assert interruption(_replaced(SystemExit(0))) is None
    assert interruption(SystemExit(None)) is None


def test_an_error_that_is_its_own_context_does_not_loop() -> None:
    error = ValueError("loop")
    error.__context__ = error
    assert interruption(error) is None


def test_sigterm_raises_gives_the_caller_the_stop_not_the_cleanup_error() -> None:
    with pytest.raises(SystemExit) as caught, sigterm_raises():
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            for _ in range(1000):  # the handler runs between bytecodes
                pass
        finally:
            raise FileNotFoundError("lock.rename")
    assert caught.value.code == 128 + signal.SIGTERM
    assert isinstance(caught.value.__cause__, FileNotFoundError)


def test_a_process_stopped_inside_a_failing_finally_exits_143() -> None:
    script = textwrap.dedent(
        """
        import os, signal
        from shipyard.processes import sigterm_raises
        with sigterm_raises():
            try:
                os.kill(os.getpid(), signal.SIGTERM)
                for _ in range(1000):
                    pass
            finally:
                os.unlink("/nonexistent/lock.rename")
        """
    )
    process = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert process.returncode == 143, process.stderr


@pytest.mark.parametrize(
    ("cpu_max", "expected"),
    [
        ("max 100000\n", None),  # no quota: the affinity mask decides
        ("50000 100000\n", 1),  # half a CPU still runs on one
        ("150000 100000\n", 2),  # a quota of 1.5 CPUs rounds up
        ("garbage\n", None),
        (None, None),  # no cgroup v2 file here
    ],
)
def test_usable_cpus_takes_the_affinity_mask_and_the_cgroup_quota(
    tmp_path: Path, cpu_max: str | None, expected: int | None
) -> None:
    if cpu_max is not None:
        (tmp_path / "cpu.max").write_text(cpu_max)
    affinity = len(os.sched_getaffinity(0))
    assert usable_cpus(str(tmp_path)) == (affinity if expected is None else min(affinity, expected))


def test_usable_cpus_follows_taskset() -> None:
    code = "import os, shipyard.processes as p; os.sched_setaffinity(0, {0}); print(p.usable_cpus())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "1"
