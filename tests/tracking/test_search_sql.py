"""Run search SQL against a plain-Python reference evaluation of the same filter over the same runs.

The store runs on a SQLite file and, through the shared ``postgres`` fixture, on PostgreSQL.
"""

from __future__ import annotations

import functools
import math
import operator
import random
import re
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from shipyard.errors import InvalidInput
from shipyard.store import schema
from shipyard.store.sql.search import build_search_statement, parse_filter, parse_order_by
from shipyard.tracking.filter_parser import (
    LIKE_OPS,
    And,
    Comparison,
    Entity,
    EntityKind,
    Expr,
    Not,
    Op,
    Or,
    OrderKey,
)

INF, NAN = math.inf, math.nan
T0 = 1_700_000_000_000
EXPERIMENTS = ("1", "2", "3")

# ------------------------------------------------------------------------------------------ test data

METRIC_POOL = [0.0, 0.1, 0.5, 0.9, 0.95, 1.0, -1.0, 2.5, INF, -INF, NAN]
MODELS = ["ResNet", "resnet", "RESNET-50", "mlp", "MLP_2", "a%b", "a_b", "axb", "a*b", "a?b", "[x]"]
MODELS += ["back\\slash", "it's", "", "50%"]
LRS = ["0.01", "0.1", "1e-3", "abc", "5abc", " 7", "-3", ".5", "10", "2.5", "5", "05", "1E2", "inf", "0x10"]
TEAMS = ["nlp", "NLP", "cv", "Cv", "speech", "50%", "x_y"]
STATUSES = ["RUNNING", "FINISHED", "FAILED", "KILLED"]


@dataclass(frozen=True)
class RunData:
    pk: int
    attributes: dict[str, Any]  # the columns of runs
    metrics: dict[str, float]
    params: dict[str, str]
    tags: dict[str, str]
    datasets: tuple[dict[str, Any], ...]

    @property
    def run_id(self) -> str:
        return str(self.attributes["run_id"])


def make_runs(count: int = 60, seed: int = 20240611) -> list[RunData]:
    rng = random.Random(seed)
    made: list[RunData] = []
    for i in range(count):
        run_id = f"{i:02d}{uuid.UUID(int=rng.getrandbits(128)).hex[2:]}"
        start = T0 + rng.randint(0, 12) * 1000  # few distinct times: ties exercise the tie-breakers
        metrics = {
            key: rng.choice([*METRIC_POOL, round(rng.uniform(-1, 2), 3), round(rng.random(), 3)])
            for key, share in (("acc", 0.85), ("loss", 0.6), ("val/acc", 0.3), ("my key", 0.25))
            if rng.random() < share
        }
        params = {
            key: rng.choice(pool)
            for key, pool, share in (
                ("model", MODELS, 0.8),
                ("lr", LRS, 0.8),
                ("depth", ["3", "5", "10"], 0.5),
            )
            if rng.random() < share
        }
        tags = {
            key: rng.choice(TEAMS)
            for key, share in (("team", 0.7), ("mlflow.note", 0.3))
            if rng.random() < share
        }
        datasets = tuple(
            {
                "name": name,
                "digest": rng.choice(["d1", "d2", "d3"]),
                "source": f"s3://data/{name}",
                "source_type": rng.choice(["pandas", "csv"]),
                "context": rng.choice([None, "training", "eval"]),
            }
            for name in rng.sample(["train", "Train", "eval", "holdout"], rng.randint(0, 2))
        )
        attributes = {
            "run_id": run_id,
            "experiment_id": rng.choice(["1", "1", "2", "3"]),
            "name": rng.choice(["run-", "Run-", "RUN_"]) + f"{i:02d}",
            "status": rng.choice(STATUSES),
            "parent_run_id": rng.choice([None, None, made[rng.randrange(i)].run_id]) if made else None,
            "user": rng.choice([None, "alice", "Alice", "bob"]),
            "start_time": start,
            "end_time": None if rng.random() < 0.3 else start + rng.randint(1, 1_000_000),
            "artifact_uri": rng.choice(["s3://bucket/", "file:///tmp/", "gs://b/"]) + run_id,
            "lifecycle_stage": "deleted" if rng.random() < 0.15 else "active",
        }
        made.append(RunData(i + 1, attributes, metrics, params, tags, datasets))
    return made


