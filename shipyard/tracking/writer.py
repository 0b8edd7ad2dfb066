"""The in-process metric buffer and its background writer.

``log_metric`` only appends to three typed arrays (a microsecond or two; see `chunks.Series`). A daemon
thread writes the buffer in batched transactions every ``interval`` seconds, or sooner when it grows past
``high_water`` points.
``flush()`` writes whatever is buffered in the caller's thread and returns only once every point added
before the call is committed — so a flushed point survives a later ``kill -9``.

Against a server (where each call is a round trip) active runs buffer their params here too
(:meth:`MetricWriter.add_params`): they go with the next batch, in its transaction, so a run costs a request
to create it and one to end it. A param the store refuses (another process logged it with another value)
fails alone: the batch's points are stored without the params, each run's params are sent on their own, and
the refusal is raised by the flush.

The same thread beats for the runs this process holds open (:meth:`MetricWriter.beat_for`): one UPDATE of
their ``heartbeat_at`` every ``heartbeat_interval`` seconds, so a run whose process died shows as LOST. It
costs ``log_metric`` nothing and needs no thread per run.

A batch that fails to write (a busy database, an unreachable server) is kept whole with the idempotency key
it was first sent with, and sent again, before newer points, by the next flush: a batch whose answer was lost
after the store committed it is then recognised and not stored twice.

Thread-safety: ``add``/``add_many`` may be called from any thread. ``_write_lock`` serialises database
writes, so ``flush`` also waits for a batch the background thread is writing at that moment.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from functools import partial

from shipyard.errors import Conflict, ShipyardError
from shipyard.tracking.chunks import Series, SeriesMap
from shipyard.tracking.client import TrackingClient
from shipyard.tracking.records import new_id

log = logging.getLogger(__name__)

# Buffered params: run key -> {key: text value} (checked by the caller).
ParamMap = dict[int, dict[str, str]]
# What commits a batch: (points, idempotency key, params or None).
BatchAction = Callable[[SeriesMap, str, ParamMap | None], None]


class MetricWriter:
    """Buffers metric points for one `TrackingClient` and writes them in batches."""

    def __init__(
        self,
        client: TrackingClient,
        *,
        interval: float = 1.0,
        high_water: int = 200_000,
        heartbeat_interval: float = 5.0,
    ) -> None:
        self._client = client
        self._interval = min(interval, heartbeat_interval)
        self._flush_interval = interval
        self._heartbeat_interval = heartbeat_interval
        self._beating: dict[int, int] = {}  # run pk -> how many open handles of this process hold it
        self._next_beat = 0.0
        self._next_flush = 0.0
        self._high_water = high_water
        self._buffer: dict[tuple[int, str], Series] = {}
        self._params: ParamMap = {}
        self._count = 0
        # Batches that failed to write, oldest first, each with the key it was first sent with.
        self._unsent: list[tuple[str, SeriesMap, ParamMap]] = []
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
            try:
                series = self._buffer[run_pk, key]
            except KeyError:
                series = self._buffer[run_pk, key] = Series()
            series.steps.append(step)
            series.values.append(value)
            series.timestamps.append(timestamp)
            self._count = count = self._count + 1
        if count >= self._high_water or self._thread is None:
            self._added(count)

    def _added(self, count: int) -> None:
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

    def add_params(self, run_pk: int, values: dict[str, str]) -> None:
        """Buffer checked params of a run, to go with the next batch."""
        with self._lock:
            self._params.setdefault(run_pk, {}).update(values)
        if self._thread is None:
            self._start()

    @property
    def pending(self) -> int:
        """Points not yet stored: buffered, or in a batch waiting to be sent again."""
        with self._lock:
            unsent = sum(len(series) for _, batch, _ in self._unsent for series in batch.values())
            return self._count + unsent

    def beat_for(self, run_pk: int) -> None:
        """Keep the run's heartbeat fresh from this process until :meth:`stop_beating`."""
        with self._lock:
            self._beating[run_pk] = self._beating.get(run_pk, 0) + 1
        if self._thread is None:
            self._start()

    def stop_beating(self, run_pk: int) -> None:
        """The run ended (or this process let it go): stop beating for it."""
        with self._lock:
            left = self._beating.get(run_pk, 0) - 1
            if left > 0:
                self._beating[run_pk] = left
            else:
                self._beating.pop(run_pk, None)

    def flush(self) -> None:
        """Commit every point (and param) added before this call.

        Raises:
            StoreError: they cannot be written (they stay buffered).
            Conflict: the store refused a buffered param; everything else was stored.
        """
        with self._write_lock:
            self._resend()
            taken, params = self._take()
            if taken or params:
                refused = self._write(taken, params, self._write_metrics)
                if refused is not None:
                    raise refused

    def flush_with(self, action: BatchAction) -> Conflict | None:
        """Hand every buffered point, buffered params and a fresh idempotency key to ``action`` (which must
        commit them) under the write lock; a param the store refused, once the rest is stored.

        Used to end a run in one transaction: its last points and its terminal status together.
        """
        with self._write_lock:
            self._resend()
            taken, params = self._take()
            return self._write(taken, params, action)

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
            woken = self._wake.wait(self._interval)
            self._wake.clear()
            now = time.monotonic()
            if self._beating and now >= self._next_beat:
                self._beat(now)
            if not (self._count or self._unsent or self._params) or (not woken and now < self._next_flush):
                continue
            self._next_flush = now + self._flush_interval
            try:
                self.flush()
                self._last_error = None
            except ShipyardError as exc:  # the points stay buffered; flush() retries and reports
                if repr(exc) != repr(self._last_error):
                    log.warning("metric writer will retry: %s", exc)
                self._last_error = exc

    def _beat(self, now: float) -> None:
        self._next_beat = now + self._heartbeat_interval
        with self._lock:
            pks = list(self._beating)
        try:
            self._client.beat(pks)
        except ShipyardError as exc:  # a busy or unreachable store: the next beat tries again
            log.warning("could not record the heartbeat of %d run(s): %s", len(pks), exc)

    def _take(self) -> tuple[dict[tuple[int, str], Series], ParamMap]:
        with self._lock:
            taken, self._buffer = self._buffer, {}
            params, self._params = self._params, {}
            self._count = 0
        return taken, params

    def _write_metrics(self, batch: SeriesMap, key: str, params: ParamMap | None) -> None:
        self._client.write_metrics(batch, idempotency_key=key, params=params)

    def _resend(self) -> None:
        # Failed batches go again first, whole and with their first key, so points stay in logged order and
        # a batch the store did commit (its answer lost) is not stored twice.
        while self._unsent:
            key, batch, params = self._unsent[0]
            refused = None
            try:
                self._write_metrics(batch, key, params or None)
            except Conflict as exc:
                if not params:
                    raise
                with self._lock:
                    self._unsent[0] = (key, batch, {})
                refused = self._without_params(params, exc, partial(self._write_metrics, batch, key, None))
            with self._lock:
                self._unsent.pop(0)
            if refused is not None:
                raise refused

    def _write(self, taken: SeriesMap, params: ParamMap, action: BatchAction) -> Conflict | None:
        key = new_id()
        try:
            action(taken, key, params or None)
        except Conflict as exc:
            if not params:
                self._keep(key, taken, {})
                raise

            def points_alone() -> None:
                try:
                    action(taken, key, None)
                except BaseException:
                    self._keep(key, taken, {})
                    raise

            return self._without_params(params, exc, points_alone)
        except BaseException:
            self._keep(key, taken, params)
            raise
        return None

    def _keep(self, key: str, taken: SeriesMap, params: ParamMap) -> None:
        if taken or params:
            with self._lock:
                self._unsent.append((key, taken, params))

    def _without_params(
        self, params: ParamMap, refusal: Conflict, store_points: Callable[[], None]
    ) -> Conflict:
        """A batch whose params the store refused: its points go alone (under the batch's key, which a
        retry must not reuse with params: a committed key skips the whole batch), then each run's params on
        their own, so one run's refused param neither loses points nor holds back other runs' params."""
        try:
            store_points()
        except BaseException:
            with self._lock:  # back in the buffer, older values under any logged since
                for run_pk, values in params.items():
                    self._params[run_pk] = {**values, **self._params.get(run_pk, {})}
            raise
        return self._params_alone(params) or refusal

    def _params_alone(self, params: ParamMap) -> Conflict | None:
        refused = None
        for run_pk, values in params.items():
            try:
                self._client.log_params(run_pk, values)
            except Conflict as exc:
                refused = refused or exc
        return refused


_writers: weakref.WeakSet[MetricWriter] = weakref.WeakSet()


def flush_all() -> None:
    """Flush every writer in this process (interpreter exit, SIGTERM)."""
    for writer in list(_writers):
        try:
            writer.flush()
        except ShipyardError as exc:
            log.error("could not flush buffered metrics: %s", exc)
