"""``shipyard deploy``: see and change the traffic of a running ``shipyard serve``, live."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import typer

from shipyard.cli.output import console, print_json, print_table
from shipyard.config import get_settings
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


@app.command("canary")
def canary(
    name: str = typer.Argument(..., help="The served model (deployment)."),
    to: str = typer.Option(..., "--to", help="The version label to release (served beside the stable one)."),
    steps: str = typer.Option("5,25,50,100", "--steps", help="Traffic percentages, rising, ending at 100."),
    interval: str = typer.Option("5m", "--interval", help="How long each step lasts: 30s, 5m, 1h."),
    rules: Path = typer.Option(..., "--rules", help="The rules file (YAML): see shipyard.releases.canary."),
    once: bool = typer.Option(
        False, "--once", help="Start it, or evaluate it once, and exit (for CI steps)."
    ),
    url: str = _URL,
    token: str = _TOKEN,
    as_json: bool = _JSON,
) -> None:
    """Release a version step by step, judged on live metrics; roll back at the first bad step.

    The first call starts the canary (traffic to its first step). Each later evaluation advances it when
    the step's interval has passed and every rule holds, holds it, or rolls it back; at 100% the champion
    alias moves to it. Without --once it evaluates until it is promoted or rolled back.

    Examples:

        shipyard deploy canary churn --to challenger --rules canary.yaml

        shipyard deploy canary churn --to challenger --steps 10,50,100 --interval 30s --rules c.yaml --once
    """
    import time

    from shipyard.registry.fluent import registry_client
    from shipyard.releases import canary as releases
    from shipyard.store.artifacts import ArtifactStore

    if not rules.is_file():
        raise InvalidInput(f"rules file {str(rules)!r} does not exist")
    parsed_rules = releases.load_rules(rules.read_text(encoding="utf-8"), str(rules))
    parsed_steps, interval_s = releases.parse_steps(steps), releases.parse_interval(interval)
    store = ArtifactStore.configured(get_settings())
    current = releases.check_not_running(store, name, to)
    actions = _canary_actions(url, token, name)
    registry = registry_client(get_settings())
    if current is None:
        described = next(
            (d for d in _call("GET", url, "/admin/deployments", token)["deployments"] if d["name"] == name),
            None,
        )
        if described is None:
            raise NotFound(f"the server at {url} serves no model named {name!r}")
        counts = releases.parse_counts(_metrics_text(url), name)
        current = releases.start(
            store, releases.new_canary(described, to, parsed_steps, interval_s, parsed_rules, counts=counts)
        )
        actions.set_traffic(releases.first_traffic(current))
        _say_canary(as_json, current, None)
        if once:
            return
    deadline = time.monotonic() + releases.budget_s(current)
    while True:
        counts = releases.parse_counts(_metrics_text(url), name)
        decision, current = releases.evaluate(store, current, counts, actions, registry=registry)
        _say_canary(as_json, current, decision)
        if once or current.state != releases.RUNNING or time.monotonic() > deadline:
            return
        time.sleep(releases.wait_s(current))


def _metrics_text(url: str) -> str:
    try:
        response = httpx.get(url.rstrip("/") + "/metrics", timeout=30)
    except httpx.HTTPError as exc:
        raise ServingError(f"cannot reach the server at {url}: {exc}") from exc
    if response.status_code != 200:
        raise ServingError(f"{url}/metrics answered {response.status_code}")
    return response.text


def _canary_actions(url: str, token: str | None, name: str) -> Any:
    from shipyard.registry.fluent import registry_client
    from shipyard.registry.uri import RegistryUri, parse_model_uri
    from shipyard.releases.canary import Actions, Canary

    def registry_version(canary: Canary) -> tuple[str, int] | None:
        parsed = parse_model_uri(canary.model_uri) if canary.model_uri else None
        return (parsed.name, int(canary.canary_version)) if isinstance(parsed, RegistryUri) else None

    def set_traffic(weights: dict[str, float]) -> None:
        _call("PUT", url, f"/admin/deployments/{name}/traffic", token, {"traffic": weights})

    def promote(canary: Canary) -> None:
        found = registry_version(canary)
        if found is not None:
            reason = f"canary {canary.id} passed every step ({', '.join(f'{s:g}%' for s in canary.steps)})"
            registry_client(get_settings()).set_alias(found[0], "champion", found[1], reason=reason)

    def mark_rolled_back(canary: Canary, reason: str) -> None:
        found = registry_version(canary)
        if found is not None:
            tags = {
                "shipyard.canary": "rolled_back",
                "shipyard.canary.reason": reason[:500],
                "shipyard.canary.id": canary.id,
            }
            registry_client(get_settings()).set_version_tags(found[0], found[1], tags)

    return Actions(set_traffic, promote, mark_rolled_back)


def _say_canary(as_json: bool, canary: Any, decision: Any) -> None:
    from dataclasses import asdict

    if as_json:
        print_json({"canary": canary.to_json(), "decision": None if decision is None else asdict(decision)})
        return
    if decision is None:
        console.print(
            f"canary [bold]{canary.id}[/] on {canary.deployment}: {canary.weight:g}% to {canary.canary}, "
            f"{100 - canary.weight:g}% to {canary.stable}",
            highlight=False,
        )
        return
    console.print(
        f"{canary.deployment}: {decision.action} ({decision.reason}); "
        f"{canary.canary} at {decision.weight:g}%",
        highlight=False,
    )
