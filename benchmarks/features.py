"""Feature store: Shipyard's point-in-time training sets against Feast's file and DuckDB offline stores.

    python benchmarks/features.py [--quick] [--json out.json] [--seed 7] [--feast-budget 600]

Needs Feast: ``pip install -e '.[bench]'`` (``feast[duckdb]``). Both sides read the same Parquet file: a
feature view of 1,000,000 rows (10,000 customers, about 100 rows each over 90 days, 10 float features; a
30-day TTL) and 100,000 entity rows at random times, 5% of them before their customer's first feature row
(quick: 100,000 feature rows, 10,000 entity rows).

(a) the historical join against Feast's file offline store (pandas/dask): wall time of
    ``get_historical_features(...)`` to a pandas DataFrame; Shipyard median of 3 after a warm-up, Feast's file
    store once (it takes seconds to minutes)
(b) the same against Feast's DuckDB offline store (ibis on DuckDB), median of 3 after a warm-up
(c) peak RSS of the process that did (a)/(b) (VmHWM: imports, the entity rows, the join)
(d) entity rows in the result, of the 100,000 asked for (Feast's file store drops those with no feature row
    within the TTL: its issues #3003, #3863)
(e) sampled entity rows (1,000) whose 10 values are not all those of a brute-force pandas reference (equal,
    or null in both); a dropped row counts as differing

(f) materializing the whole view into each one's SQLite online store (the latest row of each customer)
(g) online lookups of 1 entity x 10 features, p50 and p99 of 2,000 (target p99 <= Feast's), in-process
(h) online lookups of 1,000 entities x 10 features, p50 and p99 of 100 (target p99 <= Feast's)
(fr), (g*r), (h*r) the same with each one's Redis online store (a redis-server the benchmark starts on
    loopback, no persistence; the two keep keys of their own on it)
    Online views have no TTL either side (the data is from early 2026); values checked equal on a sample.

Each side runs in its own subprocess (``--worker``), which imports its library and reads the entity rows
before its timer starts, and is killed past its budget. Progress goes to stderr, the table to stdout.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import harness
import numpy as np
from harness import Result, clock, progress

TITLE = "Shipyard vs Feast: point-in-time training sets and online lookups (one machine)"
FEATURES = 10
TTL = timedelta(days=30)
SAMPLE = 1_000
SIDES = ("shipyard", "feast-file", "feast-duckdb")
ONLINE_SIDES = ("shipyard-online", "shipyard-redis", "feast-online", "feast-redis")
LABELS = {
    "shipyard": "Shipyard",
    "feast-file": "Feast file store",
    "feast-duckdb": "Feast DuckDB store",
    "shipyard-online": "Shipyard SQLite online store",
    "shipyard-redis": "Shipyard Redis online store",
    "feast-online": "Feast SQLite online store",
    "feast-redis": "Feast Redis online store",
}
REPEATS = {"shipyard": 3, "feast-file": 1, "feast-duckdb": 3}
LOOKUPS = 2_000  # single-entity lookups timed (after 200 untimed), each side
BATCHES = 100  # 1,000-entity lookups timed (after 10 untimed)
BATCH = 1_000
LOOKUP_BUDGET_S = 60.0


def make_data(root: Path, feature_rows: int, entity_rows: int, keys: int, seed: int) -> dict[str, Any]:
    """The feature view's Parquet file and the entity rows' (both sides read these files)."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    base = np.datetime64("2026-01-01T00:00:00", "us")
    span_us = 90 * 86_400 * 10**6
    customer = rng.integers(0, keys, feature_rows)
    stamps = base + rng.integers(0, span_us, feature_rows).astype("timedelta64[us]")
    columns = {f"f{i}": rng.normal(size=feature_rows) for i in range(FEATURES)}
    table = pa.table(
        {
            "customer_id": customer,
            "event_timestamp": pa.array(stamps, pa.timestamp("us", tz="UTC")),
            **columns,
        }
    )
    pq.write_table(table, root / "features.parquet")
    wanted = rng.integers(0, keys, entity_rows)
    when = base + rng.integers(0, span_us, entity_rows).astype("timedelta64[us]")
    first = pd.DataFrame({"k": customer, "t": stamps}).groupby("k")["t"].min()
    early = rng.random(entity_rows) < 0.05  # before the customer's first row: nothing to join, kept as nulls
    firsts = first.reindex(wanted[early]).to_numpy()
    when[early] = np.where(pd.isna(firsts), when[early], firsts - np.timedelta64(3_600, "s"))
    entity = pd.DataFrame({"customer_id": wanted, "event_timestamp": pd.to_datetime(when, utc=True)})
    entity.to_parquet(root / "entity.parquet")
    return {"feature_rows": feature_rows, "entity_rows": entity_rows, "keys": keys, "early": int(early.sum())}


