"""Durations typed by people: ``30s``, ``15m``, ``2h``, ``7d``, ``1w``."""

from __future__ import annotations

import re
from datetime import timedelta

from shipyard.errors import InvalidInput

_DURATION = re.compile(r"(\d+)\s*([smhdw])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_duration(text: str, what: str = "duration", *, allow_zero: bool = False) -> timedelta:
    """``text`` as a timedelta: a whole number and a unit (s, m, h, d, w).

    Raises:
        InvalidInput: naming ``what`` (e.g. ``--since``), the text and the accepted form.
    """
    match = _DURATION.fullmatch(text.strip()) if isinstance(text, str) else None
    if not match or (int(match.group(1)) == 0 and not allow_zero):
        raise InvalidInput(f"{what} {text!r} is not a duration like 30m, 1h or 2d (units: s, m, h, d, w)")
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


__all__ = ["parse_duration"]
