"""``shipyard features``: plan and apply a feature repository, list what is applied, load the online store.

NOTE: the feature store (pandas, pyarrow, DuckDB) is imported when a command runs, not at CLI start-up.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import typer

from shipyard.cli.output import console, print_json, print_table

app = typer.Typer(help="Feature repositories: plan, apply, materialize.", no_args_is_help=True)

_REPO = typer.Option(Path("."), "--repo", "-r", help="The feature repository folder (Python files).")
_JSON = typer.Option(False, "--json", help="Machine-readable output.")
_VIEWS = typer.Option(None, "--view", "-v", help="Only this feature view (repeat for several).")
_ANOMALY = typer.Option(
    "warn",
    "--on-anomaly",
    help="A batch that breaks its view's schema (the one kept from its first load, or --schema): error "
    "refuses it, warn loads it and reports, off skips the check.",
)
_SCHEMAS = typer.Option(None, "--schema", help="VIEW=PATH: validate VIEW's batches against this schema YAML.")


def _schemas(given: list[str] | None) -> dict[str, Any]:
    from shipyard.data.schema import Schema
    from shipyard.errors import InvalidInput

    out = {}
    for item in given or []:
        view, sep, path = item.partition("=")
        if not sep or not view or not path:
            raise InvalidInput(f"--schema {item!r}: write VIEW=PATH")
        out[view] = Schema.load(path)
    return out


def _store(repo: Path) -> Any:
    from shipyard.features import FeatureStore

    return FeatureStore.from_repository(repo)


def _time(text: str | None, what: str) -> dt.datetime:
    from shipyard.features.materialize import as_utc

    return dt.datetime.now(dt.UTC) if text is None else as_utc(text, what)


@app.command("plan")
def plan(repo: Path = _REPO, as_json: bool = _JSON) -> None:
    """Show what `apply` would change: definitions added (+), changed (~, with the schema difference) and
    removed (-).

    Examples:

        shipyard features plan

        shipyard features plan --repo features/ --json
    """
    found = _store(repo).plan()
    if as_json:
        print_json(
            {
                "changes": [
                    {"kind": c.kind, "name": c.name, "action": c.action, "details": list(c.details)}
                    for c in found.changes
                ],
                "unchanged": list(found.unchanged),
            }
        )
        return
    if found.empty:
        console.print(f"No changes: {len(found.unchanged)} definitions are applied as they are.")
        return
    for line in found.lines():
        console.print(line, markup=False, highlight=False)
    console.print(
        f"{len(found.changes)} to change, {len(found.unchanged)} unchanged. Run: shipyard features apply"
    )


@app.command("apply")
def apply(repo: Path = _REPO, as_json: bool = _JSON) -> None:
    """Record the repository's definitions in the registry: a new version of each one that changed.

    Examples:

        shipyard features apply

        shipyard features apply --repo features/
    """
    store = _store(repo)
    found = store.plan()
    versions = store.apply()
    if as_json:
        print_json(
            [{"kind": v.kind, "name": v.name, "version": v.version, "deleted": v.deleted} for v in versions]
        )
        return
    for line in found.lines():
        console.print(line, markup=False, highlight=False)
    if not versions:
        console.print("No changes.")
    else:
        console.print(f"Applied {len(versions)} change(s).")


@app.command("list")
def list_definitions(
    as_json: bool = _JSON, all_versions: bool = typer.Option(False, "--removed", help="Also removed ones.")
) -> None:
    """The applied definitions and their current versions.

    Examples:

        shipyard features list

        shipyard features list --removed --json
    """
    from shipyard.config import get_settings
    from shipyard.store import open_stores

    found = [v for v in open_stores(get_settings()).features.current() if all_versions or not v.deleted]
    if as_json:
        print_json(
            [
                {
                    "kind": v.kind,
                    "name": v.name,
                    "version": v.version,
                    "deleted": v.deleted,
                    "by": v.created_by,
                    "at": v.created_at,
                }
                for v in found
            ]
        )
        return
    rows = [
        (v.kind, v.name, v.version, "removed" if v.deleted else "", v.created_by, _when(v.created_at))
        for v in found
    ]
    print_table("Feature definitions", ["kind", "name", "version", "", "by", "applied"], rows)


def _when(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


@contextlib.contextmanager
def _progress_bar() -> Iterator[Callable[[str, int, int], None]]:
    """A progress bar a view, fed by the ``(view, written, total)`` reports materialization makes."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    bars = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    )
    tasks: dict[str, Any] = {}

    def report(view: str, written: int, total: int) -> None:
        if view not in tasks:
            tasks[view] = bars.add_task(view, total=total)
        bars.update(tasks[view], completed=written, total=total)

    with bars:
        yield report


