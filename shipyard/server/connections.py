"""uvicorn's HTTP protocols with a deadline for a request's headers.

uvicorn times out only idle keep-alive connections, after a response: a client that connects and sends
nothing, or trickles a header line every few seconds, holds its connection (and a file descriptor) forever.
Here each connection gets a deadline whenever the server waits for a request's headers: from the moment it
connects, and from the first byte of every later request (or of body bytes a finished request left unread).
A connection whose headers are not complete by then gets ``408 Request Timeout`` and is closed. A request's
body has its own deadline, kept by the app (:func:`shipyard.serving.guard.read_body`).

Both servers use these: ``shipyard serve`` (a deadline from its config) and ``shipyard server``
(``--header-timeout``).
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

_TIMEOUT_BODY = b'{"error": "request headers not received in time"}'
_TIMEOUT_RESPONSE = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\n"
    b"content-length: %d\r\nconnection: close\r\n\r\n%s" % (len(_TIMEOUT_BODY), _TIMEOUT_BODY)
)


class _HeaderDeadline:
    """Mixin for a uvicorn HTTP protocol class; ``header_timeout_s`` is set on the concrete class."""

    header_timeout_s: float = 10.0
    _deadline: asyncio.TimerHandle | None = None
    # Provided by the uvicorn protocol this is mixed into.
    transport: asyncio.Transport
    cycle: Any
    loop: asyncio.AbstractEventLoop

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)  # type: ignore[misc]
        self._arm()

    def data_received(self, data: bytes) -> None:
        before = self.cycle
        super().data_received(data)  # type: ignore[misc]
        if self.cycle is not before:  # a request's headers are complete: it is the app's now
            self._disarm()
        elif self._deadline is None and self._waiting_for_headers():
            self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)  # type: ignore[misc]

    def _waiting_for_headers(self) -> bool:
        return self.cycle is None or self.cycle.response_complete

    def _arm(self) -> None:
        self._deadline = self.loop.call_later(self.header_timeout_s, self._expired)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expired(self) -> None:
        self._deadline = None
        if self.transport.is_closing() or not self._waiting_for_headers():
            return
        self.transport.write(_TIMEOUT_RESPONSE)
        self.transport.close()


def protocol_with_header_deadline(http: str, header_timeout_s: float) -> type[asyncio.Protocol]:
    """uvicorn's ``http`` protocol (``"httptools"`` or ``"h11"``) with a deadline for headers."""
    base = {"httptools": HttpToolsProtocol, "h11": H11Protocol}[http]
    name = f"HeaderDeadline{base.__name__}"
    return type(name, (_HeaderDeadline, base), {"header_timeout_s": header_timeout_s})


# ``shipyard server`` hands its settings to uvicorn's worker processes through the environment, and its
# protocol classes by reference (a class made by ``type()`` does not pickle): these two read the deadline
# from the environment the server prepared.
HEADER_TIMEOUT_ENV = "SHIPYARD_SERVER_HEADER_TIMEOUT_S"


class _DeadlineFromEnvironment(_HeaderDeadline):
    @property
    def header_timeout_s(self) -> float:  # type: ignore[override]
        return float(os.environ.get(HEADER_TIMEOUT_ENV) or 10.0)


class ServerHttpToolsProtocol(_DeadlineFromEnvironment, HttpToolsProtocol):
    """uvicorn's httptools protocol with the platform server's deadline for headers."""


class ServerH11Protocol(_DeadlineFromEnvironment, H11Protocol):
    """uvicorn's h11 protocol with the platform server's deadline for headers."""
