"""Model registry throughput and model save/load: Shipyard against MLflow 3, side by side in one process.

    python benchmarks/registry.py [--quick] [--json out.json] [--profile] [--keep]

Needs MLflow, skops and the ONNX tools: ``pip install -e '.[bench,onnx]'``. Each system gets its own
embedded SQLite store and artifact folder in a fresh temporary folder; both run on the same machine, in the
same process, one after the other per row:

(a) register 1,000 versions of one model from a model logged once in a run — versions/s
(b) resolve ``models:/bench@champion`` 10,000 times — resolves/s; Shipyard through ``shipyard.models.get``
    and through ``registry_client(settings).resolve(parse_model_uri(...))``
(c) save + load a 100-tree RandomForestClassifier (breast-cancer data) and predict once — median ms of a
    few rounds, with save and load+predict also on rows of their own

No targets are set for these rows: each says how many times faster or slower Shipyard is, and is valid when
it was measured completely with correct answers (the versions numbered 1..N, the alias resolved to the
version it points at, the loaded model predicting what the original does). Every loop is bounded in time;
a row that measured fewer calls says so. ``--profile`` runs Shipyard's calls again under cProfile, outside
the timed sections, and prints the hot spots on stderr. Progress goes to stderr, the table to stdout.
"""

from __future__ import annotations

import cProfile
import io
import logging
import os
import pstats
import shutil
import statistics
import sys
import tempfile
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import harness
import numpy as np
from harness import Result, clock, progress

import shipyard
import shipyard.models
from shipyard.registry.uri import parse_model_uri

TITLE = "Shipyard vs MLflow 3: model registry and model save/load (embedded SQLite, one process)"
EXPERIMENT = "bench-registry"
MODEL = "bench"
ALIAS = "champion"
ALIAS_URI = f"models:/{MODEL}@{ALIAS}"
TREES = 100
NOTE_ROUNDS = (
    "(c) median of {rounds} rounds per system after one warm-up, each into a fresh folder; "
    "RandomForestClassifier({trees} trees) on breast-cancer (569x30), input_example=X[:5]; after loading, "
    "one predict of all 569 rows"
)
NOTE_SHIPYARD = (
    "(c) Shipyard save: skops file + an ONNX copy (skl2onnx) run by onnxruntime and checked against "
    "scikit-learn on the example, inferred signature, MODEL.yaml with the sha256 of every file, card; load: "
    "copies the package into a private temp folder verifying every file's sha256, reviews the skops types "
    "against an allow-list, rebuilds the forest with skops (no pickle), checks the input against the "
    "signature. Files: {files}"
)
NOTE_MLFLOW_SKOPS = (
    "(c) MLflow 3 save (its default format outside Databricks is skops; a forest needs "
    "skops_trusted_types=['sklearn.tree._tree.Tree'] or the save fails): skops file loaded back once as a "
    "check, inferred signature, input example, requirements inferred (imports captured in a subprocess), "
    "conda.yaml/python_env.yaml/requirements.txt; load: skops with the trusted types read from the model's "
    "own MLmodel, no integrity check. Files: {files}"
)
NOTE_MLFLOW_PICKLE = (
    "(c') MLflow with serialization_format='cloudpickle' (its default before skops): the same save without "
    "the skops check, the model pickled; load unpickles (runs arbitrary code from the file), no integrity "
    "check. Files: {files}"
)
PACKAGES = ("shipyard", "mlflow", "sqlalchemy", "scikit-learn", "skops", "skl2onnx", "onnxruntime", "numpy")


@dataclass(frozen=True)
class Plan:
    """Sizes and time budgets of one benchmark run."""

    quick: bool
    versions: int = 1000
    versions_budget_s: float = 300.0
    resolves: int = 10_000
    resolves_budget_s: float = 120.0
    rounds: int = 5  # (c): timed save/load rounds per system, after one untimed warm-up round
    rounds_budget_s: float = 300.0

    @classmethod
    def for_args(cls, quick: bool) -> Plan:
        if quick:
            return cls(
                quick=True,
                versions=200,
                versions_budget_s=60.0,
                resolves=2000,
                resolves_budget_s=30.0,
                rounds=3,
                rounds_budget_s=120.0,
            )
        return cls(quick=False)


