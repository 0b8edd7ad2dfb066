"""Batch inference: Shipyard's ``batch_predict`` against a plain chunked pandas loop, side by side in one run.

    python benchmarks/batch.py [--quick] [--rows N] [--json out.json] [--keep]

The model is the demo's: a ``HistGradientBoostingClassifier`` (random_state 0) on scikit-learn's bundled
breast-cancer data, 30 float features, logged with its signature and registered. The input is one Parquet
file of ``--rows`` rows (default 10 million; quick: 1 million): an int64 ``id`` and the 30 features (rows of
the data set drawn with replacement plus 1% Gaussian noise, seed 0), written in row groups of 100,000.

Each cell runs in a process of its own; a sampler sums the RSS of that process and its children every
20 ms, so peak RSS counts the workers too. Every cell writes the same output (``id`` and the prediction,
Parquet); a cell whose predictions differ from the peer's is INVALID.

- peer: the loop a user writes: ``pyarrow.parquet.ParquetFile.iter_batches(100_000)`` -> ``to_pandas`` ->
  ``model.predict`` on the fitted estimator -> a ``ParquetWriter`` (no signature check, no run, no lineage);
- (a) ``batch_predict`` with one worker (the signature enforced, a tracked run, lineage with the output's
  sha256, the model version column): target >= 0.9x the peer's rows/s;
- (b) ``batch_predict`` with 2 workers against the peer on one core (``OMP_NUM_THREADS=1``): the scaling the
  issue asks for (>= 1.7x on 2 cores); (c) for context, 2 workers against the peer with every core;
- (d) peak RSS of (a) against the peer: bounded by the batch, not the input's size;
- (e), (f): (a) and (b) again with ``prefer="native"``: scikit-learn itself instead of the model's verified
  ONNX copy, which ``batch_predict`` (like ``shipyard serve``) runs by default; for context.

The machine may be shared: before each cell the script waits (at most 20 s) for other processes to leave the
CPUs idle, and a footnote says when they did not. Progress goes to stderr, the table to stdout.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from harness import (
    Result,
    base_parser,
    busy_text,
    machine_line,
    print_table,
    progress,
    wait_for_idle,
    write_json,
)

GROUP_ROWS = 100_000
MODEL = "models:/bench-batch/1"


# ---------------------------------------------------------------------- set-up (in the parent)
def make_model(home: Path) -> None:
    """Train and register the demo's model in the store at ``home``."""
    from sklearn.datasets import load_breast_cancer
    from sklearn.ensemble import HistGradientBoostingClassifier

    import shipyard

    data = load_breast_cancer(as_frame=True)
    features = data.frame[data.feature_names]
    model = HistGradientBoostingClassifier(random_state=0).fit(features, data.target)
    with shipyard.start_run("bench-batch") as run:
        shipyard.models.log(model, "model", input_example=features.head(5))
    shipyard.models.register(f"runs:/{run.run_id}/model", "bench-batch")


