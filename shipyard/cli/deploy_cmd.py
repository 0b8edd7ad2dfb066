"""``shipyard deploy``: see and change the traffic of a running ``shipyard serve``, live."""

from __future__ import annotations

from typing import Any

import httpx
import typer

from shipyard.cli.output import console, print_json, print_table
from shipyard.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    ServingError,
    ShipyardError,
    Unauthorized,
)

app = typer.Typer(help="See and change traffic between served model versions.", no_args_is_help=True)

_URL = typer.Option("http://127.0.0.1:8080", "--url", help="The server (shipyard serve).")
# The admin token if set, else the user's platform token (a server started with --platform takes it).
_TOKEN = typer.Option(
    None,
    "--token",
    envvar=["SHIPYARD_ADMIN_TOKEN", "SHIPYARD_TRACKING_TOKEN"],
    help="Its admin token, or your platform token if it runs with --platform.",
    show_default=False,
)
_JSON = typer.Option(False, "--json", help="Machine-readable output.")
_ERRORS: dict[int, type[ShipyardError]] = {
    400: InvalidInput,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
}


@app.command("status")
def status(url: str = _URL, token: str = _TOKEN, as_json: bool = _JSON) -> None:
    """Each served model: its versions, their state, the traffic weights and the shadow.

    Examples:

        shipyard deploy status

        shipyard deploy status --url http://10.0.0.5:8080 --json
    """
    found = _call("GET", url, "/admin/deployments", token)["deployments"]
    if as_json:
        print_json(found)
        return
    rows = []
    for deployment in found:
        for version in deployment["versions"]:
            label = version["label"]
            rows.append(
                (
                    deployment["name"],
                    label,
                    version["version"],
                    version["state"],
                    f"{deployment['traffic'].get(label, 0):g}",
                    "yes" if deployment["shadow"] == label else "",
                    version["uri"],
                )
            )
    print_table("Deployments", ["model", "label", "version", "state", "weight", "shadow", "uri"], rows)


@app.command("set-traffic")
def set_traffic(
    name: str = typer.Argument(..., help="The served model."),
    weights: list[str] = typer.Argument(
        ..., help="label=weight for each version, e.g. champion=90 challenger=10."
    ),
    shadow: str = typer.Option(None, "--shadow", help="A label that gets a copy of every request."),
    no_shadow: bool = typer.Option(False, "--no-shadow", help="Stop shadowing."),
    url: str = _URL,
    token: str = _TOKEN,
) -> None:
    """Change the weights (and shadow) of a served model now; requests in flight are not dropped.

    Examples:

        shipyard deploy set-traffic churn champion=90 challenger=10

        shipyard deploy set-traffic churn champion=100 --shadow challenger
    """
    traffic: dict[str, float] = {}
    for item in weights:
        label, sep, value = item.partition("=")
        try:
            if not sep or not label:
                raise ValueError(item)
            traffic[label] = float(value)
        except ValueError:
            raise InvalidInput(f"weight {item!r} is not label=number (e.g. champion=90)") from None
    body: dict[str, Any] = {"traffic": traffic}
    if shadow is not None or no_shadow:
        body["shadow"] = None if no_shadow else shadow
    result = _call("PUT", url, f"/admin/deployments/{name}/traffic", token, body)
    console.print(_summary("traffic set", result), markup=False, highlight=False)


@app.command("rollback")
def rollback(
    name: str = typer.Argument(..., help="The served model."), url: str = _URL, token: str = _TOKEN
) -> None:
    """Go back to the traffic before the last change.

    Examples:

        shipyard deploy rollback churn

        shipyard deploy rollback churn --url http://10.0.0.5:8080
    """
    result = _call("POST", url, f"/admin/deployments/{name}/rollback", token)
    console.print(_summary("rolled back", result), markup=False, highlight=False)


def _summary(what: str, deployment: dict[str, Any]) -> str:
    weights = " ".join(f"{label}={weight:g}" for label, weight in deployment["traffic"].items())
    shadow = f", shadow {deployment['shadow']}" if deployment["shadow"] else ""
    return f"{deployment['name']}: {what}: {weights}{shadow}"


def _call(method: str, url: str, path: str, token: str | None, body: Any = None) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if method != "GET":
        headers["Content-Type"] = "application/json"  # the server takes admin writes only as JSON
    try:
        response = httpx.request(method, url.rstrip("/") + path, json=body, headers=headers, timeout=30)
    except httpx.HTTPError as exc:
        raise ServingError(f"cannot reach the server at {url}: {exc}") from exc
    if response.status_code >= 400:
        try:
            message = response.json()["error"]
        except (ValueError, KeyError, TypeError):
            message = response.text[:200]
        raise _ERRORS.get(response.status_code, ServingError)(f"{url}: {message}")
    return response.json()
