"""A run's creation and its end on PostgreSQL, one statement each (data-modifying CTEs).

Each PostgreSQL statement is a round trip and a round of parse, plan and execute on the server: creating a
run took four (BEGIN, the run, its idempotency key, COMMIT) and ending one seven (BEGIN, the key, params,
metric chunks, latest values, the status, COMMIT). Chained as CTEs, creation is one statement run without a
transaction around it, and the end one statement between BEGIN and COMMIT: a buffered param that clashes with
a stored one must undo the whole end, which the caller learns from the count of params inserted.

Every CTE of a statement sees the same snapshot, and each table is written by one CTE at most, so no CTE
depends on another's effects except through ``RETURNING`` (the claimed key, the new run's id).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect

from shipyard.store.schema import latest_metrics, metric_chunks, params, runs, tags
from shipyard.tracking import chunks

# Bound values per statement, kept well under PostgreSQL's 65,535: a bigger end goes statement by statement.
MAX_VALUES = 20_000

_CLAIM = (
    "INSERT INTO request_keys (key, created_at, result) VALUES (%s, %s, %s) "
    "ON CONFLICT (key) DO NOTHING RETURNING 1"
)
_GUARD = " WHERE EXISTS (SELECT 1 FROM claim)"
_LATEST_RULE = (
    "ON CONFLICT (run_pk, key) DO UPDATE SET value = excluded.value, step = excluded.step, "
    "timestamp = excluded.timestamp WHERE excluded.step > latest_metrics.step OR "
    "(excluded.step = latest_metrics.step AND excluded.timestamp >= latest_metrics.timestamp)"
)


class RunStatements:
    """Builds the one-statement creation and end of a run for PostgreSQL (``%s`` placeholders)."""

    def __init__(self, dialect: Dialect, run_columns: Sequence[str]) -> None:
        self._run_columns = tuple(run_columns)
        self._run_head = _head(runs, run_columns)
        # A SELECT lends its placeholders no column types as an INSERT's VALUES does: the first row casts.
        self._run_types = _types(runs, run_columns, dialect)
        self._param_types = _types(params, ("run_pk", "key", "value"), dialect)
        self._chunk_types = _types(metric_chunks, chunks.CHUNK_COLUMNS, dialect)
        self._chunk_head = _head(metric_chunks, chunks.CHUNK_COLUMNS)
        self._latest_types = _types(latest_metrics, ("run_pk", "key", "value", "step", "timestamp"), dialect)
        self._tag_types = _types(tags, ("key", "value"), dialect)

    def create(
        self, row: dict[str, Any], tag_rows: Sequence[tuple[str, str]], claim: tuple[str, int] | None
    ) -> tuple[str, list[Any]]:
        """Insert ``row`` and its tags, claiming ``claim`` (key, time) first; the statement returns the new
        run's id, or no row when the key was claimed before (a retried creation)."""
        parts: list[str] = []
        values: list[Any] = []
        guard = ""
        if claim is not None:
            parts.append(f"claim AS ({_CLAIM})")
            values += (*claim, row["run_id"])
            guard = _GUARD
        parts.append(f"run AS ({self._run_head} SELECT {_row(self._run_types)}{guard} RETURNING id)")
        values += (row[c] for c in self._run_columns)
        if tag_rows:
            parts.append(
                "tag AS (INSERT INTO tags (run_pk, key, value) SELECT run.id, v.key, v.value FROM run, "
                f"(VALUES {_rows(self._tag_types, len(tag_rows))}) AS v (key, value))"
            )
            values += (value for pair in tag_rows for value in pair)
        return f"WITH {', '.join(parts)} SELECT id FROM run", values

    def end(
        self,
        end: tuple[str, int, int],
        claim: tuple[str, int] | None,
        param_rows: Sequence[tuple[Any, ...]],
        chunk_rows: Sequence[tuple[Any, ...]],
        latest_rows: Sequence[tuple[Any, ...]],
    ) -> tuple[str, list[Any]]:
        """Store the rows (once: only if ``claim`` is new) and set the run's (status, end time, id) ``end``;
        the statement returns how many params it inserted (fewer than given: some key was stored)."""
        parts: list[str] = []
        values: list[Any] = []
        guard = ""
        if claim is not None:
            parts.append(f"claim AS ({_CLAIM})")
            values += (*claim, None)
            guard = _GUARD
        if param_rows:
            parts.append(
                "param AS (INSERT INTO params (run_pk, key, value) SELECT * FROM "
                f"(VALUES {_rows(self._param_types, len(param_rows))}) AS v{guard} "
                "ON CONFLICT DO NOTHING RETURNING 1)"
            )
            values += _flat(param_rows)
        if chunk_rows:
            parts.append(
                f"chunk AS ({self._chunk_head} SELECT * FROM "
                f"(VALUES {_rows(self._chunk_types, len(chunk_rows))}) AS v{guard})"
            )
            values += _flat(chunk_rows)
        if latest_rows:
            parts.append(
                "latest AS (INSERT INTO latest_metrics (run_pk, key, value, step, timestamp) SELECT * FROM "
                f"(VALUES {_rows(self._latest_types, len(latest_rows))}) AS v{guard} {_LATEST_RULE})"
            )
            values += _flat(latest_rows)
        parts.append("ended AS (UPDATE runs SET status = %s, end_time = %s WHERE id = %s)")
        values += end
        inserted = "(SELECT count(*) FROM param)" if param_rows else "0"
        return f"WITH {', '.join(parts)} SELECT {inserted}", values


def _types(table: sa.Table, columns: Sequence[str], dialect: Dialect) -> tuple[str, ...]:
    return tuple(table.c[c].type.compile(dialect=dialect) for c in columns)


def _head(table: sa.Table, columns: Sequence[str]) -> str:
    quoted = ", ".join(f'"{c}"' for c in columns)
    return f"INSERT INTO {table.name} ({quoted})"


def _row(types: Sequence[str]) -> str:
    return ", ".join(f"CAST(%s AS {t})" for t in types)


def _rows(types: Sequence[str], count: int) -> str:
    plain = "(" + ", ".join(["%s"] * len(types)) + ")"
    return ", ".join([f"({_row(types)})", *([plain] * (count - 1))])


def _flat(rows: Sequence[tuple[Any, ...]]) -> list[Any]:
    return [value for row in rows for value in row]
