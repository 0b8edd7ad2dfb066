"""The in-process metric buffer and its background writer.

``log_metric`` only appends a tuple to a list (a couple of microseconds). A daemon thread writes the buffer
in batched transactions every ``interval`` seconds, or sooner when it grows past ``high_water`` points.
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
from shipyard.tracking.client import MetricRow, TrackingClient

log = logging.getLogger(__name__)

_CHUNK = 250_000  # points per transaction: bounds memory and lock hold time on huge flushes


class MetricWriter:
    """Buffers metric points for one `TrackingClient` and writes them in batches."""

    def __init__(self, client: TrackingClient, *, interval: float = 1.0, high_water: int = 50_000) -> None:
        self._client = client
        self._interval = interval
        self._high_water = high_water
        self._buffer: list[MetricRow] = []
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._wake = threading.Event()
        self._closed = False
        self._thread: threading.Thread | None = None
        self._last_error: BaseException | None = None
        _writers.add(self)

    def add(self, row: MetricRow) -> None:
        with self._lock:
            self._buffer.append(row)
            size = len(self._buffer)
        if size >= self._high_water:
            self._wake.set()
        if self._thread is None:
            self._start()

    def add_many(self, rows: Sequence[MetricRow]) -> None:
        with self._lock:
            self._buffer.extend(rows)
            size = len(self._buffer)
        if size >= self._high_water:
            self._wake.set()
        if self._thread is None:
            self._start()

    @property
    def pending(self) -> int:
        return len(self._buffer)

    def flush(self) -> None:
        """Commit every point added before this call; raises `StoreError` if they cannot be written."""
        with self._write_lock:
            rows = self._take()
            self._write(rows)

    def flush_with(self, action: Callable[[list[MetricRow]], None]) -> None:
        """Hand every buffered point to ``action`` (which must commit them) under the write lock.

        Used to end a run in one transaction: its last points and its terminal status together.
        """
        with self._write_lock:
            rows = self._take()
            try:
                action(rows)
            except BaseException:
                self._requeue(rows)
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
            if not self._buffer:
                continue
            try:
                with self._write_lock:
                    self._write(self._take())
                self._last_error = None
            except ShipyardError as exc:  # keep the points; flush() retries and reports
                if repr(exc) != repr(self._last_error):
                    log.warning("metric writer will retry: %s", exc)
                self._last_error = exc

    def _take(self) -> list[MetricRow]:
        with self._lock:
            rows, self._buffer = self._buffer, []
        return rows

    def _requeue(self, rows: list[MetricRow]) -> None:
        with self._lock:
            self._buffer[:0] = rows

    def _write(self, rows: list[MetricRow]) -> None:
        for start in range(0, len(rows), _CHUNK):
            chunk = rows[start : start + _CHUNK]
            try:
                self._client.write_metrics(chunk)
            except BaseException:
                self._requeue(rows[start:])
                raise


_writers: weakref.WeakSet[MetricWriter] = weakref.WeakSet()


def flush_all() -> None:
    """Flush every writer in this process (interpreter exit, SIGTERM)."""
    for writer in list(_writers):
        try:
            writer.flush()
        except ShipyardError as exc:
            log.error("could not flush buffered metrics: %s", exc)
