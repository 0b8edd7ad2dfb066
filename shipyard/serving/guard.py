"""What every request passes before a route sees it, and the one way a route reads its body.

:class:`RequestGuard` wraps the whole app (a plain ASGI middleware: a few header lookups per request):

- **Host** (DNS rebinding): a page whose name an attacker re-points at this machine still sends that name in
  ``Host``. Allowed: the names on the allow-list (``localhost``, the bound host, ``--allowed-hosts``; ``*``
  allows any) and IP literals, which no rebinding produces. Anything else is 400 naming the host.
- **Origin** on writes (every method but GET, HEAD, OPTIONS): a browser names the page that sent a request;
  one from another origin (or ``null``) is refused 403, so a page elsewhere cannot make a browser drive this
  server. Requests without ``Origin`` (curl, SDKs, tritonclient) pass.
- **Declared body size**: a ``Content-Length`` over the limit is 413 at once, on every route, unread.

:func:`read_body` reads a body under that limit (chunked bodies included) and a deadline (408).
:func:`is_local_client` says whether a request comes straight from this machine (the socket's peer, not
forwarded headers). :func:`require_json` is the content-type rule of admin writes.
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Iterable

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from shipyard.errors import Forbidden, InvalidInput, ShipyardError
from shipyard.serving.statuses import BodyTimeout, BodyTooLarge, UnsupportedMediaType, error_response

PEER = "shipyard.peer"
"""The scope key holding the socket's peer ``(host, port)``, recorded before any proxy-header rewriting."""

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
_LOOPBACK_PEERS = frozenset({"127.0.0.1", "::1", "::ffff:127.0.0.1"})
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_FORWARDING = frozenset({b"x-forwarded-for", b"forwarded", b"x-real-ip", b"x-forwarded-host"})
_DEFAULT_PORTS = {"http": "80", "https": "443"}
_CACHE_LIMIT = 256  # distinct Host values remembered; a flood of new ones just recomputes


class RequestGuard:
    """ASGI middleware: Host allow-list, same-origin writes, and the declared body size; see the module doc.

    Args:
        app: the app to guard.
        max_body_bytes: the largest ``Content-Length`` let through.
        allowed_hosts: host names allowed besides the loopback names and IP literals; ``*`` allows any.
    """

    def __init__(self, app: ASGIApp, *, max_body_bytes: int, allowed_hosts: Iterable[str] = ()) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self._names: set[str] = set()
        self._verdicts: dict[bytes, bool] = {}
        self.allow(LOOPBACK_NAMES)
        self.allow(allowed_hosts)

    def allow(self, names: Iterable[str]) -> None:
        """Allow more host names (e.g. the one the server is bound to); ``*`` allows any."""
        self._names.update(_host_name(name) for name in names if name)
        self._verdicts.clear()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        scope[PEER] = scope.get("client")
        host = origin = length = None
        for name, value in scope["headers"]:
            if name == b"host":
                host = value
            elif name == b"origin":
                origin = value
            elif name == b"content-length":
                length = value
        try:
            if host is not None and not self._host_allowed(host):
                shown = host.decode("latin-1")[:100]
                raise InvalidInput(
                    f"host {shown!r} is not served here; allowed: IP addresses and "
                    f"{', '.join(sorted(self._names))} (add names with --allowed-hosts)"
                )
            if origin is not None and scope["method"] not in _SAFE_METHODS:
                _check_origin(origin, host, scope.get("scheme", "http"))
            if length is not None and length.isdigit() and int(length) > self.max_body_bytes:
                raise BodyTooLarge(
                    f"request body of {int(length):,} bytes is over the limit of {self.max_body_bytes:,}"
                )
        except ShipyardError as exc:
            await error_response(exc)(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def _host_allowed(self, host: bytes) -> bool:
        verdict = self._verdicts.get(host)
        if verdict is None:
            name = _host_name(host.decode("latin-1"))
            verdict = "*" in self._names or name in self._names or _is_ip(name)
            if len(self._verdicts) >= _CACHE_LIMIT:
                self._verdicts.clear()
            self._verdicts[host] = verdict
        return verdict


def _host_name(host: str) -> str:
    """The name part of a ``Host`` value (``[::1]:8080`` → ``::1``, ``Example.COM.:80`` → ``example.com``)."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    if host.count(":") == 1:
        host = host.partition(":")[0]
    return host.rstrip(".")


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def _check_origin(origin: bytes, host: bytes | None, scheme: str) -> None:
    """A write's ``Origin`` must be this server as the request names it (same host and port as ``Host``)."""
    text = origin.decode("latin-1").strip().lower()
    origin_scheme, sep, netloc = text.partition("://")
    if (
        sep
        and host is not None
        and _with_port(netloc, origin_scheme) == _with_port(host.decode("latin-1").strip().lower(), scheme)
    ):
        return
    raise Forbidden(f"a write from the web page of origin {text[:100]!r} is refused: only same-origin writes")


def _with_port(netloc: str, scheme: str) -> str:
    if netloc.endswith("]") or ":" not in netloc.rpartition("]")[2]:
        return f"{netloc}:{_DEFAULT_PORTS.get(scheme, '')}"
    return netloc


def is_local_client(request: Request) -> bool:
    """Whether a request comes straight from this machine: the socket's peer is loopback and no proxy header
    says it was forwarded (a proxy on this machine connects from loopback on behalf of anyone)."""
    peer = request.scope.get(PEER, request.scope.get("client"))
    if not peer or peer[0] not in _LOOPBACK_PEERS:
        return False
    return not any(name in _FORWARDING for name, _ in request.scope["headers"])


def require_json(request: Request) -> None:
    """Refuse a write whose ``Content-Type`` is not ``application/json`` (415): a browser page may send
    ``text/plain`` or a form to any site without asking first, but never JSON."""
    given = request.headers.get("content-type", "")
    if given.partition(";")[0].strip().lower() != "application/json":
        shown = given[:80] or "none"
        raise UnsupportedMediaType(f"this route takes Content-Type: application/json, got {shown}")


async def read_body(request: Request, limit: int, timeout_s: float) -> bytes:
    """The whole body, at most ``limit`` bytes (413 past it), arriving within ``timeout_s`` (408 after)."""
    chunks, size = [], 0
    try:
        async with asyncio.timeout(timeout_s):
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise BodyTooLarge(f"request body is over the limit of {limit:,} bytes")
                chunks.append(chunk)
    except TimeoutError:
        raise BodyTimeout(
            f"request body not received within {timeout_s:g} s ({size:,} bytes arrived)"
        ) from None
    return b"".join(chunks)
