"""The worker layer's contract, kept by every pool: local worker processes, Ray tasks and (where it can
apply without isolation) the in-process pool. Pipelines, tuning trials and training jobs all run on it."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from shipyard.errors import WorkerError
from shipyard.workers import Call, InlinePool, Outcome, Pool, RayPool, Resources, WorkerPool
from shipyard.workers.ray import probe
from tests.workers import calls

REPO = Path(__file__).parents[2]


@pytest.fixture(params=["local", "ray"])
def pool(request: pytest.FixtureRequest) -> Iterator[Pool]:
    """A pool of two workers: local processes, then tasks on a real local Ray (skipped, with the reason,
    when Ray cannot start here)."""
    if request.param == "ray":
        request.getfixturevalue("ray_cluster")
        made: Pool = RayPool(2)
    else:
        made = WorkerPool(2)
    yield made
    made.close()


def wait_all(pool: Pool, count: int, timeout_s: float = 120) -> dict[Any, Outcome]:
    """The outcomes of ``count`` calls, by key."""
    outcomes: dict[Any, Outcome] = {}
    deadline = time.monotonic() + timeout_s
    while len(outcomes) < count:
        assert time.monotonic() < deadline, f"only {len(outcomes)} of {count} calls ended: {outcomes}"
        outcomes.update((o.key, o) for o in pool.wait(1.0))
    return outcomes


def gone(pid: int, timeout_s: float = 20) -> bool:
    """Whether process ``pid`` is gone (or a zombie) within ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.05)
    return False


def test_a_call_returns_its_value_under_its_key(pool: Pool) -> None:
    pool.submit("a", Call(calls.add, (2, 3)))
    assert pool.free == pool.size - 1
    assert wait_all(pool, 1)["a"] == Outcome("a", "ok", 5)
    assert pool.free == pool.size


def test_a_call_that_raises_is_an_error_with_its_traceback(pool: Pool) -> None:
    pool.submit("bad", Call(calls.fail, (7,)))
    outcome = wait_all(pool, 1)["bad"]
    assert outcome.kind == "error"
    assert "Traceback" in outcome.value and "tests/workers/calls.py" in outcome.value
    assert outcome.error_line == "ValueError: bad input 7"


def test_calls_run_at_once_up_to_the_pools_size(pool: Pool, tmp_path: Path) -> None:
    a, b = str(tmp_path / "a"), str(tmp_path / "b")
    pool.submit(1, Call(calls.meet, (a, b)))
    pool.submit(2, Call(calls.meet, (b, a)))
    assert pool.free == 0
    outcomes = wait_all(pool, 2)
    assert [outcomes[k].kind for k in (1, 2)] == ["ok", "ok"], outcomes
    assert outcomes[1].value != outcomes[2].value  # two processes


def test_a_call_whose_process_dies_is_reported_died_and_the_pool_goes_on(pool: Pool) -> None:
    pool.submit("crash", Call(calls.hard_exit, (3,)))
    outcome = wait_all(pool, 1)["crash"]
    assert outcome.kind == "died", outcome
    for key in range(3):  # the pool still serves every call, on a fresh worker
        pool.submit(key, Call(calls.add, (key, 1)))
        assert wait_all(pool, 1)[key].value == key + 1


def test_a_killed_call_ends_without_an_outcome_and_its_slot_is_free(pool: Pool) -> None:
    pool.submit("slow", Call(calls.nap, (120,)))
    pool.kill("slow")
    assert pool.free == pool.size
    assert pool.wait(0.2) == []
    pool.submit("next", Call(calls.add, (1, 1)))
    assert wait_all(pool, 1)["next"].value == 2


def test_a_key_already_running_is_refused(pool: Pool) -> None:
    pool.submit("k", Call(calls.nap, (0.2,)))
    with pytest.raises(ValueError, match="'k' is already running"):
        pool.submit("k", Call(calls.add, (1, 2)))
    assert wait_all(pool, 1)["k"].value == "woke"


def test_a_call_asks_for_resources(pool: Pool) -> None:
    pool.submit("two", Call(calls.add, (1, 1)), Resources(cpus=2))
    assert wait_all(pool, 1)["two"].value == 2


def test_a_call_that_cannot_pickle_is_refused_and_sends_nothing(pool: Pool) -> None:
    class Unpicklable:
        def __reduce__(self) -> tuple:
            raise TypeError("this object cannot be pickled")

    with pytest.raises(TypeError, match="cannot be pickled"):
        pool.submit("bad", Call(calls.add, (Unpicklable(), 1)))
    assert pool.free == pool.size
    pool.submit("fine", Call(calls.add, (1, 2)))
    assert wait_all(pool, 1)["fine"].value == 3