# ---------------------------------------------------------------------- the workers
def shipyard_join(root: Path) -> Any:
    from shipyard.features import Entity, FeatureStore, FeatureView, Field, FileSource

    customer = Entity("customer", ["customer_id"])
    view = FeatureView(
        "stats",
        [customer],
        [Field(f"f{i}", "float64") for i in range(FEATURES)],
        FileSource(str(root / "features.parquet")),
        ttl=TTL,
    )
    store = FeatureStore([view])
    refs = [f"stats:f{i}" for i in range(FEATURES)]
    return lambda entity: store.get_historical_features(entity, refs).to_pandas()


def feast_join(root: Path, kind: str) -> Any:
    os.environ.setdefault("FEAST_USAGE", "False")
    from feast import Entity, FeatureStore, FeatureView, Field, FileSource, ValueType
    from feast.repo_config import RepoConfig
    from feast.types import Float64

    repo = root / f"feast-{kind}"
    repo.mkdir(exist_ok=True)
    config = RepoConfig(
        project="bench",
        registry=str(repo / "registry.db"),
        provider="local",
        offline_store={"type": kind},
        online_store={"type": "sqlite", "path": str(repo / "online.db")},
        entity_key_serialization_version=3,
        repo_path=str(repo),
    )
    store = FeatureStore(config=config)
    customer = Entity(name="customer", join_keys=["customer_id"], value_type=ValueType.INT64)
    view = FeatureView(
        name="stats",
        entities=[customer],
        ttl=TTL,
        schema=[Field(name=f"f{i}", dtype=Float64) for i in range(FEATURES)],
        source=FileSource(path=str(root / "features.parquet"), timestamp_field="event_timestamp"),
    )
    store.apply([customer, view])
    refs = [f"stats:f{i}" for i in range(FEATURES)]
    return lambda entity: store.get_historical_features(entity_df=entity, features=refs).to_df()


def shipyard_online(root: Path, redis_url: str | None = None) -> tuple[Any, Any]:
    """(materialize the whole view, look up rows of customer ids) on a fresh SQLite (or Redis) online
    store. No TTL online, either side: the data is from early 2026 and would be too old to serve."""
    from shipyard.features import Entity, FeatureStore, FeatureView, Field, FileSource
    from shipyard.features.online import RedisOnlineStore, SqliteOnlineStore

    customer = Entity("customer", ["customer_id"])
    view = FeatureView(
        "stats",
        [customer],
        [Field(f"f{i}", "float64") for i in range(FEATURES)],
        FileSource(str(root / "features.parquet")),
    )
    online = RedisOnlineStore(redis_url) if redis_url else SqliteOnlineStore(root / "shipyard-online.db")
    store = FeatureStore([view], online_store=online)
    refs = [f"stats:f{i}" for i in range(FEATURES)]
    return (
        lambda start, end: store.materialize(start, end)[0].rows,
        lambda ids: store.get_online_features(refs, {"customer_id": ids}).to_dict(),
    )


