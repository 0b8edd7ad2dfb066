"""Printing for people (rich tables) and for scripts (``--json``)."""

from __future__ import annotations

import dataclasses
import enum
import json
import math
import sys
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from rich.console import Console
from rich.table import Table

from shipyard.config import get_settings

# Piped output is for scripts and logs: do not squeeze tables into 80 columns there.
console = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 160)


def to_jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # JSON has no NaN/inf; keep them readable rather than invalid
    if hasattr(value, "__fspath__"):
        return str(value)
    return value


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(to_jsonable(value), indent=2, sort_keys=False) + "\n")


# Columns of ids people copy into the next command: never wrapped or cut (the others give way).
WHOLE_COLUMNS = frozenset({"run id", "run"})


def print_table(title: str | None, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    cells = [[fmt(cell) for cell in row] for row in rows]
    table = Table(title=title, show_lines=False)
    for i, column in enumerate(columns):
        if column in WHOLE_COLUMNS:
            widest = max((len(row[i]) for row in cells if i < len(row)), default=0)
            table.add_column(column, no_wrap=True, min_width=max(widest, len(column)))
        else:
            table.add_column(column, overflow="fold")
    for row in cells:
        table.add_row(*row)
    console.print(table)


def fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, enum.Enum):
        return str(value.value)
    return str(value)


def fmt_time(ms: int | None) -> str:
    if ms is None:
        return ""
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")


def say_store(what: str) -> None:
    """After an empty listing: which store was read, since another folder's store is the usual surprise."""
    console.print(f"{what} in {get_settings().store_description}", markup=False, soft_wrap=True)
