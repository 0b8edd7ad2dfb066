"""``shipyard ui``: the platform server with its web UI, for one person on this machine's store."""

from __future__ import annotations

import typer

from shipyard.cli.server_cmd import is_loopback, server
from shipyard.errors import InvalidInput


def ui(
    port: int = typer.Option(5000, "--port", min=1, max=65535),
    host: str = typer.Option("127.0.0.1", "--host", help="A loopback address (the UI has no sign-in here)."),
) -> None:
    """Open the web UI (runs, pipelines, models, deployments, monitoring, tuning) on this machine's store.

    It is `shipyard server` on loopback without sign-in: the same pages a team gets from `shipyard server
    --auth`, for the records of SHIPYARD_HOME (or the db_url and artifact_root settings).

    Examples:

        shipyard ui

        shipyard ui --port 5050
    """
    if not is_loopback(host):
        raise InvalidInput(
            f"--host {host}: shipyard ui serves this machine only; for a team use "
            "'shipyard server --auth --host 0.0.0.0'"
        )
    typer.echo(f"Shipyard UI: open http://{host}:{port}/ui/")
    server(
        host=host,
        port=port,
        workers=1,
        store=None,
        artifacts=None,
        auth=False,
        default_permission="READ",
        oidc_issuer=None,
        oidc_audience=None,
        oidc_role_map=None,
        oidc_roles_claim="groups",
        oidc_user_claim="preferred_username",
        oidc_jwks_uri=None,
        ssl_certfile=None,
        ssl_keyfile=None,
        max_body_mb=32.0,
        insecure_no_auth=False,
        log_level="warning",
        access_log=False,
        executor=None,
        pipelines_path=None,
        scheduler=True,
        scheduler_interval=30.0,
        # One person's embedded store: their scripts write its files, the UI reads them where they are.
        serve_files=False,
    )
