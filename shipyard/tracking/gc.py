"""Garbage collection: permanently remove soft-deleted runs and experiments, with their artifacts.

The store does it (:meth:`~shipyard.store.protocol.TrackingStore.collect_garbage`): the SQL store in place,
a platform server on its own store and artifact storage.
"""

from __future__ import annotations

from shipyard.tracking.client import TrackingClient
from shipyard.tracking.records import GcReport

__all__ = ["GcReport", "collect_garbage"]


def collect_garbage(client: TrackingClient, *, older_than_ms: int = 0, dry_run: bool = False) -> GcReport:
    """Purge runs and experiments deleted at least ``older_than_ms`` ago (by start/update time).

    A folder holding a registered version's package is never removed (the version references it, not the
    run): such a run and its experiment stay deleted but unpurged, ``kept`` names the versions, and a later
    collection purges them once no version references the folder.
    """
    return client.backend.collect_garbage(older_than_ms=older_than_ms, dry_run=dry_run)
