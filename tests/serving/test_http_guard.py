"""Attacks on the server's HTTP surface, tried against a real server: admin bodies before auth, forwarded
headers, cross-site writes and DNS rebinding (the Host header)."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from shipyard.serving.app import InferenceServer, ServerConfig
from shipyard.serving.repository import ModelConfig, ModelRepository
from shipyard.serving.server import uvicorn_config
from tests.serving.conftest import Registered, RunningServer

JSON = {"Content-Type": "application/json"}


def send_raw(port: int, data: bytes, timeout_s: float = 5.0) -> bytes:
    """Send ``data`` on a new connection; the first bytes the server answers (b"" if it closes)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as sock:
        sock.sendall(data)
        return sock.recv(65536)


@pytest.fixture(scope="module")
def guarded(registered: Registered, start_server: Callable[..., RunningServer]) -> RunningServer:
    """``bc`` in two versions, no admin token (loopback clients only), one extra allowed host name."""
    config = ModelConfig(
        "bc", versions={"champion": "models:/bc@champion", "challenger": "models:/bc@challenger"}
    )
    server_config = ServerConfig(max_body_bytes=64 * 1024, allowed_hosts=("models.internal",))
    return start_server([config], registered.settings, server_config)


@pytest.fixture(scope="module")
def with_token(registered: Registered, start_server: Callable[..., RunningServer]) -> RunningServer:
    config = ModelConfig("bc", "models:/bc@champion")
    return start_server(
        [config], registered.settings, ServerConfig(max_body_bytes=64 * 1024), admin_token="s3cret"
    )


# ---------------------------------------------------------------------- admin bodies and auth
def test_an_unauthorized_admin_write_is_refused_before_its_body_is_sent(with_token: RunningServer) -> None:
    # 32 KiB declared (under the limit), not one byte of it sent: the answer must not wait for the body.
    head = (
        "PUT /admin/deployments/bc/traffic HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n"
    )
    started = time.monotonic()
    answer = send_raw(with_token.port, head.format(32 * 1024).encode())
    assert answer.startswith(b"HTTP/1.1 401") and b"Bearer" in answer
    assert time.monotonic() - started < 2
    # 600 MiB declared: refused unread too (over the limit, so 413 comes before anything else is looked at).
    answer = send_raw(with_token.port, head.format(600 * 1024 * 1024).encode())
    assert answer.startswith(b"HTTP/1.1 413") and b"over the limit" in answer


def test_an_admin_body_streamed_past_the_limit_is_cut_off(with_token: RunningServer) -> None:
    def chunks() -> Iterator[bytes]:  # chunked: no Content-Length to refuse up front
        for _ in range(64):
            yield b" " * 16 * 1024

    headers = {**JSON, "Authorization": "Bearer s3cret"}
    answer = httpx.put(with_token.url + "/admin/deployments/bc/traffic", content=chunks(), headers=headers)
    assert answer.status_code == 413 and "over the limit of 65,536 bytes" in answer.json()["error"]


def test_admin_takes_a_write_with_the_token_and_json(with_token: RunningServer) -> None:
    headers = {"Authorization": "Bearer s3cret"}
    url = with_token.url + "/admin/deployments/bc/traffic"
    answer = httpx.put(url, json={"traffic": {"champion": 100}}, headers=headers)
    assert answer.status_code == 200 and answer.json()["traffic"] == {"champion": 100}


