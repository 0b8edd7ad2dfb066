"""``shipyard server``: the platform server (REST API over a deployment's stores) for team mode."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import typer

from shipyard.config import get_settings
from shipyard.errors import InvalidInput
from shipyard.pipelines.executors.choice import EXECUTORS


def server(
    host: str = typer.Option("127.0.0.1", "--host", help="Interface to listen on (loopback by default)."),
    port: int = typer.Option(5000, "--port", min=1, max=65535),
    workers: int = typer.Option(1, "--workers", min=1, help="Worker processes (use PostgreSQL for several)."),
    store: str = typer.Option(None, "--store", help="Metadata database URL (default: the db_url setting)."),
    artifacts: str = typer.Option(
        None,
        "--artifacts",
        help=(
            "Where the server keeps artifact files: a folder or an object-store URL, opened with "
            "artifact_storage_options (default: artifact_root)."
        ),
    ),
    auth: bool = typer.Option(
        False, "--auth", help="Require a user's token, password or SSO token on every request (team mode)."
    ),
    default_permission: str = typer.Option(
        "READ",
        "--default-permission",
        help="What users may do on experiments and models they have no grant on: NO_PERMISSIONS, READ, "
        "EDIT or MANAGE (within their role).",
    ),
    oidc_issuer: str = typer.Option(None, "--oidc-issuer", help="Accept bearer JWTs from this OIDC issuer."),
    oidc_audience: str = typer.Option(None, "--oidc-audience", help="The audience those JWTs must name."),
    oidc_role_map: str = typer.Option(
        None, "--oidc-role-map", help="Claim values to roles: 'ml-admins=admin,ml-team=editor'."
    ),
    oidc_roles_claim: str = typer.Option("groups", "--oidc-roles-claim", help="The claim holding groups."),
    oidc_user_claim: str = typer.Option(
        "preferred_username", "--oidc-user-claim", help="The claim naming the user."
    ),
    oidc_jwks_uri: str = typer.Option(
        None, "--oidc-jwks-uri", help="The issuer's key set (default: from its discovery document)."
    ),
    ssl_certfile: str = typer.Option(None, "--ssl-certfile", help="Serve HTTPS with this certificate."),
    ssl_keyfile: str = typer.Option(None, "--ssl-keyfile", help="The certificate's private key."),
    max_body_mb: float = typer.Option(32.0, "--max-body-mb", min=0.001, help="Largest JSON request body."),
    header_timeout: float = typer.Option(
        10.0,
        "--header-timeout",
        min=0.1,
        help="Seconds a client has to send a request's headers (from connecting, or its request's first "
        "byte) before it gets 408 and is closed: slow-header clients cannot hold connections.",
    ),
    insecure_no_auth: bool = typer.Option(
        False,
        "--insecure-no-auth",
        help="Listen on a non-loopback address without --auth although anyone who reaches it may read and "
        "write everything.",
    ),
    log_level: str = typer.Option("info", "--log-level", help="debug, info, warning or error."),
    access_log: bool = typer.Option(
        False,
        "--access-log/--no-access-log",
        help="A line per request (off by default, as gunicorn's: a busy server answers thousands a second; "
        "with --auth every write is in the audit log).",
    ),
    executor: str = typer.Option(
        None,
        "--executor",
        help="Where submitted and scheduled pipelines run: local or ray (default: the executor setting).",
    ),
    pipelines_path: Path = typer.Option(
        None,
        "--pipelines-path",
        help="A folder of pipeline code steps may import (besides the server's Python path); never a "
        "folder a submitted spec names.",
    ),
    scheduler: bool = typer.Option(
        True, "--scheduler/--no-scheduler", help="Run due pipeline schedules in this server."
    ),
    scheduler_interval: float = typer.Option(
        30.0,
        "--scheduler-interval",
        min=0.05,
        help="Seconds between looks for new schedules.",
    ),
    serve_files: bool = typer.Option(
        True,
        "--serve-files/--no-serve-files",
        hidden=True,
        help="Keep the clients' artifact files (team mode); off for `shipyard ui`, whose clients write the "
        "store's files themselves.",
    ),
) -> None:
    """Serve the platform API (/api/v1, OpenAPI at /docs) for clients in team mode (SHIPYARD_TRACKING_URI).

    With --auth every request needs a user's API token (SHIPYARD_TRACKING_TOKEN on the clients), and what
    it may touch follows the user's role and grants; create the first admin with `shipyard users create`
    against the same --store. Without --auth the server listens on loopback only, unless
    --insecure-no-auth is given.

    Submitted pipelines (`shipyard pipeline submit`) and due schedules run on this machine in driver
    processes on --executor: they run code installed here (or under --pipelines-path), so only editors may
    submit them.

    Examples:

        shipyard server --port 5000

        shipyard server --auth --host 0.0.0.0 --store postgresql+psycopg://ship@db/ship --workers 4

        shipyard server --auth --ssl-certfile cert.pem --ssl-keyfile key.pem

        shipyard server --auth --oidc-issuer https://id.example --oidc-audience s --oidc-role-map g=editor

        shipyard server --pipelines-path /srv/pipelines --executor ray
    """
    import dataclasses
    import importlib.util
    import os

    import uvicorn

    from shipyard.auth.records import Permission, Role
    from shipyard.config import mask_url
    from shipyard.server.connections import ServerH11Protocol, ServerHttpToolsProtocol
    from shipyard.store import open_server_stores

    if not auth and not is_loopback(host) and not insecure_no_auth:
        raise InvalidInput(
            f"--host {host} is reachable from other machines: require sign-in with --auth, listen on "
            "127.0.0.1, or pass --insecure-no-auth on a network you trust"
        )
    if (ssl_certfile is None) != (ssl_keyfile is None):
        raise InvalidInput("--ssl-certfile and --ssl-keyfile go together")
    for option, path in (("--ssl-certfile", ssl_certfile), ("--ssl-keyfile", ssl_keyfile)):
        if path is not None and not os.path.isfile(path):
            raise InvalidInput(f"{option} {path}: no such file")
    Permission.parse(default_permission)
    if oidc_issuer is not None:
        if not oidc_audience or not oidc_role_map:
            raise InvalidInput("--oidc-issuer needs --oidc-audience and --oidc-role-map")
        from shipyard.auth.oidc import parse_role_map

        parse_role_map(oidc_role_map)
    if executor is not None and executor not in EXECUTORS:
        raise InvalidInput(f"--executor {executor!r}: use one of {', '.join(EXECUTORS)}")
    if pipelines_path is not None:
        if not pipelines_path.is_dir():
            raise InvalidInput(f"--pipelines-path {pipelines_path}: no such folder")
        pipelines_path = pipelines_path.resolve()
    settings = get_settings()
    changes = {
        k: v for k, v in (("db_url", store), ("artifact_root", artifacts), ("executor", executor)) if v
    }
    if changes:
        settings = dataclasses.replace(settings, **changes)
    if settings.db_url.startswith("sqlite") and workers > 1:
        raise InvalidInput(
            "--workers > 1 needs PostgreSQL (--store postgresql+psycopg://…); SQLite takes one"
        )
    if auth and oidc_issuer is None:
        admins = [
            u
            for u in open_server_stores(settings).auth.list_users()
            if u.role is Role.ADMIN and not u.disabled
        ]
        if not admins:
            raise InvalidInput(
                "--auth needs an admin to sign in: create one with 'shipyard users create NAME --role "
                f"admin' against this store ({mask_url(settings.db_url)})"
            )
    # The worker processes build the app from these (uvicorn's factory mode with several workers).
    os.environ["SHIPYARD_DB_URL"] = settings.db_url
    # Where the server keeps the files (empty: it keeps none; its clients write where settings say).
    os.environ["SHIPYARD_SERVER_ARTIFACTS"] = settings.artifact_root if serve_files else ""
    os.environ["SHIPYARD_EXECUTOR"] = settings.executor
    os.environ.pop("SHIPYARD_TRACKING_URI", None)  # the server keeps the records itself
    os.environ.pop("SHIPYARD_TRACKING_TOKEN", None)
    server_env = {
        "AUTH": "1" if auth else "",
        "DEFAULT_PERMISSION": default_permission,
        "MAX_BODY_BYTES": str(int(max_body_mb * (1 << 20))),
        "OIDC_ISSUER": oidc_issuer or "",
        "OIDC_AUDIENCE": oidc_audience or "",
        "OIDC_ROLE_MAP": oidc_role_map or "",
        "OIDC_ROLES_CLAIM": oidc_roles_claim,
        "OIDC_USER_CLAIM": oidc_user_claim,
        "OIDC_JWKS_URI": oidc_jwks_uri or "",
        "PIPELINES_PATH": str(pipelines_path or ""),
        "HEADER_TIMEOUT_S": str(header_timeout),
    }
    for key, value in server_env.items():
        os.environ[f"SHIPYARD_SERVER_{key}"] = value
    scheme = "https" if ssl_certfile else "http"
    mode = "sign-in required" if auth else "no sign-in"
    typer.echo(
        f"Shipyard server on {scheme}://{host}:{port} (API /api/v1, docs /docs, {mode}), "
        f"store {mask_url(settings.db_url)}"
    )
    stop_scheduler = None
    if scheduler:
        # One scheduler per server, in this (the supervising) process, however many workers serve requests.
        from shipyard.server.pipeline_driver import DriverConfig
        from shipyard.server.scheduling import start_scheduler

        pipelines = DriverConfig.for_server(
            settings,
            settings.artifact_root if serve_files else None,
            str(pipelines_path) if pipelines_path else None,
        )
        stop_scheduler = start_scheduler(pipelines, scheduler_interval)
    try:
        uvicorn.run(
            "shipyard.server.app:app_from_environment",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_level=log_level,
            access_log=access_log,
            ssl_certfile=ssl_certfile,
            ssl_keyfile=ssl_keyfile,
            # A client that connects and trickles its headers gets 408 and is closed after --header-timeout.
            http=ServerHttpToolsProtocol if importlib.util.find_spec("httptools") else ServerH11Protocol,
        )
    finally:
        if stop_scheduler is not None:
            stop_scheduler.set()


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
