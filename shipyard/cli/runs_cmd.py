"""``shipyard runs`` (list, search, show, logs, compare, delete) and ``shipyard gc``."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from datetime import timedelta

import typer

from shipyard.cli.output import console, fmt, fmt_time, print_json, print_table, say_store
from shipyard.durations import parse_duration
from shipyard.errors import InvalidInput
from shipyard.pipelines.executors.step_runs import CAPTURED_OUTPUT
from shipyard.tracking import Run, RunStatus, TrackingClient, get_client
from shipyard.tracking.gc import collect_garbage
from shipyard.tracking.querying import COLUMN_KINDS
from shipyard.tracking.records import ArtifactRecord
from shipyard.tracking.run import TRACEBACK_ARTIFACT
from shipyard.tracking.staleness import mark_stale_runs

app = typer.Typer(help="Inspect and manage runs.", no_args_is_help=True)

_EXPERIMENT = typer.Option(None, "--experiment", "-e", help="Experiment name or id.")
_JSON = typer.Option(False, "--json", help="Machine-readable output.")


_COLUMNS = typer.Option(
    None,
    "--columns",
    "--column",
    "-c",
    help="Columns to show: metric keys, or metrics.KEY / params.KEY / tags.KEY (comma-separated or "
    "repeated; default: the most recently logged metrics).",
)
_DEFAULT_METRIC_COLUMNS = 6


def parse_columns(given: Sequence[str] | None) -> list[tuple[str | None, str]]:
    """``--columns`` as (kind, key) pairs: ``params.lr`` a param, ``tags.team`` a tag, ``metrics.acc`` a
    metric; a bare key (which may hold dots) has kind None until :func:`resolve_columns` looks it up."""
    found: list[tuple[str | None, str]] = []
    for item in given or []:
        for column in (c.strip() for c in item.split(",")):
            kind, dot, key = column.partition(".")
            if dot and kind in COLUMN_KINDS and key:
                found.append((COLUMN_KINDS[kind], key))
            elif column:
                found.append((None, column))
    return list(dict.fromkeys(found))


def load_columns(chosen: Sequence[tuple[str | None, str]]) -> list[str] | None:
    """What a search must load to show ``chosen`` (a bare key may be a metric, a param or a tag)."""
    if not chosen:
        return None
    kinds = ("metrics", "params", "tags")
    return list(dict.fromkeys(f"{k}.{key}" for kind, key in chosen for k in ([kind] if kind else kinds)))


def resolve_columns(found: Sequence[Run], chosen: Sequence[tuple[str | None, str]]) -> list[tuple[str, str]]:
    """Each bare key as the first of metric, param, tag that a listed run has. A column no listed run has is
    a typo more often than not: it is an error naming what the runs do have, not an empty column."""
    resolved: list[tuple[str, str]] = []
    for kind, key in chosen:
        if key == "*" and kind:
            resolved.append((kind, key))
            continue
        kinds = [kind] if kind else ["metrics", "params", "tags"]
        hit = next((k for k in kinds if any(key in getattr(r, k) for r in found)), None)
        if hit is None and found:
            known = [
                f"{k}.{name}" for k in kinds for name in sorted({n for r in found for n in getattr(r, k)})
            ]
            hint = f"; they have {', '.join(known[:12])}{' …' if len(known) > 12 else ''}" if known else ""
            raise InvalidInput(f"--columns: no run listed has {kind + '.' if kind else ''}{key}{hint}")
        resolved.append((hit or kind or "metrics", key))
    return resolved


def _nested(found: Sequence[Run]) -> list[tuple[int, Run]]:
    """Runs in the given order, each child listed (oldest first) under its parent when both are shown."""
    by_id = {r.run_id: r for r in found}
    children: dict[str, list[Run]] = {}
    for r in found:
        if r.parent_run_id in by_id and r.parent_run_id != r.run_id:
            children.setdefault(r.parent_run_id, []).append(r)  # type: ignore[arg-type]
    ordered: list[tuple[int, Run]] = []
    seen: set[str] = set()

    def walk(run: Run, depth: int) -> None:
        if run.run_id in seen:
            return
        seen.add(run.run_id)
        ordered.append((depth, run))
        for child in sorted(children.get(run.run_id, []), key=lambda c: (c.start_time, c.name)):
            walk(child, depth + 1)

    for r in found:
        if r.parent_run_id not in by_id:
            walk(r, 0)
    for r in found:  # a parent loop in a damaged store: still list every run
        walk(r, 0)
    return ordered


def runs_table(
    title: str, found: Sequence[Run], columns: Sequence[tuple[str, str]] = (), *, nest: bool = True
) -> None:
    """Print runs: copyable ids, nested runs indented under their parent, and the chosen columns (default:
    the metrics logged most recently to these runs)."""
    if not columns:
        keys = get_client().recent_metric_keys([r.run_id for r in found], limit=_DEFAULT_METRIC_COLUMNS)
        columns = [("metrics", k) for k in keys]
    expanded: list[tuple[str, str]] = []
    for kind, key in columns:
        if key == "*":
            expanded.extend((kind, k) for k in sorted({k for r in found for k in getattr(r, kind)}))
        else:
            expanded.append((kind, key))
    headers = [key if kind == "metrics" else f"{kind}.{key}" for kind, key in expanded]
    rows = [
        (
            f"{'  ' * (depth - 1)}└ {r.name}" if depth else r.name,
            r.run_id,
            r.display_status,
            fmt_time(r.start_time),
            *(fmt(getattr(r, kind).get(key)) for kind, key in expanded),
        )
        for depth, r in (_nested(found) if nest else [(0, r) for r in found])
    ]
    print_table(title, ["name", "run id", "status", "started (UTC)", *headers], rows)


@app.command("list")
def list_(
    experiment: str = typer.Argument(None, help="Experiment name or id (default: all)."),
    max_results: int = typer.Option(50, "--max", "-n"),
    include_deleted: bool = typer.Option(False, "--all", help="Include deleted runs."),
    columns: list[str] = _COLUMNS,
    as_json: bool = _JSON,
) -> None:
    """List the newest runs; child runs (pipeline steps, trials) are indented under their parent.

    Examples:

        shipyard runs list demo

        shipyard runs list demo --columns accuracy,f1,params.max_depth
    """
    chosen = parse_columns(columns)
    found = get_client().search_runs(
        experiment, None, max_results=max_results, include_deleted=include_deleted
    )
    if as_json:
        print_json(list(found))
        return
    runs_table(f"Runs{' in ' + experiment if experiment else ''}", found, resolve_columns(found, chosen))
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
    columns: list[str] = _COLUMNS,
    page_token: str = typer.Option(None, "--page-token"),
    as_json: bool = _JSON,
) -> None:
    """Search runs with the filter language (and, or, not, in, like, parentheses).

    With --columns only those keys are loaded and shown. Without --order-by, child runs are indented under
    their parent.

    Examples:

        shipyard runs search demo -f "metrics.accuracy > 0.9" -o "metrics.accuracy desc"

        shipyard runs search -f "params.model = 'rf' and attributes.status = 'FINISHED'" -c accuracy
    """
    chosen = parse_columns(columns)
    found = get_client().search_runs(
        experiment,
        filter_,
        order_by=order_by or None,
        max_results=max_results,
        columns=load_columns(chosen),
        page_token=page_token,
    )
    if as_json:
        print_json({"runs": list(found), "next_page_token": found.next_page_token})
        return
    shown = resolve_columns(found, chosen)
    if not shown:  # what the runs are sorted by comes first
        shown = [
            ("metrics", o.split()[0].removeprefix("metrics."))
            for o in order_by or []
            if o.startswith("metrics.")
        ]
    runs_table(f"{len(found)} run(s)", found, shown, nest=not order_by)
    if found.next_page_token:
        console.print(f"more: --page-token {found.next_page_token}")


@app.command("show")
def show(
    run: str = typer.Argument(..., help="Run id or name."),
    experiment: str = _EXPERIMENT,
    traceback_lines: int = typer.Option(
        15, "--traceback-lines", help="How many last lines of a failed run's traceback to show."
    ),
    as_json: bool = _JSON,
) -> None:
    """Everything about one run: attributes, params, latest metrics, tags, datasets, artifacts, child runs
    and, for a failed run, the end of its traceback.

    Examples:

        shipyard runs show 3f2c9a0e5b7d4c1e9f8a6b5c4d3e2f1a

        shipyard runs show churn-rf -e demo --json
    """
    client = get_client()
    record = client.find_run(run, experiment)
    datasets = client.dataset_inputs(record.run_id)
    files = client.list_artifacts(record.run_id)
    children, total_children = client.child_runs(record.run_id, limit=_CHILDREN_SHOWN)
    if as_json:
        print_json(
            {
                "run": record,
                "datasets": datasets,
                "artifacts": files,
                "children": [c.run_id for c in children],
                "children_total": total_children,
            }
        )
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
    if children:
        more = f", the first {len(children)} shown" if total_children > len(children) else ""
        runs_table(f"Child runs ({total_children}{more})", children, nest=False)
        if more:
            console.print(
                f"all of them: shipyard runs search -f \"parent_run_id = '{record.run_id}'\"", markup=False
            )
    if record.status is RunStatus.FAILED and traceback_lines > 0:
        _print_failure(client, record, children, files, traceback_lines)
    if any(f.path in CAPTURED_OUTPUT for f in files):
        console.print(f"captured output: shipyard runs logs {record.run_id}", markup=False)


_CHILDREN_SHOWN = 50


def _print_failure(
    client: TrackingClient, record: Run, children: Sequence[Run], files: Sequence[ArtifactRecord], lines: int
) -> None:
    """The last lines of the run's traceback; for a run that failed because a child did (a pipeline run and
    its step), the failed child's."""
    source, found = record, _traceback_record(files)
    if found is None:
        for child in children:
            if child.status is RunStatus.FAILED:
                found = _traceback_record(client.list_artifacts(child.run_id, TRACEBACK_ARTIFACT))
                if found is not None:
                    source = child
                    break
    if found is None:
        console.print("no traceback recorded for this failure", markup=False)
        return
    text = client.read_recorded(source, found).decode("utf-8", errors="replace")
    tail = text.rstrip("\n").splitlines()[-lines:]
    whose = "" if source is record else f" of child run {source.name} ({source.run_id})"
    console.print(f"Traceback{whose}, last {len(tail)} line(s):", markup=False)
    console.print("\n".join(tail), markup=False, highlight=False, soft_wrap=True)