# ---------------------------------------------------------------------- loopback means the socket's peer
def test_forwarded_headers_never_make_a_client_local(
    registered: Registered, start_server: Callable[..., RunningServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The setting: uvicorn told to believe any proxy. 127.0.0.2 is a client that is not 127.0.0.1.
    monkeypatch.setenv("FORWARDED_ALLOW_IPS", "*")
    server = start_server([ModelConfig("bc", "models:/bc@champion")], registered.settings)
    url = server.url + "/admin/deployments"
    with httpx.Client(transport=httpx.HTTPTransport(local_address="127.0.0.2")) as remote:
        spoofed = remote.get(url, headers={"X-Forwarded-For": "127.0.0.1"})
        assert spoofed.status_code == 403 and "only clients on this machine" in spoofed.json()["error"]
        assert remote.get(url, headers={"X-Forwarded-For": "localhost"}).status_code == 403
        assert remote.get(url).status_code == 403
    # A proxy on this machine connects from loopback for anyone: a forwarded request is not a local one.
    for header in ("X-Forwarded-For", "Forwarded", "X-Real-IP"):
        assert httpx.get(url, headers={header: "127.0.0.1"}).status_code == 403
    assert httpx.get(url).status_code == 200


def test_trusted_proxies_are_believed_for_the_client_but_not_for_admin(
    registered: Registered, start_server: Callable[..., RunningServer]
) -> None:
    config = ServerConfig(forwarded_allow_ips="127.0.0.1")
    server = start_server([ModelConfig("bc", "models:/bc@champion")], registered.settings, config)
    forwarded = httpx.get(server.url + "/admin/deployments", headers={"X-Forwarded-For": "127.0.0.1"})
    assert forwarded.status_code == 403
    assert httpx.get(server.url + "/admin/deployments").status_code == 200


# ---------------------------------------------------------------------- cross-site writes
def test_a_cross_site_rollback_is_refused(guarded: RunningServer) -> None:
    admin = guarded.url + "/admin/deployments/bc"
    assert httpx.put(admin + "/traffic", json={"traffic": {"challenger": 100}}).status_code == 200
    try:
        # What a page elsewhere can send without a preflight: text/plain, a form, or no body at all.
        for headers in (
            {"Content-Type": "text/plain"},
            {"Content-Type": "application/x-www-form-urlencoded"},
            {},
        ):
            refused = httpx.post(admin + "/rollback", content=b"{}", headers=headers)
            assert refused.status_code == 415 and "application/json" in refused.json()["error"]
        foreign = httpx.post(admin + "/rollback", json={}, headers={"Origin": "http://evil.example"})
        assert foreign.status_code == 403 and "evil.example" in foreign.json()["error"]
        null_origin = httpx.post(admin + "/rollback", json={}, headers={"Origin": "null"})
        assert null_origin.status_code == 403
        status = httpx.get(guarded.url + "/admin/deployments").json()["deployments"][0]
        assert status["traffic"] == {"challenger": 100}  # none of them rolled back
    finally:
        same_origin = {"Origin": f"http://127.0.0.1:{guarded.port}"}
        assert httpx.post(admin + "/rollback", json={}, headers=same_origin).status_code == 200


def test_an_inference_post_from_another_site_is_refused_and_clients_without_origin_pass(
    guarded: RunningServer, registered: Registered
) -> None:
    body = {
        "inputs": [
            {"name": "x", "datatype": "FP64", "shape": [1, 30], "data": registered.frame.iloc[0].tolist()}
        ]
    }
    url = guarded.url + "/v2/models/bc/infer"
    assert httpx.post(url, json=body, headers={"Origin": "http://evil.example"}).status_code == 403
    # curl -d sends a form content type; SDKs send none: inference stays open to them.
    plain = httpx.post(url, json=body, headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert plain.status_code == 200


# ---------------------------------------------------------------------- DNS rebinding
@pytest.mark.parametrize("path", ["/admin/deployments", "/v2/models/bc", "/metrics"])
def test_a_rebound_host_name_is_refused(guarded: RunningServer, path: str) -> None:
    answer = httpx.get(guarded.url + path, headers={"Host": f"attacker.example:{guarded.port}"})
    assert answer.status_code == 400 and "attacker.example" in answer.json()["error"]
    assert "--allowed-hosts" in answer.json()["error"]


@pytest.mark.parametrize(
    "host", ["localhost", "127.0.0.1", "[::1]", "models.internal", "MODELS.internal.", "10.1.2.3"]
)
def test_loopback_names_ip_addresses_and_allowed_hosts_pass(guarded: RunningServer, host: str) -> None:
    answer = httpx.get(guarded.url + "/v2/health/live", headers={"Host": f"{host}:{guarded.port}"})
    assert answer.status_code == 200


async def status_for_host(app: Any, host: bytes) -> int:
    """The status ``app`` answers a GET /v2/health/live naming ``host``, driven as uvicorn drives it."""
    scope = {
        "type": "http",
        "method": "GET",
        "path": "/v2/health/live",
        "raw_path": b"/v2/health/live",
        "query_string": b"",
        "headers": [(b"host", host)],
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8080),
        "scheme": "http",
        "http_version": "1.1",
        "root_path": "",
    }
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return int(sent[0]["status"])


def test_the_bound_host_name_is_allowed_and_star_allows_any() -> None:
    def server(**options: Any) -> InferenceServer:
        return InferenceServer(ModelRepository([], lambda uri: None), ServerConfig(**options))

    plain = server()
    assert asyncio.run(status_for_host(plain.app, b"box.lan:8080")) == 400
    uvicorn_config(plain, host="box.lan", port=8080)  # what run_server does when bound to a name
    assert asyncio.run(status_for_host(plain.app, b"box.lan:8080")) == 200
    assert asyncio.run(status_for_host(plain.app, b"other.lan:8080")) == 400
    uvicorn_config(plain, host="0.0.0.0", port=8080)  # a wildcard adds no name
    assert asyncio.run(status_for_host(plain.app, b"0.0.0.0.lan")) == 400
    anything = server(allowed_hosts=("*",))
    assert asyncio.run(status_for_host(anything.app, b"other.lan")) == 200
