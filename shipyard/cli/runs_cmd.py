"""``shipyard runs`` (list, show, compare, search, delete) and ``shipyard gc``."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

import typer

from shipyard.cli.output import console, fmt, fmt_time, print_json, print_table, say_store
from shipyard.durations import parse_duration
from shipyard.errors import InvalidInput
from shipyard.tracking import Run, get_client
from shipyard.tracking.gc import collect_garbage
from shipyard.tracking.staleness import mark_stale_runs

app = typer.Typer(help="Inspect and manage runs.", no_args_is_help=True)

_EXPERIMENT = typer.Option(None, "--experiment", "-e", help="Experiment name or id.")
_JSON = typer.Option(False, "--json", help="Machine-readable output.")


def _runs_table(title: str, found: Sequence[Run], metric_keys: Sequence[str] = ()) -> None:
    keys = list(metric_keys) or sorted({k for r in found for k in r.metrics})[:6]
    rows = [
        (r.name, r.run_id, r.display_status, fmt_time(r.start_time), *(fmt(r.metrics.get(k)) for k in keys))
        for r in found
    ]
    print_table(title, ["name", "run id", "status", "started (UTC)", *keys], rows)


@app.command("list")
def list_(
    experiment: str = typer.Argument(None, help="Experiment name or id (default: all)."),
    max_results: int = typer.Option(50, "--max", "-n"),
    include_deleted: bool = typer.Option(False, "--all", help="Include deleted runs."),
    as_json: bool = _JSON,
) -> None:
    """List the newest runs."""
    found = get_client().search_runs(
        experiment, None, max_results=max_results, include_deleted=include_deleted
    )
    if as_json:
        print_json(list(found))
    else:
        _runs_table(f"Runs{' in ' + experiment if experiment else ''}", found)
        if not found:
            say_store("no runs")


@app.command("search")
def search(
    experiment: str = typer.Argument(None, help="Experiment name or id (default: all)."),
    filter_: str = typer.Option(
        None, "--filter", "-f", help="e.g. \"metrics.acc > 0.9 and params.model = 'rf'\""
    ),
    order_by: list[str] = typer.Option(
        None, "--order-by", "-o", help="e.g. 'metrics.acc desc' (repeatable)."
    ),
    max_results: int = typer.Option(100, "--max", "-n"),
    columns: list[str] = typer.Option(None, "--column", "-c", help="Only load these keys, e.g. metrics.acc."),
    page_token: str = typer.Option(None, "--page-token"),
    as_json: bool = _JSON,
) -> None:
    """Search runs with the filter language (and, or, not, in, like, parentheses)."""
    found = get_client().search_runs(
        experiment,
        filter_,
        order_by=order_by or None,
        max_results=max_results,
        columns=columns or None,
        page_token=page_token,
    )
    if as_json:
        print_json({"runs": list(found), "next_page_token": found.next_page_token})
        return
    order_keys = [o.split()[0].removeprefix("metrics.") for o in order_by or [] if o.startswith("metrics.")]
    _runs_table(f"{len(found)} run(s)", found, order_keys)
    if found.next_page_token:
        console.print(f"more: --page-token {found.next_page_token}")


@app.command("show")
def show(
    run: str = typer.Argument(..., help="Run id or name."),
    experiment: str = _EXPERIMENT,
    as_json: bool = _JSON,
) -> None:
    """Everything about one run: attributes, params, latest metrics, tags, datasets, artifacts."""
    client = get_client()
    record = client.find_run(run, experiment)
    datasets = client.dataset_inputs(record.run_id)
    files = client.list_artifacts(record.run_id)
    if as_json:
        print_json({"run": record, "datasets": datasets, "artifacts": files})
        return
    attributes = [
        ("name", record.name),
        ("run id", record.run_id),
        ("experiment id", record.experiment_id),
        ("status", _status_line(record)),
        ("parent", record.parent_run_id),
        ("started (UTC)", fmt_time(record.start_time)),
        ("ended (UTC)", fmt_time(record.end_time)),
        ("user", record.user),
        ("artifacts", record.artifact_uri),
    ]
    print_table(f"Run {record.name}", ["attribute", "value"], attributes)
    for title, values in (
        ("Params", record.params),
        ("Metrics (latest)", record.metrics),
        ("Tags", record.tags),
    ):
        if values:
            print_table(title, ["key", "value"], sorted(values.items()))
    if datasets:
        print_table(
            "Datasets",
            ["name", "digest", "rows", "source"],
            [(d.name, d.digest[:16], d.num_rows, d.source) for d in datasets],
        )
    if files:
        print_table("Artifacts", ["path", "size", "sha256"], [(f.path, f.size, f.sha256[:16]) for f in files])


@app.command("compare")
def compare(
    runs: list[str] = typer.Argument(..., help="Two or more run ids or names."),
    experiment: str = _EXPERIMENT,
    as_json: bool = _JSON,
) -> None:
    """Params and metrics of several runs side by side; differing rows are highlighted."""
    if len(runs) < 2:
        raise InvalidInput("compare needs at least two runs")
    client = get_client()
    records = [client.find_run(r, experiment) for r in runs]
    if as_json:
        print_json(records)
        return
    rows = []
    for kind in ("params", "metrics"):
        keys = sorted({k for r in records for k in getattr(r, kind)})
        for key in keys:
            cells = [fmt(getattr(r, kind).get(key)) for r in records]
            style = "[yellow]" if len(set(cells)) > 1 else ""
            rows.append((f"{style}{kind}.{key}", *cells))
    print_table("Comparison", ["key", *(r.name for r in records)], rows)


@app.command("delete")
def delete(
    run: str = typer.Argument(..., help="Run id or name."),
    experiment: str = _EXPERIMENT,
    force: bool = typer.Option(
        False, "--force", help="Delete it even if it backs registered model versions (they keep loading)."
    ),
) -> None:
    """Soft-delete a run and its child runs (`shipyard gc` purges them).

    A run whose logged model is a registered version is refused unless --force; the versions are named.
    """
    from shipyard.tracking.backing import describe_all

    client = get_client()
    record = client.find_run(run, experiment)
    backed = client.delete_run(record.run_id, force=force)
    if backed:
        console.print(
            f"warning: run {record.run_id} backs {describe_all(backed)}: they keep their packages (gc leaves "
            "them), but lose their run's metrics, params and lineage once `shipyard gc` purges it",
            markup=False,
        )
    console.print(f"deleted run {record.name} ({record.run_id}); `shipyard gc` purges it")


def _status_line(record: Run) -> str:
    if record.lost:
        return (
            f"LOST (RUNNING, but its process {record.process or ''} stopped beating at "
            f"{fmt_time(record.heartbeat_at)}; `shipyard gc --stale` ends it KILLED)"
        )
    return record.status.value


def gc(
    older_than: str = typer.Option(
        "0s", "--older-than", help="Only purge what was deleted this long ago (30s, 2h, 7d)."
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Only count what would be purged."),
    as_json: bool = _JSON,
    stale: bool = typer.Option(
        False, "--stale", help="Instead: end RUNNING runs whose process stopped beating (LOST) as KILLED."
    ),
) -> None:
    """Permanently remove deleted runs and experiments, with their artifacts."""
    if stale:
        _gc_stale(dry_run=dry_run, as_json=as_json)
        return
    age = parse_duration(older_than, "--older-than", allow_zero=True)
    report = collect_garbage(get_client(), older_than_ms=age // timedelta(milliseconds=1), dry_run=dry_run)
    if as_json:
        print_json(report)
    else:
        verb = "would purge" if dry_run else "purged"
        console.print(f"{verb} {report.runs} run(s) and {report.experiments} experiment(s)")
        if report.kept:
            console.print(
                f"kept the artifact folders holding registered versions {', '.join(report.kept)}",
                markup=False,
            )


def _gc_stale(*, dry_run: bool, as_json: bool) -> None:
    marked = mark_stale_runs(get_client(), dry_run=dry_run)
    if as_json:
        print_json({"dry_run": dry_run, "runs": [r.run_id for r in marked]})
        return
    verb = "would mark" if dry_run else "marked"
    console.print(f"{verb} {len(marked)} lost run(s) KILLED", markup=False)
    for run in marked:
        console.print(f"  {run.name} ({run.run_id}), last beat {fmt_time(run.heartbeat_at)}", markup=False)
