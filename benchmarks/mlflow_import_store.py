"""Build the MLflow stores the import benchmark reads (run by an interpreter with ``mlflow``).

    python mlflow_import_store.py FOLDER RUNS KEYS STEPS

Writes FOLDER/mlflow.db (an MLflow SQLite store) and FOLDER/mlruns (an MLflow file store), each holding one
experiment of RUNS runs with 5 params, 3 tags and KEYS metrics of STEPS points each. MLflow itself makes the
SQLite schema (its migrations) and logs the first run through ``log_batch``; the other runs are the rows and
files it wrote for that one, repeated with their own ids and values in bulk (the client would take tens of
minutes for a million points). MLflow then reads a sample back from both stores, so the copies are exactly
what MLflow would have written.
"""

import os
import sqlite3
import sys
import time
import uuid
import warnings
from pathlib import Path

from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag

warnings.filterwarnings("ignore")
folder, runs, keys, steps = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
folder.mkdir(parents=True, exist_ok=True)
T0 = 1_700_000_000_000


def points(index: int) -> list[tuple[str, float, int, int]]:
    return [
        (f"metric_{k}", 1.0 / (index + step + k + 1), step, T0 + index * 1000 + step)
        for k in range(keys)
        for step in range(steps)
    ]


def params(index: int) -> dict[str, str]:
    return {
        "lr": str(0.001 * (index % 10 + 1)),
        "depth": str(index % 7),
        "seed": str(index),
        "opt": "adam",
        "bs": "64",
    }


# ---------------------------------------------------------------------- SQLite: MLflow's schema, bulk rows
uri = f"sqlite:///{folder / 'mlflow.db'}"
client = MlflowClient(uri)
experiment_id = client.create_experiment("bench-import", artifact_location=str(folder / "artifacts"))
first = client.create_run(experiment_id, run_name="run-0", start_time=T0)
client.log_batch(
    first.info.run_id,
    metrics=[Metric(k, v, ts, s) for k, v, s, ts in points(0)],
    params=[Param(k, v) for k, v in params(0).items()],
    tags=[RunTag("team", "bench")],
)
client.set_terminated(first.info.run_id, "FINISHED", end_time=T0 + 999)
db = sqlite3.connect(folder / "mlflow.db")
(template,) = db.execute("SELECT * FROM runs WHERE run_uuid = ?", (first.info.run_id,)).fetchall()
columns = [c[1] for c in db.execute("PRAGMA table_info(runs)")]
run_rows, metric_rows, latest_rows, param_rows, tag_rows = [], [], [], [], []
ids = [first.info.run_id]
for index in range(1, runs):
    run_id = uuid.uuid4().hex
    ids.append(run_id)
    row = dict(zip(columns, template, strict=True))
    row.update(
        run_uuid=run_id, name=f"run-{index}", start_time=T0 + index * 1000, end_time=T0 + index * 1000 + 999
    )
    row["artifact_uri"] = str(folder / "artifacts" / run_id / "artifacts")
    run_rows.append(tuple(row[c] for c in columns))
    series = points(index)
    metric_rows += [(k, v, ts, run_id, s, 0) for k, v, s, ts in series]
    last = {k: (v, ts, s) for k, v, s, ts in series}
    latest_rows += [(k, v, ts, s, 0, run_id) for k, (v, ts, s) in last.items()]
    param_rows += [(k, v, run_id) for k, v in params(index).items()]
    tag_rows += [
        ("mlflow.runName", f"run-{index}", run_id),
        ("team", "bench", run_id),
        ("mlflow.user", "bench", run_id),
    ]
with db:
    db.executemany(
        f"INSERT INTO runs ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})", run_rows
    )
    db.executemany(
        "INSERT INTO metrics (key, value, timestamp, run_uuid, step, is_nan) VALUES (?,?,?,?,?,?)",
        metric_rows,
    )
    db.executemany(
        "INSERT INTO latest_metrics (key, value, timestamp, step, is_nan, run_uuid) VALUES (?,?,?,?,?,?)",
        latest_rows,
    )
    db.executemany("INSERT INTO params (key, value, run_uuid) VALUES (?,?,?)", param_rows)
    db.executemany("INSERT INTO tags (key, value, run_uuid) VALUES (?,?,?)", tag_rows)
db.close()

# ---------------------------------------------------------------------- mlruns: FileStore's layout
root = folder / "mlruns"
exp_dir = root / "1"
exp_dir.mkdir(parents=True, exist_ok=True)
(exp_dir / "meta.yaml").write_text(
    f"artifact_location: {folder / 'artifacts'}\ncreation_time: {T0}\nexperiment_id: '1'\n"
    f"last_update_time: {T0}\nlifecycle_stage: active\nname: bench-import\n"
)
(root / "0").mkdir(exist_ok=True)
(root / "0" / "meta.yaml").write_text(
    f"artifact_location: {root / '0'}\ncreation_time: {T0}\nexperiment_id: '0'\n"
    f"last_update_time: {T0}\nlifecycle_stage: active\nname: Default\n"
)
for index, run_id in enumerate(ids):
    run_dir = exp_dir / run_id
    for sub in ("metrics", "params", "tags", "artifacts"):
        (run_dir / sub).mkdir(parents=True, exist_ok=True)
    start = T0 + index * 1000 if index else T0
    (run_dir / "meta.yaml").write_text(
        f"artifact_uri: {folder / 'artifacts' / run_id / 'artifacts'}\nend_time: {start + 999}\n"
        f"entry_point_name: ''\nexperiment_id: '1'\nlifecycle_stage: active\nrun_id: {run_id}\n"
        f"run_name: run-{index}\nsource_name: ''\nsource_type: 4\nsource_version: ''\nstart_time: {start}\n"
        "status: 3\ntags: []\nuser_id: bench\n"
    )
    by_key: dict[str, list[str]] = {}
    for k, v, s, ts in points(index):
        by_key.setdefault(k, []).append(f"{ts} {v} {s}\n")
    for k, lines in by_key.items():
        (run_dir / "metrics" / k).write_text("".join(lines))
    for k, v in params(index).items():
        (run_dir / "params" / k).write_text(v)
    for k, v in (("mlflow.runName", f"run-{index}"), ("team", "bench"), ("mlflow.user", "bench")):
        (run_dir / "tags" / k).write_text(v)

# ---------------------------------------------------------------------- MLflow reads both back
os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"
for store in (uri, f"file://{root}"):
    check = MlflowClient(store)
    (experiment,) = [e for e in check.search_experiments() if e.name == "bench-import"]
    sample = ids[len(ids) // 2]
    history = check.get_metric_history(sample, "metric_0")
    assert len(history) == steps, (store, len(history))
    assert check.get_run(sample).data.params == params(len(ids) // 2), store
    assert len(check.search_runs([experiment.experiment_id], max_results=min(runs, 1000))) == min(runs, 1000)
print(f"{time.time():.0f} built {runs} runs")
