"""The adaptive batcher on a real event loop and thread pool, with a function that records its batches."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from shipyard.errors import Overloaded
from shipyard.serving.batching import Batcher, BatchPolicy


class Recorder:
    def __init__(self, delay_s: float = 0.0) -> None:
        self.delay_s = delay_s
        self.batches: list[list[Any]] = []
        self.threads: set[str] = set()

    def __call__(self, payloads: Sequence[Any]) -> list[Any]:
        self.threads.add(threading.current_thread().name)
        self.batches.append(list(payloads))
        time.sleep(self.delay_s)
        return [ValueError(f"bad {p}") if p == "bad" else p * 10 for p in payloads]


def run(policy: BatchPolicy, recorder: Recorder, payloads: list[Any], rows: int = 1) -> list[Any]:
    async def main() -> list[Any]:
        with ThreadPoolExecutor(2, thread_name_prefix="predict") as pool:
            batcher = Batcher(recorder, policy, pool)
            return await asyncio.gather(*(batcher.submit(p, rows) for p in payloads), return_exceptions=True)

    return asyncio.run(main())


def test_a_lone_request_runs_at_once_off_the_loop() -> None:
    recorder = Recorder()
    started = time.monotonic()
    assert run(BatchPolicy(max_latency_ms=500), recorder, [1]) == [10]
    assert time.monotonic() - started < 0.4  # did not wait max_latency_ms for company
    assert recorder.threads == {"predict_0"}


def test_requests_arriving_while_busy_are_merged_up_to_the_batch_size() -> None:
    recorder = Recorder(delay_s=0.05)
    results = run(BatchPolicy(max_batch_size=8, max_in_flight=1), recorder, list(range(20)))
    assert results == [i * 10 for i in range(20)]
    sizes = [len(b) for b in recorder.batches]
    assert sizes[0] == 1 and max(sizes) == 8 and sum(sizes) == 20
    assert [p for b in recorder.batches for p in b] == list(range(20))  # first come, first served


def test_batch_size_counts_rows_not_requests() -> None:
    recorder = Recorder(delay_s=0.05)
    run(BatchPolicy(max_batch_size=8, max_in_flight=1), recorder, list(range(6)), rows=4)
    assert max(len(b) for b in recorder.batches) == 2


def test_batching_off_runs_each_request_alone() -> None:
    recorder = Recorder(delay_s=0.01)
    run(BatchPolicy(enabled=False, max_in_flight=1), recorder, list(range(6)))
    assert [len(b) for b in recorder.batches] == [1] * 6


def test_one_bad_result_fails_only_its_request() -> None:
    results = run(BatchPolicy(max_in_flight=1), Recorder(delay_s=0.02), [1, "bad", 3, 4])
    assert results[0] == 10 and results[2:] == [30, 40]
    assert isinstance(results[1], ValueError)


def test_a_full_queue_refuses_at_once() -> None:
    results = run(BatchPolicy(max_queue=3, max_in_flight=1), Recorder(delay_s=0.1), list(range(10)))
    refused = [r for r in results if isinstance(r, Overloaded)]
    assert refused and all(r.retry_after_s >= 1 for r in refused)
    assert [r for r in results if not isinstance(r, Exception)] == [r * 10 for r in (0, 1, 2, 3)]


def test_a_batch_function_that_raises_fails_its_whole_batch() -> None:
    def explode(payloads: Sequence[Any]) -> list[Any]:
        raise RuntimeError("boom")

    async def main() -> list[Any]:
        with ThreadPoolExecutor(1) as pool:
            batcher = Batcher(explode, BatchPolicy(), pool)
            return await asyncio.gather(*(batcher.submit(i) for i in range(3)), return_exceptions=True)

    assert all(isinstance(r, RuntimeError) for r in asyncio.run(main()))


def test_policy_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="max_batch_size"):
        BatchPolicy(max_batch_size=0)


def test_a_slot_freed_on_the_predict_thread_waits_for_the_batch_to_fill_then_goes() -> None:
    # Two slots. Request 0 holds one for 1 s; 1 runs in the other; when 1 ends, its predict thread frees
    # the slot with 2, 3 and 4 queued but the batch not full: it arms the max_latency_ms wait on the loop,
    # and the three go together when it ends, while 0 still runs.
    starts: list[float] = []

    def slow_first(payloads: Sequence[Any]) -> list[Any]:
        starts.append(time.monotonic())
        time.sleep(1.0 if 0 in payloads else 0.05)
        return [p * 10 for p in payloads]

    async def main() -> tuple[list[Any], list[list[Any]]]:
        batches: list[list[Any]] = []

        def recorded(payloads: Sequence[Any]) -> list[Any]:
            batches.append(list(payloads))
            return slow_first(payloads)

        with ThreadPoolExecutor(2, thread_name_prefix="predict") as pool:
            batcher = Batcher(recorded, BatchPolicy(max_batch_size=64, max_latency_ms=200), pool)
            first = asyncio.ensure_future(batcher.submit(0))
            await asyncio.sleep(0.01)
            second = asyncio.ensure_future(batcher.submit(1))  # waits 200 ms for company, then runs
            await asyncio.sleep(0.22)
            rest = [asyncio.ensure_future(batcher.submit(p)) for p in (2, 3, 4)]
            return await asyncio.gather(first, second, *rest), batches

    results, batches = asyncio.run(main())
    assert results == [0, 10, 20, 30, 40]
    assert batches == [[0], [1], [2, 3, 4]]
    assert starts[2] - starts[0] < 0.9  # went on the timer, not when the 1 s batch ended


def test_an_executor_that_has_shut_down_fails_the_requests_instead_of_hanging() -> None:
    async def main() -> list[Any]:
        pool = ThreadPoolExecutor(1)
        pool.shutdown()
        batcher = Batcher(Recorder(), BatchPolicy(), pool)
        return await asyncio.wait_for(
            asyncio.gather(*(batcher.submit(i) for i in range(3)), return_exceptions=True), 5
        )

    results = asyncio.run(main())
    assert all(isinstance(r, RuntimeError) and "shutdown" in str(r) for r in results)


def test_requests_from_many_tasks_are_each_answered_once() -> None:
    recorder = Recorder(delay_s=0.001)
    payloads = list(range(500))
    results = run(BatchPolicy(max_batch_size=16, max_latency_ms=1, max_in_flight=2), recorder, payloads)
    assert results == [p * 10 for p in payloads]
    assert sorted(p for b in recorder.batches for p in b) == payloads
    assert max(len(b) for b in recorder.batches) <= 16
