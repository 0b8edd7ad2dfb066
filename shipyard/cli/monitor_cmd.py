"""``shipyard monitor``: set a model's baseline, and compare what it served against it.

NOTE: each command imports the monitoring modules when it runs: pandas, pyarrow, scipy and
prometheus_client would otherwise add to the start-up of every shipyard command.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from shipyard.cli.output import console, print_json
from shipyard.errors import InvalidInput

if TYPE_CHECKING:
    from shipyard.store.artifacts import ArtifactStore

app = typer.Typer(
    help="Model monitoring: baselines, drift reports, metrics and alerts.", no_args_is_help=True
)

_DURATION = re.compile(r"(\d+)\s*([smhdw])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_duration(text: str) -> timedelta:
    """'30m', '1h', '2d' (also 's' and 'w') as a timedelta.

    Raises:
        InvalidInput: naming the text and the accepted form.
    """
    match = _DURATION.fullmatch(text.strip())
    if not match or int(match.group(1)) == 0:
        raise InvalidInput(f"--since {text!r} is not a duration like 30m, 1h or 2d (units: s, m, h, d, w)")
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


def _store() -> ArtifactStore:
    from shipyard.config import get_settings
    from shipyard.store.artifacts import ArtifactStore

    return ArtifactStore(get_settings().artifact_root)


@app.command("baseline")
def baseline(
    model: str = typer.Argument(..., help="The model's name, as its payload logs use it."),
    data: Path = typer.Argument(..., help="Training features: a Parquet (.parquet, .pq) or CSV file."),
    max_rows: int = typer.Option(100_000, "--max-rows", help="Sample down to this many rows."),
) -> None:
    """Store a sample of the training features as MODEL's monitoring baseline."""
    from shipyard.data.statistics import read_table
    from shipyard.monitoring.baseline import save_baseline

    frame = read_table(data).to_pandas()
    path = save_baseline(_store(), model, frame, max_rows=max_rows)
    _say(f"baseline of {model}: {min(len(frame), max_rows):,} rows, {len(frame.columns)} columns → {path}")


@app.command("run")
def run(
    model: str = typer.Argument(..., help="The model's name, as its payload logs use it."),
    since: str | None = typer.Option(None, "--since", help="Only payloads of the last 30m, 1h, 2d …"),
    rules: Path | None = typer.Option(None, "--rules", help="Alert rules (YAML)."),
    min_rows: int = typer.Option(50, "--min-rows", help="Refuse with fewer served input rows."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Compare MODEL's served inputs with its baseline: report, Prometheus metrics and alerts."""
    from shipyard.monitoring.alerts import load_rules
    from shipyard.monitoring.job import run_monitor

    now = datetime.now(UTC)
    start = now - parse_duration(since) if since is not None else None
    loaded = load_rules(rules) if rules is not None else []
    store = _store()
    result = run_monitor(store, model, since=start, min_rows=min_rows, rules=loaded, now=now)
    if as_json:
        print_json(result.to_dict())
        return
    drifted = [c.column for c in result.drift.columns if c.drift_detected]
    verdict = "DRIFT" if result.drift.dataset_drift else "no drift"
    _say(
        f"{model}: {verdict}: drift share {result.drift.drift_share:.3f} "
        f"({len(drifted)} of {len(result.drift.columns)} columns) over {result.rows:,} rows"
    )
    _say(f"drifted columns: {', '.join(drifted) or '(none)'}")
    if result.drift.missing_in_current:
        _say(f"not served: {', '.join(result.drift.missing_in_current)}")
    if result.extra_columns:
        _say(f"not in the baseline: {', '.join(result.extra_columns)}")
    _say(f"report: {store.uri(result.report_path)}")
    for alert in result.alerts_fired:
        sent = (
            "" if alert.delivered is None else " (webhook sent)" if alert.delivered else f" ({alert.error})"
        )
        _say(f"alert {alert.rule}: {alert.metric} = {alert.value:.6g} {alert.op} {alert.threshold:g}{sent}")


def _say(text: str) -> None:
    """Print text as it is: column names may contain what Rich would read as markup."""
    console.print(text, markup=False, highlight=False)
