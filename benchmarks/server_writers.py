"""One of the concurrent writers of ``server.py``'s row (e): a process that logs metric points into a server.

    python benchmarks/server_writers.py shipyard|mlflow URL EXPERIMENT POINTS BUDGET_S

The server's URL is the tracking URI (Shipyard: ``SHIPYARD_TRACKING_URI``, MLflow: ``MLFLOW_TRACKING_URI``;
``server.py`` sets the rest of the environment). The process imports its client and creates its run first,
prints ``ready``, then waits for a line on stdin, so that process start-up is not timed. It then logs up to
POINTS points of ``loss`` one by one, one per step, for at most BUDGET_S seconds (Shipyard: buffered, then
flushed when the run ends; MLflow: one synchronous request each), ends the run and prints one JSON line:
the run id, the points logged (calls that returned), the calls that raised, and its wall-clock start and end.
"""

from __future__ import annotations

import json
import sys
import time


def value(step: int) -> float:
    return 1.0 / (1.0 + step)


def shipyard_writer(experiment: str, points: int, budget_s: float) -> dict[str, object]:
    import shipyard

    run = shipyard.start_run(experiment=experiment)
    print("ready", flush=True)
    sys.stdin.readline()
    logged = errors = 0
    start = time.time()
    try:
        with run:
            for step in range(points):
                run.log_metric("loss", value(step), step=step)
                logged += 1
                if step % 1000 == 999 and time.time() - start > budget_s:
                    break
    except shipyard.ShipyardError as exc:
        # log_metric only buffers: points that cannot reach the server raise when the run ends (its flush).
        print(f"ending the run failed: {exc}", file=sys.stderr)
        errors += 1
    return {"run_id": run.run_id, "logged": logged, "errors": errors, "start": start, "end": time.time()}


def mlflow_writer(experiment: str, points: int, budget_s: float) -> dict[str, object]:
    from mlflow import MlflowClient

    client = MlflowClient()
    experiment_id = client.get_experiment_by_name(experiment).experiment_id
    run_id = client.create_run(experiment_id).info.run_id
    print("ready", flush=True)
    sys.stdin.readline()
    logged = errors = 0
    start = time.time()
    for step in range(points):
        try:
            client.log_metric(run_id, "loss", value(step), step=step)
            logged += 1
        except Exception:  # a refused or failed request: counted, not retried
            errors += 1
        if time.time() - start > budget_s:
            break
    client.set_terminated(run_id)
    return {"run_id": run_id, "logged": logged, "errors": errors, "start": start, "end": time.time()}


def main(argv: list[str]) -> int:
    system, _url, experiment, points, budget_s = argv
    writer = shipyard_writer if system == "shipyard" else mlflow_writer
    result = writer(experiment, int(points), float(budget_s))
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
