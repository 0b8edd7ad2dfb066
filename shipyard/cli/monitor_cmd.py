"""``shipyard monitor``: set a model's baseline, and compare what it served against it.

NOTE: each command imports the monitoring modules when it runs: pandas, pyarrow, scipy and
prometheus_client would otherwise add to the start-up of every shipyard command.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from shipyard.cli.output import console, print_json
from shipyard.durations import parse_duration

if TYPE_CHECKING:
    from shipyard.store.artifacts import ArtifactStore

app = typer.Typer(
    help="Model monitoring: baselines, drift reports, metrics and alerts.", no_args_is_help=True
)
_JSON = typer.Option(False, "--json", help="Machine-readable output.")
_MODEL = typer.Argument(..., help="The model's name, as its payload logs use it.")
# The exit status of `monitor run --fail-on-alert` when a rule fired (its stderr line says which).
ALERT_EXIT_CODE = 3


def _store() -> ArtifactStore:
    from shipyard.config import get_settings
    from shipyard.store.artifacts import ArtifactStore

    return ArtifactStore.configured(get_settings())


@app.command("baseline")
def baseline(
    model: str = _MODEL,
    data: Path = typer.Argument(..., help="Training features: a Parquet (.parquet, .pq) or CSV file."),
    max_rows: int = typer.Option(100_000, "--max-rows", help="Sample down to this many rows."),
    drop: list[str] = typer.Option(
        None, "--drop", help="A column that is not a model input (a label, an id); repeat for several."
    ),
    registered: str | None = typer.Option(
        None, "--registered", help="The registry's name for MODEL, when it is served under another."
    ),
) -> None:
    """Store a sample of the training features as MODEL's monitoring baseline.

    When MODEL (or --registered) is a registered model with a column signature, only the columns it takes
    as inputs are kept: a label or id column in the training file would otherwise show up as skew.

    Examples:

        shipyard monitor baseline churn train.parquet

        shipyard monitor baseline churn train.parquet --drop target
    """
    from shipyard.config import get_settings
    from shipyard.data.statistics import read_table
    from shipyard.errors import InvalidInput
    from shipyard.models import registry_client
    from shipyard.monitoring.baseline import check_model_name, model_input_columns, save_baseline

    check_model_name(model)
    frame = read_table(data).to_pandas()
    unknown = [c for c in drop or [] if c not in frame.columns]
    if unknown:
        raise InvalidInput(f"--drop {unknown[0]!r}: {data} has no such column (it has: {', '.join(frame)})")
    dropped = list(drop or [])
    inputs = model_input_columns(registry_client(get_settings()), registered or model)
    if inputs is not None:
        dropped += [c for c in frame.columns if c not in inputs and c not in dropped]
        if len(dropped) == len(frame.columns):
            raise InvalidInput(
                f"{data} has none of the input columns of {registered or model}'s signature "
                f"({', '.join(inputs)})"
            )
    frame = frame.drop(columns=dropped)
    if dropped:
        why = f"not inputs of {registered or model}'s signature" if inputs is not None else "--drop"
        _say(f"left out {', '.join(dropped)} ({why})")
    path = save_baseline(_store(), model, frame, max_rows=max_rows)
    _say(f"baseline of {model}: {min(len(frame), max_rows):,} rows, {len(frame.columns)} columns → {path}")


@app.command("run")
def run(
    model: str = _MODEL,
    since: str | None = typer.Option(None, "--since", help="Only payloads of the last 30m, 1h, 2d …"),
    rules: Path | None = typer.Option(None, "--rules", help="Alert rules (YAML)."),
    min_rows: int = typer.Option(50, "--min-rows", help="Refuse with fewer served input rows."),
    registered: str | None = typer.Option(
        None, "--registered", help="The registry's name for MODEL, when it was served under another."
    ),
    task: str = typer.Option("auto", "--task", help="With labels: classification, regression or auto."),
    fail_on_alert: bool = typer.Option(
        False, "--fail-on-alert", help=f"Exit {ALERT_EXIT_CODE} when an alert rule fires (for CI jobs)."
    ),
    as_json: bool = _JSON,
) -> None:
    """Compare MODEL's served inputs with its baseline (drift, skew, performance when labelled): report,
    Prometheus metrics, alerts and a tracked run in experiment monitoring/MODEL.

    A rule with an action (see shipyard.monitoring.alerts) retrains when it fires: its pipeline runs, and
    the version it makes becomes the challenger (after its gate), within the rule's cool-down and daily limit.

    Examples:

        shipyard monitor run churn --since 1h --rules alerts.yaml

        shipyard monitor run churn --rules alerts.yaml --fail-on-alert
    """
    from shipyard.config import get_settings
    from shipyard.monitoring.alerts import load_rules
    from shipyard.monitoring.job import run_monitor

    now = datetime.now(UTC)
    start = now - parse_duration(since, "--since") if since is not None else None
    loaded = load_rules(rules) if rules is not None else []
    store = _store()
    result = run_monitor(
        store,
        model,
        since=start,
        min_rows=min_rows,
        rules=loaded,
        now=now,
        settings=get_settings(),
        registered_name=registered,
        task=task,
    )
    if as_json:
        print_json(result.to_dict())
        _exit_on_alert(result.alerts_fired, fail_on_alert)
        return
    drifted = [c.column for c in result.drift.columns if c.drift_detected]
    if result.drift.dataset_drift:
        verdict = "DRIFT"
    elif drifted:
        threshold = result.drift.share_threshold
        verdict = f"drift in some columns (share below the dataset threshold {threshold:g})"
    else:
        verdict = "no drift"
    if result.alerts_fired:
        verdict = f"ALERT ({len(result.alerts_fired)} fired), {verdict}"
    _say(
        f"{model}: {verdict}: drift share {result.drift.drift_share:.3f} "
        f"({len(drifted)} of {len(result.drift.columns)} columns) over {result.rows:,} rows"
    )
    _say(f"drifted columns: {', '.join(drifted) or '(none)'}")
    if result.drift.missing_in_current:
        _say(f"not served: {', '.join(result.drift.missing_in_current)}")
    if result.extra_columns:
        _say(f"not in the baseline: {', '.join(result.extra_columns)}")
    if result.skew:
        _say(f"training-serving skew: {'; '.join(a.message for a in result.skew[:5])}")
    if result.performance is not None:
        shown = ", ".join(f"{k} {v:.4g}" for k, v in result.performance.metrics.items())
        _say(f"performance on {result.performance.rows:,} labelled rows: {shown}")
    _say(f"report: {store.uri(result.report_path)}  (run {result.run_id})")
    for alert in result.alerts_fired:
        sent = (
            "" if alert.delivered is None else " (webhook sent)" if alert.delivered else f" ({alert.error})"
        )
        _say(f"alert {alert.rule}: {alert.metric} = {alert.value:.6g} {alert.op} {alert.threshold:g}{sent}")
    for retraining in result.retrainings:
        _say(f"retraining on {retraining.rule}: {retraining.status}: {retraining.reason}")
    _exit_on_alert(result.alerts_fired, fail_on_alert)


def _exit_on_alert(fired: Sequence[Any], fail: bool) -> None:
    if fail and fired:
        names = ", ".join(sorted({alert.rule for alert in fired}))
        typer.echo(f"error: {len(fired)} alert(s) fired: {names}", err=True)
        raise typer.Exit(ALERT_EXIT_CODE)


@app.command("reports")
def reports(
    model: str = _MODEL,
    max_results: int = typer.Option(20, "--max-results", min=1, max=1000, help="Reports per page."),
    page_token: str | None = typer.Option(None, "--page-token", help="The next page (printed under a page)."),
    as_json: bool = _JSON,
) -> None:
    """MODEL's monitoring reports, newest first: drift share, dataset drift, alerts fired and the run.

    Examples:

        shipyard monitor reports churn

        shipyard monitor reports churn --max-results 5 --json
    """
    from shipyard.cli.output import print_table
    from shipyard.monitoring.reports import list_reports

    found, token = list_reports(_store(), model, limit=max_results, before=page_token)
    if as_json:
        print_json({"reports": found, "next_page_token": token})
        return
    rows = [
        (
            r.report_id,
            "" if r.drift_share is None else f"{r.drift_share:.3f}",
            "yes" if r.dataset_drift else "no",
            ", ".join(r.alerts_fired),
            r.run_id,
        )
        for r in found
    ]
    print_table(f"{model}: monitoring reports", ["report", "drift share", "drift", "alerts", "run"], rows)
    if token:
        _say(f"more: --page-token {token}")


@app.command("labels")
def labels(
    model: str = _MODEL,
    data: Path = typer.Argument(..., help="Ground truth: request_id, label[, row] (Parquet or CSV)."),
) -> None:
    """Add ground truth for requests MODEL served (joined by the X-Request-ID each answer carried).

    Examples:

        shipyard monitor labels churn truth.parquet
    """
    from shipyard.data.sample import as_frame
    from shipyard.monitoring.performance import save_labels

    frame = as_frame(data, str(data))
    path = save_labels(_store(), model, frame)
    _say(f"{len(frame):,} labels of {model} → {path}")


@app.command("performance")
def performance(
    model: str = _MODEL,
    since: str | None = typer.Option(None, "--since", help="Only requests of the last 30m, 1h, 2d …"),
    freq: str = typer.Option("1h", "--freq", help="Time bucket width (pandas offset: 15min, 1h, 1D)."),
    task: str = typer.Option("auto", "--task", help="classification, regression or auto."),
    as_json: bool = _JSON,
) -> None:
    """MODEL's performance against the labels added so far: overall, per version and per time bucket.

    Examples:

        shipyard monitor performance churn --since 1d --freq 1h

        shipyard monitor performance churn --json
    """
    from shipyard.cli.output import print_table
    from shipyard.monitoring.performance import compute_performance

    start = datetime.now(UTC) - parse_duration(since, "--since") if since is not None else None
    result = compute_performance(_store(), model, since=start, freq=freq, task=task)
    if as_json:
        print_json(result.to_dict())
        return
    names, nan = list(result.metrics), float("nan")
    rows = [("all", f"{result.rows:,}", *(f"{result.metrics[n]:.4g}" for n in names))]
    rows += [
        (f"version {v}", f"{result.rows_by_version.get(v, 0):,}", *(f"{m.get(n, nan):.4g}" for n in names))
        for v, m in result.by_version.items()
    ]
    rows += [
        (
            f"{w.start:%Y-%m-%d %H:%M}",
            f"{w.rows:,}",
            *(f"{w.metrics.get(n, float('nan')):.4g}" for n in names),
        )
        for w in result.windows
    ]
    print_table(f"{model}: {result.task} performance", ["window", "rows", *names], rows)


@app.command("schedule")
def schedule(
    model: str = _MODEL,
    cron: str = typer.Option(..., "--cron", help='When to run, e.g. "0 * * * *" (hourly).'),
    since: str = typer.Option("1h", "--since", help="The window each run looks back over."),
    rules: Path | None = typer.Option(None, "--rules", help="Alert rules (YAML), stored with the schedule."),
    min_rows: int = typer.Option(50, "--min-rows", help="Fail a run with fewer served input rows."),
    registered: str = typer.Option("", "--registered", help="The registry's name for MODEL, if other."),
    task: str = typer.Option("auto", "--task", help="With labels: classification, regression or auto."),
    name: str | None = typer.Option(None, "--name", help="Schedule name (default: monitor-MODEL)."),
    timezone: str = typer.Option("UTC", "--timezone", help="IANA timezone the cron is read in."),
) -> None:
    """Run the monitoring job on a cron schedule (run by `shipyard scheduler`, listed by `schedules list`).

    Examples:

        shipyard monitor schedule churn --cron "0 * * * *" --since 1h --rules alerts.yaml
    """
    from shipyard.monitoring.alerts import load_rules, rules_yaml
    from shipyard.monitoring.baseline import check_model_name
    from shipyard.monitoring.pipeline import check_parameters, monitoring
    from shipyard.pipelines import Catchup, ScheduleClient, compile_pipeline
    from shipyard.tracking import get_client

    check_model_name(model)
    # Stored as read, with an action's files as absolute paths: the scheduler runs from another folder.
    text = rules_yaml(load_rules(rules)) if rules is not None else ""
    check_parameters(since, text)
    created = ScheduleClient(get_client()).create(
        compile_pipeline(monitoring),
        cron,
        name=name or f"monitor-{model}",
        parameters={
            "model": model,
            "since": since,
            "rules": text,
            "min_rows": min_rows,
            "registered_name": registered,
            "task": task,
        },
        timezone=timezone,
        catchup=Catchup.SKIP,  # a missed window is not worth judging late: the next tick covers now
        experiment=f"monitoring/{model}",
        cache=False,
    )
    _say(f"scheduled {created.name!r}: monitoring of {model} over the last {since}, cron {created.cron!r}")


def _say(text: str) -> None:
    """Print text as it is: column names may contain what Rich would read as markup."""
    console.print(text, markup=False, highlight=False)
