"""What changed inside a table (Parquet, CSV, TSV) between two versions, on DuckDB: columns added, removed or
retyped, and rows added, removed and changed — by key columns, or without a key by whole-row comparison
(as multisets, so duplicate rows count)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shipyard.errors import InvalidInput

_READERS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv", ".tsv": "tsv"}
_EXAMPLES = 5  # keys shown per kind of row change


@dataclass(frozen=True)
class ColumnChange:
    """A column ``added``, ``removed`` or whose type ``changed`` (``before``/``after`` its types)."""

    name: str
    change: str
    before: str | None
    after: str | None


@dataclass(frozen=True)
class TableDiff:
    """Rows and columns of one table that differ between two versions.

    ``changed`` (rows whose key is in both with other values) and the ``examples`` of keys are known only
    with a key; ``compared_on`` names the columns rows were compared on (those in both versions).
    """

    path: str
    rows_before: int
    rows_after: int
    added: int
    removed: int
    changed: int | None
    key: tuple[str, ...] | None
    compared_on: tuple[str, ...]
    columns: tuple[ColumnChange, ...] = ()
    examples: dict[str, list[Any]] | None = None


def is_tabular(path: str) -> bool:
    """Whether ``path`` names a table this module can compare (by its suffix)."""
    return Path(path).suffix.lower() in _READERS


def diff_table(
    path: str,
    before: Path,
    after: Path,
    *,
    key: Sequence[str] | None = None,
    labels: tuple[str, str] = ("a", "b"),
) -> TableDiff:
    """Compare two copies of table ``path``.

    Raises:
        InvalidInput: a key column missing from either copy (the columns it has named), a key that is not
            unique, or a file DuckDB cannot read as a table.
    """
    import duckdb

    con = duckdb.connect()
    try:
        tables = [_read(con, path, file, label) for file, label in zip((before, after), labels, strict=True)]
        schemas = [dict(zip(t.columns, (str(x) for x in t.types), strict=True)) for t in tables]
        for table, label in zip(tables, ("old_rows", "new_rows"), strict=True):
            table.create_view(label)
        columns = _column_changes(*schemas)
        common = [c for c in schemas[0] if c in schemas[1]]
        keys = tuple(key or ())
        for schema, label in zip(schemas, labels, strict=True):
            missing = [k for k in keys if k not in schema]
            if missing:
                raise InvalidInput(
                    f"key column(s) {', '.join(map(repr, missing))} not in {label} file {path!r}; "
                    f"it has: {', '.join(schema)}"
                )
        # Columns whose type changed are compared as text, so 1 (BIGINT) and 1.0 (DOUBLE) still differ.
        select = ", ".join(
            _q(c) if schemas[0][c] == schemas[1][c] else f"CAST({_q(c)} AS VARCHAR) AS {_q(c)}"
            for c in common
        )
        counts = [_count(con, f"SELECT count(*) FROM {side}") for side in ("old_rows", "new_rows")]
        if not keys:
            only = "SELECT count(*) FROM (SELECT {s} FROM {x} EXCEPT ALL SELECT {s} FROM {y})"
            removed = _count(con, only.format(s=select, x="old_rows", y="new_rows"))
            added = _count(con, only.format(s=select, x="new_rows", y="old_rows"))
            return TableDiff(path, *counts, added, removed, None, None, tuple(common), columns)
        for side, label in zip(("old_rows", "new_rows"), labels, strict=True):
            repeated = _count(
                con, f"SELECT count(*) FROM (SELECT 1 FROM {side} GROUP BY {_cols(keys)} HAVING count(*) > 1)"
            )
            if repeated:
                raise InvalidInput(
                    f"key ({', '.join(keys)}) is not unique in {label} file {path!r}: {repeated} key "
                    "value(s) repeat; name columns that identify a row"
                )
        on = " AND ".join(f"o.{_q(k)} IS NOT DISTINCT FROM n.{_q(k)}" for k in keys)
        values = [c for c in common if c not in keys]
        differs = (
            " OR ".join(
                f"CAST(o.{_q(c)} AS VARCHAR) IS DISTINCT FROM CAST(n.{_q(c)} AS VARCHAR)"
                if schemas[0][c] != schemas[1][c]
                else f"o.{_q(c)} IS DISTINCT FROM n.{_q(c)}"
                for c in values
            )
            or "FALSE"
        )
        queries = {
            "added": f"FROM new_rows n ANTI JOIN old_rows o ON {on}",
            "removed": f"FROM old_rows o ANTI JOIN new_rows n ON {on}",
            "changed": f"FROM old_rows o JOIN new_rows n ON {on} WHERE {differs}",
        }
        found = {kind: _count(con, f"SELECT count(*) {q}") for kind, q in queries.items()}
        side = {"added": "n", "removed": "o", "changed": "n"}
        examples = {
            kind: [
                row[0] if len(keys) == 1 else list(row)
                for row in con.execute(
                    f"SELECT {', '.join(f'{side[kind]}.{_q(k)}' for k in keys)} {q} "
                    f"ORDER BY ALL LIMIT {_EXAMPLES}"
                ).fetchall()
            ]
            for kind, q in queries.items()
            if found[kind]
        }
        return TableDiff(
            path,
            *counts,
            found["added"],
            found["removed"],
            found["changed"],
            keys,
            tuple(common),
            columns,
            examples,
        )
    finally:
        con.close()


def _read(con: Any, path: str, file: Path, label: str) -> Any:
    import duckdb

    reader = _READERS[Path(path).suffix.lower()]
    try:
        if reader == "parquet":
            return con.read_parquet(str(file))
        return con.read_csv(str(file), sep="\t" if reader == "tsv" else ",", header=True)
    except duckdb.Error as exc:
        raise InvalidInput(f"cannot read {label} file {path!r} as a table: {exc}") from exc


def _column_changes(before: dict[str, str], after: dict[str, str]) -> tuple[ColumnChange, ...]:
    changes = [ColumnChange(c, "removed", t, None) for c, t in before.items() if c not in after]
    changes += [ColumnChange(c, "added", None, t) for c, t in after.items() if c not in before]
    changes += [
        ColumnChange(c, "type changed", t, after[c])
        for c, t in before.items()
        if c in after and after[c] != t
    ]
    return tuple(changes)


def _count(con: Any, sql: str) -> int:
    return int(con.execute(sql).fetchone()[0])


def _q(name: str) -> str:
    """A column name as a DuckDB identifier (quoted: any name a file holds is data, never SQL)."""
    return '"' + name.replace('"', '""') + '"'


def _cols(names: Sequence[str]) -> str:
    return ", ".join(_q(n) for n in names)