def populate(engine: sa.Engine, data: Sequence[RunData]) -> None:
    schema.metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(
            schema.experiments.insert(),
            [
                {
                    "experiment_id": e,
                    "name": f"exp-{e}",
                    "artifact_location": "/tmp",
                    "created_at": 0,
                    "updated_at": 0,
                }
                for e in EXPERIMENTS
            ],
        )
        conn.execute(schema.runs.insert(), [{"id": r.pk, **r.attributes} for r in data])
        metric_rows = [
            # NULL stands for NaN on every backend (see the schema).
            {"run_pk": r.pk, "key": k, "value": None if math.isnan(v) else v, "step": 0, "timestamp": 0}
            for r in data
            for k, v in r.metrics.items()
        ]
        conn.execute(schema.latest_metrics.insert(), metric_rows)
        for table, attribute in ((schema.params, "params"), (schema.tags, "tags")):
            rows = [
                {"run_pk": r.pk, "key": k, "value": v} for r in data for k, v in getattr(r, attribute).items()
            ]
            conn.execute(table.insert(), rows)
        datasets = [
            {"run_pk": r.pk, "num_rows": 10, "schema_json": "{}", "created_at": 0, **d}
            for r in data
            for d in r.datasets
        ]
        conn.execute(schema.dataset_inputs.insert(), datasets)


RUNS = make_runs()

# ----------------------------------------------------------------------------------- reference evaluator

# What the store counts as a number in a param (see shipyard.store.sql.search).
NUMERIC_TEXT = re.compile(r"[ \t\n\r\f\v]*[-+]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][-+]?[0-9]+)?[ \t\n\r\f\v]*")
COMPARE = {Op.EQ: operator.eq, Op.NE: operator.ne, Op.LT: operator.lt}
COMPARE |= {Op.LE: operator.le, Op.GT: operator.gt, Op.GE: operator.ge}


def values_of(run: RunData, entity: Entity) -> list[Any]:
    key = entity.key
    if entity.kind is EntityKind.METRIC:
        return [run.metrics[key]] if key in run.metrics else []
    if entity.kind is EntityKind.PARAM:
        return [run.params[key]] if key in run.params else []
    if entity.kind is EntityKind.TAG:
        return [run.tags[key]] if key in run.tags else []
    if entity.kind is EntityKind.ATTRIBUTE:
        return [] if run.attributes[key] is None else [run.attributes[key]]
    return [d[key] for d in run.datasets if d[key] is not None]


def like(value: str, pattern: str, *, ignore_case: bool) -> bool:
    regex, i = [], 0
    while i < len(pattern):
        if pattern[i] == "\\" and i + 1 < len(pattern):
            regex.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        regex.append({"%": ".*", "_": "."}.get(pattern[i], re.escape(pattern[i])))
        i += 1
    flags = re.DOTALL | (re.IGNORECASE | re.ASCII if ignore_case else 0)
    return re.fullmatch("".join(regex), value, flags) is not None


def is_nan(value: object) -> bool:
    return isinstance(value, float) and math.isnan(value)


def satisfies(value: Any, c: Comparison) -> bool:
    op, target = c.op, c.value
    if op in LIKE_OPS:
        assert isinstance(target, str)
        matched = like(value, target, ignore_case=op in (Op.ILIKE, Op.NOT_ILIKE))
        return matched != (op in (Op.NOT_LIKE, Op.NOT_ILIKE))
    if c.entity.kind is EntityKind.PARAM and isinstance(target, float):
        if not NUMERIC_TEXT.fullmatch(value):
            return False
        value = float(value)
    if is_nan(value):
        return False
    if op in (Op.IN, Op.NOT_IN):
        assert isinstance(target, tuple)
        listed = [t for t in target if not is_nan(t)]
        return (value in listed) == (op is Op.IN)
    return not is_nan(target) and COMPARE[op](value, target)


