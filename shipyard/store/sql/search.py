"""Run search: a filter and an order → one SQL statement, the same on SQLite (3.40+) and PostgreSQL 15.

Filters read like ``metrics.acc > 0.9 and params.model = 'resnet'``, ``tags.team in ('nlp', 'cv')``,
``not (attributes.status = 'FAILED' or metrics.loss is null)``, ``datasets.digest = 'a3f9…'``; the grammar is
in :mod:`shipyard.tracking.filter_parser`. What a filter means:

- A comparison holds when the run has a value for the entity and that value satisfies it, so
  ``params.opt != 'adam'`` needs a param ``opt``. ``ENTITY is null`` holds when the run has no value: no such
  metric, param or tag, a NULL attribute, no dataset input with that field set. ``not`` is plain negation:
  ``not params.opt = 'adam'`` also matches runs without ``opt``.
- Metrics compare their latest value (highest step, then newest). A NaN, logged or written in the filter,
  satisfies no comparison (``!=`` included) and is skipped in ``in``/``not in`` lists; ±inf are numbers.
- ``params.KEY`` with ``< <= > >=`` and a number compares numerically where the param is a decimal or
  scientific number (``'5'``, ``'0.01'``, ``'1e-3'``, surrounding blanks allowed); other values never match.
- ``like`` is case-sensitive and ``ilike`` ignores ASCII case, on both backends: ``%`` matches any run of
  characters, ``_`` any one, and a backslash makes the next character literal.
- A dataset comparison holds when any one of the run's dataset inputs satisfies it; two comparisons joined by
  ``and`` may be met by different inputs.
- Strings compare in the database's collation (bytewise on SQLite); ``attributes.status`` is upper-cased.

Order: every order key sorts runs without a value (and NaN metrics) last, ascending or descending; ties are
broken by ``start_time`` descending, then by insertion order descending, so pagination is stable. A page
starts ``offset`` rows in, or strictly after a :class:`~shipyard.tracking.cursors.SearchCursor` (the last row
of the page before): ``(k1 > v1 OR k1 IS NULL) OR (k1 = v1 AND (k2 > v2 OR k2 IS NULL)) OR …`` down to the
tie-breakers, with ``<`` for a descending key and ``kN IS NULL`` in place of ``kN = vN`` where the cursor has
no value. Each page selects its rows' order-key values too (``sort_key_0`` …): :func:`cursor_after` reads the
next cursor from them, whatever columns the caller loads.

NOTE (performance): top-level ``and`` comparisons on metrics, params and tags become INNER JOINs on aliased
tables (``latest_metrics AS m_0 ON m_0.run_pk = runs.id AND m_0.key = ? AND m_0.value > ?``), and an order key
on the same entity sorts by that alias. SQLite then walks ``ix_latest_metrics_key_value`` in order and stops
at LIMIT instead of scanning every run. Comparisons under ``or``/``not`` become correlated EXISTS subqueries.
A cursor's condition repeats its first key's bound on its own (``k1 <= v1`` for a descending key that cannot
be NULL), which the planners turn into the start of that walk: a page 50,000 rows deep costs what the first
does, where OFFSET reads and drops 50,000 rows.
"""

from __future__ import annotations

import enum
import math
import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from shipyard.errors import InvalidInput
from shipyard.store.schema import dataset_inputs, latest_metrics, params, runs, tags
from shipyard.tracking.cursors import SearchCursor
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
    parse_filter,
    parse_order_by,
)

_KEYED_TABLES = {EntityKind.METRIC: latest_metrics, EntityKind.PARAM: params, EntityKind.TAG: tags}
_ALIAS_LETTERS = {EntityKind.METRIC: "m", EntityKind.PARAM: "p", EntityKind.TAG: "t"}
_COMPARATORS: dict[Op, Callable[[Any, Any], Any]] = {
    Op.EQ: operator.eq,
    Op.NE: operator.ne,
    Op.LT: operator.lt,
    Op.LE: operator.le,
    Op.GT: operator.gt,
    Op.GE: operator.ge,
}
_DIALECTS = ("postgresql", "sqlite")
_SORT_LABEL = "sort_key_"
# What SQLite's numeric affinity accepts as a number, for PostgreSQL (see _numeric_value).
_PG_NUMBER_PATTERN = r"^[[:space:]]*[-+]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][-+]?[0-9]+)?[[:space:]]*$"


