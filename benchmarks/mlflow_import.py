"""Importing MLflow stores into Shipyard: 10,000 runs x 100 metric points, against MLflow's own copy path.

    python benchmarks/mlflow_import.py [--quick] [--json out.json] [--mlflow-python PATH]

Needs an interpreter with ``mlflow`` 3 (``.venv-mlflow``, made by ``make test``, or ``--mlflow-python`` /
``SHIPYARD_MLFLOW_PYTHON``); Shipyard's side runs here and never imports mlflow. ``mlflow_import_store.py``
(under that interpreter) builds one experiment of N runs (5 params, 3 tags, 4 metrics x 25 steps each) twice:
an MLflow SQLite store and an ``mlruns`` folder, MLflow reading a sample of each back.

(a) ``shipyard import mlflow sqlite:///…`` into a fresh embedded Shipyard (SQLite) — runs/s and points/s.
    MLflow has no importer from one MLflow store into another, so this row has no peer.
(b) the ``mlruns`` folder into SQLite: Shipyard's import against ``mlflow migrate-filestore`` (MLflow's own
    file-store-to-SQLite copy, timed in-process around ``mlflow.store.fs2db.migrate``) — runs/s and points/s.
(c) the import of (a) run again (everything already there: nothing copied) — seconds.

Each row is valid when the copy is complete: N runs stored, a sample run's full history and params as built.
Progress goes to stderr, the table to stdout.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import harness
from harness import Result, clock, progress

from shipyard.config import Settings
from shipyard.importers.mlflow import import_mlflow
from shipyard.tracking.client import TrackingClient

TITLE = "Shipyard's MLflow importer: MLflow stores copied into Shipyard (embedded SQLite)"
HERE = Path(__file__).resolve().parent
KEYS, STEPS = 4, 25
PACKAGES = ("sqlalchemy", "numpy")
MIGRATE = (
    "import sys, time, warnings\n"
    "from pathlib import Path\n"
    "warnings.filterwarnings('ignore')\n"
    "from mlflow.store.fs2db import migrate\n"
    "start = time.perf_counter()\n"
    "migrate(Path(sys.argv[1]), sys.argv[2], progress=False)\n"
    "print(time.perf_counter() - start)\n"
)


def settings_at(home: Path) -> Settings:
    return Settings.load(environ={"SHIPYARD_HOME": str(home)}, cwd=home.parent)


def timed_import(source: str, home: Path) -> tuple[float, Settings]:
    settings = settings_at(home)
    harness.settle()
    start = clock()
    report = import_mlflow(source, settings=settings)
    seconds = clock() - start
    progress(f"imported {source}: {report.copied['runs']} runs, {report.copied['metric_points']} points")
    return seconds, settings


def complete(settings: Settings, runs: int, sample: str) -> bool:
    """Whether every run arrived and a sample run holds its full history and params."""
    tracking = TrackingClient(settings)
    experiment = tracking.get_experiment("bench-import")
    page = tracking.search_runs(experiment.experiment_id, max_results=min(runs, 1000))
    counted, token = len(page), page.next_page_token
    while token:
        page = tracking.search_runs(experiment.experiment_id, max_results=1000, page_token=token)
        counted, token = counted + len(page), page.next_page_token
    run = tracking.get_run_by_name(sample, "bench-import")
    history = tracking.metric_history(run.run_id, "metric_0")
    return counted == runs and len(history) == STEPS and run.params.get("opt") == "adam"


def rows(
    key: str, title: str, seconds: float, peer: float | None, runs: int, valid: bool, notes: Sequence[str]
) -> list[Result]:
    points = runs * KEYS * STEPS
    return [
        Result(
            key=f"{key}_runs",
            title=f"{title}: runs/s",
            unit="runs/s",
            higher_is_better=True,
            shipyard=runs / seconds,
            peer=None if peer is None else runs / peer,
            valid=valid,
            notes=tuple(notes),
            details={"seconds": seconds, "peer_seconds": peer, "runs": runs},
        ),
        Result(
            key=f"{key}_points",
            title=f"{title}: metric points/s",
            unit="points/s",
            higher_is_better=True,
            shipyard=points / seconds,
            peer=None if peer is None else points / peer,
            valid=valid,
            details={"points": points},
        ),
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = harness.base_parser(__doc__.splitlines()[0])
    parser.add_argument("--mlflow-python", default=os.environ.get("SHIPYARD_MLFLOW_PYTHON"))
    parser.add_argument("--keep", action="store_true", help="keep the temporary stores, and say where")
    args = parser.parse_args(argv)
    python = args.mlflow_python or str(HERE.parent / ".venv-mlflow" / "bin" / "python")
    if not Path(python).exists():
        parser.error(
            f"no MLflow interpreter at {python}: make test makes .venv-mlflow, or pass --mlflow-python"
        )
    runs = 1_000 if args.quick else 10_000
    root = Path(tempfile.mkdtemp(prefix="shipyard-bench-mlflow-import-"))
    env = {**os.environ, "MLFLOW_ALLOW_FILE_STORE": "true", "GIT_PYTHON_REFRESH": "quiet"}
    try:
        progress(f"building {runs} runs x {KEYS * STEPS} points with MLflow under {root}")
        store = root / "mlflow"
        subprocess.run(
            [python, str(HERE / "mlflow_import_store.py"), str(store), str(runs), str(KEYS), str(STEPS)],
            check=True,
            env=env,
            stdout=subprocess.DEVNULL,
        )
        sample = f"run-{runs // 2}"
        seconds_sql, settings_sql = timed_import(f"sqlite:///{store / 'mlflow.db'}", root / "sy-sql")
        valid_sql = complete(settings_sql, runs, sample)
        seconds_files, settings_files = timed_import(str(store / "mlruns"), root / "sy-files")
        valid_files = complete(settings_files, runs, sample)
        progress("mlflow migrate-filestore on the same mlruns folder")
        migrated = subprocess.run(
            [python, "-c", MIGRATE, str(store / "mlruns"), f"sqlite:///{root / 'migrated.db'}"],
            check=True,
            env=env,
            capture_output=True,
            text=True,
        )
        peer_files = float(migrated.stdout.strip().splitlines()[-1])
        harness.settle()
        start = clock()
        again = import_mlflow(f"sqlite:///{store / 'mlflow.db'}", settings=settings_sql)
        seconds_again = clock() - start
        valid_again = again.copied["runs"] == 0 and again.already["runs"] == runs
    finally:
        if args.keep:
            progress(f"kept the stores under {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    no_peer = "MLflow has no importer from one MLflow store into another: Shipyard's figure alone"
    results = rows(
        "sqlite",
        f"(a) MLflow SQLite store -> Shipyard, {runs} runs",
        seconds_sql,
        None,
        runs,
        valid_sql,
        [no_peer],
    )
    results += rows(
        "mlruns",
        f"(b) mlruns folder -> SQLite, {runs} runs (peer: mlflow migrate-filestore)",
        seconds_files,
        peer_files,
        runs,
        valid_files,
        [],
    )
    results.append(
        Result(
            key="again_seconds",
            title=f"(c) the import of (a) again: {runs} runs already there, nothing copied",
            unit="ms",
            higher_is_better=False,
            shipyard=seconds_again * 1000,
            valid=valid_again,
            notes=(no_peer,),
        )
    )
    info = harness.machine_info(PACKAGES)
    mode = "quick" if args.quick else "full"
    harness.print_table(f"{TITLE}, {mode} mode", results, machine=harness.machine_line(info), targets=False)
    if args.json:
        harness.write_json(args.json, TITLE, results, mode=mode, argv=list(sys.argv[1:]))
        progress(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
