"""Adaptive batching: concurrent requests to one model version are merged into one predict call.

When the model is idle a request runs at once, alone (no added latency at low load). While batches are in
flight, new requests queue; when a slot frees, everything queued (up to ``max_batch_size`` rows) goes as one
batch. ``max_latency_ms`` bounds how long a queued request waits for a slot to fill a batch that is not
yet full. Predict runs on a thread pool, never on the event loop. The queue is bounded: when it is full a
request fails at once with :class:`~shipyard.errors.Overloaded` (HTTP 503) instead of waiting unboundedly.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any

from shipyard.errors import Overloaded

# What a batch function gets (the requests' payloads) and must return (one result or exception each).
BatchFunction = Callable[[Sequence[Any]], Sequence[Any]]


@dataclass(frozen=True)
class BatchPolicy:
    """How one model version batches.

    Attributes:
        max_batch_size: most rows in one predict call (a request with more rows runs alone).
        max_latency_ms: longest a queued request waits for more to join it while a slot is free.
        max_queue: most requests waiting; beyond it requests are refused (503 with Retry-After).
        max_in_flight: predict calls running at once for this model version.
        enabled: False runs every request as its own predict call (still bounded and off the loop).
    """

    max_batch_size: int = 64
    max_latency_ms: float = 2.0
    max_queue: int = 2048
    max_in_flight: int = 2
    enabled: bool = True

    def __post_init__(self) -> None:
        if self.max_batch_size < 1 or self.max_queue < 1 or self.max_in_flight < 1:
            raise ValueError("max_batch_size, max_queue and max_in_flight must be >= 1")
        if self.max_latency_ms < 0:
            raise ValueError("max_latency_ms must be >= 0")


@dataclass
class _Pending:
    payload: Any
    rows: int
    future: asyncio.Future[Any]  # of the batcher's loop, resolved there
    queued_at: float = field(default_factory=time.monotonic)


class Batcher:
    """Merges concurrent requests into batches for ``function``. Submit from one event loop.

    A batch runs on ``executor``'s thread, which then starts the next batch itself and answers the batch's
    requests with one ``call_soon_threadsafe``: no task per batch, and no trip through the loop between one
    batch and the next (measured: ~15% more requests a second at 64 concurrent clients).

    ``function`` receives the payloads of one batch and returns one result per payload, in order; an
    exception object in that list fails only its request. An exception raised by ``function`` itself fails
    the whole batch.
    """

    def __init__(
        self,
        function: BatchFunction,
        policy: BatchPolicy,
        executor: Executor,
        on_batch: Callable[[int, float], None] | None = None,
    ) -> None:
        """``on_batch(requests, seconds)`` is called after each predict call (metrics), on its thread."""
        self.function = function
        self.on_batch = on_batch
        self.policy = policy
        self.executor = executor
        self._lock = threading.Lock()  # guards the queue, the in-flight count and the timer flag
        self._queue: deque[_Pending] = deque()
        self._in_flight = 0
        self._timer_armed = False
        self._loop: asyncio.AbstractEventLoop | None = None  # the loop submitting: answers and timers

    @property
    def queue_depth(self) -> int:
        """Requests waiting for a slot."""
        return len(self._queue)

    @property
    def in_flight(self) -> int:
        """Predict calls running now."""
        return self._in_flight

    async def submit(self, payload: Any, rows: int = 1) -> Any:
        """Queue ``payload`` (``rows`` rows) and wait for its result.

        Raises:
            Overloaded: the queue is full.
        """
        loop = self._loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        with self._lock:
            if len(self._queue) >= self.policy.max_queue:
                raise Overloaded(
                    f"{len(self._queue)} requests are already waiting for this model; retry shortly",
                    retry_after_s=1.0,
                )
            self._queue.append(_Pending(payload, max(1, rows), future))
            batches = self._take_batches()
        self._start(batches)
        return await future

    def _take_batches(self) -> list[list[_Pending]]:
        """The batches to start now (under the lock); counted in flight."""
        policy, batches = self.policy, []
        while self._queue and self._in_flight < policy.max_in_flight:
            if policy.enabled and self._in_flight and not self._ready():
                self._arm_timer()  # a slot is free but the batch could still grow: wait a little
                break
            batches.append(self._take())
            self._in_flight += 1
        return batches

    def _ready(self) -> bool:
        """Whether the queued requests should go now rather than wait for more to join them."""
        rows = sum(p.rows for p in self._queue)
        waited_ms = (time.monotonic() - self._queue[0].queued_at) * 1000
        return rows >= self.policy.max_batch_size or waited_ms >= self.policy.max_latency_ms

    def _arm_timer(self) -> None:
        loop = self._loop
        if self._timer_armed or loop is None:
            return
        waited = time.monotonic() - self._queue[0].queued_at
        delay = max(self.policy.max_latency_ms / 1000 - waited, 0.0)
        try:
            if _running_loop() is loop:
                loop.call_later(delay, self._on_timer)
            else:
                loop.call_soon_threadsafe(loop.call_later, delay, self._on_timer)
        except RuntimeError:  # the loop has closed (shutting down): as if there were none
            return
        self._timer_armed = True

    def _on_timer(self) -> None:
        with self._lock:
            self._timer_armed = False
            batches = self._take_batches()
        self._start(batches)

    def _take(self) -> list[_Pending]:
        if not self.policy.enabled:
            return [self._queue.popleft()]
        batch = [self._queue.popleft()]
        rows = batch[0].rows
        while self._queue and rows + self._queue[0].rows <= self.policy.max_batch_size:
            item = self._queue.popleft()
            batch.append(item)
            rows += item.rows
        return batch

    def _start(self, batches: list[list[_Pending]]) -> None:
        for batch in batches:
            try:
                self.executor.submit(self._run, batch)
            except RuntimeError as exc:  # the executor has shut down: the server is stopping
                with self._lock:
                    self._in_flight -= 1
                self._answer(batch, [exc] * len(batch))

    def _run(self, batch: list[_Pending]) -> None:
        """One predict call, on an executor thread; then the next batch starts and this one is answered."""
        started = time.perf_counter()
        try:
            results = self.function([p.payload for p in batch])
            if len(results) != len(batch):
                raise RuntimeError(f"batch function gave {len(results)} results for {len(batch)} requests")
        except Exception as exc:  # the whole batch failed: every request gets the error
            results = [exc] * len(batch)
        with self._lock:
            self._in_flight -= 1
            batches = self._take_batches()
        self._start(batches)
        if self.on_batch is not None:
            self.on_batch(len(batch), time.perf_counter() - started)
        self._answer(batch, results)

    def _answer(self, batch: list[_Pending], results: Sequence[Any]) -> None:
        assert self._loop is not None, "a batch exists only once submit has set the loop"
        answers = [(p.future, r) for p, r in zip(batch, results, strict=True)]
        with contextlib.suppress(RuntimeError):  # the loop has closed: nobody waits on these
            self._loop.call_soon_threadsafe(_settle, answers)

    async def drain(self, timeout_s: float = 30.0) -> None:
        """Wait until nothing is queued or running (graceful shutdown), at most ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while (self._queue or self._in_flight) and time.monotonic() < deadline:
            await asyncio.sleep(0.01)


def _settle(answers: list[tuple[asyncio.Future[Any], Any]]) -> None:
    for future, result in answers:
        if future.done():  # the client went away
            continue
        if isinstance(result, BaseException):
            future.set_exception(result)
        else:
            future.set_result(result)


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None