def feast_online(root: Path, redis_url: str | None = None) -> tuple[Any, Any]:
    os.environ.setdefault("FEAST_USAGE", "False")
    from feast import Entity, FeatureStore, FeatureView, Field, FileSource, ValueType
    from feast.repo_config import RepoConfig
    from feast.types import Float64

    repo = root / ("feast-redis" if redis_url else "feast-online")
    repo.mkdir(exist_ok=True)
    online: dict[str, Any] = {"type": "sqlite", "path": str(repo / "online.db")}
    if redis_url:  # Feast's connection string is host:port
        online = {"type": "redis", "connection_string": redis_url.split("://", 1)[1].rsplit("/", 1)[0]}
    config = RepoConfig(
        project="bench",
        registry=str(repo / "registry.db"),
        provider="local",
        offline_store={"type": "duckdb"},
        online_store=online,
        entity_key_serialization_version=3,
        repo_path=str(repo),
    )
    store = FeatureStore(config=config)
    customer = Entity(name="customer", join_keys=["customer_id"], value_type=ValueType.INT64)
    view = FeatureView(
        name="stats",
        entities=[customer],
        ttl=timedelta(0),
        schema=[Field(name=f"f{i}", dtype=Float64) for i in range(FEATURES)],
        source=FileSource(path=str(root / "features.parquet"), timestamp_field="event_timestamp"),
        online=True,
    )
    store.apply([customer, view])
    refs = [f"stats:f{i}" for i in range(FEATURES)]

    def load(start: Any, end: Any) -> int:
        store.materialize(start, end)
        return -1  # Feast does not say how many rows it wrote

    return load, lambda ids: store.get_online_features(
        features=refs, entity_rows=[{"customer_id": i} for i in ids]
    ).to_dict()


def online_worker(side: str, root: Path, out: Path) -> int:
    from datetime import UTC, datetime

    redis_url = os.environ.get("BENCH_REDIS_URL")
    if side == "feast-online":
        load, lookup = feast_online(root)
    elif side == "feast-redis":
        load, lookup = feast_online(root, redis_url)
    else:
        load, lookup = shipyard_online(root, redis_url if side == "shipyard-redis" else None)
    # The whole view, and "now" within the TTL of the latest rows: every lookup finds values.
    start, end = datetime(2025, 12, 1, tzinfo=UTC), datetime(2026, 4, 2, tzinfo=UTC)
    harness.settle()
    began = clock()
    rows = load(start, end)
    materialize_s = clock() - began
    rng = np.random.default_rng(11)
    keys = int(json.loads((root / "data.json").read_text(encoding="utf-8"))["keys"])
    single = rng.integers(0, keys, LOOKUPS + 200).tolist()
    sample = lookup([single[0]])
    one_ms, batch_ms = [], []
    deadline = clock() + LOOKUP_BUDGET_S
    for i, key in enumerate(single):
        began = clock()
        lookup([key])
        if i >= 200:
            one_ms.append((clock() - began) * 1000.0)
        if clock() > deadline:
            break
    deadline = clock() + LOOKUP_BUDGET_S
    for i in range(BATCHES + 10):
        ids = rng.integers(0, keys, BATCH).tolist()
        began = clock()
        lookup(ids)
        if i >= 10:
            batch_ms.append((clock() - began) * 1000.0)
        if clock() > deadline:
            break
    out.write_text(
        json.dumps(
            {
                "materialize_s": materialize_s,
                "materialized_rows": rows,
                "one_ms": one_ms,
                "batch_ms": batch_ms,
                "sample": {
                    k: [v if not isinstance(v, float) else round(v, 12) for v in vs]
                    for k, vs in sample.items()
                },
                "rss_mib": harness.peak_rss_mib(),
            }
        ),
        encoding="utf-8",
    )
    return 0


def worker(side: str, root: Path, out: Path) -> int:
    import pandas as pd

    if side in ONLINE_SIDES:
        return online_worker(side, root, out)

    join = shipyard_join(root) if side == "shipyard" else feast_join(root, side.split("-", 1)[1])
    entity = pd.read_parquet(root / "entity.parquet")
    repeats = REPEATS[side]
    warm = repeats > 1
    samples = []
    result = None
    for index in range(repeats + (1 if warm else 0)):
        harness.settle()
        start = clock()
        result = join(entity.copy())
        seconds = clock() - start
        if not warm or index > 0:
            samples.append(seconds)
    assert result is not None
    keep = ["customer_id", "event_timestamp", *(f"f{i}" for i in range(FEATURES))]
    result[keep].to_parquet(out.with_suffix(".parquet"))
    out.write_text(
        json.dumps({"seconds": samples, "rss_mib": harness.peak_rss_mib(), "rows": len(result)}),
        encoding="utf-8",
    )
    return 0


