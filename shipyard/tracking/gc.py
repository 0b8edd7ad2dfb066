"""Garbage collection: permanently remove soft-deleted runs and experiments, with their artifacts."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from shipyard.errors import ShipyardError
from shipyard.store.artifacts import ArtifactStore
from shipyard.tracking import backing
from shipyard.tracking.client import TrackingClient
from shipyard.tracking.records import now_ms

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GcReport:
    """What a collection purged; ``kept`` names the registered versions whose packages stayed on disk."""

    runs: int
    experiments: int
    artifact_roots: int
    dry_run: bool
    kept: tuple[str, ...] = ()


def collect_garbage(client: TrackingClient, *, older_than_ms: int = 0, dry_run: bool = False) -> GcReport:
    """Purge runs and experiments deleted at least ``older_than_ms`` ago (by start/update time).

    A folder holding a registered version's package is never removed (the version references it, not the
    run): such a run and its experiment stay deleted but unpurged, ``kept`` names the versions, and a later
    collection purges them once no version references the folder.
    """
    found = client.backend.garbage(now_ms() - older_than_ms)
    protected = found.protected
    # A run whose folder holds a registered package stays (deleted, with its experiment) until no version
    # references it, so a later collection removes its records and folder together.
    kept_runs = [(key, folder) for key, folder, _ in found.runs if folder in protected]
    kept_experiments = {experiment for _, folder, experiment in found.runs if folder in protected}
    purged_runs = [(key, folder) for key, folder, _ in found.runs if folder not in protected]
    purged_experiments = [
        (eid, location) for eid, location in found.experiments if eid not in kept_experiments
    ]
    kept = tuple(
        sorted({v.describe() for versions in protected.values() for v in versions}, key=str.casefold)
    )
    if dry_run:
        return GcReport(len(purged_runs), len(purged_experiments), len(purged_runs), True, kept)
    client.backend.purge([key for key, _ in purged_runs], [eid for eid, _ in purged_experiments])
    removed = sum(_remove_tree(folder) for _, folder in purged_runs)
    for _, folder in kept_runs:
        log.info("kept %s: it holds %s", folder, backing.describe_all(protected[folder]))
    for _, location in purged_experiments:
        _remove_tree(location)
    return GcReport(len(purged_runs), len(purged_experiments), removed, False, kept)


def _remove_tree(uri: str) -> int:
    try:
        store = ArtifactStore(uri)
        if store.exists(""):
            store.delete("")
            return 1
    except ShipyardError as exc:  # metadata is gone already; leftover files are only disk space
        log.warning("could not remove artifacts at %s: %s", uri, exc)
    return 0
