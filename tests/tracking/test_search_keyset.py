"""Keyset pagination of run search, on SQLite and PostgreSQL: walking the pages by cursor gives exactly what
one unpaged search gives, whatever the order (missing and NaN values, equal values, equal start times)."""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import shipyard
from shipyard import Settings
from shipyard.errors import InvalidInput
from shipyard.store import schema
from shipyard.store.sql.search import build_search_statement, cursor_after, parse_filter, parse_order_by
from shipyard.tracking.cursors import SearchCursor, decode_cursor, encode_cursor, search_fingerprint
from shipyard.tracking.filter_parser import Expr, OrderKey

INF, NAN = math.inf, math.nan
T0 = 1_700_000_000_000

ORDER_ENTITIES = [
    "attributes.start_time",
    "attributes.end_time",
    "attributes.name",
    "attributes.status",
    "attributes.user",
    "metrics.acc",
    "metrics.loss",
    "params.model",
    "tags.team",
]
FILTERS = [
    None,
    "metrics.acc > 0.3",  # an inner join the order on metrics.acc then walks
    "metrics.acc is not null",  # joined, NaN still possible
    "params.model != 'a'",
    "metrics.acc > 0.3 or tags.team = 'x'",
    "attributes.user is null",
    "metrics.loss <= 1 and params.model >= 'a'",
]
METRICS = st.sampled_from([None, NAN, -INF, -1.0, 0.25, 0.5, 1.0, INF])  # None: not logged
TEXTS = st.sampled_from([None, "a", "b", "B"])


@st.composite
def run_rows(draw: st.DrawFn) -> dict[str, Any]:
    """One run: few distinct values everywhere, so equal sort values and equal start times are common."""
    start = T0 + draw(st.integers(0, 2)) * 1000
    return {
        "start_time": start,
        "end_time": draw(st.sampled_from([None, start + 5, start + 10])),
        "name": draw(st.sampled_from(["r", "s", "S"])),
        "status": draw(st.sampled_from(["RUNNING", "FINISHED", "FAILED"])),
        "user": draw(st.sampled_from([None, "alice", "bob"])),
        "deleted": draw(st.sampled_from([False, False, False, True])),
        "metrics": {k: v for k in ("acc", "loss") if (v := draw(METRICS)) is not None},
        "params": {"model": m} if (m := draw(TEXTS)) is not None else {},
        "tags": {"team": t} if (t := draw(st.sampled_from([None, "x", "y"]))) is not None else {},
    }


ORDERS = st.lists(
    st.tuples(st.sampled_from(ORDER_ENTITIES), st.sampled_from(["asc", "desc"])),
    min_size=1,
    max_size=2,
    unique_by=lambda item: item[0],
).map(lambda items: [f"{entity} {direction}" for entity, direction in items])


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[sa.Engine]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('keyset') / 'store.db'}"
    else:
        url = request.getfixturevalue("postgres").create_database()
    engine = sa.create_engine(url)
    schema.metadata.create_all(engine)
    yield engine
    engine.dispose()


def add_experiment(engine: sa.Engine, made: Sequence[dict[str, Any]]) -> str:
    """A new experiment holding the runs ``made``, inserted in order (insertion order is a tie-breaker)."""
    experiment = uuid.uuid4().hex
    with engine.begin() as conn:
        row = {"experiment_id": experiment, "name": experiment, "artifact_location": "/"}
        conn.execute(schema.experiments.insert(), {**row, "created_at": 0, "updated_at": 0})
        for i, run in enumerate(made):
            pk = conn.execute(
                schema.runs.insert().returning(schema.runs.c.id),
                {
                    "run_id": uuid.uuid4().hex,
                    "experiment_id": experiment,
                    "name": f"{run['name']}{i}",  # unique in an experiment
                    "status": run["status"],
                    "user": run["user"],
                    "start_time": run["start_time"],
                    "end_time": run["end_time"],
                    "artifact_uri": f"/{i}",
                    "lifecycle_stage": "deleted" if run["deleted"] else "active",
                },
            ).scalar_one()
            for key, value in run["metrics"].items():
                # NULL stands for NaN (see the schema).
                row = {"run_pk": pk, "key": key, "value": None if math.isnan(value) else value}
                conn.execute(schema.latest_metrics.insert(), {**row, "step": 0, "timestamp": 0})
            for table, values in ((schema.params, run["params"]), (schema.tags, run["tags"])):
                for key, value in values.items():
                    conn.execute(table.insert(), {"run_pk": pk, "key": key, "value": value})
    return experiment


def page(
    engine: sa.Engine,
    experiment: str,
    expr: Expr | None,
    keys: Sequence[OrderKey],
    *,
    limit: int,
    after: SearchCursor | None = None,
    few_runs: bool = False,
) -> list[sa.RowMapping]:
    statement = build_search_statement(
        [experiment],
        expr,
        keys,
        limit=limit,
        dialect_name=engine.dialect.name,
        few_runs=few_runs,
        after=after,
    )
    with engine.connect() as conn:
        return [row._mapping for row in conn.execute(statement)]


