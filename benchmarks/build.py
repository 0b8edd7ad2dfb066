"""Container build contexts: ``shipyard build`` against ``mlflow models generate-dockerfile``, side by side.

    python benchmarks/build.py [--quick] [--json out.json]

Needs MLflow (``pip install -e '.[bench]'``). The demo's kind of model (a 100-tree RandomForestClassifier on
breast-cancer, with an input example) is logged and registered in each system's own embedded store in a
fresh temporary folder; then each CLI writes the build context for ``models:/bench@champion`` into an empty
folder, run as a user runs it (a new process each time, its start-up included), alternating between the
systems. No engine builds an image: both write the context only (MLflow's command also writes only the
context). Row: the median wall time of the runs, and the context's size. Target: Shipyard < 5 s.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import harness
from harness import Result, clock, progress

TITLE = "Build contexts: shipyard build vs mlflow models generate-dockerfile (CLI, new process each run)"
PACKAGES = ("shipyard", "mlflow", "scikit-learn", "skops", "skl2onnx", "onnxruntime")
BIN = Path(sys.executable).parent
_SETUP_SHIPYARD = """
import shipyard, shipyard.models
from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import RandomForestClassifier
X, y = load_breast_cancer(return_X_y=True, as_frame=True)
model = RandomForestClassifier(n_estimators=100, random_state=0).fit(X, y)
with shipyard.start_run("bench-build") as run:
    info = shipyard.models.log(model, "model", run=run, input_example=X.head(5))
version = shipyard.models.register(info.uri, "bench")
shipyard.models.set_alias("bench", "champion", version.version)
"""
_SETUP_MLFLOW = """
import mlflow, mlflow.sklearn
from mlflow import MlflowClient
from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import RandomForestClassifier
X, y = load_breast_cancer(return_X_y=True, as_frame=True)
model = RandomForestClassifier(n_estimators=100, random_state=0).fit(X, y)
mlflow.set_experiment("bench-build")
with mlflow.start_run():
    info = mlflow.sklearn.log_model(model, name="model", input_example=X.head(5),
                                    registered_model_name="bench",
                                    skops_trusted_types=["sklearn.tree._tree.Tree"])
MlflowClient().set_registered_model_alias("bench", "champion", info.registered_model_version)
"""


def _size_mib(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 2**20


def _run(command: list[str], env: dict[str, str], cwd: Path) -> float:
    start = clock()
    done = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True, timeout=600)
    elapsed = clock() - start
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed: {done.stderr[-2000:]}")
    return elapsed


def main() -> int:
    parser = harness.base_parser(__doc__ or "")
    args = parser.parse_args()
    rounds = 3 if args.quick else 7
    root = Path(tempfile.mkdtemp(prefix="bench-build-"))
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SHIPYARD_", "MLFLOW_"))}
        shipyard_env = {**env, "SHIPYARD_HOME": str(root / "shipyard-home")}
        mlflow_env = {**env, "MLFLOW_TRACKING_URI": f"sqlite:///{root / 'mlflow.db'}"}
        progress("logging and registering the model in each system")
        _run([sys.executable, "-c", _SETUP_SHIPYARD], shipyard_env, root)
        (root / "mlruns").mkdir()
        _run([sys.executable, "-c", _SETUP_MLFLOW], mlflow_env, root)
        times: dict[str, list[float]] = {"shipyard": [], "mlflow": []}
        sizes: dict[str, float] = {}
        for index in range(rounds):
            for system in ("shipyard", "mlflow"):
                out = root / f"{system}-{index}"
                if system == "shipyard":
                    command = [str(BIN / "shipyard"), "build", "models:/bench@champion", "-o", str(out)]
                    times[system].append(_run(command, shipyard_env, root))
                else:
                    command = [
                        str(BIN / "mlflow"),
                        "models",
                        "generate-dockerfile",
                        "-m",
                        "models:/bench@champion",
                    ]
                    command += ["-d", str(out), "--env-manager", "local"]
                    times[system].append(_run(command, mlflow_env, root))
                sizes[system] = _size_mib(out)
                progress(f"round {index + 1}/{rounds} {system}: {times[system][-1]:.2f} s")
        shipyard_s = statistics.median(times["shipyard"])
        mlflow_s = statistics.median(times["mlflow"])
        valid = all((root / f"{system}-0" / "Dockerfile").is_file() for system in ("shipyard", "mlflow"))
        results = [
            Result(
                key="build-context",
                title="write the build context of the demo's model (median of runs)",
                unit="s",
                higher_is_better=False,
                shipyard=shipyard_s,
                peer=mlflow_s,
                max_shipyard=5.0,
                valid=valid,
                notes=(
                    f"{rounds} runs each, alternating; context size {sizes['shipyard']:.2f} MiB (Shipyard: "
                    f"Dockerfile, deploy.yaml, requirements, the verified package with its ONNX copy) vs "
                    f"{sizes['mlflow']:.2f} MiB (MLflow: Dockerfile, model_dir)",
                ),
                details={"runs_s": times},
            )
        ]
        harness.print_table(TITLE, results, machine=harness.machine_line(harness.machine_info(PACKAGES)))
        if args.json:
            harness.write_json(args.json, TITLE, results)
        return 0 if all(r.passed for r in results) else 1
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