def holds(run: RunData, expr: Expr) -> bool:
    if isinstance(expr, And):
        return all(holds(run, item) for item in expr.items)
    if isinstance(expr, Or):
        return any(holds(run, item) for item in expr.items)
    if isinstance(expr, Not):
        return not holds(run, expr.item)
    values = values_of(run, expr.entity)
    if expr.op is Op.IS_NULL:
        return not values
    if expr.op is Op.IS_NOT_NULL:
        return bool(values)
    return any(satisfies(v, expr) for v in values)


def sort_value(run: RunData, entity: Entity) -> Any:
    values = values_of(run, entity)
    return None if not values or is_nan(values[0]) else values[0]


def reference_order(found: list[RunData], order: Sequence[OrderKey]) -> list[RunData]:
    def compare(a: RunData, b: RunData) -> int:
        for key in order:
            va, vb = sort_value(a, key.entity), sort_value(b, key.entity)
            if va == vb:
                continue
            if va is None or vb is None:  # missing values last, whatever the direction
                return 1 if va is None else -1
            return (1 if va > vb else -1) * (-1 if key.descending else 1)
        ta, tb = a.attributes["start_time"], b.attributes["start_time"]
        if ta != tb:
            return -1 if ta > tb else 1
        return -1 if a.pk > b.pk else 1

    return sorted(found, key=functools.cmp_to_key(compare))


def expected(
    expr: Expr | None,
    order: Sequence[OrderKey] = (),
    *,
    experiments: Sequence[str] = EXPERIMENTS,
    stage: str | None = "active",
) -> list[str]:
    found = [
        r
        for r in RUNS
        if r.attributes["experiment_id"] in experiments
        and (stage is None or r.attributes["lifecycle_stage"] == stage)
        and (expr is None or holds(r, expr))
    ]
    return [r.run_id for r in reference_order(found, order)]