def build_search_statement(
    experiment_ids: Sequence[str],
    filter_expr: Expr | None,
    order_by: Sequence[OrderKey],
    *,
    lifecycle_stage: str | None = "active",
    offset: int = 0,
    limit: int,
    dialect_name: str = "sqlite",
    few_runs: bool = False,
    after: SearchCursor | None = None,
) -> sa.Select[Any]:
    """The statement selecting the columns of ``runs`` (``id`` included) for one page of matching runs, and
    each row's order-key values (for :func:`cursor_after`).

    Args:
        experiment_ids: search these experiments only.
        filter_expr: from :func:`parse_filter`; None matches every run.
        order_by: from :func:`parse_order_by`; tie-breakers are always appended.
        lifecycle_stage: only runs in this stage; None for all.
        offset: runs to skip.
        limit: most runs to return.
        dialect_name: the backend it will run on, ``"sqlite"`` or ``"postgresql"`` (``engine.dialect.name``).
        few_runs: the experiments hold few runs (SQLite): walk them and look each one's values up, rather
            than walk a value index over every experiment's runs (a 10-run experiment beside 100,000 runs:
            ~150 ms that way, ~1 ms this way). PostgreSQL's planner decides this from its statistics.
        after: the last row of the page before (from :func:`cursor_after`): this page is the rows strictly
            after it. Not with an offset.

    Raises:
        InvalidInput: a negative offset or limit, an offset with a cursor, a cursor with a value for more or
            fewer keys than ``order_by`` has, an unsupported dialect, or a comparison the AST cannot mean
            (only possible for a hand-built AST).
    """
    if dialect_name not in _DIALECTS:
        raise InvalidInput(f"search supports the {' and '.join(_DIALECTS)} dialects, not {dialect_name!r}")
    if offset < 0 or limit < 0:
        raise InvalidInput(f"offset and limit must not be negative, got offset={offset}, limit={limit}")
    if after is not None and offset:
        raise InvalidInput(f"a page starts after a cursor or at an offset, not both (offset={offset})")
    if after is not None and len(after.values) != len(order_by):
        raise InvalidInput(
            f"the cursor has {len(after.values)} order values; the order has {len(order_by)} keys"
        )
    compiler = _Compiler(dialect_name)
    where: list[sa.ColumnElement[bool]] = [runs.c.experiment_id.in_(list(experiment_ids))]
    if lifecycle_stage is not None:
        where.append(runs.c.lifecycle_stage == lifecycle_stage)
    joins: dict[Entity, _Join] = {}
    for item in _conjuncts(filter_expr):
        if isinstance(item, Comparison) and item.entity.kind in _KEYED_TABLES and item.op is not Op.IS_NULL:
            if item.entity not in joins:
                joins[item.entity] = _Join.for_entity(item.entity, len(joins), by_run=few_runs)
            joins[item.entity].add(item, compiler)
        else:
            where.append(compiler.condition(item))
    from_clause: sa.FromClause = runs
    for entity, join in joins.items():
        from_clause = from_clause.join(join.table, join.on(entity))
    sorts: list[_Sort] = []
    for key in order_by:
        if key.entity.kind is EntityKind.DATASET:
            raise InvalidInput(f"cannot order by {key.entity}: a run may have several datasets")
        if key.entity.kind is EntityKind.ATTRIBUTE:
            column: sa.ColumnElement[Any] = runs.c[key.entity.key]
            nullable = bool(runs.c[key.entity.key].nullable)
        else:
            if key.entity not in joins:  # joined for sorting only: runs without the key stay, with NULL
                joins[key.entity] = _Join.for_entity(key.entity, len(joins), outer=True, by_run=few_runs)
                from_clause = from_clause.outerjoin(joins[key.entity].table, joins[key.entity].on(key.entity))
            column, nullable = joins[key.entity].table.c.value, not joins[key.entity].null_free
        sorts.append(_Sort(column, key.descending, nullable))
    if after is not None:
        where.extend(_seek(sorts, after))
    ordering = [
        # A value known to be non-NULL keeps a plain ORDER BY, which SQLite can read straight off an index.
        sort.ordered.nulls_last() if sort.nullable else sort.ordered
        for sort in sorts
    ]
    return (
        sa.select(runs, *(sort.column.label(f"{_SORT_LABEL}{i}") for i, sort in enumerate(sorts)))
        .select_from(from_clause)
        .where(*where)
        .order_by(*ordering, runs.c.start_time.desc(), runs.c.id.desc())
        .offset(offset)
        .limit(limit)
    )


