"""Keyset pages of run search at 100,000 runs: the first page, a page ~50,000 rows deep through a cursor, and
the same page through OFFSET, on an embedded SQLite store (Shipyard alone: no peer, no targets).

    python benchmarks/search_keyset.py [--runs 100000] [--page 100] [--repeats 20] [--json out.json] [--keep]

The runs are written straight into the store in a few large transactions (as ``benchmarks/server.py`` fills
its store: 10 params and 5 latest metrics each, start times 1 ms apart; no metric history), then ANALYZE.
Each figure is the median server time of ``SqlTrackingStore.search_page`` — the query and the loading of the
page's params, metrics and tags — over ``--repeats`` calls after one warm-up. The cursor page and the offset
page are checked to hold the same runs.
"""

from __future__ import annotations

import functools
import json
import random
import shutil
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import harness
from harness import clock, progress

import shipyard
from shipyard.tracking.cursors import RunPage

EXPERIMENT = "bench-keyset"
ORDERS: list[tuple[str, str | None, list[str]]] = [
    ("start_time desc", None, ["attributes.start_time desc"]),
    ("metrics.m0 desc", None, ["metrics.m0 desc"]),
    ("metrics.m0 desc, filter m0 > 0.1", "metrics.m0 > 0.1", ["metrics.m0 desc"]),
]


def fill(settings: shipyard.Settings, count: int) -> str:
    """``count`` finished runs of 10 params and 5 latest metrics each in one experiment; its id."""
    import sqlalchemy as sa

    from shipyard.store import schema
    from shipyard.store.db import open_store
    from shipyard.tracking.client import TrackingClient

    experiment = TrackingClient(settings).get_or_create_experiment(EXPERIMENT)
    store = open_store(settings.db_url)
    rng = random.Random(4242)
    base = int(time.time() * 1000) - count
    chunk = 20_000
    for first in range(0, count, chunk):
        batch = range(first, min(first + chunk, count))
        run_rows = [
            {
                "run_id": uuid.uuid4().hex,
                "experiment_id": experiment.experiment_id,
                "name": f"scale-{i}",
                "status": "FINISHED",
                "user": "bench",
                "start_time": base + i,
                "end_time": base + i + 1,
                "artifact_uri": f"{experiment.artifact_location.rstrip('/')}/{i}/artifacts",
                "lifecycle_stage": "active",
            }
            for i in batch
        ]
        with store.write() as conn:
            conn.execute(schema.runs.insert(), run_rows)
            ids = [r["run_id"] for r in run_rows]
            pks = dict(
                conn.execute(
                    sa.select(schema.runs.c.run_id, schema.runs.c.id).where(schema.runs.c.run_id.in_(ids))
                ).all()
            )
            param_rows, metric_rows = [], []
            for i, row in zip(batch, run_rows, strict=True):
                pk = pks[row["run_id"]]
                param_rows += [{"run_pk": pk, "key": f"p{j}", "value": f"value-{i}-{j}"} for j in range(10)]
                metric_rows += [
                    {
                        "run_pk": pk,
                        "key": f"m{j}",
                        "value": rng.random(),
                        "step": 0,
                        "timestamp": row["start_time"],
                    }
                    for j in range(5)
                ]
            conn.execute(schema.params.insert(), param_rows)
            conn.execute(schema.latest_metrics.insert(), metric_rows)
        progress(f"    {min(first + chunk, count):,}/{count:,} runs")
    with store.write() as conn:
        conn.exec_driver_sql("ANALYZE")
    store.engine.dispose()
    return experiment.experiment_id


def measure(
    settings: shipyard.Settings, experiment_id: str, page: int, depth: int, repeats: int
) -> list[dict[str, Any]]:
    backend = shipyard.get_client(settings).backend

    def search(filter: str | None, order: list[str], **where: Any) -> RunPage:
        return backend.search_page(  # type: ignore[no-any-return]
            [experiment_id], filter, order, limit=page, columns=None, include_deleted=False, **where
        )

    rows = []
    for label, filter, order in ORDERS:
        progress(f"{label}: first page, cursor page at row {depth:,}, offset page at row {depth:,}")
        # The cursor of row depth - 1, found once (by offset) outside the timed calls.
        cursor = backend.search_page(
            [experiment_id], filter, order, offset=depth - 1, limit=1, columns=[], include_deleted=False
        ).next_cursor
        assert cursor is not None, f"fewer than {depth + 1:,} runs match {filter!r}"
        by_cursor = [r.run_id for r in search(filter, order, after=cursor)]
        by_offset = [r.run_id for r in search(filter, order, offset=depth)]
        assert by_cursor == by_offset and len(by_cursor) == page, "the cursor and offset pages differ"
        first_ms, first = harness.median_ms(functools.partial(search, filter, order), repeats=repeats)
        cursor_ms, deep = harness.median_ms(
            functools.partial(search, filter, order, after=cursor), repeats=repeats
        )
        offset_ms, far = harness.median_ms(
            functools.partial(search, filter, order, offset=depth), repeats=repeats
        )
        rows.append(
            {
                "order": label,
                "first_ms": first_ms,
                "cursor_ms": cursor_ms,
                "offset_ms": offset_ms,
                "samples_ms": {"first": first, "cursor": deep, "offset": far},
            }
        )
    return rows


def print_rows(rows: Sequence[dict[str, Any]], runs: int, page: int, depth: int, repeats: int) -> None:
    print(f"Run search, keyset pages: {runs:,} runs on SQLite, pages of {page}, median of {repeats} (ms)")
    print(harness.machine_line())
    header = ("order", "page 1", f"cursor @{depth:,}", f"OFFSET {depth:,}")
    widths = (max(len(header[0]), *(len(r["order"]) for r in rows)), 8, 14, 14)
    print("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    for r in rows:
        cells = (r["order"], f"{r['first_ms']:.2f}", f"{r['cursor_ms']:.2f}", f"{r['offset_ms']:.2f}")
        print("  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)))


def main(argv: Sequence[str] | None = None) -> int:
    parser = harness.base_parser(__doc__.splitlines()[0])
    parser.add_argument(
        "--runs", type=int, default=100_000, help="runs in the store (100,000; quick: 10,000)"
    )
    parser.add_argument("--page", type=int, default=100, help="runs per page (100)")
    parser.add_argument("--repeats", type=int, default=20, help="timed calls per figure (20)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary store, and say where")
    args = parser.parse_args(argv)
    runs = 10_000 if args.quick and args.runs == 100_000 else args.runs
    depth = runs // 2
    home = Path(tempfile.mkdtemp(prefix="shipyard-keyset-"))
    try:
        settings = shipyard.Settings.load(environ={"SHIPYARD_HOME": str(home)}, cwd=home)
        progress(f"filling {runs:,} runs into {settings.db_url}")
        started = clock()
        experiment_id = fill(settings, runs)
        progress(f"filled in {clock() - started:.1f} s")
        rows = measure(settings, experiment_id, args.page, depth, args.repeats)
        print_rows(rows, runs, args.page, depth, args.repeats)
        if args.json:
            Path(args.json).write_text(json.dumps({"runs": runs, "page": args.page, "rows": rows}, indent=2))
    finally:
        if args.keep:
            progress(f"kept the store under {home}")
        else:
            shutil.rmtree(home, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
