"""The access log's block writer: lines reach the stream within the interval, at once when many, at close."""

from __future__ import annotations

import io
import logging
import threading
import time

from shipyard.serving.accesslog import BlockWriteHandler


class Stream(io.StringIO):
    """A StringIO that counts its writes and may be read from another thread."""

    def __init__(self) -> None:
        super().__init__()
        self.writes = 0
        self.guard = threading.Lock()

    def write(self, text: str) -> int:
        with self.guard:
            self.writes += 1
            return super().write(text)

    def text(self) -> str:
        with self.guard:
            return self.getvalue()


def _logger(handler: logging.Handler, name: str) -> logging.Logger:
    logger = logging.getLogger(name)
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    return logger


def test_lines_are_written_together_within_the_interval() -> None:
    stream = Stream()
    handler = BlockWriteHandler(stream, interval_s=1.0)
    logger = _logger(handler, "test.access.interval")
    try:
        for i in range(5):
            logger.info("line %d", i)
        deadline = time.monotonic() + 5
        while stream.text().count("\n") < 5 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert stream.text() == "".join(f"line {i}\n" for i in range(5))
        assert stream.writes == 1  # one write for the five lines, not one a line
    finally:
        handler.close()


def test_a_full_block_is_written_at_once_and_close_writes_the_rest() -> None:
    stream = Stream()
    handler = BlockWriteHandler(stream, max_lines=3, interval_s=60)
    logger = _logger(handler, "test.access.full")
    for i in range(4):
        logger.info("line %d", i)
    assert stream.text() == "line 0\nline 1\nline 2\n"
    started = time.monotonic()
    handler.close()
    assert time.monotonic() - started < 5  # the writer thread does not sit out its interval
    assert stream.text().endswith("line 3\n")
