"""The tuning pages of a 46,000-trial search (where Optuna Dashboard gives up), on an embedded SQLite store.

    python benchmarks/ui_tuning.py [--trials 46000] [--repeats 5] [--keep]

Shipyard alone (no peer). A real one-trial search is run, then ``--trials`` more trials are written straight
into the store in a few large transactions (:func:`seed_search`; 90 % complete, the rest pruned or failed,
params x, n and kind, no metric history), then ANALYZE. The platform server runs under uvicorn in a thread;
each row is the median wall time of ``--repeats`` GETs after one warm-up, as a browser asks for them: the
search page (its trials table), the page sorted by the objective and its next page by cursor, the history
chart's JSON, the importances fragment and the searches list; then the search page of a second such search
that logged no trial counts (as while it runs: the page counts its trials' states). The tests share
:func:`seed_search`.
"""

from __future__ import annotations

import argparse
import random
import re
import shutil
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

CHOICES = ("a", "b", "c")


def _score(trial: Any) -> float:
    return -((trial.params["x"] - 2.0) ** 2)


def seed_search(
    settings: Any,
    trials: int,
    *,
    choices: Sequence[str] = CHOICES,
    seed: int = 7,
    experiment: str = "tuning",
    counts_logged: bool = True,
) -> str:
    """A search of ``trials`` + 1 trials, the search's run id: one real trial (so the search has its tags,
    params and spec), then ``trials`` written straight into the store (score = -(x - 2)² + noise). With
    ``counts_logged``, the search's trial counts are those it would have logged at its end; without, it has
    none (as while it runs), so a page counts the trials' states itself."""
    import sqlalchemy as sa

    import shipyard
    from shipyard.store import schema
    from shipyard.store.db import open_store
    from shipyard.tuning import tune
    from shipyard.tuning.runner import PARENT_TAG, STATE_TAG, TRIAL_TAG

    spec = {
        "name": "large",
        "experiment": experiment,
        "objective": {"metric": "score", "direction": "maximize"},
        "parameters": [
            {"name": "x", "type": "float", "low": -5, "high": 5},
            {"name": "n", "type": "int", "low": 1, "high": 100},
            {"name": "kind", "type": "categorical", "choices": list(choices)},
        ],
        "algorithm": {"name": "random", "seed": 0},
        "max_trials": 1,
    }
    result = tune(spec, _score, settings=settings, report=False)
    parent = shipyard.get_client(settings).get_run(result.run_id)
    rng = random.Random(seed)
    store = open_store(settings.db_url)
    counts = {"COMPLETE": 0, "PRUNED": 0, "FAIL": 0}
    chunk = 20_000
    for first in range(1, trials + 1, chunk):
        numbers = range(first, min(first + chunk, trials + 1))
        rows = [
            {
                "run_id": uuid.uuid4().hex,
                "experiment_id": parent.experiment_id,
                "name": f"{parent.name}-trial-{i}",
                "status": "FINISHED",
                "user": "seed",
                "parent_run_id": parent.run_id,
                "start_time": parent.start_time + i,
                "end_time": parent.start_time + i + rng.randint(1, 5000),
                "artifact_uri": f"seeded/{i}/artifacts",
                "lifecycle_stage": "active",
            }
            for i in numbers
        ]
        with store.write() as conn:
            conn.execute(schema.runs.insert(), rows)
            ids = [r["run_id"] for r in rows]
            pks = dict(
                conn.execute(
                    sa.select(schema.runs.c.run_id, schema.runs.c.id).where(schema.runs.c.run_id.in_(ids))
                ).all()
            )
            params, tags, metrics = [], [], []
            for i, row in zip(numbers, rows, strict=True):
                pk, x, n = pks[row["run_id"]], rng.uniform(-5, 5), rng.randint(1, 100)
                state = "COMPLETE" if rng.random() < 0.9 else rng.choice(["PRUNED", "FAIL"])
                counts[state] += 1
                params += [
                    {"run_pk": pk, "key": "x", "value": repr(x)},
                    {"run_pk": pk, "key": "n", "value": str(n)},
                    {"run_pk": pk, "key": "kind", "value": rng.choice(choices)},
                ]
                tags += [
                    {"run_pk": pk, "key": PARENT_TAG, "value": parent.run_id},
                    {"run_pk": pk, "key": TRIAL_TAG, "value": f"{parent.run_id}:{i}"},
                    {"run_pk": pk, "key": STATE_TAG, "value": state},
                ]
                if state == "COMPLETE":
                    value = -((x - 2.0) ** 2) + 0.01 * n + rng.gauss(0, 0.1)
                    metrics.append({"run_pk": pk, "key": "score", "value": value, "step": 0, "timestamp": 0})
            conn.execute(schema.params.insert(), params)
            conn.execute(schema.tags.insert(), tags)
            conn.execute(schema.latest_metrics.insert(), metrics)
    with store.write() as conn:
        parent_pk = conn.execute(
            sa.select(schema.runs.c.id).where(schema.runs.c.run_id == parent.run_id)
        ).scalar_one()
        for state, count in counts.items():
            logged = schema.latest_metrics.c
            mine = (logged.run_pk == parent_pk) & (logged.key == f"trials_{state.lower()}")
            if counts_logged:
                conn.execute(schema.latest_metrics.update().where(mine).values(value=logged.value + count))
            else:
                conn.execute(schema.latest_metrics.delete().where(mine))
        conn.exec_driver_sql("ANALYZE")
    store.engine.dispose()
    return parent.run_id