def _traceback_record(files: Sequence[ArtifactRecord]) -> ArtifactRecord | None:
    return next((f for f in files if f.path == TRACEBACK_ARTIFACT), None)


@app.command("logs")
def logs(
    run: str = typer.Argument(
        ..., help="Run id or name: a pipeline step, or a pipeline run (all its steps)."
    ),
    experiment: str = _EXPERIMENT,
    tail: int = typer.Option(None, "--tail", help="Only the last N lines of each file."),
) -> None:
    """Print what a pipeline step wrote to stdout and stderr (and its traceback if it failed); for a
    pipeline run, every step's, in the order they started.

    Examples:

        shipyard runs logs 3f2c9a0e5b7d4c1e9f8a6b5c4d3e2f1a

        shipyard runs logs training-20261205-1412.train --tail 20
    """
    if tail is not None and tail < 1:
        raise InvalidInput(f"--tail must be at least 1, got {tail}")
    client = get_client()
    record = client.find_run(run, experiment)
    printed = 0
    for target in _with_descendants(client, record):
        files = sorted(
            (f for f in client.list_artifacts(target.run_id) if f.path in _LOG_FILES),
            key=lambda f: _LOG_FILES.index(f.path),
        )
        texts = {f.path: client.read_recorded(target, f).decode("utf-8", errors="replace") for f in files}
        if texts.get(TRACEBACK_ARTIFACT, "").strip() in texts.get("stderr.txt", ""):
            texts.pop(TRACEBACK_ARTIFACT, None)  # a step's worker already printed it to stderr
        for name, text in texts.items():
            lines = text.splitlines(keepends=True)
            shown = lines[-tail:] if tail else lines
            cut = f", last {len(shown)} of {len(lines)} lines" if len(shown) < len(lines) else ""
            sys.stdout.write(f"==> {target.name} ({target.run_id}) {name}{cut} <==\n")
            sys.stdout.write("".join(shown))
            if shown and not shown[-1].endswith("\n"):
                sys.stdout.write("\n")
            printed += 1
    sys.stdout.flush()
    if not printed:
        console.print(
            f"run {record.name} ({record.run_id}) has no captured output: pipeline steps' stdout and stderr "
            "are captured; a script's own run is not (log a file with log_artifact)",
            markup=False,
        )


