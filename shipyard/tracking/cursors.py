"""Keyset ("seek") cursors for run search: where a page ended, so the next one starts right after it.

A search orders runs by its order keys, then ``start_time`` descending, then insertion order descending (see
:mod:`shipyard.store.sql.search`). A :class:`SearchCursor` is the last row of a page in that order: its value
for each order key (None where the run has none, or a NaN metric: both sort last), its ``start_time`` and its
``run_id``. The next page is the rows strictly after it — found through the same index walk as the first page,
however deep, where ``OFFSET 50000`` reads and drops 50,000 rows first.

Across an edge (the server's routes, ``search_runs``' page tokens, a web page's links) a cursor travels as an
opaque URL-safe string bound to its search by a fingerprint of the experiments, filter, order and stage:
:func:`decode_cursor` refuses one from another search, and any string that is not a cursor, with
:class:`~shipyard.errors.InvalidInput`. Nothing in it is signed or secret — it holds values the caller could
read from the page it ends — so a hand-edited cursor that is well-formed just seeks somewhere else.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from shipyard.errors import InvalidInput
from shipyard.tracking.filter_parser import TIME_ATTRIBUTES, EntityKind, OrderKey
from shipyard.tracking.records import Run

# One order key's value in a cursor: a metric's float, a param's, tag's or text attribute's string, a time
# attribute's epoch ms; None for a run without one (and a NaN metric).
SortValue = float | int | str | None

_VERSION = 1
_MAX_RUN_ID = 32  # runs.run_id is String(32)


@dataclass(frozen=True)
class SearchCursor:
    """The last row of a page, in the search's full order: the next page starts strictly after it.

    Attributes:
        values: the row's value for each order key, in order; None where it has none (or a NaN metric).
        start_time: the row's start time (epoch ms), the first tie-breaker.
        run_id: the row's run; its insertion order is the last tie-breaker.
    """

    values: tuple[SortValue, ...]
    start_time: int
    run_id: str


class RunPage(list[Run]):
    """One page of a search; ``next_cursor`` is where the next page starts (None when this is the last)."""

    def __init__(self, runs: list[Run], next_cursor: SearchCursor | None) -> None:
        super().__init__(runs)
        self.next_cursor = next_cursor


def search_fingerprint(
    scope: Sequence[str], filter: str | None, order_by: Sequence[str] | None, include_deleted: bool
) -> str:
    """What makes two searches the same for their cursors: ``scope`` (the experiment ids, or a caller's
    stand-in such as ``["*"]`` for "every experiment"), the filter and order as written, and the stage."""
    payload = json.dumps([sorted(scope), filter or "", list(order_by or []), include_deleted])
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def encode_cursor(cursor: SearchCursor, fingerprint: str) -> str:
    """``cursor`` as an opaque URL-safe string bound to the search ``fingerprint``."""
    payload = {"v": _VERSION, "q": fingerprint, "k": list(cursor.values), "s": cursor.start_time}
    raw = json.dumps({**payload, "r": cursor.run_id}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(text: str, fingerprint: str, order_by: Sequence[OrderKey], *, name: str) -> SearchCursor:
    """The cursor ``text`` encodes, checked against the search it is used with.

    Args:
        text: from :func:`encode_cursor`.
        fingerprint: :func:`search_fingerprint` of the search it is used with.
        order_by: that search's parsed order: each value must suit its key.
        name: what the caller calls the string (``"after"``, ``"page_token"``), for the messages.

    Raises:
        InvalidInput: ``text`` is not a cursor (malformed, or a value that cannot be its key's), or belongs
            to a different search.
    """
    not_ours = InvalidInput(f"{name} {_shown(text)} is not a cursor returned by a run search")
    try:
        raw = base64.urlsafe_b64decode(text.encode("ascii") + b"=" * (-len(text) % 4))
        data = json.loads(raw)
        version, query, values = data["v"], data["q"], data["k"]
        start_time, run_id = data["s"], data["r"]
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:  # UnicodeError is a ValueError
        raise not_ours from exc
    if version != _VERSION or not isinstance(query, str):
        raise not_ours
    if query != fingerprint:
        raise InvalidInput(f"{name} belongs to a different search (experiments, filter or order changed)")
    if not isinstance(values, list) or len(values) != len(order_by):
        raise not_ours
    if not _is_int(start_time) or not isinstance(run_id, str) or not 0 < len(run_id) <= _MAX_RUN_ID:
        raise not_ours
    if "\0" in run_id:
        raise not_ours
    checked = tuple(_sort_value(value, key, not_ours) for value, key in zip(values, order_by, strict=True))
    return SearchCursor(checked, start_time, run_id)


def _sort_value(value: Any, key: OrderKey, not_ours: InvalidInput) -> SortValue:
    if value is None:
        return None
    kind = key.entity.kind
    if kind is EntityKind.METRIC:
        # A NaN sorts with the missing values, as None; a cursor never holds one.
        if (isinstance(value, float) and not math.isnan(value)) or _is_int(value):
            return float(value)
    elif kind is EntityKind.ATTRIBUTE and key.entity.key in TIME_ATTRIBUTES:
        if _is_int(value):
            return int(value)
    elif isinstance(value, str) and "\0" not in value:  # PostgreSQL's text cannot hold a NUL
        return value
    raise not_ours


def _is_int(value: object) -> bool:
    """An integer a BIGINT column can hold (bool is an int to Python, not to us)."""
    return isinstance(value, int) and not isinstance(value, bool) and -(2**63) <= value < 2**63


def _shown(text: str) -> str:
    return repr(text) if len(text) <= 40 else f"{text[:37]!r}…"


__all__ = ["RunPage", "SearchCursor", "SortValue", "decode_cursor", "encode_cursor", "search_fingerprint"]