def run_worker(side: str, root: Path, budget_s: float) -> dict[str, Any]:
    out = root / f"{side}.json"
    cmd = [sys.executable, __file__, "--worker", side, "--data", str(root), "--out", str(out)]
    progress(f"{LABELS[side]}: running (budget {budget_s:.0f} s)")
    started = clock()
    try:
        subprocess.run(cmd, check=True, timeout=budget_s)
    except subprocess.TimeoutExpired:
        progress(f"{LABELS[side]}: did not finish in {budget_s:.0f} s")
        return {"error": f"did not finish in {budget_s:.0f} s"}
    except subprocess.CalledProcessError as exc:
        progress(f"{LABELS[side]}: failed (exit {exc.returncode})")
        return {"error": f"failed (exit {exc.returncode})"}
    found = json.loads(out.read_text(encoding="utf-8"))
    found["wall_s"] = clock() - started
    if "seconds" in found:
        progress(f"{LABELS[side]}: {statistics.median(found['seconds']):.2f} s, {found['rows']:,} rows")
    else:
        progress(
            f"{LABELS[side]}: materialized in {found['materialize_s']:.2f} s, {len(found['one_ms'])} lookups"
        )
    return found


# ---------------------------------------------------------------------- checking
def reference_rows(root: Path, sample: Any) -> Any:
    """The sampled entity rows joined the slow, obvious way (latest row at or before, within the TTL)."""
    import pandas as pd

    features = pd.read_parquet(root / "features.parquet")
    by_key = {k: g.sort_values("event_timestamp") for k, g in features.groupby("customer_id")}
    rows = []
    ttl = pd.Timedelta(TTL)
    for key, when in zip(sample["customer_id"], sample["event_timestamp"], strict=True):
        mine = by_key.get(key)
        found = None if mine is None else mine[mine["event_timestamp"] <= when]
        if found is None or found.empty or when - found["event_timestamp"].iloc[-1] > ttl:
            rows.append([None] * FEATURES)
        else:
            rows.append([found[f"f{i}"].iloc[-1] for i in range(FEATURES)])
    return pd.DataFrame(rows, columns=[f"f{i}" for i in range(FEATURES)], index=sample.index)


def agreement(root: Path, side: str, sample: Any, reference: Any) -> int:
    """How many sampled entity rows ``side``'s result has with all 10 values as the reference's."""
    import pandas as pd

    got = pd.read_parquet(root / f"{side}.parquet")
    got["event_timestamp"] = pd.to_datetime(got["event_timestamp"], utc=True)
    got = got.drop_duplicates(["customer_id", "event_timestamp"]).set_index(
        ["customer_id", "event_timestamp"]
    )
    agree = 0
    for index, key, when in zip(sample.index, sample["customer_id"], sample["event_timestamp"], strict=True):
        if (key, when) not in got.index:
            continue  # dropped
        values = got.loc[(key, when)]
        want = reference.loc[index]
        if all(
            (pd.isna(want[c]) and pd.isna(values[c])) or (not pd.isna(want[c]) and values[c] == want[c])
            for c in want.index
        ):
            agree += 1
    return agree


