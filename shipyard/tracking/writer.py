"""The in-process metric buffer and its background writer.

``log_metric`` only appends to three typed arrays (a microsecond or two; see `chunks.Series`). A daemon
thread writes the buffer in batched transactions every ``interval`` seconds, or sooner when it grows past
``high_water`` points.
``flush()`` writes whatever is buffered in the caller's thread and returns only once every point added
before the call is committed — so a flushed point survives a later ``kill -9``.

Thread-safety: ``add``/``add_many`` may be called from any thread. ``_write_lock`` serialises database
writes, so ``flush`` also waits for a batch the background thread is writing at that moment.
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Callable, Sequence

from shipyard.errors import ShipyardError
from shipyard.tracking.chunks import Series, SeriesMap
from shipyard.tracking.client import TrackingClient

log = logging.getLogger(__name__)


class MetricWriter:
    """Buffers metric points for one `TrackingClient` and writes them in batches."""

    def __init__(self, client: TrackingClient, *, interval: float = 1.0, high_water: int = 200_000) -> None:
        self._client = client
        self._interval = interval
        self._high_water = high_water
        self._buffer: dict[tuple[int, str], Series] = {}
        self._count = 0
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._wake = threading.Event()
        self._closed = False
        self._thread: threading.Thread | None = None
        self._last_error: BaseException | None = None
        _writers.add(self)

    def add(self, run_pk: int, key: str, value: float, step: int, timestamp: int) -> None:
        """Buffer one point (already validated by the caller)."""
        with self._lock:
            series = self._buffer.get((run_pk, key))
            if series is None:
                series = self._buffer[(run_pk, key)] = Series()
            series.steps.append(step)
            series.values.append(value)
            series.timestamps.append(timestamp)
            self._count += 1
            count = self._count
        if count >= self._high_water:
            self._wake.set()
        if self._thread is None:
            self._start()

    def add_points(self, run_pk: int, points: Sequence[tuple[str, float, int, int]]) -> None:
        """Buffer validated ``(key, value, step, timestamp)`` points at once."""
        buffer = self._buffer
        with self._lock:
            for key, value, step, timestamp in points:
                series = buffer.get((run_pk, key))
                if series is None:
                    series = buffer[(run_pk, key)] = Series()
                series.steps.append(step)
                series.values.append(value)
                series.timestamps.append(timestamp)
            self._count += len(points)
            count = self._count
        if count >= self._high_water:
            self._wake.set()
        if self._thread is None:
            self._start()

    @property
    def pending(self) -> int:
        return self._count

    def flush(self) -> None:
        """Commit every point added before this call; raises `StoreError` if they cannot be written."""
        with self._write_lock:
            taken = self._take()
            if taken:
                self._write(taken)

    def flush_with(self, action: Callable[[SeriesMap], None]) -> None:
        """Hand every buffered point to ``action`` (which must commit them) under the write lock.

        Used to end a run in one transaction: its last points and its terminal status together.
        """
        with self._write_lock:
            taken = self._take()
            try:
                action(taken)
            except BaseException:
                self._requeue(taken)
                raise

    def close(self) -> None:
        """Flush and stop the background thread."""
        self._closed = True
        self._wake.set()
        self.flush()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)

    def _start(self) -> None:
        with self._lock:
            if self._thread is not None or self._closed:
                return
            self._thread = threading.Thread(target=self._run, name="shipyard-metric-writer", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while not self._closed:
            self._wake.wait(self._interval)
            self._wake.clear()
            if not self._count:
                continue
            try:
                self.flush()
                self._last_error = None
            except ShipyardError as exc:  # the points stay buffered; flush() retries and reports
                if repr(exc) != repr(self._last_error):
                    log.warning("metric writer will retry: %s", exc)
                self._last_error = exc

    def _take(self) -> dict[tuple[int, str], Series]:
        with self._lock:
            taken, self._buffer = self._buffer, {}
            self._count = 0
        return taken

    def _requeue(self, taken: dict[tuple[int, str], Series]) -> None:
        # Put unwritten points back *before* anything added since, keeping each series in logged order.
        with self._lock:
            for key, newer in self._buffer.items():
                older = taken.get(key)
                if older is None:
                    taken[key] = newer
                else:
                    older.extend(newer)
            self._buffer = taken
            self._count = sum(len(series) for series in taken.values())

    def _write(self, taken: dict[tuple[int, str], Series]) -> None:
        try:
            self._client.write_metrics(taken)
        except BaseException:
            self._requeue(taken)
            raise


_writers: weakref.WeakSet[MetricWriter] = weakref.WeakSet()


def flush_all() -> None:
    """Flush every writer in this process (interpreter exit, SIGTERM)."""
    for writer in list(_writers):
        try:
            writer.flush()
        except ShipyardError as exc:
            log.error("could not flush buffered metrics: %s", exc)