def walk(
    engine: sa.Engine,
    experiment: str,
    text: str | None,
    order: list[str],
    size: int,
    few_runs: bool,
) -> list[str]:
    """Every run of the search, a page of ``size`` at a time, each page after the cursor of the one before
    (sent through its string form, as a client would)."""
    expr, keys = parse_filter(text), parse_order_by(order)
    fingerprint = search_fingerprint([experiment], text, order, False)
    found: list[str] = []
    after = None
    while True:
        rows = page(engine, experiment, expr, keys, limit=size + 1, after=after, few_runs=few_runs)
        found += [row["run_id"] for row in rows[:size]]
        if len(rows) <= size:
            return found
        text_cursor = encode_cursor(cursor_after(rows[size - 1], keys), fingerprint)
        after = decode_cursor(text_cursor, fingerprint, keys, name="after")
        assert len(found) < 100, "the walk does not end"


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    made=st.lists(run_rows(), max_size=18),
    order=ORDERS,
    text=st.sampled_from(FILTERS),
    size=st.integers(1, 4),
)
def test_pages_by_cursor_are_the_unpaged_search(
    engine: sa.Engine, made: list[dict[str, Any]], order: list[str], text: str | None, size: int
) -> None:
    experiment = add_experiment(engine, made)
    everything = [
        row["run_id"]
        for row in page(engine, experiment, parse_filter(text), parse_order_by(order), limit=1000)
    ]
    for few_runs in (False, True) if engine.dialect.name == "sqlite" else (False,):
        assert walk(engine, experiment, text, order, size, few_runs) == everything, (order, text, size)


def test_a_cursor_in_the_missing_values_and_past_inf(engine: sa.Engine) -> None:
    """The edges spelled out: ±inf, NaN and missing metrics, equal values and equal start times."""
    values = [INF, INF, NAN, None, 0.5, 0.5, -INF, None, NAN, 0.5]
    made = [
        {
            "start_time": T0 + (i % 2) * 1000,
            "end_time": None,
            "name": "r",
            "status": "FINISHED",
            "user": None,
            "deleted": False,
            "metrics": {} if value is None else {"acc": value},
            "params": {},
            "tags": {},
        }
        for i, value in enumerate(values)
    ]
    experiment = add_experiment(engine, made)
    for order in (["metrics.acc desc"], ["metrics.acc asc"], ["metrics.acc desc", "attributes.user"]):
        everything = [
            row["run_id"] for row in page(engine, experiment, None, parse_order_by(order), limit=100)
        ]
        assert len(everything) == len(values)
        for size in (1, 2, 3):
            assert walk(engine, experiment, None, order, size, few_runs=False) == everything


def test_a_cursor_from_another_order_is_invalid_input() -> None:
    cursor = SearchCursor((0.5,), T0, "a" * 32)
    with pytest.raises(InvalidInput, match="1 order values; the order has 2 keys"):
        build_search_statement(
            ["1"], None, parse_order_by(["metrics.acc", "params.x"]), limit=5, after=cursor
        )
    with pytest.raises(InvalidInput, match="not both"):
        build_search_statement(["1"], None, parse_order_by(["metrics.acc"]), limit=5, offset=5, after=cursor)


def test_the_seek_starts_the_index_walk() -> None:
    """The first key's bound stands alone too, so the planner starts its walk there (not at row one)."""
    keys = parse_order_by(["metrics.acc desc"])
    cursor = SearchCursor((0.5,), T0, "a" * 32)
    sql = str(build_search_statement(["1"], parse_filter("metrics.acc > 0.1"), keys, limit=5, after=cursor))
    assert re.search(r"WHERE .* AND m_0\.value <= :\w+ AND \(m_0\.value < :\w+ OR", sql), sql
    assert "cursor_run.run_id" in sql  # the cursor names its run by id; its row key is looked up


# ---------------------------------------------------------------------------------------- through the store


def test_store_pages_by_cursor_and_says_when_none_follows(tracking_backend_settings: Settings) -> None:
    for i in range(7):
        with shipyard.start_run("k", name=f"r{i}", settings=tracking_backend_settings) as run:
            run.log_metric("acc", [0.5, 0.1, NAN, 0.9][i % 4])
    client = shipyard.get_client(tracking_backend_settings)
    experiment = [client.get_experiment("k").experiment_id]
    store = client.backend
    order = ["metrics.acc desc"]
    everything = store.search_page(experiment, None, order, limit=100, columns=[], include_deleted=False)
    assert everything.next_cursor is None and len(everything) == 7
    names, after = [], None
    while True:
        found = store.search_page(
            experiment, None, order, limit=3, columns=["params.none"], include_deleted=False, after=after
        )
        names += [r.name for r in found]
        if found.next_cursor is None:
            break
        after = found.next_cursor
    assert names == [r.name for r in everything]
    with pytest.raises(InvalidInput, match="not both"):
        store.search_page(
            experiment, None, order, offset=3, limit=3, columns=None, include_deleted=False, after=after
        )


def test_a_run_created_between_pages_neither_repeats_nor_skips(tracking_backend_settings: Settings) -> None:
    """Newest first, a run started after page one would push an offset's page two back by one row."""
    for i in range(4):
        with shipyard.start_run("k", name=f"r{i}", settings=tracking_backend_settings):
            pass
    client = shipyard.get_client(tracking_backend_settings)
    first = client.search_runs("k", None, max_results=2)
    with shipyard.start_run("k", name="late", settings=tracking_backend_settings):
        pass
    second = client.search_runs("k", None, max_results=2, page_token=first.next_page_token)
    assert [r.name for r in [*first, *second]] == ["r3", "r2", "r1", "r0"]
    assert second.next_page_token is None