def test_local_workers_import_functions_by_name_and_ray_takes_them_by_value(
    pool: Pool,
) -> None:
    offset = 40

    def closure(x: int) -> int:
        return x + offset

    if isinstance(pool, WorkerPool):  # a worker imports what it runs: a closure has no name to import
        with pytest.raises(AttributeError, match="local object"):
            pool.submit("closure", Call(closure, (2,)))
        return
    pool.submit("closure", Call(closure, (2,)))
    assert wait_all(pool, 1)["closure"].value == 42


def test_close_kills_running_calls(pool: Pool, tmp_path: Path) -> None:
    marker = str(tmp_path / "started")
    pool.submit("busy", Call(calls.start_child_and_wait, (marker,)))
    deadline = time.monotonic() + 60
    while not os.path.exists(marker):
        assert time.monotonic() < deadline, "the call never started"
        time.sleep(0.05)
    worker, child = map(int, Path(marker).read_text().split())
    try:
        pool.close()
        assert gone(worker), "the worker outlived close()"
    finally:
        with contextlib.suppress(psutil.Error):
            psutil.Process(child).kill()


# -- local worker processes ----------------------------------------------------------------------------------


def test_exiting_by_sys_exit_kills_only_that_worker() -> None:
    pool = WorkerPool(1)
    try:
        pool.submit("exit", Call(calls.soft_exit, (4,)))
        assert wait_all(pool, 1)["exit"] == Outcome("exit", "died", "exit code 4")
        pool.submit("pid", Call(calls.pid))
        first = wait_all(pool, 1)["pid"].value
        pool.submit("pid", Call(calls.pid))
        assert wait_all(pool, 1)["pid"].value == first  # workers are reused between calls
        assert pool.replaced == 1
    finally:
        pool.close()


def test_killing_a_call_kills_the_processes_it_started(tmp_path: Path) -> None:
    pool = WorkerPool(1)
    marker = str(tmp_path / "started")
    try:
        pool.submit("busy", Call(calls.start_child_and_wait, (marker,)))
        deadline = time.monotonic() + 60
        while not os.path.exists(marker):
            assert time.monotonic() < deadline, "the call never started"
            time.sleep(0.05)
        worker, child = map(int, Path(marker).read_text().split())
        pool.kill("busy")
        assert gone(worker) and gone(child), "the call's own child outlived the kill"
    finally:
        pool.close()


DRIVER = (
    "import sys, time\n"
    "from shipyard.workers import Call, WorkerPool\n"
    "from tests.workers import calls\n"
    "pool = WorkerPool(1)\n"
    "pool.submit('busy', Call(calls.start_child_and_wait, (sys.argv[1],)))\n"
    "time.sleep(300)\n"
)


def test_workers_and_what_their_calls_started_die_with_a_killed_driver(tmp_path: Path) -> None:
    marker = tmp_path / "started"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    driver = subprocess.Popen([sys.executable, "-c", DRIVER, str(marker)], env=env, cwd=REPO)
    pids: list[int] = []
    try:
        deadline = time.monotonic() + 60
        while not marker.exists():
            assert driver.poll() is None, f"the driver exited early with code {driver.returncode}"
            assert time.monotonic() < deadline, "the call never started"
            time.sleep(0.05)
        pids = [int(p) for p in marker.read_text().split()]
        driver.kill()  # SIGKILL: no handler, no atexit
        driver.wait()
        assert all(gone(p) for p in pids), "a worker or its call's child outlived the killed driver"
    finally:
        driver.kill()
        for p in pids:
            with contextlib.suppress(psutil.Error):
                psutil.Process(p).kill()


# -- in this process -----------------------------------------------------------------------------------------


def test_the_inline_pool_keeps_the_contract_for_what_needs_no_isolation() -> None:
    pool = InlinePool()
    pool.submit("a", Call(calls.add, (2, 3)))
    assert pool.free == 0  # one call at a time: its outcome waits to be collected
    assert pool.wait(None) == [Outcome("a", "ok", 5)]
    pool.submit("bad", Call(calls.fail, (7,)))
    assert pool.wait(0)[0].error_line == "ValueError: bad input 7"
    pool.submit("closure", Call(lambda: "not pickled"))
    assert pool.wait(0) == [Outcome("closure", "ok", "not pickled")]


def test_an_interrupt_inside_an_inline_call_propagates() -> None:
    with pytest.raises(KeyboardInterrupt):
        InlinePool().submit("stop", Call(calls.interrupt))


# -- Ray -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "message"),
    [
        ("127.0.0.1:1", "cannot reach a Ray cluster at '127.0.0.1:1'"),
        ("ray://127.0.0.1:1", "cannot reach a Ray cluster at 'ray://127.0.0.1:1'"),
        ("no-port", "is not host:port"),
    ],
)
def test_a_ray_address_nothing_listens_at_fails_fast_naming_it(address: str, message: str) -> None:
    with pytest.raises(WorkerError, match=message):
        probe(address, timeout_s=2)