def cursor_after(row: Mapping[str, Any], order_by: Sequence[OrderKey]) -> SearchCursor:
    """The cursor of ``row``, a row of :func:`build_search_statement` with this ``order_by``: the next page
    starts after it."""
    values = tuple(row[f"{_SORT_LABEL}{i}"] for i in range(len(order_by)))
    return SearchCursor(values, int(row["start_time"]), str(row["run_id"]))


@dataclass(frozen=True)
class _Sort:
    """One ORDER BY key: its column, its direction, and whether the column can be NULL (sorted last)."""

    column: sa.ColumnElement[Any]
    descending: bool
    nullable: bool

    @property
    def ordered(self) -> sa.ColumnElement[Any]:
        return self.column.desc() if self.descending else self.column.asc()

    def past(self, value: Any) -> sa.ColumnElement[bool]:
        """The column sorts strictly after ``value`` (not None): beyond it in the direction, or NULL."""
        beyond = self.column < value if self.descending else self.column > value
        return sa.or_(beyond, self.column.is_(None)) if self.nullable else beyond


def _seek(sorts: Sequence[_Sort], cursor: SearchCursor) -> list[sa.ColumnElement[bool]]:
    """The conditions for the rows strictly after ``cursor`` in the order ``sorts`` + the tie-breakers."""
    # NOTE: the cursor names its run by run_id (the row keys never leave the server); its insertion order is
    # looked up in the statement. A run purged since (gc) has none: then only runs tied with it on every key
    # and on start_time are missed.
    cursor_run = runs.alias("cursor_run")
    cursor_pk = sa.select(cursor_run.c.id).where(cursor_run.c.run_id == cursor.run_id).scalar_subquery()
    keys = [
        *zip(sorts, cursor.values, strict=True),
        (_Sort(runs.c.start_time, descending=True, nullable=False), cursor.start_time),
        (_Sort(runs.c.id, descending=True, nullable=False), cursor_pk),
    ]
    tied: list[sa.ColumnElement[bool]] = []  # the row equals the cursor on every key so far
    alternatives: list[sa.ColumnElement[bool]] = []
    for sort, value in keys:
        if value is None:  # the cursor is among the runs without a value: the rows after it are too
            tied.append(sort.column.is_(None))
            continue
        alternatives.append(sa.and_(*tied, sort.past(value)))
        tied.append(sort.column == value)
    # The first key's bound alone as well: where the index walk starts (redundant for the result).
    first, value = keys[0]
    if value is None:
        leading = first.column.is_(None)
    else:
        leading = first.column <= value if first.descending else first.column >= value
        if first.nullable:
            leading = sa.or_(leading, first.column.is_(None))
    return [leading, sa.or_(*alternatives)]


