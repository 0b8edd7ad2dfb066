"""``shipyard tune``: run a tuning spec with a live view, show a search's trials, resume a stopped one.

NOTE: each command imports the tuning modules when it runs: Optuna would otherwise add to the start-up of
every shipyard command.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
import yaml
from rich.console import Group
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from shipyard.cli.output import console, fmt, print_json, print_table
from shipyard.errors import NotFound

if TYPE_CHECKING:
    from shipyard.tracking import Run
    from shipyard.tuning import TrialRecord, TuningResult, TuningSpec

app = typer.Typer(help="Hyperparameter tuning (Katib's experiment model, on Optuna).", no_args_is_help=True)

_JSON = typer.Option(False, "--json", help="Machine-readable output.")
_TRIAL = typer.Option(None, "--trial", help="The objective, module:function (default: the spec's `trial`).")
_TOP = 5


@app.command("run")
def run(
    spec_file: Path = typer.Argument(..., help="A tuning spec (Shipyard's YAML or a Katib Experiment)."),
    trial: str | None = _TRIAL,
    parallel: int | None = typer.Option(None, "--parallel", min=1, help="Trials at once."),
    max_trials: int | None = typer.Option(None, "--max-trials", min=1, help="The trial budget."),
    executor: str | None = typer.Option(None, "--executor", help="local (processes) or ray."),
    as_json: bool = _JSON,
) -> None:
    """Run a search: trials as nested runs, a live best-so-far table, the study stored for `tune resume`.

    Examples:

        shipyard tune run spec.yaml

        shipyard tune run spec.yaml --parallel 2 --max-trials 20
    """
    from shipyard.tuning import TuningSpec, tune

    spec = TuningSpec.load(spec_file)
    overrides = {"parallel_trials": parallel, "max_trials": max_trials, "executor": executor}
    changed = {k: v for k, v in overrides.items() if v is not None}
    if changed:
        spec = TuningSpec.parse({**spec.model_dump(), **changed}, source=f"tuning spec {str(spec_file)!r}")
    _run_live(
        spec, lambda on_trial, on_start: tune(spec, trial, on_trial=on_trial, on_start=on_start), as_json
    )


@app.command("resume")
def resume(
    run_id: str = typer.Argument(..., help="The tuning run's id or name (see `shipyard runs list tuning`)."),
    trial: str | None = _TRIAL,
    as_json: bool = _JSON,
) -> None:
    """Continue a search that stopped early: trials left running are failed, the budget is spent.

    Examples:

        shipyard tune resume 3f2c9a0e5b7d4c1e9f8a6b5c4d3e2f1a

        shipyard tune resume 3f2c9a0e5b7d4c1e9f8a6b5c4d3e2f1a --trial search:objective
    """
    from shipyard.config import get_settings
    from shipyard.tracking import get_client
    from shipyard.tuning import TuningSpec
    from shipyard.tuning import resume as resume_search
    from shipyard.tuning.runner import SPEC_ARTIFACT

    parent = _find(run_id)
    text = get_client(get_settings()).read_artifact(parent.run_id, SPEC_ARTIFACT).decode("utf-8")
    spec = TuningSpec.parse(yaml.safe_load(text))

    def start(on_trial: Any, on_start: Any) -> TuningResult:
        on_start(parent.run_id)
        return resume_search(parent.run_id, trial, on_trial=on_trial)

    _run_live(spec, start, as_json)


@app.command("list")
def list_searches(
    experiment: str | None = typer.Option(None, "--experiment", help="Only this experiment's searches."),
    max_results: int = typer.Option(20, "--max-results", min=1, max=1000, help="Searches per page."),
    page_token: str | None = typer.Option(None, "--page-token", help="The next page (printed under a page)."),
    as_json: bool = _JSON,
) -> None:
    """Tuning searches, newest first: state, trials by state and the best value so far.

    Examples:

        shipyard tune list

        shipyard tune list --experiment tuning --json
    """
    from shipyard.cli.output import fmt_time
    from shipyard.config import get_settings
    from shipyard.tracking import get_client
    from shipyard.tuning import searches

    client = get_client(get_settings())
    if experiment is not None:
        ids = [client.get_experiment(experiment).experiment_id]
    else:
        ids = [e.experiment_id for e in client.list_experiments()]
    found, token = searches.list_searches(client, ids, max_results=max_results, page_token=page_token)
    if as_json:
        print_json({"searches": found, "next_page_token": token})
        return
    rows = [
        (
            s.run_id,
            s.name,
            s.state,
            ", ".join(f"{n} {state.lower()}" for state, n in sorted(s.trials.items())),
            "" if s.best_value is None else f"{s.objective[0]} = {s.best_value:.6g}",
            fmt_time(s.start_time),
        )
        for s in found
    ]
    print_table("tuning searches", ["run id", "name", "state", "trials", "best", "started"], rows)
    if token:
        console.print(f"more: --page-token {token}", markup=False)


@app.command("show")
def show(
    search: str = typer.Argument(..., help="A tuning run's id or name, or a spec's name (its latest run)."),
    as_json: bool = _JSON,
) -> None:
    """The trials of a search (state, value, params), its best trial or Pareto front, and its report.

    Examples:

        shipyard tune show gbm

        shipyard tune show gbm --json
    """
    import optuna

    from shipyard.tuning.runner import REPORT_ARTIFACT, STORAGE_TAG, STUDY_TAG, open_storage

    parent = _find(search)
    storage = parent.tags[STORAGE_TAG]
    if storage.startswith("journal:") and not Path(storage.removeprefix("journal:")).is_file():
        # The study's journal is on the machine that ran the search (team mode, another machine): read the
        # trials the tracking store recorded instead.
        trials, multi = _recorded_trials(parent)
        complete = [t for t in trials if t.state.name == "COMPLETE"]
        best = _best(complete, parent.params.get("directions", "maximize").split(","))
    else:
        study = optuna.load_study(study_name=parent.tags[STUDY_TAG], storage=open_storage(storage))
        trials, multi = study.get_trials(deepcopy=False), len(study.directions) > 1
        complete = [t for t in trials if t.state.name == "COMPLETE"]
        best = study.best_trials if multi else ([study.best_trial] if complete else [])
    if as_json:
        print_json(
            {
                "run_id": parent.run_id,
                "name": parent.name,
                "state": parent.tags.get("shipyard.tuning.state"),
                "trials": [
                    {"number": t.number, "state": t.state.name, "values": t.values, "params": t.params}
                    for t in trials
                ],
                ("pareto" if multi else "best"): [
                    {"number": t.number, "values": t.values, "params": t.params} for t in best
                ],
            }
        )
        return
    names = sorted({k for t in trials for k in t.params})
    rows = [
        (t.number, t.state.name, _values(t.values), *(fmt(t.params.get(n)) for n in names)) for t in trials
    ]
    title = f"{parent.name}: {len(trials)} trials, {parent.tags.get('shipyard.tuning.state', '')}"
    print_table(title, ["trial", "state", "value", *names], rows)
    label = "Pareto front" if multi else "best"
    for t in best:
        console.print(f"{label}: trial {t.number} = {_values(t.values)} with {t.params}", markup=False)
    console.print(f"run {parent.run_id}; report: {parent.artifact_uri}/{REPORT_ARTIFACT}", markup=False)


def _recorded_trials(parent: Run) -> tuple[list[Any], bool]:
    """The search's trials from its nested runs, as Optuna ``FrozenTrial``s (so one display serves both)."""
    import optuna
    from optuna.trial import TrialState

    from shipyard.config import get_settings
    from shipyard.tracking import get_client
    from shipyard.tuning import searches

    client, token, found = get_client(get_settings()), None, []
    while True:
        page, token = searches.list_trials(client, parent, max_results=1000, page_token=token)
        found += page
        if token is None:
            break
    states = {s.name: s for s in TrialState}
    trials = [
        optuna.trial.FrozenTrial(
            number=t.number,
            state=states.get(t.state, TrialState.RUNNING),
            value=None,
            values=[v for v in t.values if v is not None] if t.state == "COMPLETE" else None,
            datetime_start=None,
            datetime_complete=None,
            params=dict(t.params),
            distributions={},
            user_attrs={},
            system_attrs={},
            intermediate_values={},
            trial_id=t.number,
        )
        for t in sorted(found, key=lambda t: t.number)
    ]
    return trials, len(parent.params.get("objective", "").split(",")) > 1