# ------------------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[sa.Engine]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('search') / 'store.db'}"
    else:
        # The shared cluster (tests/conftest.py), in a database with C collation: strings order bytewise
        # there, as on SQLite, so one reference order serves both.
        cluster = request.getfixturevalue("postgres")
        name = f"search_{uuid.uuid4().hex[:12]}"
        admin = sa.create_engine(cluster.url(), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.exec_driver_sql(
                f"CREATE DATABASE {name} TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C'"
            )
        admin.dispose()
        url = cluster.url(name)
    engine = sa.create_engine(url)
    populate(engine, RUNS)
    yield engine
    engine.dispose()


def search(
    engine: sa.Engine,
    expr: Expr | None,
    order: Sequence[OrderKey] = (),
    *,
    experiments: Sequence[str] = EXPERIMENTS,
    stage: str | None = "active",
    offset: int = 0,
    limit: int = 1000,
) -> list[str]:
    # On SQLite every search also runs with the run-by-run plan of small experiments: same runs, same order.
    found = []
    for few_runs in (False, True) if engine.dialect.name == "sqlite" else (False,):
        statement = build_search_statement(
            experiments,
            expr,
            order,
            lifecycle_stage=stage,
            offset=offset,
            limit=limit,
            dialect_name=engine.dialect.name,
            few_runs=few_runs,
        )
        with engine.connect() as conn:
            found.append([row.run_id for row in conn.execute(statement)])
    assert all(runs == found[0] for runs in found), f"the plans disagree: {found}"
    return found[0]


# ------------------------------------------------------------------------------------------------ tests

FILTERS = [
    # metrics: every operator, NaN (stored as NULL) and ±inf, missing metrics
    "metrics.acc > 0.5",
    "metrics.acc >= 0.5",
    "metrics.acc < 0.5",
    "metrics.acc <= 0.5",
    "metrics.acc = 0.5",
    "metrics.acc == 1",
    "metrics.acc != 0.5",
    "metrics.acc <> 0.5",
    "metrics.acc > -inf",
    "metrics.acc < inf",
    "metrics.acc = inf",
    "metrics.acc = -inf",
    "metrics.acc != nan",
    "metrics.acc = nan",
    "metrics.acc > nan",
    "metrics.acc in (0.5, 0.9, inf)",
    "metrics.acc not in (0.5, 0.9)",
    "metrics.acc in (nan)",
    "metrics.acc not in (nan)",
    "metrics.acc not in (nan, 0.5)",
    "metrics.acc is null",
    "metrics.acc is not null",
    "metrics.missing is null",
    "metrics.missing is not null",
    "metrics.missing > 0",
    "metrics.val/acc > 0.5",
    "metrics.`my key` <= 0.5",
    "metrics.acc > 0.5 and metrics.acc < 1",
    "metrics.acc > 0.5 and metrics.loss < 1",
    "metrics.acc is not null and metrics.acc != 0.5",
    # params: strings, like/ilike with wildcards and escapes, numeric comparisons
    "params.model = 'resnet'",
    "params.model != 'resnet'",
    "params.model like 'res%'",
    "params.model ilike 'res%'",
    "params.model not like 'res%'",
    "params.model not ilike 'res%'",
    "params.model like '%N%'",
    "params.model ilike 'RESNET%'",
    r"params.model like 'a\%b'",
    "params.model like 'a_b'",
    r"params.model like 'a\_b'",
    "params.model like 'a*b'",
    "params.model like 'a?b'",
    "params.model like '[x]'",
    "params.model like '%[%'",
    r"params.model like 'back\\\\slash'",
    r"params.model like '%\%'",
    r"params.model = 'it\'s'",
    "params.model = ''",
    "params.model like ''",
    "params.model like '%'",
    "params.model > 'm'",
    "params.lr > 1",
    "params.lr >= 5",
    "params.lr < 0.5",
    "params.lr <= -3",
    "params.lr > -inf",
    "params.lr < inf",
    "params.lr > '5'",
    "params.lr = 5",
    "params.lr = 05",
    "params.lr in (5, 0.01, 'abc')",
    "params.lr not in (5)",
    "params.lr is null",
    "params.depth > 4 and params.lr < 1",
    # tags
    "tags.team = 'nlp'",
    "tags.team ilike 'NLP'",
    "tags.team like 'nlp'",
    r"tags.team like '50\%'",
    "tags.team > 'cv'",
    "tags.team in ('nlp', 'cv')",
    "tags.team not in ('nlp')",
    "tags.team is null",
    "tags.team != 'nlp'",
    "tags.`mlflow.note` like '%'",
    # attributes
    "attributes.status = 'finished'",
    "attributes.status != 'running'",
    "attributes.status in ('failed', 'killed')",
    "attributes.status not in ('failed')",
    "attributes.status like 'F%'",
    "attributes.status ilike 'f%'",
    "attributes.name like 'run-%'",
    "attributes.name ilike 'run-%'",
    r"attributes.name like 'RUN\_%'",
    f"attributes.start_time > {T0 + 5000}",
    f"attributes.start_time <= {T0 + 5000}",
    f"attributes.start_time in ({T0}, {T0 + 1000})",
    "attributes.end_time is null",
    f"attributes.end_time > {T0 + 500_000}",
    "attributes.user = 'alice'",
    "attributes.user ilike 'alice'",
    "attributes.user != 'alice'",
    "not attributes.user = 'alice'",
    "not attributes.user not in ('bob')",
    "attributes.user is null",
    "attributes.parent_run_id is not null",
    f"attributes.run_id = '{RUNS[3].run_id}'",
    f"attributes.parent_run_id = '{RUNS[0].run_id}'",
    "attributes.experiment_id = 2",
    "attributes.artifact_uri like 's3://%'",
    # datasets: any one input satisfies a comparison
    "datasets.name = 'train'",
    "datasets.name ilike 'train'",
    "datasets.name != 'train'",
    "not datasets.name = 'train'",
    "datasets.context is null",
    "datasets.context is not null",
    "datasets.context = 'eval'",
    "datasets.digest in ('d1', 'd2')",
    "datasets.source like 's3://data/t%'",
    "datasets.name = 'train' and datasets.context = 'eval'",
    # boolean structure
    "metrics.acc > 0.5 or params.model = 'resnet'",
    "not metrics.acc > 0.5",
    "not (metrics.acc > 0.5 or tags.team = 'nlp')",
    "metrics.acc > 0.5 and not tags.team = 'nlp'",
    "(metrics.acc > 0.5 or metrics.loss < 1) and (params.model ilike 'res%' or tags.team is null)",
    "metrics.acc > 0.5 and (params.lr > 1 or not attributes.status = 'FINISHED')",
    "not not metrics.acc > 0.5",
    "metrics.acc is null or metrics.acc < 0.5",
    "(metrics.acc > 0.1 and params.lr > 0) and (tags.team != 'x' and attributes.status != 'KILLED')",
    "metrics.acc > 0.1 and params.lr > 0 and tags.team != 'x' and datasets.name != 'zzz'",
    "metrics.acc > 0.5 and metrics.acc is null",
]


def test_reference_like_treats_backslash_as_escape() -> None:
    assert like("a%b", r"a\%b", ignore_case=False) and not like("axb", r"a\%b", ignore_case=False)
    assert like("ResNet", "res%", ignore_case=True) and not like("ResNet", "res%", ignore_case=False)


def test_the_data_covers_the_edge_cases() -> None:
    acc = [r.metrics.get("acc") for r in RUNS]
    assert None in acc and INF in acc and -INF in acc and any(is_nan(v) for v in acc)
    assert {r.attributes["lifecycle_stage"] for r in RUNS} == {"active", "deleted"}
    assert None in {r.attributes["user"] for r in RUNS} and any(r.datasets for r in RUNS)


@pytest.mark.parametrize("text", FILTERS)
def test_filter_matches_reference(engine: sa.Engine, text: str) -> None:
    expr = parse_filter(text)
    assert search(engine, expr) == expected(expr)


ORDERS = [
    ["metrics.acc desc"],
    ["metrics.acc"],
    ["metrics.loss desc", "params.model"],
    ["params.lr desc"],
    ["tags.team"],
    ["attributes.end_time desc"],
    ["attributes.end_time"],
    ["attributes.name"],
    ["attributes.start_time asc"],
    ["metrics.`my key` desc"],
    ["metrics.acc desc", "metrics.loss asc"],
]
ORDER_FILTERS = [
    None,
    "metrics.acc > 0.5",
    "metrics.acc is not null",
    "params.lr > 1",
    "metrics.acc > 0.1 or tags.team = 'nlp'",
]


@pytest.mark.parametrize("order", ORDERS, ids=" | ".join)
@pytest.mark.parametrize("text", ORDER_FILTERS)
def test_order_matches_reference(engine: sa.Engine, order: list[str], text: str | None) -> None:
    expr, keys = parse_filter(text), parse_order_by(order)
    assert search(engine, expr, keys) == expected(expr, keys)


def test_runs_without_the_metric_sort_last_in_both_directions(engine: sa.Engine) -> None:
    for direction in ("asc", "desc"):
        found = search(engine, None, parse_order_by([f"metrics.acc {direction}"]))
        values = [
            sort_value(next(r for r in RUNS if r.run_id == run_id), Entity(EntityKind.METRIC, "acc"))
            for run_id in found
        ]
        first_missing = values.index(None)
        assert all(v is None for v in values[first_missing:])
        assert values[:first_missing] == sorted(values[:first_missing], reverse=direction == "desc")
        assert values[0] == (INF if direction == "desc" else -INF)


def test_like_is_case_sensitive_and_ilike_is_not(engine: sa.Engine) -> None:
    def models(text: str) -> set[str]:
        return {
            next(r for r in RUNS if r.run_id == i).params["model"]
            for i in search(engine, parse_filter(text), stage=None)
        }

    assert models("params.model like 'resnet'") == {"resnet"}
    assert models("params.model ilike 'resnet'") == {"resnet", "ResNet"}
    assert models("params.model like 'RES%'") == {"RESNET-50"}
    assert models("params.model ilike 'res%'") == {"resnet", "ResNet", "RESNET-50"}
    assert models(r"params.model like 'a\%b'") == {"a%b"}
    assert models("params.model like 'a?b'") == {"a?b"}


def test_params_compare_numerically_only_where_numeric(engine: sa.Engine) -> None:
    found = search(engine, parse_filter("params.lr > 4"), stage=None)
    lrs = {next(r for r in RUNS if r.run_id == i).params["lr"] for i in found}
    assert lrs == {"10", " 7", "5", "05", "1E2"} & {r.params.get("lr") for r in RUNS}


def test_pages_have_no_duplicates_or_gaps(engine: sa.Engine) -> None:
    for order in ([], ["metrics.acc desc"], ["params.model"]):
        keys = parse_order_by(order)
        everything = search(engine, None, keys, stage=None)
        pages = [
            search(engine, None, keys, stage=None, offset=o, limit=7)
            for o in range(0, len(everything) + 7, 7)
        ]
        assert [run_id for page in pages for run_id in page] == everything
        assert len(set(everything)) == len(everything) == len(RUNS)


def test_search_is_scoped_to_the_experiments(engine: sa.Engine) -> None:
    expr = parse_filter("metrics.acc > 0")
    assert search(engine, expr, experiments=["2"]) == expected(expr, experiments=["2"])
    assert search(engine, expr, experiments=["1", "3"]) == expected(expr, experiments=["1", "3"])
    assert search(engine, None, experiments=[]) == []
    assert search(engine, None, experiments=["99"]) == []


def test_lifecycle_stage_filters_deleted_runs(engine: sa.Engine) -> None:
    active, everything = search(engine, None), search(engine, None, stage=None)
    deleted = search(engine, None, stage="deleted")
    assert set(active) | set(deleted) == set(everything) and not set(active) & set(deleted)
    assert everything == expected(None, stage=None) and deleted == expected(None, stage="deleted")


def test_hostile_values_are_bound_not_interpolated(engine: sa.Engine) -> None:
    text = r"params.model = 'zq\'; DROP TABLE runs; --' or metrics.`zq key` > 123.456 or tags.t like 'zq%'"
    statement = build_search_statement(
        EXPERIMENTS, parse_filter(text), [], limit=10, dialect_name=engine.dialect.name
    )
    sql = str(statement.compile(dialect=engine.dialect))
    assert "zq" not in sql and "123.456" not in sql and "DROP" not in sql
    assert search(engine, parse_filter(text)) == []
    assert search(engine, None, stage=None) == expected(None, stage=None)  # runs is still there


def compiled_sql(text: str | None, order: list[str], dialect_name: str = "sqlite") -> str:
    statement = build_search_statement(
        ["1"], parse_filter(text), parse_order_by(order), limit=100, dialect_name=dialect_name
    )
    return str(statement)


def test_top_level_comparisons_join_and_the_order_reuses_the_alias() -> None:
    sql = compiled_sql("metrics.acc > 0.9 and params.model = 'x' and metrics.acc < 2", ["metrics.acc desc"])
    assert sql.count("JOIN latest_metrics AS m_0 ON") == 1 and "JOIN params AS p_1 ON" in sql
    assert "ORDER BY m_0.value DESC, runs.start_time DESC, runs.id DESC" in sql
    assert "EXISTS" not in sql and "LEFT OUTER JOIN" not in sql


def test_or_and_not_use_exists_and_other_orders_left_join() -> None:
    sql = compiled_sql("metrics.acc > 0.9 or not tags.t = 'x'", ["metrics.loss", "params.lr desc"])
    assert sql.count("EXISTS") == 2 and sql.count("JOIN") == sql.count("LEFT OUTER JOIN") == 2
    assert "LEFT OUTER JOIN latest_metrics AS m_0" in sql and "LEFT OUTER JOIN params AS p_1" in sql
    assert "m_0.value ASC NULLS LAST, p_1.value DESC NULLS LAST" in sql


def test_case_sensitive_like_is_glob_on_sqlite_and_like_on_postgresql() -> None:
    assert "GLOB" in compiled_sql("params.m like 'a%'", [], "sqlite")
    assert "GLOB" not in compiled_sql("params.m like 'a%'", [], "postgresql")


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [({"dialect_name": "mysql"}, "mysql"), ({"offset": -1}, "offset"), ({"limit": -5}, "limit")],
)
def test_bad_arguments_are_invalid_input(kwargs: dict[str, Any], fragment: str) -> None:
    arguments: dict[str, Any] = {"limit": 10, **kwargs}
    with pytest.raises(InvalidInput, match=fragment):
        build_search_statement(["1"], None, [], **arguments)


