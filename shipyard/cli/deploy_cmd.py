"""``shipyard deploy``: see and change the traffic of a running ``shipyard serve``, live."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from shipyard.cli.output import console, print_json, print_table
from shipyard.errors import (
    InvalidInput,
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
    from shipyard.releases.admin import AdminClient

    return AdminClient(url, token).call(method, path, body)


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
    schedule: str | None = typer.Option(
        None,
        "--schedule",
        help='Start now, then evaluate on this cron from `shipyard scheduler` ("* * * * *").',
    ),
    url: str = _URL,
    token: str = _TOKEN,
    as_json: bool = _JSON,
) -> None:
    """Release a version step by step, judged on live metrics; roll back at the first bad step.

    The first call starts the canary (traffic to its first step). Each later evaluation advances it when
    the step's interval has passed and every rule holds, holds it, or rolls it back; at 100% the champion
    alias moves to it. Without --once it evaluates until it is promoted or rolled back; with --schedule the
    pipeline scheduler evaluates it (the server's token from SHIPYARD_ADMIN_TOKEN in its environment).

    Examples:

        shipyard deploy canary churn --to challenger --rules canary.yaml

        shipyard deploy canary churn --to challenger --steps 10,50,100 --interval 30s --rules c.yaml --once
    """
    import time

    from shipyard.releases import canary as releases
    from shipyard.releases.admin import AdminClient

    if not rules.is_file():
        raise InvalidInput(f"rules file {str(rules)!r} does not exist")
    text = rules.read_text(encoding="utf-8")
    controller = releases.Controller.configured(
        AdminClient(url, token),
        name,
        to,
        releases.parse_steps(steps),
        releases.parse_interval(interval),
        releases.load_rules(text, str(rules)),
    )
    decision, current = controller.step()
    _say_canary(as_json, current, decision)
    if schedule is not None:
        _schedule_canary(schedule, name, to, url, text, steps, interval)
        return
    if once:
        return
    deadline = time.monotonic() + releases.budget_s(current)
    while current.state == releases.RUNNING and time.monotonic() < deadline:
        time.sleep(releases.wait_s(current))
        decision, current = controller.step()
        _say_canary(as_json, current, decision)


def _schedule_canary(cron: str, name: str, to: str, url: str, rules: str, steps: str, interval: str) -> None:
    from shipyard.pipelines import Catchup, ScheduleClient, compile_pipeline
    from shipyard.releases.pipeline import canary
    from shipyard.tracking import get_client

    created = ScheduleClient(get_client()).create(
        compile_pipeline(canary),
        cron,
        name=f"canary-{name}",
        # No token here: a schedule is stored; the scheduler reads SHIPYARD_ADMIN_TOKEN when it runs.
        parameters={
            "deployment": name,
            "to": to,
            "url": url,
            "rules": rules,
            "steps": steps,
            "interval": interval,
        },
        catchup=Catchup.SKIP,  # one evaluation covers any ticks missed
        experiment=f"canary/{name}",
        cache=False,
    )
    console.print(
        f"scheduled {created.name!r}: the canary of {name} evaluated on cron {created.cron!r}",
        highlight=False,
    )


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