def _serve(settings: Any) -> tuple[str, Any, threading.Thread]:
    import socket

    import uvicorn

    from shipyard.server.app import create_app

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    return f"http://127.0.0.1:{port}", server, thread


def measure(url: str, search: str, repeats: int) -> list[tuple[str, float, int]]:
    """(what, median ms, bytes) for each page a visit asks for."""
    import httpx

    rows = []
    with httpx.Client(base_url=url, timeout=300) as web:
        first = web.get(f"/ui/tuning/{search}?order=score").text
        after = re.search(r'href="\?([^"]+)" id="next-trials"', first)
        assert after is not None, "the first page has no next page"
        for label, path in (
            ("search page (trials 0-49)", f"/ui/tuning/{search}"),
            ("sorted by score", f"/ui/tuning/{search}?order=score"),
            ("next page by cursor", f"/ui/tuning/{search}?{after[1].replace('&amp;', '&')}"),
            ("history JSON", f"/ui/tuning/{search}/history"),
            ("importances fragment", f"/ui/tuning/{search}/importances"),
            ("searches list", "/ui/tuning"),
        ):
            answer = web.get(path)
            assert answer.status_code == 200, (path, answer.text[-500:])
            samples = []
            for _ in range(repeats):
                started = time.perf_counter()
                web.get(path).raise_for_status()
                samples.append((time.perf_counter() - started) * 1000.0)
            rows.append((label, statistics.median(samples), len(answer.content)))
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=46_000, help="trials written into the store (46,000)")
    parser.add_argument("--repeats", type=int, default=5, help="timed GETs per row (5)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary store, and say where")
    args = parser.parse_args(argv)
    import shipyard

    home = Path(tempfile.mkdtemp(prefix="shipyard-ui-tuning-"))
    try:
        settings = shipyard.Settings.load(environ={"SHIPYARD_HOME": str(home)}, cwd=home)
        started = time.perf_counter()
        finished = seed_search(settings, args.trials)
        print(f"seeded {args.trials:,} trials in {time.perf_counter() - started:.1f} s")
        url, server, thread = _serve(settings)
        try:
            rows = measure(url, finished, args.repeats)
            # The same search while it runs: no counts logged yet, so the page counts the trials' states.
            running = seed_search(settings, args.trials, counts_logged=False, experiment="tuning-running")
            unlogged = measure(url, running, args.repeats)[:1]
        finally:
            server.should_exit = True
            thread.join(timeout=15)
        print(f"Tuning pages at {args.trials + 1:,} trials, SQLite, median of {args.repeats} (ms)")
        for label, ms, size in rows:
            print(f"  {label:<40} {ms:>9.1f} ms  {size:>9,} bytes")
        for label, ms, size in unlogged:
            label = f"{label}, counts by scan (running)"
            print(f"  {label:<40} {ms:>9.1f} ms  {size:>9,} bytes")
    finally:
        if args.keep:
            print(f"kept the store under {home}")
        else:
            shutil.rmtree(home, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