def test_ordering_by_a_dataset_field_is_invalid_input() -> None:
    with pytest.raises(InvalidInput, match=r"datasets\.name"):
        build_search_statement(["1"], None, [OrderKey(Entity(EntityKind.DATASET, "name"))], limit=1)


# ------------------------------------------------------------------------------ random filters vs reference

NUMBER_TEXT = ["0", "0.5", "0.9", "1", "-1", "2.5", "inf", "-inf", "nan", "0.95", "1e-3", "5", "10"]
POOLS: dict[str, tuple[list[str], list[str]]] = {
    # entity: (value literals, operators)
    **{
        e: (NUMBER_TEXT, ["=", "!=", "<", "<=", ">", ">="])
        for e in ("metrics.acc", "metrics.loss", "metrics.val/acc", "metrics.`my key`", "metrics.missing")
    },
    "params.lr": (
        [*NUMBER_TEXT, *(repr(v) for v in LRS)],
        ["=", "!=", "<", ">=", "like", "ilike", "not like"],
    ),
    "params.model": (
        [repr(v) for v in [*MODELS, "res%", "%n%", "a_b", r"a\_b", "_", "%*%", "[%"]],
        ["=", "!=", "<", ">", "like", "ilike", "not like", "not ilike"],
    ),
    "tags.team": ([repr(v) for v in [*TEAMS, "n%", "%P"]], ["=", "!=", ">", "like", "ilike", "not ilike"]),
    "attributes.status": ([repr(s.lower()) for s in STATUSES], ["=", "!="]),
    "attributes.user": (["'alice'", "'Alice'", "'bob'", "'al%'"], ["=", "!=", "like", "ilike", "not like"]),
    "attributes.end_time": ([str(T0 + d) for d in (0, 300_000, 600_000)], ["<", ">=", "!="]),
    "attributes.start_time": ([str(T0 + d) for d in (0, 3000, 6000)], ["=", "<", ">"]),
    "datasets.name": (["'train'", "'Train'", "'eval'", "'t%'"], ["=", "!=", "like", "ilike", "not ilike"]),
    "datasets.context": (["'training'", "'eval'"], ["=", "!="]),
}