@dataclass
class _Join:
    """An aliased keyed table joined on one entity, carrying the value conditions of its comparisons."""

    table: sa.FromClause
    conditions: list[sa.ColumnElement[bool]] = field(default_factory=list)
    null_free: bool = False  # no row with a NULL value (a NaN metric) can pass the conditions
    by_run: bool = False  # find the rows from the run only (see build_search_statement's few_runs)

    @classmethod
    def for_entity(cls, entity: Entity, number: int, *, outer: bool = False, by_run: bool = False) -> _Join:
        table = _KEYED_TABLES[entity.kind]
        alias = table.alias(f"{_ALIAS_LETTERS[entity.kind]}_{number}")
        # params and tags values are NOT NULL; a metric's may be NULL (NaN) until a comparison excludes it.
        return cls(alias, null_free=not outer and table is not latest_metrics, by_run=by_run)

    def add(self, comparison: Comparison, compiler: _Compiler) -> None:
        if comparison.op is Op.IS_NOT_NULL:
            return  # the join itself says the run has the key; a NaN metric (NULL value) has it too
        self.conditions.append(compiler.value_condition(self.table.c.value, comparison))
        # Every other comparison is false for NULL (SQL) and for NaN (our rule).
        self.null_free = True

    def on(self, entity: Entity) -> sa.ColumnElement[bool]:
        c = self.table.c
        key: sa.ColumnElement[Any] = c.key
        if self.by_run:
            # SQLite's unary + keeps a column out of index choices: with the key hidden from the (key, value)
            # index, the rows can only be found from their run, so the planner walks the experiment's runs.
            key = sa.literal_column(f"+{self.table.name}.key")
        return sa.and_(c.run_pk == runs.c.id, key == entity.key, *self.conditions)


class _Wildcard(enum.Enum):
    ANY = "any run of characters"
    ONE = "any one character"


class _Compiler:
    """Turns filter expressions into SQL conditions on ``runs`` for one dialect."""

    def __init__(self, dialect_name: str) -> None:
        self._dialect_name = dialect_name

    def condition(self, expr: Expr) -> sa.ColumnElement[bool]:
        if isinstance(expr, And):
            return sa.and_(*(self.condition(item) for item in expr.items))
        if isinstance(expr, Or):
            return sa.or_(*(self.condition(item) for item in expr.items))
        if isinstance(expr, Not):
            return sa.not_(self.condition(expr.item))
        return self._comparison(expr)

    def _comparison(self, c: Comparison) -> sa.ColumnElement[bool]:
        kind, key = c.entity.kind, c.entity.key
        if kind is EntityKind.ATTRIBUTE:
            column = runs.c[key]
            condition = self.value_condition(column, c)
            if column.nullable and c.op not in (Op.IS_NULL, Op.IS_NOT_NULL):
                # NOT (user = 'x') is NULL, not true, for a NULL user; this keeps the condition two-valued.
                return sa.and_(column.is_not(None), condition)
            return condition
        if kind is EntityKind.DATASET:
            field_column = dataset_inputs.c[key]
            owned = dataset_inputs.c.run_pk == runs.c.id
            if c.op is Op.IS_NULL:
                return ~sa.exists().where(owned, field_column.is_not(None))
            return sa.exists().where(owned, self.value_condition(field_column, c))
        table = _KEYED_TABLES[kind]
        owned = sa.and_(table.c.run_pk == runs.c.id, table.c.key == key)
        if c.op is Op.IS_NULL:
            return ~sa.exists().where(owned)
        if c.op is Op.IS_NOT_NULL:
            return sa.exists().where(owned)
        return sa.exists().where(owned, self.value_condition(table.c.value, c))

    def value_condition(self, column: sa.ColumnElement[Any], c: Comparison) -> sa.ColumnElement[bool]:
        """``column op value`` for a column holding the entity's value."""
        op, value = c.op, c.value
        if op is Op.IS_NULL:
            return column.is_(None)
        if op is Op.IS_NOT_NULL:
            return column.is_not(None)
        if op in LIKE_OPS:
            if not isinstance(value, str):
                raise InvalidInput(f"{c.entity} {op.value} needs a string pattern, got {value!r}")
            return self._like(column, op, value)
        if c.entity.kind is EntityKind.PARAM and isinstance(value, float):
            column = self._numeric_value(column)
        if op in (Op.IN, Op.NOT_IN):
            if not isinstance(value, tuple):
                raise InvalidInput(f"{c.entity} {op.value} needs a tuple of values, got {value!r}")
            listed = [_bound(v) for v in value if not _is_nan(v)]
            if not listed:  # "in ()" matches nothing; "not in ()" needs only a value
                return sa.false() if op is Op.IN else column.is_not(None)
            return column.in_(listed) if op is Op.IN else column.not_in(listed)
        if not isinstance(value, float | str):
            raise InvalidInput(f"{c.entity} {op.value} needs one value, got {value!r}")
        if _is_nan(value):
            return sa.false()
        return _COMPARATORS[op](column, _bound(value))

    def _like(self, column: sa.ColumnElement[Any], op: Op, pattern: str) -> sa.ColumnElement[bool]:
        parts = _like_parts(pattern)
        if op in (Op.ILIKE, Op.NOT_ILIKE):
            matched = column.ilike(_as_like(parts), escape="\\")
        elif self._dialect_name == "sqlite":
            # SQLite's LIKE ignores ASCII case; GLOB is its case-sensitive matcher.
            matched = column.op("GLOB", is_comparison=True)(_as_glob(parts))
        else:
            matched = column.like(_as_like(parts), escape="\\")
        return sa.not_(matched) if op in (Op.NOT_LIKE, Op.NOT_ILIKE) else matched

    def _numeric_value(self, column: sa.ColumnElement[Any]) -> sa.ColumnElement[float]:
        """The text column as a float where it holds a number, else NULL (so it matches nothing)."""
        if self._dialect_name == "sqlite":
            # NOTE: comparing TEXT with a NUMERIC expression applies numeric affinity to the text, which
            # converts only a well-formed number; so the two are equal exactly for numeric strings
            # ('abc' and '5abc' would CAST to 0 and 5).
            is_number = column == sa.cast(column, sa.Numeric)
        else:
            # PostgreSQL raises on CAST('abc' AS FLOAT); CASE guards the cast.
            is_number = column.regexp_match(_PG_NUMBER_PATTERN)
        return sa.case((is_number, sa.cast(column, sa.Float)))


