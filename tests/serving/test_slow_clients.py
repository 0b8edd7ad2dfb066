"""Slow and heavy clients against a real server: trickled headers, slow bodies, too many connections, and a
large body that must not stall everyone else while it is decoded."""

from __future__ import annotations

import contextlib
import json
import socket
import struct
import threading
import time
from collections.abc import Callable

import httpx
import pytest

from shipyard.serving.app import ServerConfig
from shipyard.serving.repository import ModelConfig
from tests.serving.conftest import Registered, RunningServer

HEAD = b"POST /v2/models/bc/infer HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"


def closed_after(sock: socket.socket, trickle: bytes | None, limit_s: float) -> tuple[float, bytes]:
    """Seconds until the server closes ``sock`` (sending ``trickle`` every 0.1 s meanwhile), and what it sent.

    Raises AssertionError when it is still open after ``limit_s``."""
    started, received = time.monotonic(), b""
    sock.settimeout(0.1)
    while time.monotonic() - started < limit_s:
        if trickle is not None:
            try:
                sock.sendall(trickle)
            except OSError:  # closed by the server
                return time.monotonic() - started, received
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            continue
        except OSError:
            return time.monotonic() - started, received
        if not chunk:
            return time.monotonic() - started, received
        received += chunk
    raise AssertionError(f"the connection was still open after {limit_s} s")


@pytest.fixture(scope="module", params=["httptools", "h11"])
def impatient(
    request: pytest.FixtureRequest, registered: Registered, start_server: Callable[..., RunningServer]
) -> RunningServer:
    config = ServerConfig(header_timeout_s=0.5, body_timeout_s=0.5)
    return start_server(
        [ModelConfig("bc", "models:/bc@champion")], registered.settings, config, http=request.param
    )


def test_trickled_headers_get_the_connection_closed(impatient: RunningServer) -> None:
    with socket.create_connection(("127.0.0.1", impatient.port)) as sock:
        sock.sendall(b"GET /v2/health/live HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        seconds, answer = closed_after(sock, b"X-Slow: 1\r\n", limit_s=5)
    assert seconds < 3 and answer.startswith(b"HTTP/1.1 408")


def test_a_silent_connection_is_closed(impatient: RunningServer) -> None:
    with socket.create_connection(("127.0.0.1", impatient.port)) as sock:
        seconds, _ = closed_after(sock, None, limit_s=5)
    assert seconds < 3


def test_a_kept_alive_connection_gets_a_new_deadline_per_request(impatient: RunningServer) -> None:
    with httpx.Client(base_url=impatient.url) as client:
        for _ in range(3):  # each well within the deadline, the three together past it
            assert client.get("/v2/health/live").status_code == 200
            time.sleep(0.3)


def test_a_slow_body_gets_a_408_and_the_connection_closed(impatient: RunningServer) -> None:
    with socket.create_connection(("127.0.0.1", impatient.port)) as sock:
        sock.sendall(HEAD + b"Content-Length: 1000\r\n\r\n" + b'{"inputs": [')
        seconds, answer = closed_after(sock, b" ", limit_s=5)
    assert seconds < 3 and answer.startswith(b"HTTP/1.1 408")
    assert b"not received within 0.5 s" in answer


def test_connections_past_the_limit_get_a_503(
    registered: Registered, start_server: Callable[..., RunningServer]
) -> None:
    config = ServerConfig(max_connections=3)
    server = start_server([ModelConfig("bc", "models:/bc@champion")], registered.settings, config)
    with contextlib.ExitStack() as stack:
        for _ in range(3):
            stack.enter_context(socket.create_connection(("127.0.0.1", server.port)))
        time.sleep(0.2)  # the server has accepted them
        assert httpx.get(server.url + "/v2/health/live").status_code == 503
    deadline = time.monotonic() + 5
    while httpx.get(server.url + "/v2/health/live").status_code != 200:  # closed: room again
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_health_stays_fast_while_a_large_body_is_decoded(
    registered: Registered, start_server: Callable[..., RunningServer]
) -> None:
    server = start_server(
        [ModelConfig("bc", "models:/bc@champion")], registered.settings, ServerConfig(max_body_bytes=32 << 20)
    )
    # 2M one-byte BYTES elements in Triton's binary form: ~1 s of decoding in Python (it holds the GIL only
    # briefly at a time), after which the model's signature refuses the tensor (400).
    count = 2_000_000
    header = json.dumps(
        {
            "inputs": [
                {
                    "name": "x",
                    "datatype": "BYTES",
                    "shape": [count],
                    "parameters": {"binary_data_size": 5 * count},
                }
            ]
        }
    ).encode()
    body = header + (struct.pack("<I", 1) + b"a") * count
    done = threading.Event()
    answers: list[httpx.Response] = []

    def infer() -> None:
        try:
            headers = {"Inference-Header-Content-Length": str(len(header))}
            answers.append(
                httpx.post(server.url + "/v2/models/bc/infer", content=body, headers=headers, timeout=60)
            )
        finally:
            done.set()

    caller = threading.Thread(target=infer)
    caller.start()
    latencies: list[float] = []
    with httpx.Client(base_url=server.url, timeout=30) as client:
        while not done.is_set():
            started = time.monotonic()
            assert client.get("/v2/health/live").status_code == 200
            if not done.is_set():  # answered while the large request was still in flight
                latencies.append(time.monotonic() - started)
            time.sleep(0.02)
    caller.join()
    assert answers[0].status_code == 400  # decoded, then refused by the signature
    assert len(latencies) >= 5, latencies  # the server kept answering during the decode ...
    assert max(latencies) < 0.5, latencies  # ... each probe in well under the decode's time