def _best(complete: list[Any], directions: list[str]) -> list[Any]:
    """The best complete trial (one objective) or the Pareto front (several), by trial number."""
    signs = [1.0 if d == "maximize" else -1.0 for d in directions]
    scored = [t for t in complete if t.values is not None and len(t.values) == len(signs)]
    if len(signs) == 1:
        return [max(scored, key=lambda t: (signs[0] * t.values[0], -t.number))] if scored else []

    def dominated(t: Any) -> bool:
        return any(
            all(s * a >= s * b for a, b, s in zip(o.values, t.values, signs, strict=True))
            and any(s * a > s * b for a, b, s in zip(o.values, t.values, signs, strict=True))
            for o in scored
        )

    return sorted((t for t in scored if not dominated(t)), key=lambda t: t.number)


def _values(values: list[float] | None) -> str:
    return "" if values is None else ", ".join(f"{v:.6g}" for v in values)


def _find(search: str) -> Run:
    from shipyard.config import get_settings
    from shipyard.tracking import get_client
    from shipyard.tracking.records import RunStatus
    from shipyard.tuning.runner import NAME_TAG, STUDY_TAG

    client = get_client(get_settings())
    found: Run | None
    try:
        found = client.find_run(search)
    except NotFound:
        # A spec's name: its latest finished search (else its latest), saying which others there are.
        searches = client.runs_with_tag(NAME_TAG, search, limit=50)
        finished = [r for r in searches if r.status is RunStatus.FINISHED]
        found = (finished or searches or [None])[0]
        others = [r for r in searches if found is not None and r.run_id != found.run_id]
        if found is not None and others:
            listed = ", ".join(f"{r.name} ({r.display_status})" for r in others[:5])
            more = f" and {len(others) - 5} more" if len(others) > 5 else ""
            # On stderr: --json output stays one document.
            note = f"showing {found.name}, the latest finished search of {search!r}; others: {listed}{more}"
            typer.echo(note, err=True)
    if found is None or STUDY_TAG not in found.tags:
        raise NotFound(f"no tuning run has the id or name {search!r} (and no spec of that name was tuned)")
    return found


