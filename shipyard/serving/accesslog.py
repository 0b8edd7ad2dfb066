"""The access log of ``shipyard serve``: one JSON line per inference request, written to stderr in blocks.

A line a request, each written and flushed on its own, cost a busy single-core server a third of its
throughput (a write system call per request, with the GIL handed back and forth around it). Here lines
are formatted as they come and written together: when ``max_lines`` have gathered, and at the latest
``interval_s`` after the first of them, by a background thread; and at shutdown. A crash (``kill -9``)
can lose the last ``interval_s`` of access lines, never anything a client was told was kept (payload
logs, metrics and registry records are written elsewhere).
"""

from __future__ import annotations

import logging
import threading
from typing import TextIO

ACCESS_LOGGER = "shipyard.serving.access"


class BlockWriteHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A `logging.StreamHandler` that writes its formatted lines in blocks (see the module's notes)."""

    def __init__(self, stream: TextIO, *, max_lines: int = 256, interval_s: float = 0.5) -> None:
        super().__init__(stream)
        self.max_lines = max_lines
        self.interval_s = interval_s
        self._lines: list[str] = []
        self._due = threading.Event()  # set when lines wait to be written
        self._stopping = threading.Event()
        self._writer = threading.Thread(target=self._write_every_interval, name="access-log", daemon=True)
        self._writer.start()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record) + self.terminator
        except Exception:
            self.handleError(record)
            return
        with self.lock:  # type: ignore[union-attr]
            self._lines.append(line)
            full = len(self._lines) >= self.max_lines
        if full:
            self.flush()
        else:
            self._due.set()

    def flush(self) -> None:
        with self.lock:  # type: ignore[union-attr]
            lines, self._lines = self._lines, []
            if lines:
                self.stream.write("".join(lines))
            self.stream.flush()

    def _write_every_interval(self) -> None:
        while not self._stopping.is_set():
            self._due.wait()
            self._due.clear()
            if self._stopping.wait(self.interval_s):
                return
            self.flush()

    def close(self) -> None:
        self._stopping.set()
        self._due.set()
        self._writer.join(5)
        self.flush()
        super().close()


def log_access_in_blocks(stream: TextIO, formatter: logging.Formatter | None = None) -> BlockWriteHandler:
    """Route the access log to ``stream`` through a `BlockWriteHandler` (not through the root's handlers);
    ``close()`` the handler at shutdown to write what remains."""
    handler = BlockWriteHandler(stream)
    if formatter is not None:
        handler.setFormatter(formatter)
    logger = logging.getLogger(ACCESS_LOGGER)
    logger.addHandler(handler)
    logger.propagate = False
    return handler