# ---------------------------------------------------------------------- data
@dataclass(frozen=True)
class Data:
    """Breast-cancer features and labels, a small model for the registry, a forest for (c)."""

    X: np.ndarray
    y: np.ndarray
    small: Any
    forest: Any


def make_data() -> Data:
    from sklearn.datasets import load_breast_cancer
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = load_breast_cancer(return_X_y=True)
    small = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(X, y)
    forest = RandomForestClassifier(n_estimators=TREES, random_state=0, n_jobs=1).fit(X, y)
    return Data(X, y, small, forest)


# ---------------------------------------------------------------------- the two systems
class ShipyardSide:
    """Shipyard on its own store under ``home``, through ``shipyard.models``."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.settings = shipyard.Settings.load(environ={"SHIPYARD_HOME": str(home)}, cwd=home)
        self.client = shipyard.models.registry_client(self.settings)
        self.client.tracking.get_or_create_experiment(EXPERIMENT)  # store migrated before timing
        self.model_uri = ""
        self.registered = 0

    def log(self, model: Any, example: np.ndarray) -> str:
        with shipyard.start_run(experiment=EXPERIMENT, settings=self.settings) as run:
            info = shipyard.models.log(model, run=run, input_example=example)
        self.model_uri = info.uri
        return info.uri

    def register(self) -> int:
        return shipyard.models.register(self.model_uri, MODEL, settings=self.settings).version

    def set_alias(self, version: int) -> None:
        shipyard.models.set_alias(MODEL, ALIAS, version, settings=self.settings)

    def get(self) -> int:
        return shipyard.models.get(ALIAS_URI, settings=self.settings).version

    def resolve(self) -> int:
        return self.client.resolve(parse_model_uri(ALIAS_URI)).version  # type: ignore[arg-type]

    def save(self, model: Any, path: Path, example: np.ndarray) -> None:
        shipyard.models.save(model, path, input_example=example)

    def load_predict(self, path: Path, X: np.ndarray) -> np.ndarray:
        loaded = shipyard.models.load(str(path), settings=self.settings)
        return np.asarray(loaded.predict(X))


class MlflowSide:
    """MLflow 3 on its own SQLite store (tracking and registry) and artifact folder under ``home``."""

    def __init__(self, home: Path) -> None:
        # NOTE: MLflow reads these when imported, so they are set first and mlflow is imported here.
        os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
        os.environ["DO_NOT_TRACK"] = "true"
        os.environ["MLFLOW_ENABLE_ASYNC_LOGGING"] = "false"
        home.mkdir(parents=True, exist_ok=True)
        uri = f"sqlite:///{home / 'mlflow.db'}"
        os.environ["MLFLOW_TRACKING_URI"] = uri
        os.environ["MLFLOW_REGISTRY_URI"] = uri
        try:
            import mlflow
            import mlflow.sklearn
            from mlflow import MlflowClient
        except ModuleNotFoundError as exc:
            sys.exit(f"MLflow is not installed ({exc}); install the peers with: pip install -e '.[bench]'")
        from mlflow.utils.logging_utils import disable_logging

        for name in ("mlflow", "alembic"):
            # NOTE: mlflow.sklearn warns on every cloudpickle save; the warning is in footnote (c').
            logging.getLogger(name).setLevel(logging.ERROR)
        self.disable_logging = disable_logging
        self.mlflow = mlflow
        mlflow.set_tracking_uri(uri)
        mlflow.set_registry_uri(uri)
        self.client = MlflowClient()
        artifacts = (home / "artifacts").as_uri()
        self.experiment_id = mlflow.create_experiment(
            EXPERIMENT, artifact_location=f"{artifacts}/{EXPERIMENT}"
        )
        self.model_uri = ""
        self.registered = 0
        self._skops_types: dict[int, list[str]] = {}

    def log(self, model: Any, example: np.ndarray) -> str:
        with self.mlflow.start_run(experiment_id=self.experiment_id):
            info = self.mlflow.sklearn.log_model(model, name="model", input_example=example)
        # NOTE: else register_model prints two lines per version on stderr; after log_model, which
        # switches MLflow's event stream back on when it ends.
        self.disable_logging()
        self.model_uri = info.model_uri
        return info.model_uri

    def register(self) -> int:
        return int(self.mlflow.register_model(self.model_uri, MODEL).version)

    def set_alias(self, version: int) -> None:
        self.client.set_registered_model_alias(MODEL, ALIAS, str(version))

    def resolve(self) -> int:
        return int(self.client.get_model_version_by_alias(MODEL, ALIAS).version)

    def save(self, model: Any, path: Path, example: np.ndarray, *, pickle: bool = False) -> None:
        """MLflow 3's default format outside Databricks (skops), or cloudpickle."""
        if pickle:
            self.mlflow.sklearn.save_model(
                model, str(path), input_example=example, serialization_format="cloudpickle"
            )
            return
        self.mlflow.sklearn.save_model(
            model, str(path), input_example=example, skops_trusted_types=self.skops_types(model)
        )

    def skops_types(self, model: Any) -> list[str]:
        """The types skops will not load without being told (a forest's ``Tree``): MLflow's save loads the
        skops file back and refuses without them."""
        key = id(model)
        if key not in self._skops_types:
            import skops.io

            self._skops_types[key] = skops.io.get_untrusted_types(data=skops.io.dumps(model))
        return self._skops_types[key]

    def load_predict(self, path: Path, X: np.ndarray) -> np.ndarray:
        return np.asarray(self.mlflow.sklearn.load_model(str(path)).predict(X))


