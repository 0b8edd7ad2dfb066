"""Runs whose process died: RUNNING in the store, but their heartbeat stopped.

A process beats for the runs it holds open (see :mod:`shipyard.tracking.writer`). One killed with
``kill -9``, out of memory or on a lost machine stops beating, and its runs stay RUNNING forever. Records
read after the heartbeat timeout say ``lost`` (shown as LOST); :func:`mark_stale_runs` (``shipyard gc
--stale``) ends them KILLED for good, with a tag saying why.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from shipyard.tracking import querying
from shipyard.tracking.client import TrackingClient
from shipyard.tracking.records import Run

STALE_TAG = "shipyard.stale"


def stale_runs(client: TrackingClient, *, timeout_s: float | None = None) -> list[Run]:
    """RUNNING runs whose last heartbeat is older than ``timeout_s`` (default: the heartbeat timeout)."""
    return client.backend.stale_runs(_cutoff(client, timeout_s))


def mark_stale_runs(
    client: TrackingClient, *, timeout_s: float | None = None, dry_run: bool = False
) -> list[Run]:
    """End every stale run KILLED, at its last heartbeat, tagged with the process that stopped beating.

    A run that beats again between the read and the update (a paused, not dead, process) is left RUNNING:
    the update re-checks the heartbeat.

    Returns:
        The runs marked (or, with ``dry_run``, those that would be), as they were before.
    """
    found = stale_runs(client, timeout_s=timeout_s)
    if dry_run:
        return found
    cutoff = _cutoff(client, timeout_s)
    marked = []
    for run in found:
        assert run.heartbeat_at is not None
        key = client.run_pk(run.run_id)
        if client.backend.end_if_stale(key, cutoff, run.heartbeat_at):
            last = datetime.fromtimestamp(run.heartbeat_at / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
            who = f"process {run.process}" if run.process else "its process"
            client.set_tags(
                key, {STALE_TAG: f"{who} stopped beating at {last}; ended by shipyard gc --stale"}
            )
            marked.append(run)
    return marked


def _cutoff(client: TrackingClient, timeout_s: float | None) -> int:
    if timeout_s is None:
        return querying.stale_before(client.settings)
    return time.time_ns() // 1_000_000 - int(timeout_s * 1000)