@st.composite
def filter_texts(draw: st.DrawFn, depth: int = 0) -> str:
    shape = draw(st.sampled_from(["cmp"] * 3 + ["and", "or", "not"])) if depth < 3 else "cmp"
    if shape == "and" or shape == "or":
        items = draw(st.lists(filter_texts(depth + 1), min_size=2, max_size=3))
        return f" {shape} ".join(f"({item})" for item in items)
    if shape == "not":
        return f"not ({draw(filter_texts(depth + 1))})"
    entity = draw(st.sampled_from(sorted(POOLS)))
    values, ops = POOLS[entity]
    form = draw(st.sampled_from(["op"] * 4 + ["in", "null"]))
    if form == "null":
        return f"{entity} {draw(st.sampled_from(['is null', 'is not null']))}"
    if form == "in":
        listed = draw(st.lists(st.sampled_from(values), min_size=1, max_size=3))
        return f"{entity} {draw(st.sampled_from(['in', 'not in']))} ({', '.join(listed)})"
    op = draw(st.sampled_from(ops))
    if op.endswith("like"):  # a pattern must be a quoted string
        values = [v for v in values if v[0] in "'\""]
    return f"{entity} {op} {draw(st.sampled_from(values))}"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=filter_texts(), order=st.sampled_from([*ORDERS, []]))