# ---------------------------------------------------------------------- timing and profiling
def bounded_loop(
    call: Callable[[], Any], count: int, budget_s: float, label: str, unit: str
) -> tuple[int, float, list[Any]]:
    """Call ``call`` up to ``count`` times within ``budget_s``; returns (calls, seconds, answers)."""
    answers = []
    harness.settle()
    start = last_report = clock()
    for _ in range(count):
        answers.append(call())
        if len(answers) % 50 == 0:
            now = clock()
            if now - start > budget_s:
                break
            if now - last_report > 10:
                last_report = now
                rate = len(answers) / (now - start)
                progress(f"    {label}: {len(answers):,}/{count:,} {unit}, {rate:,.0f} {unit}/s")
    return len(answers), clock() - start, answers


def profile(label: str, calls: Iterable[Callable[[], Any]], *, top: int = 25) -> None:
    """Run ``calls`` under cProfile (not timed) and print the top functions by own and cumulative time."""
    profiler = cProfile.Profile()
    profiler.enable()
    for call in calls:
        call()
    profiler.disable()
    for order in ("tottime", "cumulative"):
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).strip_dirs().sort_stats(order).print_stats(top)
        progress(f"profile of {label}, by {order}:\n{out.getvalue()}")


def measured_fewer(row: str, label: str, done: int, count: int, budget_s: float, unit: str) -> str:
    return (
        f"{label} ({row}): {done:,} of {count:,} {unit} measured within the {budget_s:.0f} s budget; "
        f"{unit}/s computed from those"
    )


