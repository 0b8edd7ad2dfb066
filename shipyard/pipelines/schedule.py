"""When a cron schedule is due: pure functions over timezone-aware datetimes, no I/O.

Cron expressions are evaluated in the schedule's IANA timezone (``croniter``): ``0 9 * * *`` in
``Europe/Berlin`` fires at 09:00 Berlin time in winter and summer alike. Across DST changes we follow Vixie
cron: a time skipped in spring fires at the jump (02:30 → 03:00), and a time repeated in autumn fires once for
an expression with a fixed hour (``30 1 * * *``) but at both occurrences when the hour is ``*`` (hourly jobs
keep their rhythm).

Catch-up, when a scheduler finds ticks it missed (it was down, or a run took longer than the interval):

- ``once`` (default): one run, for the latest missed tick.
- ``all``: one run per missed tick, at most :data:`MAX_CATCHUP_RUNS` per scheduler pass (the rest follow on
  the next passes, oldest first).
- ``skip``: no run for missed ticks; only an on-time tick (exactly one due) runs.

Stored schedules live in :mod:`shipyard.pipelines.schedule_store`, the loop that runs them in
:mod:`shipyard.pipelines.scheduler`.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterError, croniter

from shipyard.errors import InvalidInput

MAX_CATCHUP_RUNS = 100
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class Catchup(StrEnum):
    """What a scheduler does with ticks it missed (see the module docstring)."""

    ONCE = "once"
    ALL = "all"
    SKIP = "skip"


def validate_timezone(timezone: str) -> ZoneInfo:
    """The zone for an IANA name; `InvalidInput` naming it when unknown."""
    try:
        return ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError, TypeError) as exc:
        raise InvalidInput(
            f"unknown timezone {timezone!r}; use an IANA name such as 'UTC' or 'Europe/Berlin'"
        ) from exc


def validate_cron(cron: str, *, after: datetime | None = None) -> str:
    """``cron`` if croniter parses it and it fires after ``after`` (default: now).

    Raises:
        InvalidInput: naming the expression, with croniter's reason or "never fires".
    """
    if not isinstance(cron, str) or not cron.strip():
        raise InvalidInput(f"cron expression must be a non-empty string, got {cron!r}")
    next(_ticks(cron, ZoneInfo("UTC"), _aware(after or datetime.now(UTC))))
    return cron


def next_tick(cron: str, timezone: str, after: datetime) -> datetime:
    """The first time strictly after ``after`` at which ``cron`` fires in ``timezone``, in UTC.

    Raises:
        InvalidInput: a naive ``after``, a bad expression or an unknown timezone.
    """
    return next(_ticks(cron, validate_timezone(timezone), _aware(after)))


def _ticks(cron: str, zone: ZoneInfo, start: datetime, *, backwards: bool = False) -> Iterator[datetime]:
    """The ticks of ``cron`` strictly after (or before) ``start``, nearest first, in UTC."""
    try:
        it = croniter(cron, start.astimezone(zone))
    except CroniterError as exc:
        raise InvalidInput(f"cron expression {cron!r} is invalid: {exc}") from exc
    fixed_hour = it.expanded[1] != ["*"]
    while True:
        try:
            tick: datetime = it.get_prev(datetime) if backwards else it.get_next(datetime)
        except CroniterError as exc:  # "0 0 31 2 *" parses but matches no date
            where = "before" if backwards else "after"
            raise InvalidInput(
                f"cron expression {cron!r} never fires {where} {start:%Y-%m-%d %H:%M} UTC"
            ) from exc
        local = tick.astimezone(zone)
        # NOTE: croniter fires at both occurrences of a wall time repeated when clocks go back; a daily job
        # at 01:30 would run twice that night. Vixie cron runs fixed-hour jobs once: skip the second.
        repeated = local.fold == 1 and local.replace(fold=0).utcoffset() != local.utcoffset()
        if not (fixed_hour and repeated):
            yield tick.astimezone(UTC)


def due_ticks(
    cron: str,
    timezone: str,
    next_run_at: datetime,
    now: datetime,
    catchup: Catchup | str = Catchup.ONCE,
    *,
    limit: int = MAX_CATCHUP_RUNS,
) -> tuple[list[datetime], datetime]:
    """The ticks to run now and the schedule's new ``next_run_at``.

    Args:
        next_run_at: the schedule's next tick (a tick of ``cron``); nothing is due while it is after ``now``.
        catchup: the policy for missed ticks (see the module docstring).
        limit: the most ticks ``all`` returns at once; then the new ``next_run_at`` is the first tick not
            returned, which may still be due (the next pass continues).

    Returns:
        ``(ticks, new_next_run_at)``: ticks in ascending order within ``[next_run_at, now]``, and a new
        ``next_run_at`` after ``now`` — except when ``all`` stopped at ``limit``.
    """
    next_run_at, now, policy = _aware(next_run_at), _aware(now), Catchup(catchup)
    if next_run_at > now:
        return [], next_run_at
    if policy is Catchup.ALL:
        ticks, tick = [], next_run_at
        while tick <= now and len(ticks) < limit:
            ticks.append(tick)
            tick = next_tick(cron, timezone, tick)
        return ticks, tick
    following = next_tick(cron, timezone, next_run_at)
    if following > now:  # exactly one tick due: the on-time case, run by every policy
        return [next_run_at], following
    upcoming = next_tick(cron, timezone, now)
    if policy is Catchup.SKIP:
        return [], upcoming
    # The latest tick at or before `now`, found backwards from it rather than by walking every missed tick
    # (a minutely schedule down for a month would be 40,000 steps). Ticks fall on whole seconds.
    ceiling = now.replace(microsecond=0) + timedelta(seconds=1)
    latest = next(_ticks(cron, validate_timezone(timezone), ceiling, backwards=True))
    return [max(latest, following)], upcoming


def _aware(moment: datetime) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise InvalidInput(f"datetime {moment.isoformat()} has no timezone; pass an aware datetime (UTC)")
    return moment.astimezone(UTC)


def to_ms(moment: datetime) -> int:
    """Epoch milliseconds of an aware datetime (how the store keeps times)."""
    return (_aware(moment) - _EPOCH) // timedelta(milliseconds=1)


def from_ms(ms: int) -> datetime:
    """The UTC datetime of epoch milliseconds."""
    return _EPOCH + timedelta(milliseconds=ms)