# ---------------------------------------------------------------------- the table
def build_results(
    data: dict[str, Any], found: dict[str, dict[str, Any]], agree: dict[str, int]
) -> list[Result]:
    sy = found["shipyard"]
    rows = data["entity_rows"]
    results = []

    def median_ms(side: str) -> float | None:
        one = found.get(side, {})
        return None if "seconds" not in one else statistics.median(one["seconds"]) * 1000.0

    shape = (
        f"{rows:,} entity rows x a {data['feature_rows']:,}-row feature view ({data['keys']:,} customers, "
        f"{FEATURES} float features, TTL {TTL.days} days; {data['early']:,} entity rows before their "
        "customer's first row)"
    )
    for key, side, target in (("a", "feast-file", 25.0), ("b", "feast-duckdb", 5.0)):
        peer = found[side]
        notes = [shape] if key == "a" else []
        if "error" in peer:
            notes.append(f"{LABELS[side]}: {peer['error']}")
        else:
            notes.append(
                f"{LABELS[side]}: {len(peer['seconds'])} timed run(s): "
                + ", ".join(f"{s:.2f} s" for s in peer["seconds"])
                + f"; Shipyard's: {', '.join(f'{s:.2f} s' for s in sy['seconds'])}"
            )
        results.append(
            Result(
                key=key,
                title=f"historical join vs {LABELS[side]}",
                unit="ms",
                higher_is_better=False,
                shipyard=median_ms("shipyard") or 0.0,
                peer=median_ms(side),
                min_speedup=target,
                valid=sy.get("rows") == rows and agree["shipyard"] == SAMPLE,
                notes=tuple(notes),
            )
        )
    heaviest = max(
        (s for s in ("feast-file", "feast-duckdb") if "rss_mib" in found[s]),
        default=None,
        key=lambda s: found[s]["rss_mib"],
    )
    rss_notes = tuple(
        f"{LABELS[s]}: {found[s]['rss_mib']:,.0f} MiB"
        for s in ("feast-file", "feast-duckdb")
        if "rss_mib" in found[s]
    )
    results.append(
        Result(
            key="c",
            title="peak RSS of the joining process (vs Feast's file store)",
            unit="MiB",
            higher_is_better=False,
            shipyard=sy["rss_mib"],
            peer=found["feast-file"].get("rss_mib"),
            min_speedup=3.0,
            notes=(*rss_notes, f"the heaviest: {LABELS[heaviest]}" if heaviest else "no Feast figure"),
        )
    )
    dropped = {s: rows - found[s]["rows"] for s in SIDES if "rows" in found[s]}
    results.append(
        Result(
            key="d",
            title=f"entity rows dropped, of {rows:,}",
            unit="rows",
            higher_is_better=False,
            shipyard=float(dropped["shipyard"]),
            peer=None if "feast-file" not in dropped else float(dropped["feast-file"]),
            max_shipyard=1.0,
            notes=tuple(f"{LABELS[s]}: {d:,} dropped" for s, d in dropped.items()),
        )
    )
    results.append(
        Result(
            key="e",
            title=f"sampled rows differing from the pandas reference, of {SAMPLE:,}",
            unit="rows",
            higher_is_better=False,
            shipyard=float(SAMPLE - agree["shipyard"]),
            peer=None if "feast-file" not in agree else float(SAMPLE - agree["feast-file"]),
            max_shipyard=1.0,
            notes=tuple(
                f"{LABELS[s]}: {SAMPLE - a:,} differ (a dropped row differs)" for s, a in agree.items()
            ),
        )
    )
    return results


@contextlib.contextmanager
def redis_server(root: Path) -> Iterator[str | None]:
    """Debian's redis-server on a free loopback port, without persistence (None when it is not installed)."""
    binary = shutil.which("redis-server")
    if binary is None:
        progress("redis-server is not installed: no Redis rows (apt-get install redis-server)")
        yield None
        return
    port = harness.free_port()
    proc = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(root),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = clock() + 20
        while clock() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
                break
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else 0.0


def online_results(data: dict[str, Any], found: dict[str, dict[str, Any]]) -> list[Result]:
    results = _online_rows(data, found, "shipyard-online", "")
    if "error" not in found.get("shipyard-redis", {"error": "not run"}):
        results += _online_rows(data, found, "shipyard-redis", "r")
    return results