_LOG_FILES = [*CAPTURED_OUTPUT, TRACEBACK_ARTIFACT]
_MAX_LOGGED_RUNS = 10_000


def _with_descendants(client: TrackingClient, record: Run) -> list[Run]:
    """``record``, then each child followed by its own children (loop iterations under a step), in the order
    they started; at most ``_MAX_LOGGED_RUNS`` runs."""
    ordered: list[Run] = []
    pending = [record]
    while pending and len(ordered) < _MAX_LOGGED_RUNS:
        run = pending.pop()
        ordered.append(run)
        children, _ = client.child_runs(run.run_id, limit=_MAX_LOGGED_RUNS)
        pending.extend(reversed(children))
    return ordered


@app.command("compare")
def compare(
    runs: list[str] = typer.Argument(..., help="Two or more run ids or names."),
    experiment: str = _EXPERIMENT,
    as_json: bool = _JSON,
) -> None:
    """Params and metrics of several runs side by side; differing rows are highlighted.

    Examples:

        shipyard runs compare churn-rf churn-gbm -e demo

        shipyard runs compare 3f2c9a0e5b7d4c1e9f8a6b5c4d3e2f1a 9b8a7c6d5e4f3a2b1c0d9e8f7a6b5c4d --json
    """
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

    Examples:

        shipyard runs delete churn-rf -e demo

        shipyard runs delete 3f2c9a0e5b7d4c1e9f8a6b5c4d3e2f1a --force
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
    """Permanently remove deleted runs and experiments, with their artifacts.

    Examples:

        shipyard gc --older-than 7d --dry-run

        shipyard gc --stale
    """
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
