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