def _conjuncts(expr: Expr | None) -> list[Expr]:
    if expr is None:
        return []
    if isinstance(expr, And):
        return [conjunct for item in expr.items for conjunct in _conjuncts(item)]
    return [expr]


def _bound(value: float | str) -> sa.BindParameter[Any]:
    return sa.literal(value, sa.Float() if isinstance(value, float) else sa.String())


def _is_nan(value: object) -> bool:
    return isinstance(value, float) and math.isnan(value)


def _like_parts(pattern: str) -> list[str | _Wildcard]:
    """``pattern`` as literal characters and wildcards; a backslash makes the next character literal."""
    parts: list[str | _Wildcard] = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            parts.append(pattern[i + 1])
            i += 2
            continue
        parts.append(_Wildcard.ANY if ch == "%" else _Wildcard.ONE if ch == "_" else ch)
        i += 1
    return parts


def _as_like(parts: list[str | _Wildcard]) -> str:
    wildcards = {_Wildcard.ANY: "%", _Wildcard.ONE: "_"}
    return "".join(
        wildcards[p] if isinstance(p, _Wildcard) else "\\" + p if p in ("%", "_", "\\") else p for p in parts
    )


def _as_glob(parts: list[str | _Wildcard]) -> str:
    wildcards = {_Wildcard.ANY: "*", _Wildcard.ONE: "?"}
    # A one-character class is GLOB's only escape; "]" outside a class is literal already.
    return "".join(
        wildcards[p] if isinstance(p, _Wildcard) else f"[{p}]" if p in ("*", "?", "[") else p for p in parts
    )


__all__ = [
    "OrderKey",
    "SearchCursor",
    "build_search_statement",
    "cursor_after",
    "parse_filter",
    "parse_order_by",
]