def make_input(path: Path, rows: int) -> None:
    """``rows`` rows of ``id`` and the 30 features, a row group at a time (memory stays small)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer(as_frame=True)
    base = data.frame[data.feature_names].to_numpy()
    scale = base.std(axis=0) * 0.01
    rng = np.random.default_rng(0)
    writer = None
    for start in range(0, rows, GROUP_ROWS):
        n = min(GROUP_ROWS, rows - start)
        values = base[rng.integers(0, len(base), n)] + rng.normal(size=(n, base.shape[1])) * scale
        columns = {"id": pa.array(np.arange(start, start + n, dtype=np.int64))}
        columns.update({name: pa.array(values[:, i]) for i, name in enumerate(data.feature_names)})
        table = pa.table(columns)
        if writer is None:
            writer = pq.ParquetWriter(path, table.schema)
        writer.write_table(table, row_group_size=GROUP_ROWS)
    assert writer is not None
    writer.close()


# ---------------------------------------------------------------------- the cells (each in its own process)
def cell_peer(source: str, output: str) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    import shipyard

    model = shipyard.models.load(MODEL).raw.estimator  # the fitted estimator itself
    names = list(model.feature_names_in_)
    writer = None
    for batch in pq.ParquetFile(source).iter_batches(batch_size=GROUP_ROWS):
        frame = batch.to_pandas()
        table = pa.table({"id": batch.column("id"), "prediction": model.predict(frame[names])})
        if writer is None:
            writer = pq.ParquetWriter(output, table.schema)
        writer.write_table(table)
    assert writer is not None
    writer.close()


def cell_shipyard(source: str, output: str, workers: int, prefer: str = "auto") -> None:
    from shipyard.batch import batch_predict

    batch_predict(MODEL, source, output, keys=["id"], workers=workers, batch_rows=GROUP_ROWS, prefer=prefer)


def run_cell(kind: str, source: Path, output: Path, workers: int, env: dict[str, str]) -> dict[str, float]:
    """Run one cell in a fresh process; its wall time and the peak RSS of its process tree (MiB)."""
    import psutil

    if output.exists():
        output.unlink()
    command = [sys.executable, __file__, "--cell", kind, "--source", str(source), "--output", str(output)]
    command += ["--workers", str(workers)]
    started = time.perf_counter()
    child = subprocess.Popen(command, env=env)
    peak = 0.0
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak
        parent = psutil.Process(child.pid)
        while not stop.is_set():
            try:
                tree = [parent, *parent.children(recursive=True)]
                rss = sum(p.memory_info().rss for p in tree if p.is_running())
            except psutil.Error:
                rss = 0
            peak = max(peak, rss / 2**20)
            time.sleep(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    code = child.wait(timeout=3600)
    seconds = time.perf_counter() - started
    stop.set()
    sampler.join()
    if code != 0:
        raise SystemExit(f"cell {kind} (workers={workers}) exited with {code}")
    return {"seconds": seconds, "peak_mib": peak}


def same_predictions(a: Path, b: Path) -> bool:
    import pyarrow.parquet as pq

    left = pq.read_table(a, columns=["id", "prediction"])
    right = pq.read_table(b, columns=["id", "prediction"])
    return left.column("id").equals(right.column("id")) and left.column("prediction").to_numpy().tolist() == (
        right.column("prediction").to_numpy().tolist()
    )


def main() -> None:
    parser = base_parser(__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, help="input rows (default 10,000,000; quick: 1,000,000)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    parser.add_argument("--cell", help=argparse_hidden())
    parser.add_argument("--source", help=argparse_hidden())
    parser.add_argument("--output", help=argparse_hidden())
    parser.add_argument("--workers", type=int, default=1, help=argparse_hidden())
    args = parser.parse_args()
    if args.cell:  # inside a cell's own process
        if args.cell == "peer":
            cell_peer(args.source, args.output)
        else:
            prefer = "native" if args.cell == "shipyard-native" else "auto"
            cell_shipyard(args.source, args.output, args.workers, prefer)
        return

    rows = args.rows or (1_000_000 if args.quick else 10_000_000)
    folder = Path(tempfile.mkdtemp(prefix="shipyard-bench-batch-"))
    env = {**os.environ, "SHIPYARD_HOME": str(folder / "home"), "PYTHONPATH": str(Path(__file__).parents[1])}
    os.environ.update(SHIPYARD_HOME=env["SHIPYARD_HOME"])
    one_core = {**env, "OMP_NUM_THREADS": "1"}
    try:
        progress("training and registering the demo's model")
        make_model(folder / "home")
        source = folder / "input.parquet"
        progress(f"writing {rows:,} rows x 30 features")
        make_input(source, rows)
        size_mib = source.stat().st_size / 2**20
        cells: dict[str, dict[str, float]] = {}
        busy: list[float | None] = []
        plan = [
            ("peer", "peer", 1, env),
            ("a", "shipyard", 1, env),
            ("peer-1core", "peer", 1, one_core),
            ("b", "shipyard", 2, env),
            ("e", "shipyard-native", 1, env),
            ("f", "shipyard-native", 2, env),
        ]
        for name, kind, workers, environment in plan:
            busy.append(wait_for_idle(name, 20))
            progress(f"cell {name}: {kind}, {workers} worker(s)")
            cells[name] = run_cell(kind, source, folder / f"{name}.parquet", workers, environment)
            cells[name]["rows_per_s"] = rows / cells[name]["seconds"]
            done = cells[name]
            progress(f"  {done['rows_per_s']:,.0f} rows/s, peak RSS {done['peak_mib']:,.0f} MiB")
        names = ("a", "b", "e", "f")
        valid = all(same_predictions(folder / "peer.parquet", folder / f"{n}.parquet") for n in names)
        notes = [f"busy CPUs before a cell: {busy_text(max((b or 0.0) for b in busy))}"] if any(busy) else []
        results = [
            Result(
                "a", "rows/s, 1 worker (checks, run, lineage)", "rows/s", True,
                cells["a"]["rows_per_s"], cells["peer"]["rows_per_s"], min_speedup=0.9, valid=valid,
                notes=tuple(notes),
            ),
            Result(
                "b", "rows/s, 2 workers vs the loop on one core", "rows/s", True,
                cells["b"]["rows_per_s"], cells["peer-1core"]["rows_per_s"], min_speedup=1.7, valid=valid,
            ),
            Result(
                "c", "rows/s, 2 workers vs the loop on every core", "rows/s", True,
                cells["b"]["rows_per_s"], cells["peer"]["rows_per_s"], valid=valid,
            ),
            Result(
                "d", f"peak RSS MiB, 1 worker (input {size_mib:,.0f} MiB)", "MiB", False,
                cells["a"]["peak_mib"], cells["peer"]["peak_mib"], valid=valid,
            ),
            Result(
                "e", "rows/s, 1 worker, prefer native (scikit-learn)", "rows/s", True,
                cells["e"]["rows_per_s"], cells["peer"]["rows_per_s"], valid=valid,
            ),
            Result(
                "f", "rows/s, 2 workers, prefer native, vs the loop on one core", "rows/s", True,
                cells["f"]["rows_per_s"], cells["peer-1core"]["rows_per_s"], valid=valid,
            ),
        ]  # fmt: skip
        print_table(
            f"Batch inference, {rows:,} rows x 30 features (demo model)",
            results,
            machine=machine_line(),
            peer="pandas loop",
        )
        if args.json:
            write_json(args.json, "batch", results, rows=rows, cells=cells)
    finally:
        if args.keep:
            progress(f"kept {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)


def argparse_hidden() -> str:
    import argparse

    return argparse.SUPPRESS


if __name__ == "__main__":
    main()
