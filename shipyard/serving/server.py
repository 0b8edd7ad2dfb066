"""Run an :class:`InferenceServer` under uvicorn (uvloop + httptools when installed)."""

from __future__ import annotations

import importlib.util
import logging
import signal
import threading
from typing import Any

import uvicorn

from shipyard.serving.app import InferenceServer

log = logging.getLogger("shipyard.serving")


def run_server(
    server: InferenceServer, *, host: str = "127.0.0.1", port: int = 8080, log_level: str = "info"
) -> None:
    """Serve until SIGINT/SIGTERM; then stop accepting, finish what is in flight, and return."""
    has = importlib.util.find_spec
    in_main = threading.current_thread() is threading.main_thread()
    # NOTE: uvicorn re-raises SIGTERM once it has shut down gracefully; with this handler that is a no-op
    # and the command exits 0, as a clean stop should.
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: None) if in_main else None
    try:
        _run(server, host, port, log_level, has)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _run(server: InferenceServer, host: str, port: int, log_level: str, has: Any) -> None:
    uvicorn.run(
        server.app,
        host=host,
        port=port,
        loop="uvloop" if has("uvloop") else "asyncio",
        http="httptools" if has("httptools") else "h11",
        log_level=log_level,
        access_log=False,  # the app writes its own, structured (shipyard.serving.access)
        timeout_graceful_shutdown=30,
        lifespan="on",
    )