def test_random_filters_match_reference(engine: sa.Engine, text: str, order: list[str]) -> None:
    try:
        expr = parse_filter(text)
    except InvalidInput:  # e.g. like with a number literal on params.lr: not what this test is about
        assume(False)
        raise
    keys = parse_order_by(order)
    assert search(engine, expr, keys) == expected(expr, keys), text


# ---------------------------------------------------------------------------------- 100,000 runs on SQLite


def build_big_store(path: Path, count: int) -> sa.Engine:
    engine = sa.create_engine(f"sqlite:///{path}")
    schema.metadata.create_all(engine)
    rng = random.Random(5)
    with engine.begin() as conn:
        conn.execute(
            schema.experiments.insert(),
            [
                {"experiment_id": e, "name": e, "artifact_location": "/", "created_at": 0, "updated_at": 0}
                for e in "12"
            ],
        )
        conn.execute(
            schema.runs.insert(),
            [
                {
                    "id": pk,
                    "run_id": f"{pk:032x}",
                    "experiment_id": "2" if pk % 10 == 0 else "1",
                    "name": f"run-{pk}",
                    "status": "FINISHED",
                    "start_time": T0 + pk,
                    "artifact_uri": "/",
                    "lifecycle_stage": "active",
                }
                for pk in range(1, count + 1)
            ],
        )
        conn.execute(
            schema.latest_metrics.insert(),
            [
                {"run_pk": pk, "key": key, "value": rng.random(), "step": 0, "timestamp": 0}
                for pk in range(1, count + 1)
                for key in ("acc", "loss")
                if rng.random() < 0.95
            ],
        )
        conn.exec_driver_sql("ANALYZE")
    return engine