def _run_live(spec: TuningSpec, start: Any, as_json: bool) -> None:
    """Run ``start(on_trial, on_start)`` with a progress bar and a best-so-far table; then the summary.

    Ctrl-C or SIGTERM (the runner marks the search stopped) end it with the line that resumes it, and exit
    130 or 143."""
    started: list[str] = []
    try:
        result = _live(spec, start, started.append, as_json)
    except (KeyboardInterrupt, SystemExit) as exc:
        code = 130 if isinstance(exc, KeyboardInterrupt) else exc.code
        if not started or code in (0, None):
            raise
        typer.echo(
            f"stopped: tuning run {started[0]} is marked stopped; continue it with: "
            f"shipyard tune resume {started[0]}",
            err=True,
        )
        raise typer.Exit(code if isinstance(code, int) else 1) from None
    _print_result(result, as_json)


def _live(spec: TuningSpec, start: Any, on_start: Any, as_json: bool) -> TuningResult:
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[states]}"),
        TimeElapsedColumn(),
        console=console,
    )
    task = progress.add_task(spec.name, total=spec.max_trials, states="")
    view = Group(progress, Table())
    with Live(view, console=console, refresh_per_second=4, transient=as_json) as live:

        def on_trial(record: TrialRecord, result: TuningResult) -> None:
            states = ", ".join(f"{s.lower()} {result.count(s)}" for s in ("COMPLETE", "PRUNED", "FAIL"))
            progress.update(task, completed=len(result.trials), states=states)
            live.update(Group(progress, _leaders(result)))

        return start(on_trial, on_start)  # type: ignore[no-any-return]


def _print_result(result: TuningResult, as_json: bool) -> None:
    if as_json:
        print_json(_summary(result))
        return
    console.print()
    if result.best is not None:
        console.print(
            f"best: trial {result.best.number}, {result.metrics[0]} = {result.best.value:.6g}, "
            f"params {result.best.params}",
            markup=False,
        )
    elif result.pareto:
        console.print(f"Pareto front: {len(result.pareto)} trials (shipyard tune show {result.run_id})")
    console.print(
        f"{result.state}: {len(result.trials)} trials ({result.count('COMPLETE')} complete, "
        f"{result.count('PRUNED')} pruned, {result.count('FAIL')} failed); run {result.run_id}",
        markup=False,
    )


def _leaders(result: TuningResult) -> Table:
    table = Table(title="best so far", show_lines=False)
    for column in ("trial", *result.metrics, "params"):
        table.add_column(column, overflow="fold")
    ranked = result.pareto if result.best is None else _top(result)
    for record in ranked[:_TOP]:
        table.add_row(str(record.number), *(fmt(v) for v in record.values or []), str(record.params))
    return table


def _top(result: TuningResult) -> list[TrialRecord]:
    sign = 1.0 if result.directions[0] == "maximize" else -1.0
    complete = [r for r in result.trials if r.state == "COMPLETE" and r.values]
    return sorted(complete, key=lambda r: -sign * r.values[0])  # type: ignore[index]


def _summary(result: TuningResult) -> dict[str, Any]:
    return {
        "run_id": result.run_id,
        "state": result.state,
        "trials": len(result.trials),
        "complete": result.count("COMPLETE"),
        "pruned": result.count("PRUNED"),
        "failed": result.count("FAIL"),
        "best": None
        if result.best is None
        else {"number": result.best.number, "values": result.best.values, "params": result.best.params},
        "pareto": [{"number": r.number, "values": r.values, "params": r.params} for r in result.pareto],
    }
