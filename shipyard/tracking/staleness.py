"""Runs whose process died: RUNNING in the store, but their heartbeat stopped.

A process beats for the runs it holds open (see :mod:`shipyard.tracking.writer`). One killed with
``kill -9``, out of memory or on a lost machine stops beating, and its runs stay RUNNING forever. Records
read after the heartbeat timeout say ``lost`` (shown as LOST); :func:`mark_stale_runs` (``shipyard gc
--stale``) ends them KILLED for good, with a tag saying why.
"""

from __future__ import annotations

from shipyard.tracking.client import TrackingClient
from shipyard.tracking.records import STALE_TAG, Run

__all__ = ["STALE_TAG", "mark_stale_runs"]


def mark_stale_runs(
    client: TrackingClient, *, timeout_s: float | None = None, dry_run: bool = False
) -> list[Run]:
    """End every stale run KILLED, at its last heartbeat, tagged with the process that stopped beating
    (a run that beats again meanwhile is left RUNNING).

    Returns:
        The runs marked (or, with ``dry_run``, those that would be), as they were before.
    """
    return client.backend.mark_stale_runs(timeout_s=timeout_s, dry_run=dry_run)