def query_plan(conn: sa.Connection, statement: sa.Select[Any]) -> list[str]:
    compiled = statement.compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True})
    parameters = tuple(compiled.params[name] for name in compiled.positiontup or ())
    return [row[3] for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}", parameters)]


@pytest.mark.parametrize("count", [1_000, pytest.param(100_000, marks=pytest.mark.slow)])
def test_metric_filter_and_order_walk_the_index(tmp_path: Path, count: int) -> None:
    started = time.perf_counter()
    engine = build_big_store(tmp_path / "big.db", count)
    built = time.perf_counter() - started
    statement = build_search_statement(
        ["1"], parse_filter("metrics.acc > 0.9"), parse_order_by(["metrics.acc desc"]), limit=100
    )
    with engine.connect() as conn:
        plan = query_plan(conn, statement)
        timings = []
        for _ in range(5):
            started = time.perf_counter()
            rows = conn.execute(statement).all()
            timings.append(time.perf_counter() - started)
    engine.dispose()
    print(f"\n{count:,} runs: built in {built:.1f} s; query {min(timings) * 1000:.2f} ms best of 5 "
          f"(first {timings[0] * 1000:.2f} ms); plan: {plan}")  # fmt: skip
    assert 0 < len(rows) <= 100 and len({row.id for row in rows}) == len(rows)
    assert any("USING INDEX ix_latest_metrics_key_value" in step for step in plan), plan
    assert not any(step.startswith("SCAN") for step in plan), plan


def test_a_small_experiment_is_searched_run_by_run(tmp_path: Path) -> None:
    """Beside a large experiment, walking the value index over every run costs ~150 ms at 100,000 runs; the
    store counts the searched experiments' runs first and, when few, walks them instead."""
    engine = build_big_store(tmp_path / "big.db", 1_000)
    statement = build_search_statement(
        ["1"],
        parse_filter("metrics.acc > 0.9 and params.lr = '0.1'"),
        parse_order_by(["metrics.acc desc"]),
        limit=100,
        few_runs=True,
    )
    with engine.connect() as conn:
        plan = query_plan(conn, statement)
    engine.dispose()
    assert any("runs USING INDEX ix_runs_experiment_start" in step for step in plan), plan
    value_indexes = ("ix_latest_metrics_key_value", "ix_params_key_value")
    assert not any(index in step for step in plan for index in value_indexes), plan
