"""``shipyard demo``: run the whole lifecycle and say where to look."""

from __future__ import annotations

from shipyard.cli.output import console


def demo() -> None:
    """The whole lifecycle on a bundled dataset: pipeline (validate, tune, train, evaluate, register),
    serving with payload logs, ground truth, and a drift and performance report.

    Examples:

        shipyard demo
    """
    from rich.markup import escape

    from shipyard.demo import EXPERIMENT, MODEL_NAME, run_demo

    with console.status("running the lifecycle…"):
        result = run_demo(report=lambda line: console.print(line, markup=False, highlight=False))
    settings, version = result.settings, result.model_version
    metrics = ", ".join(f"{k} {v:.4f}" for k, v in result.test_metrics.items())
    state = "champion" if result.promoted else "challenger (the champion was kept)"
    served = (
        ""
        if result.served_accuracy is None
        else f", accuracy on labelled traffic {result.served_accuracy:.4f}"
    )
    lines = [
        "",
        f"[bold green]done[/] in {result.seconds:.0f}s",
        f"model:      {version.uri} ({state}); load it with models:/{MODEL_NAME}@champion",
        f"tuning:     {result.trials} trials, best CV accuracy {result.cv_accuracy:.4f} "
        f"(run {result.tuning_run_id})",
        f"test:       {metrics}",
        f"served:     {result.requests} requests to {result.server_url} (stopped since){served}",
        f"monitoring: drift share {result.drift_share:.2f}, "
        f"drifted: {', '.join(result.drifted_columns) or 'none'}",
        f"report:     {result.report_uri}",
        *(
            [f"retraining: {escape(result.retraining.status)}: {escape(result.retraining.reason)}"]
            if result.retraining is not None
            else []
        ),
        f"metadata:   {settings.db_url}",
        f"artifacts:  {settings.artifact_root}",
        "look at it with:",
        f"  shipyard runs list {EXPERIMENT}",
        f"  shipyard tune show {result.tuning_run_id}",
        f"  shipyard models show {MODEL_NAME}@champion --history",
        f"  shipyard lineage models:/{MODEL_NAME}/{version.version}",
        f"  shipyard monitor performance {MODEL_NAME}",
        f"  shipyard serve models:/{MODEL_NAME}@champion   # serve it again",
    ]
    for line in lines:
        console.print(line, highlight=False)