def _report(done: list[Any], as_json: bool) -> None:
    if as_json:
        print_json([m.__dict__ for m in done])
        return
    if not done:
        console.print("Nothing to load: every view is loaded up to the end time.")
    for m in done:
        interval = f"from {_when(m.start_ms)} to {_when(m.end_ms)}"
        console.print(f"{m.view}: {m.rows:,} entities {interval} in {m.seconds:.2f} s")
        for line in m.anomalies:
            console.print(f"  {line}", markup=False, highlight=False)


@app.command("materialize")
def materialize(
    start: str = typer.Option(..., "--start", help="ISO 8601 time (naive: UTC)."),
    end: str = typer.Option(None, "--end", help="ISO 8601 time (naive: UTC); default now."),
    repo: Path = _REPO,
    views: list[str] = _VIEWS,
    on_anomaly: str = _ANOMALY,
    schemas: list[str] = _SCHEMAS,
    as_json: bool = _JSON,
) -> None:
    """Load each online view's latest values with event times in [start, end) into the online store.
    Loading again, or an older interval after a newer one, changes nothing.

    Examples:

        shipyard features materialize --start 2026-01-01 --end 2026-02-01

        shipyard features materialize --start 2026-01-01T00:00:00Z --view customer_stats --on-anomaly error
    """
    store = _store(repo)
    begin, finish = _time(start, "--start"), _time(end, "--end")
    options = {"on_anomaly": on_anomaly, "schemas": _schemas(schemas)}
    with _progress_bar() as report:
        done = store.materialize(begin, finish, views or None, progress=report, **options)
    _report(done, as_json)


@app.command("materialize-incremental")
def materialize_incremental(
    end: str = typer.Option(None, "--end", help="ISO 8601 time (naive: UTC); default now."),
    repo: Path = _REPO,
    views: list[str] = _VIEWS,
    on_anomaly: str = _ANOMALY,
    schemas: list[str] = _SCHEMAS,
    as_json: bool = _JSON,
) -> None:
    """Load each online view from where its last load ended (the first time: end minus its TTL) to end.

    Examples:

        shipyard features materialize-incremental

        shipyard features materialize-incremental --end 2026-02-01 --view customer_stats
    """
    store = _store(repo)
    finish = _time(end, "--end")
    options = {"on_anomaly": on_anomaly, "schemas": _schemas(schemas)}
    with _progress_bar() as report:
        done = store.materialize_incremental(finish, views or None, progress=report, **options)
    _report(done, as_json)


@app.command("schedule")
def schedule(
    cron: str = typer.Option(..., "--cron", help='When to load, e.g. "0 * * * *" (hourly).'),
    repo: Path = _REPO,
    views: list[str] = _VIEWS,
    on_anomaly: str = _ANOMALY,
    name: str | None = typer.Option(None, "--name", help="Schedule name (default: materialize-FOLDER)."),
    timezone: str = typer.Option("UTC", "--timezone", help="IANA timezone the cron is read in."),
) -> None:
    """Load the online store on a cron schedule (`materialize-incremental`, run by `shipyard scheduler`,
    listed by `shipyard schedules list`).

    Examples:

        shipyard features schedule --cron "0 * * * *" --repo features/

        shipyard features schedule --cron "*/15 * * * *" --view customer_activity --on-anomaly error
    """
    from shipyard.errors import InvalidInput
    from shipyard.features.pipeline import materialization
    from shipyard.features.repository import load_repository
    from shipyard.pipelines import Catchup, ScheduleClient, compile_pipeline
    from shipyard.tracking import get_client

    if on_anomaly not in ("error", "warn", "off"):
        raise InvalidInput(f"--on-anomaly {on_anomaly!r}: one of error, warn, off")
    found = load_repository(repo)  # a repository that does not load fails now, not at the first tick
    known = {d.name for d in found.definitions}
    unknown = [v for v in views or [] if v not in known]
    if unknown:
        raise InvalidInput(f"--view {unknown[0]!r}: the repository has no such feature view")
    created = ScheduleClient(get_client()).create(
        compile_pipeline(materialization),
        cron,
        name=name or f"materialize-{found.path.name}",
        parameters={"repo": str(found.path), "views": ",".join(views or []), "on_anomaly": on_anomaly},
        timezone=timezone,
        catchup=Catchup.ONCE,  # one load catches up on every missed tick: it starts where the last ended
        experiment="features/materialization",
        cache=False,
    )
    console.print(
        f"scheduled {created.name!r}: materialize {found.path} every {created.cron!r}",
        markup=False,
        highlight=False,
    )
