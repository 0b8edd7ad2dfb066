"""The canary controller as a pipeline, so the pipeline scheduler drives it: ``shipyard deploy canary
... --schedule "* * * * *"`` or

    shipyard pipeline schedule shipyard.releases.pipeline:canary --cron "* * * * *" \\
        -p deployment=churn -p to=challenger -p url=http://10.0.0.5:8080 -p rules="$(cat canary.yaml)"

Each run evaluates the canary once (:meth:`~shipyard.releases.canary.Controller.step`: it starts it the first
time) and writes the decision as JSON. The server's admin token is read from ``SHIPYARD_ADMIN_TOKEN`` in the
scheduler's environment when the run starts, so it is never stored with the schedule. Once the canary is
promoted or rolled back, each run says so and changes nothing; remove the schedule then.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict

from shipyard.pipelines.dsl import component, pipeline
from shipyard.pipelines.types import Artifact, Output
from shipyard.releases.admin import AdminClient
from shipyard.releases.canary import RUNNING, Controller, load_rules, parse_interval, parse_steps, running


@component(cache=False)  # the same parameters mean a new evaluation every time
def canary_step(
    result: Output[Artifact],
    deployment: str,
    to: str,
    url: str,
    rules: str,
    steps: str = "5,25,50,100",
    interval: str = "5m",
) -> str:
    """Evaluate (or start) the canary of ``deployment`` toward ``to`` once; the action taken."""
    controller = Controller.configured(
        AdminClient(url, os.environ.get("SHIPYARD_ADMIN_TOKEN") or None),
        deployment,
        to,
        parse_steps(steps),
        parse_interval(interval),
        load_rules(rules, "the rules parameter"),
    )
    if running(controller.store, deployment) is None and _finished(controller, to):
        action = "finished"
        document = {"action": action, "note": f"the canary of {deployment} toward {to} is over"}
    else:
        decision, current = controller.step()
        action = "start" if decision is None else decision.action
        document = {
            "action": action,
            "canary": current.to_json(),
            **({} if decision is None else asdict(decision)),
        }
    with open(result.path, "w", encoding="utf-8") as out:
        json.dump(document, out, indent=2)
    return action


def _finished(controller: Controller, to: str) -> bool:
    """Whether the latest canary of the deployment went toward ``to`` and ended (a scheduled run must not
    start it again: a person decides that)."""
    from shipyard.releases.canary import canaries

    found = canaries(controller.store, controller.deployment)
    return bool(found) and found[-1].canary == to and found[-1].state != RUNNING


@pipeline(cache=False)
def canary(
    deployment: str, to: str, url: str, rules: str, steps: str = "5,25,50,100", interval: str = "5m"
) -> None:
    """Drive one canary release: one evaluation per run."""
    canary_step(deployment=deployment, to=to, url=url, rules=rules, steps=steps, interval=interval)


__all__ = ["canary", "canary_step"]