# ---------------------------------------------------------------------- (a) registering versions
def bench_log_and_register(sy: ShipyardSide, ml: MlflowSide, data: Data, plan: Plan) -> list[Result]:
    example = data.X[:5]
    progress("(a) logging the small model once in a run on each side")
    harness.settle()
    sy_log_s = harness.timed(lambda: sy.log(data.small, example))
    harness.settle()
    ml_log_s = harness.timed(lambda: ml.log(data.small, example))
    log_row = Result(
        key="a0",
        title="log one small sklearn model in a run (once)",
        unit="ms",
        higher_is_better=False,
        shipyard=sy_log_s * 1000,
        peer=ml_log_s * 1000,
        notes=(
            "(a0) one sample each (StandardScaler + LogisticRegression, input_example=X[:5]); it includes "
            "starting and ending the run. Shipyard: skops + verified ONNX copy, signature, manifest with "
            "sha256 of every file; MLflow: skops (its default) loaded back as a check, signature, "
            "requirements inferred in a subprocess",
        ),
        details={"shipyard_uri": sy.model_uri, "mlflow_uri": ml.model_uri},
    )

    n = plan.versions
    results = {}
    for label, side in (("Shipyard", sy), ("MLflow", ml)):
        progress(
            f"(a) {label}: registering {n:,} versions of {MODEL!r} (budget {plan.versions_budget_s:.0f} s)"
        )
        results[label] = bounded_loop(side.register, n, plan.versions_budget_s, label, "versions")
    notes = [
        f"(a) Shipyard: shipyard.models.register({sy.model_uri.split('/')[0]}/…/model); MLflow: "
        "mlflow.register_model(models:/m-…); both return the new version's record"
    ]
    valid = True
    for label, (done, _, versions) in results.items():
        if done < n:
            notes.append(measured_fewer("a", label, done, n, plan.versions_budget_s, "versions"))
        if versions != list(range(1, done + 1)):
            valid = False
            notes.append(
                f"(a) {label} numbered its versions wrongly: first {versions[:3]}, last {versions[-3:]}"
            )
    (sy_done, sy_s, _), (ml_done, ml_s, _) = results["Shipyard"], results["MLflow"]
    sy.registered, ml.registered = sy_done, ml_done
    register_row = Result(
        key="a",
        title=f"register {n:,} versions of one logged model",
        unit="versions/s",
        higher_is_better=True,
        shipyard=sy_done / sy_s,
        peer=ml_done / ml_s,
        valid=valid,
        notes=tuple(notes),
        details={
            "shipyard_versions": sy_done,
            "shipyard_s": sy_s,
            "mlflow_versions": ml_done,
            "mlflow_s": ml_s,
        },
    )
    return [log_row, register_row]


