"""``shipyard server``: the platform server (REST API over a deployment's stores) for team mode."""

from __future__ import annotations

import ipaddress

import typer

from shipyard.config import get_settings
from shipyard.errors import InvalidInput


def server(
    host: str = typer.Option("127.0.0.1", "--host", help="Interface to listen on (loopback by default)."),
    port: int = typer.Option(5000, "--port", min=1, max=65535),
    workers: int = typer.Option(1, "--workers", min=1, help="Worker processes (use PostgreSQL for several)."),
    store: str = typer.Option(None, "--store", help="Metadata database URL (default: the db_url setting)."),
    artifacts: str = typer.Option(
        None,
        "--artifacts",
        help="Where the server keeps artifact files (default: artifact_root).",
    ),
    insecure_no_auth: bool = typer.Option(
        False,
        "--insecure-no-auth",
        help="Listen on a non-loopback address although anyone who reaches it may read and write everything.",
    ),
    log_level: str = typer.Option("info", "--log-level", help="debug, info, warning or error."),
) -> None:
    """Serve the tracking API (/api/v1, OpenAPI at /docs) for clients in team mode (SHIPYARD_TRACKING_URI).

    Without users and tokens yet, it listens on loopback only unless --insecure-no-auth is given.

    Examples:

        shipyard server --port 5000

        shipyard server --store postgresql+psycopg://ship@db/shipyard --workers 4
    """
    import dataclasses
    import os

    import uvicorn

    if not _is_loopback(host) and not insecure_no_auth:
        raise InvalidInput(
            f"--host {host} is reachable from other machines, and this server has no authentication yet: "
            "listen on 127.0.0.1, or pass --insecure-no-auth on a network you trust"
        )
    settings = get_settings()
    changes = {k: v for k, v in (("db_url", store), ("artifact_root", artifacts)) if v}
    if changes:
        settings = dataclasses.replace(settings, **changes)
    if settings.db_url.startswith("sqlite") and workers > 1:
        raise InvalidInput(
            "--workers > 1 needs PostgreSQL (--store postgresql+psycopg://…); SQLite takes one"
        )
    # The worker processes build the app from these (uvicorn's factory mode with several workers).
    os.environ["SHIPYARD_DB_URL"] = settings.db_url
    os.environ["SHIPYARD_SERVER_ARTIFACTS"] = settings.artifact_root  # where the server keeps the files
    os.environ.pop("SHIPYARD_TRACKING_URI", None)  # the server keeps the records itself
    typer.echo(f"Shipyard server on http://{host}:{port} (API /api/v1, docs /docs), store {settings.db_url}")
    uvicorn.run(
        "shipyard.server.app:app_from_environment",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=log_level,
    )


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
