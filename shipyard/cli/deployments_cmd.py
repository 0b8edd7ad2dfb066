"""``shipyard deployments``: the served models the platform server knows of, so grants can name them.

On the server's machine (no SHIPYARD_TRACKING_URI) these read its database directly; in team mode they go
through the server as the signed-in user, who sees the deployments it may read. ``shipyard serve
--platform`` registers its models itself; ``shipyard deploy`` changes their traffic.
"""

from __future__ import annotations

from typing import Any

import typer

from shipyard.cli.output import console, fmt_time, print_json, print_table
from shipyard.config import get_settings

app = typer.Typer(
    help="Deployments the platform server knows of (grant on deployment:NAME).", no_args_is_help=True
)


def _deployments() -> Any:
    """The deployment records: the server's own database on its machine, else through the server."""
    settings = get_settings()
    if settings.tracking_uri:
        from shipyard.deployments import RemoteDeployments
        from shipyard.store.http import HttpClient

        return RemoteDeployments(HttpClient(settings.tracking_uri, token=settings.tracking_token))
    from shipyard.deployments import Deployments
    from shipyard.store import open_server_stores

    return Deployments(open_server_stores(settings).deployments)


@app.command("list")
def list_deployments(as_json: bool = typer.Option(False, "--json", help="Machine-readable output.")) -> None:
    """List deployments: name, the inference server's URL, who registered it.

    Examples:

        shipyard deployments list

        shipyard deployments list --json
    """
    found = _deployments().list()
    if as_json:
        print_json([d.to_json() for d in found])
        return
    rows = [(d.name, d.url, d.created_by, fmt_time(d.updated_at)) for d in found]
    print_table("Deployments", ["name", "url", "created by", "updated (UTC)"], rows)


@app.command("delete")
def delete_deployment(name: str = typer.Argument(..., help="The deployment.")) -> None:
    """Forget a deployment and every grant on it (MANAGE on it); its inference server keeps serving.

    Examples:

        shipyard deployments delete churn
    """
    _deployments().delete(name)
    console.print(f"deployment [bold]{name}[/] deleted", highlight=False)