def _online_rows(data: dict[str, Any], found: dict[str, dict[str, Any]], side: str, tag: str) -> list[Result]:
    """Shipyard's SQLite store against Feast's, and its Redis store against Feast's (one Redis server, each
    with keys of its own)."""
    store = "Redis" if side == "shipyard-redis" else "SQLite"
    sy, fe = (
        found[side],
        found.get("feast-redis" if store == "Redis" else "feast-online", {"error": "not run"}),
    )
    if "error" in sy:
        return []
    same = "error" not in fe and _same_values(sy["sample"], fe["sample"])
    results = [
        Result(
            key=f"f{tag}",
            title=f"materialize the {data['feature_rows']:,}-row view into {store}",
            unit="ms",
            higher_is_better=False,
            shipyard=sy["materialize_s"] * 1000.0,
            peer=None if "error" in fe else fe["materialize_s"] * 1000.0,
            notes=(
                f"the latest row of each of {data['keys']:,} customers (Shipyard wrote "
                f"{sy['materialized_rows']:,})",
            ),
        )
    ]
    for key, column, what, extra in (
        (
            "g",
            "one_ms",
            "1 entity x 10 features",
            f"{LOOKUPS:,} lookups of random customers after 200 untimed",
        ),
        ("h", "batch_ms", f"{BATCH:,} entities x 10 features", f"{BATCHES} lookups after 10 untimed"),
    ):
        for suffix, q in (("p50", 50.0), ("p99", 99.0)):
            results.append(
                Result(
                    key=f"{key}{suffix[1:]}{tag}",
                    title=f"online lookup {what}, {suffix}, {store}",
                    unit="ms",
                    higher_is_better=False,
                    shipyard=percentile(sy[column], q),
                    peer=None if "error" in fe else percentile(fe[column], q),
                    min_speedup=1.0 if suffix == "p99" else None,
                    valid=same,
                    notes=(f"{extra}, in-process, the same customers both sides; values equal: {same}",),
                )
            )
    return results


def _same_values(a: dict[str, list[Any]], b: dict[str, list[Any]]) -> bool:
    """The sample lookup's features agree (column order and extra columns aside)."""
    return all(k in b and b[k] == v for k, v in a.items() if k.startswith("f"))


def main(argv: list[str] | None = None) -> int:
    parser = harness.base_parser(__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--feast-budget", type=float, default=600.0, help="seconds for each Feast worker")
    parser.add_argument("--worker", choices=SIDES + ONLINE_SIDES, help=argparse_hidden())
    parser.add_argument("--data", help=argparse_hidden())
    parser.add_argument("--out", help=argparse_hidden())
    args = parser.parse_args(argv)
    if args.worker:
        return worker(args.worker, Path(args.data), Path(args.out))
    import pandas as pd

    feature_rows, entity_rows, keys = (100_000, 10_000, 1_000) if args.quick else (1_000_000, 100_000, 10_000)
    root = Path(tempfile.mkdtemp(prefix="shipyard-bench-features-"))
    progress(f"data under {root}: {feature_rows:,} feature rows, {entity_rows:,} entity rows")
    data = make_data(root, feature_rows, entity_rows, keys, args.seed)
    (root / "data.json").write_text(json.dumps(data), encoding="utf-8")
    with redis_server(root) as redis_url:
        if redis_url:
            os.environ["BENCH_REDIS_URL"] = redis_url
        sides = [s for s in SIDES + ONLINE_SIDES if redis_url or not s.endswith("-redis")]
        found = {
            side: run_worker(side, root, 600.0 if side.startswith("shipyard") else args.feast_budget)
            for side in sides
        }
    if "error" in found["shipyard"]:
        progress("Shipyard's join failed: no table")
        return 1
    progress(f"checking {SAMPLE:,} sampled rows against a brute-force pandas join")
    entity = pd.read_parquet(root / "entity.parquet")
    sample = entity.sample(SAMPLE, random_state=args.seed)
    reference = reference_rows(root, sample)
    agree = {side: agreement(root, side, sample, reference) for side in SIDES if "error" not in found[side]}
    results = build_results(data, found, agree) + online_results(data, found)
    info = harness.machine_info(("shipyard", "feast", "duckdb", "pandas", "pyarrow", "numpy"))
    mode = "quick" if args.quick else "full"
    harness.print_table(f"{TITLE}, {mode} mode", results, machine=harness.machine_line(info), peer="Feast")
    if args.json:
        harness.write_json(args.json, TITLE, results, data=data, machine=info, workers=found)
    return 0 if all(r.passed for r in results if r.has_target) else 1


def argparse_hidden() -> str:
    import argparse

    return argparse.SUPPRESS


if __name__ == "__main__":
    sys.exit(main())
