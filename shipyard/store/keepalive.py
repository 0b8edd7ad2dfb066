"""A lean keep-alive HTTP/1.1 transport for the team-mode client's JSON calls.

A run's requests are small, and through urllib3 each cost the client ~250 µs — as much as the server spent
answering it — most of it in http.client's header parsing (the email package) and urllib3's layers. Here a
request is its head and body rendered into one write, and the answer is parsed by httptools (the C parser
uvicorn serves with). The client keeps urllib3 for what this does not do: going through a proxy.

Connections are reused most-recent first and checked before reuse (a server closes idle ones after a few
seconds): one that became readable while idle is closed, not written to. Failures say whether the request
can have reached the server — :class:`Refused` (nothing was sent) or :class:`Dropped` (it may have been) —
for the caller's retry rule.
"""

from __future__ import annotations

import select
import socket
import ssl
import threading
import weakref

import httptools

_ONE_WRITE_BYTES = 64 << 10  # a body up to this size goes out in the same write as the head
_MAX_IDLE = 32  # connections kept for reuse: one per thread calling at once, as the urllib3 pool kept
_RECV_BYTES = 256 << 10


class Refused(Exception):
    """No connection could be opened: the request was not sent."""


class Dropped(Exception):
    """The connection failed once the request may have been sent (or the answer was malformed)."""


class _Answer:
    """httptools' callbacks for one response."""

    __slots__ = ("body", "done", "headers", "keep", "parser", "status")

    def __init__(self) -> None:
        self.body: list[bytes] = []
        self.headers: list[tuple[bytes, bytes]] = []
        self.done = self.keep = False
        self.status = 0
        self.parser = httptools.HttpResponseParser(self)

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        # Read here: once the message is complete the parser has reset them.
        self.status = self.parser.get_status_code()
        self.keep = self.parser.should_keep_alive()

    def on_body(self, data: bytes) -> None:
        self.body.append(data)

    def on_message_complete(self) -> None:
        self.done = True


class Transport:
    """Requests to one ``host:port`` (TLS with ``ssl_context``). Thread-safe."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        connect_timeout_s: float,
        read_timeout_s: float,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.host, self.port = host, port
        self._connect_timeout_s = connect_timeout_s
        self._read_timeout_s = read_timeout_s
        self._tls = ssl_context
        self._idle: list[socket.socket] = []
        self._lock = threading.Lock()
        # Idle connections close with the transport (or at exit), not when the garbage collector finds them.
        weakref.finalize(self, _close_all, self._idle)
        default_port = 443 if ssl_context is not None else 80
        authority = host if port == default_port else f"{host}:{port}"
        if ":" in host and not host.startswith("["):  # an IPv6 literal
            authority = f"[{host}]" if port == default_port else f"[{host}]:{port}"
        self.host_header = authority

    def request(self, head: bytes, body: bytes | None) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
        """Send ``head`` (request line and headers, ending with the blank line) and ``body``; the answer's
        status, body and headers (as sent)."""
        sock = self._take()
        try:
            if body is not None and len(body) <= _ONE_WRITE_BYTES:
                sock.sendall(head + body)
            else:
                sock.sendall(head)
                if body:
                    sock.sendall(body)
            status, content, headers, keep = _read_answer(sock)
        except (OSError, httptools.HttpParserError) as exc:
            sock.close()
            raise Dropped(_reason(exc)) from None
        if keep:
            self._give_back(sock)
        else:
            sock.close()
        return status, content, headers

    def close(self) -> None:
        with self._lock:
            _close_all(self._idle)

    def _take(self) -> socket.socket:
        while True:
            with self._lock:
                sock = self._idle.pop() if self._idle else None
            if sock is None:
                return self._connect()
            if _still_open(sock):
                return sock
            sock.close()

    def _give_back(self, sock: socket.socket) -> None:
        with self._lock:
            if len(self._idle) < _MAX_IDLE:
                self._idle.append(sock)
                return
        sock.close()

    def _connect(self) -> socket.socket:
        try:
            sock = socket.create_connection((self.host, self.port), timeout=self._connect_timeout_s)
        except OSError as exc:
            raise Refused(_reason(exc)) from None
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self._tls is not None:
                sock = self._tls.wrap_socket(sock, server_hostname=self.host)
            sock.settimeout(self._read_timeout_s)
        except (OSError, ssl.SSLError) as exc:
            sock.close()
            # A failed TLS handshake sent no request: as refused (a wrong certificate is not retried
            # for long: the caller's first-contact deadline is short).
            raise Refused(_reason(exc)) from None
        return sock


def _close_all(idle: list[socket.socket]) -> None:
    # In place: the exit finalizer holds this very list.
    while idle:
        idle.pop().close()


def _read_answer(sock: socket.socket) -> tuple[int, bytes, list[tuple[bytes, bytes]], bool]:
    answer = _Answer()
    while not answer.done:
        data = sock.recv(_RECV_BYTES)
        if not data:
            raise ConnectionResetError("the server closed the connection before answering in full")
        answer.parser.feed_data(data)
    body = answer.body[0] if len(answer.body) == 1 else b"".join(answer.body)
    return answer.status, body, answer.headers, answer.keep


def _still_open(sock: socket.socket) -> bool:
    # An idle keep-alive connection has nothing to read: readable means the server closed it (or sent
    # something unasked), and writing to it would fail or be answered by nobody.
    try:
        if hasattr(select, "poll"):  # select() fails on descriptors past 1024, which busy processes reach
            poller = select.poll()
            poller.register(sock, select.POLLIN)
            return not poller.poll(0)
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return False
    return not readable


def _reason(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


def render_head(method: str, target: str, headers: dict[str, str]) -> bytes:
    """A request's head. ``target`` and the header values must be printable ASCII without spaces in the
    target (the callers percent-encode paths and queries): anything else is refused, never sent."""
    if not target.isascii() or not target.isprintable() or " " in target:
        raise ValueError(f"the request target {target!r} is not percent-encoded")
    lines = [f"{method} {target} HTTP/1.1"]
    for name, value in headers.items():
        if "\r" in value or "\n" in value or "\0" in value:
            raise ValueError(f"the {name} header holds a line break")
        lines.append(f"{name}: {value}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