# ---------------------------------------------------------------------- (b) resolving an alias
def bench_resolve(sy: ShipyardSide, ml: MlflowSide, plan: Plan) -> list[Result]:
    targets = {}
    for label, side in (("Shipyard", sy), ("MLflow", ml)):
        targets[label] = max(1, side.registered // 2)  # an alias to a version in the middle
        side.set_alias(targets[label])
    n = plan.resolves
    calls = {
        "Shipyard get": (sy.get, targets["Shipyard"]),
        "Shipyard resolve": (sy.resolve, targets["Shipyard"]),
        "MLflow": (ml.resolve, targets["MLflow"]),
    }
    measured = {}
    for label, (call, _) in calls.items():
        progress(f"(b) {label}: {n:,} resolves of {ALIAS_URI} (budget {plan.resolves_budget_s:.0f} s)")
        call()  # warm-up: the first query compiles SQL and opens connections
        measured[label] = bounded_loop(call, n, plan.resolves_budget_s, label, "resolves")

    def problems(label: str) -> tuple[list[str], bool]:
        """Footnotes for ``label``'s loop, and whether every answer was right."""
        done, _, answers = measured[label]
        expected = calls[label][1]
        notes = []
        if done < n:
            notes.append(measured_fewer("b", label, done, n, plan.resolves_budget_s, "resolves"))
        wrong = sorted({a for a in answers if a != expected})
        if wrong:
            notes.append(f"(b) {label} resolved {ALIAS_URI} to version(s) {wrong}, not {expected}")
        return notes, not wrong

    ml_done, ml_s, _ = measured["MLflow"]
    ml_notes, ml_right = problems("MLflow")
    rows = []
    for key, label, how in (
        ("b", "Shipyard get", "shipyard.models.get(uri, settings=…)"),
        (
            "b'",
            "Shipyard resolve",
            "registry_client(settings).resolve(parse_model_uri(uri)), client made once",
        ),
    ):
        done, seconds, _ = measured[label]
        sy_notes, sy_right = problems(label)
        notes = [
            f"({key}) Shipyard: {how}; MLflow: MlflowClient().get_model_version_by_alias, client made once"
        ]
        notes += sy_notes + (ml_notes if key == "b" else [])
        rows.append(
            Result(
                key=key,
                title=f"resolve {ALIAS_URI} x{n:,}" + (" (registry client)" if key == "b'" else ""),
                unit="resolves/s",
                higher_is_better=True,
                shipyard=done / seconds,
                peer=ml_done / ml_s,
                valid=sy_right and ml_right,
                notes=tuple(notes),
                details={
                    "shipyard_resolves": done,
                    "shipyard_s": seconds,
                    "mlflow_resolves": ml_done,
                    "mlflow_s": ml_s,
                    "alias_version": calls[label][1],
                },
            )
        )
    return rows


# ---------------------------------------------------------------------- (c) saving and loading a forest
def save_load_rounds(
    save: Callable[[Path], Any],
    load_predict: Callable[[Path], np.ndarray],
    expected: np.ndarray,
    folder: Path,
    plan: Plan,
    label: str,
) -> tuple[list[float], list[float], bool]:
    """One untimed warm-up round, then up to ``plan.rounds`` timed ones, each into a fresh folder.

    Returns save ms and load+predict ms per round, and whether every loaded model predicted ``expected``.
    """
    saves, loads = [], []
    correct = True
    start = clock()
    for index in range(plan.rounds + 1):
        path = folder / f"round-{index}"
        harness.settle()
        save_s = harness.timed(lambda path=path: save(path))
        harness.settle()
        began = clock()
        predicted = load_predict(path)
        load_s = clock() - began
        correct = correct and np.array_equal(predicted, expected)
        del predicted
        shutil.rmtree(path, ignore_errors=True)
        if index > 0:
            saves.append(save_s * 1000)
            loads.append(load_s * 1000)
            progress(
                f"    {label}: round {index}: save {save_s * 1000:,.0f} ms, "
                f"load+predict {load_s * 1000:,.0f} ms"
            )
        if clock() - start > plan.rounds_budget_s:
            break
    return saves, loads, correct


def package_files(save: Callable[[Path], Any], folder: Path) -> str:
    """The files over 100 kB that one save writes, with their sizes."""
    path = folder / "facts"
    save(path)
    files = [
        f"{p.relative_to(path)} {p.stat().st_size / 1e6:.1f} MB"
        for p in sorted(path.rglob("*"))
        if p.is_file() and p.stat().st_size > 100_000
    ]
    shutil.rmtree(path, ignore_errors=True)
    return ", ".join(files)


def bench_save_load(sy: ShipyardSide, ml: MlflowSide, data: Data, root: Path, plan: Plan) -> list[Result]:
    example = data.X[:5]
    sides: dict[str, tuple[Callable[[Path], Any], Callable[[Path], np.ndarray]]] = {
        "Shipyard": (
            lambda path: sy.save(data.forest, path, example),
            lambda path: sy.load_predict(path, data.X),
        ),
        "MLflow skops": (
            lambda path: ml.save(data.forest, path, example),
            lambda path: ml.load_predict(path, data.X),
        ),
        "MLflow cloudpickle": (
            lambda path: ml.save(data.forest, path, example, pickle=True),
            lambda path: ml.load_predict(path, data.X),
        ),
    }
    expected = data.forest.predict(data.X)
    measured = {}
    files = {}
    for label, (save, load_predict) in sides.items():
        folder = root / f"packages-{label.lower().replace(' ', '-')}"
        folder.mkdir(parents=True, exist_ok=True)
        progress(
            f"(c) {label}: save + load + predict a {TREES}-tree forest, 1 warm-up + {plan.rounds} rounds"
        )
        measured[label] = save_load_rounds(save, load_predict, expected, folder, plan, label)
        files[label] = package_files(save, folder)

    sy_save, sy_load, sy_ok = measured["Shipyard"]
    rows = []
    for key, label in (("c", "MLflow skops"), ("c'", "MLflow cloudpickle")):
        ml_save, ml_load, ml_ok = measured[label]
        fmt = label.split()[1]
        notes = []
        if key == "c":
            notes += [
                NOTE_ROUNDS.format(rounds=len(sy_save), trees=TREES),
                NOTE_SHIPYARD.format(files=files["Shipyard"]),
                NOTE_MLFLOW_SKOPS.format(files=files[label]),
            ]
        else:
            notes.append(NOTE_MLFLOW_PICKLE.format(files=files[label]))
        valid = sy_ok and ml_ok and len(sy_save) == plan.rounds and len(ml_save) == plan.rounds
        if not sy_ok or not ml_ok:
            notes.append(
                f"({key}) a loaded model predicted differently from the original: "
                f"Shipyard correct={sy_ok}, {label} correct={ml_ok}"
            )
        if len(sy_save) < plan.rounds or len(ml_save) < plan.rounds:
            notes.append(f"({key}) the {plan.rounds_budget_s:.0f} s budget cut the rounds short")
        details = {"shipyard_save_ms": sy_save, "shipyard_load_ms": sy_load}
        details |= {"mlflow_format": fmt, "mlflow_save_ms": ml_save, "mlflow_load_ms": ml_load}
        details |= {"shipyard_files": files["Shipyard"], "mlflow_files": files[label]}
        totals = (
            [s + ld for s, ld in zip(sy_save, sy_load, strict=True)],
            [s + ld for s, ld in zip(ml_save, ml_load, strict=True)],
        )
        for suffix, title, sy_ms, ml_ms in (
            ("", f"save + load + predict RandomForest({TREES}), MLflow {fmt}", *totals),
            (".save", "  save only", sy_save, ml_save),
            (".load", "  load + predict only", sy_load, ml_load),
        ):
            rows.append(
                Result(
                    key=key + suffix,
                    title=title,
                    unit="ms",
                    higher_is_better=False,
                    shipyard=statistics.median(sy_ms),
                    peer=statistics.median(ml_ms),
                    valid=valid,
                    notes=tuple(notes) if not suffix else (),
                    details=details if not suffix else {},
                )
            )
    return rows


def profile_shipyard(sy: ShipyardSide, data: Data, root: Path) -> None:
    """Shipyard's calls of (a), (b) and (c) again under cProfile, outside every timed section."""
    profile("(a) Shipyard register x200", [sy.register] * 200)
    profile("(b) Shipyard get x2000", [sy.get] * 2000)
    profile("(b') Shipyard resolve x2000", [sy.resolve] * 2000)
    path = root / "profiled"
    profile("(c) Shipyard save x1", [lambda: sy.save(data.forest, path, data.X[:5])])
    profile("(c) Shipyard load + predict x1", [lambda: sy.load_predict(path, data.X)])


# ---------------------------------------------------------------------- main
def main(argv: Sequence[str] | None = None) -> int:
    parser = harness.base_parser(__doc__.splitlines()[0])
    parser.add_argument("--profile", action="store_true", help="profile Shipyard's calls afterwards (stderr)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary stores, and say where")
    args = parser.parse_args(argv)
    plan = Plan.for_args(args.quick)
    root = Path(tempfile.mkdtemp(prefix="shipyard-bench-registry-"))
    progress(f"stores under {root}; {'quick' if plan.quick else 'full'} mode")
    # NOTE: scikit-learn, skl2onnx and MLflow warn about versions and inferred types on every save; the
    # warnings say nothing about speed and would bury the progress lines.
    warnings.filterwarnings("ignore", category=UserWarning)
    warnings.filterwarnings("ignore", category=FutureWarning)
    try:
        data = make_data()
        sy = ShipyardSide(root / "shipyard")
        ml = MlflowSide(root / "mlflow")
        results = bench_log_and_register(sy, ml, data, plan)
        results += bench_resolve(sy, ml, plan)
        results += bench_save_load(sy, ml, data, root, plan)
        if args.profile:
            profile_shipyard(sy, data, root)
    finally:
        if args.keep:
            progress(f"kept the stores under {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    info = harness.machine_info(PACKAGES)
    mode = "quick" if plan.quick else "full"
    harness.print_table(f"{TITLE}, {mode} mode", results, machine=harness.machine_line(info), targets=False)
    if args.json:
        verdicts = {r.key: harness.verdict(r) for r in results}
        harness.write_json(args.json, TITLE, results, mode=mode, argv=list(sys.argv[1:]), verdicts=verdicts)
        progress(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
