"""Run an :class:`InferenceServer` under uvicorn (uvloop + httptools when installed)."""

from __future__ import annotations

import importlib.util
import signal
import ssl
import threading
from pathlib import Path

import uvicorn

from shipyard.errors import InvalidInput, ServingError
from shipyard.server.connections import protocol_with_header_deadline
from shipyard.serving.app import InferenceServer

_WILDCARDS = ("", "0.0.0.0", "::")


def run_server(
    server: InferenceServer, *, host: str = "127.0.0.1", port: int = 8080, log_level: str = "info"
) -> None:
    """Serve until SIGINT/SIGTERM; then stop accepting, finish what is in flight, and return.

    Raises:
        ServingError: the server did not start (uvicorn has logged why).
    """
    in_main = threading.current_thread() is threading.main_thread()
    # NOTE: uvicorn re-raises SIGTERM once it has shut down gracefully; with this handler that is a no-op
    # and the command exits 0, as a clean stop should.
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: None) if in_main else None
    try:
        served = uvicorn.Server(uvicorn_config(server, host=host, port=port, log_level=log_level))
        served.run()
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    if not served.started:  # uvicorn logged why (the port is taken, the app failed to start)
        raise ServingError(f"the server could not start on {host}:{port}")


def uvicorn_config(
    server: InferenceServer,
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    log_level: str = "info",
    http: str | None = None,
) -> uvicorn.Config:
    """The uvicorn configuration ``server`` runs under, its limits taken from ``server.config``.

    The bound ``host`` (unless a wildcard) joins the host names the server answers to. uvicorn's own proxy
    headers stay off: the app believes ``X-Forwarded-*`` only from ``forwarded_allow_ips`` and only after
    recording the socket's peer. ``http`` picks the HTTP implementation (default: httptools when installed,
    else h11); either gets a deadline for request headers.
    """
    has = importlib.util.find_spec
    config = server.config
    if host not in _WILDCARDS:
        server.guard.allow([host])
    protocol = http or ("httptools" if has("httptools") else "h11")
    return uvicorn.Config(
        server.app,
        host=host,
        port=port,
        loop="uvloop" if has("uvloop") else "asyncio",
        http=protocol_with_header_deadline(protocol, config.header_timeout_s),
        log_level=log_level,
        access_log=False,  # the app writes its own, structured (shipyard.serving.access)
        proxy_headers=False,
        limit_concurrency=config.max_connections,
        ssl_certfile=config.ssl_certfile,
        ssl_keyfile=config.ssl_keyfile,
        timeout_graceful_shutdown=30,
        lifespan="on",
    )


def read_tls(certfile: str | None, keyfile: str | None) -> tuple[bytes, bytes] | None:
    """The PEM certificate chain and private key a server is to use, read and checked to belong together;
    None when neither is given.

    Raises:
        InvalidInput: one without the other, a file that is missing or unreadable, or a key that is not the
            certificate's (each named by its flag).
    """
    if certfile is None and keyfile is None:
        return None
    if certfile is None or keyfile is None:
        raise InvalidInput("--ssl-certfile and --ssl-keyfile go together")
    pems = []
    for option, path in (("--ssl-certfile", certfile), ("--ssl-keyfile", keyfile)):
        try:
            pems.append(Path(path).read_bytes())
        except OSError as exc:
            raise InvalidInput(f"{option} {path}: {exc.strerror or exc}") from None
    try:  # what uvicorn will do at start-up: fail here, with the files named, not in a traceback there
        ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(certfile, keyfile)
    except ssl.SSLError as exc:
        raise InvalidInput(
            f"--ssl-keyfile {keyfile} and --ssl-certfile {certfile} are not a PEM key and its certificate "
            f"({exc.reason or exc})"
        ) from None
    return pems[0], pems[1]
