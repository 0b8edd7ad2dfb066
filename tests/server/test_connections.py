"""The platform server's connections: a client that does not send its headers in time is closed."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from tests.conftest import server_process


def _until_closed(sock: socket.socket) -> tuple[bytes, float]:
    started, answer = time.monotonic(), b""
    while chunk := sock.recv(4096):
        answer += chunk
    return answer, time.monotonic() - started


def test_a_client_that_trickles_or_withholds_its_headers_gets_408_and_is_closed(tmp_path: Path) -> None:
    env = {**os.environ, "SHIPYARD_HOME": str(tmp_path / "server-home")}
    with server_process(["--header-timeout", "1", "--log-level", "warning"], env) as (url, _):
        address = urlsplit(url)
        with socket.create_connection((address.hostname, address.port), timeout=15) as trickling:
            trickling.sendall(b"GET /api/v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # never the blank line
            answer, waited = _until_closed(trickling)
        assert answer.startswith(b"HTTP/1.1 408") and b"request headers not received in time" in answer
        assert 0.5 < waited < 10
        with socket.create_connection((address.hostname, address.port), timeout=15) as silent:
            answer, waited = _until_closed(silent)  # connects and sends nothing at all
        assert answer.startswith(b"HTTP/1.1 408") and waited < 10
        # A client that sends its request gets its answer, on a connection kept alive past the deadline.
        with httpx.Client(base_url=url) as client:
            assert client.get("/api/v1/health").status_code == 200
            time.sleep(1.5)  # idle between requests: the keep-alive timeout's business, not the deadline's
            assert client.get("/api/v1/health").status_code == 200
