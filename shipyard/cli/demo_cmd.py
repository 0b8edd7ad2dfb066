"""``shipyard demo``: run the main job and say where to look."""

from __future__ import annotations

from shipyard.cli.output import console
from shipyard.demo import EXPERIMENT, run_demo


def demo() -> None:
    """Train and compare models on a bundled dataset, tracking every run, param, metric and artifact."""
    with console.status("training and tracking…"):
        result = run_demo(report=console.print)
    settings = result.settings
    console.print()
    console.print(
        f"[bold green]done[/]: best model [bold]{result.best_model}[/] "
        f"(accuracy {result.best_accuracy:.4f}) in run {result.best_run_id}"
    )
    version = result.model_version
    state = "champion" if result.promoted else "challenger (champion kept)"
    console.print(f"model:     {version.uri} ({state}), load it with models:/{version.name}@champion")
    console.print(f"metadata:  {settings.db_url}")
    console.print(f"artifacts: {settings.artifact_root}")
    console.print("look at it with:")
    console.print(f"  shipyard runs show {result.parent_name}")
    console.print(
        f'  shipyard runs search {EXPERIMENT} --filter "metrics.accuracy > 0.9" '
        "--order-by 'metrics.accuracy desc'"
    )
    console.print(f"  shipyard runs compare {result.best_run_id} {result.parent_run_id}")
    console.print(f"  shipyard models show {version.name}@champion --history")
