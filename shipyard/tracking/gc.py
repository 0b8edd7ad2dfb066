"""Garbage collection: permanently remove soft-deleted runs and experiments, with their artifacts."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import sqlalchemy as sa

from shipyard.errors import ShipyardError
from shipyard.store.artifacts import ArtifactStore
from shipyard.store.schema import experiments, runs
from shipyard.tracking import backing
from shipyard.tracking.client import TrackingClient, now_ms
from shipyard.tracking.records import LifecycleStage

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
    cutoff = now_ms() - older_than_ms
    deleted = LifecycleStage.DELETED.value
    with client.store.read() as conn:
        doomed_experiments = conn.execute(
            sa.select(experiments.c.experiment_id, experiments.c.artifact_location).where(
                experiments.c.lifecycle_stage == deleted, experiments.c.updated_at <= cutoff
            )
        ).all()
        experiment_ids = [row[0] for row in doomed_experiments]
        doomed_runs = conn.execute(
            sa.select(runs.c.id, runs.c.artifact_uri, runs.c.experiment_id).where(
                sa.or_(
                    sa.and_(runs.c.lifecycle_stage == deleted, runs.c.start_time <= cutoff),
                    runs.c.experiment_id.in_(experiment_ids),
                )
            )
        ).all()
        folders = {pk: uri.removesuffix("/artifacts").rstrip("/") for pk, uri, _ in doomed_runs}
        protected = backing.versions_under(conn, folders.values())
    # A run whose folder holds a registered package stays (deleted, with its experiment) until no version
    # references it, so a later collection removes its records and folder together.
    kept_runs = [(pk, experiment) for pk, _, experiment in doomed_runs if folders[pk] in protected]
    kept_experiments = {experiment for _, experiment in kept_runs}
    run_pks = [pk for pk, _, _ in doomed_runs if folders[pk] not in protected]
    purged_experiments = [
        (eid, location) for eid, location in doomed_experiments if eid not in kept_experiments
    ]
    kept = tuple(
        sorted({v.describe() for versions in protected.values() for v in versions}, key=str.casefold)
    )
    if dry_run:
        return GcReport(len(run_pks), len(purged_experiments), len(run_pks), True, kept)
    purged_ids = [eid for eid, _ in purged_experiments]
    with client.store.write() as conn:
        # Child rows go by ON DELETE CASCADE (foreign keys are enforced on SQLite too).
        for start in range(0, len(run_pks), 900):
            conn.execute(runs.delete().where(runs.c.id.in_(run_pks[start : start + 900])))
        if purged_ids:
            conn.execute(experiments.delete().where(experiments.c.experiment_id.in_(purged_ids)))
    removed = sum(_remove_tree(folders[pk]) for pk in run_pks)
    for pk, _ in kept_runs:
        log.info("kept %s: it holds %s", folders[pk], backing.describe_all(protected[folders[pk]]))
    for _, location in purged_experiments:
        _remove_tree(location)
    return GcReport(len(run_pks), len(purged_experiments), removed, False, kept)


def _remove_tree(uri: str) -> int:
    try:
        store = ArtifactStore(uri)
        if store.exists(""):
            store.delete("")
            return 1
    except ShipyardError as exc:  # metadata is gone already; leftover files are only disk space
        log.warning("could not remove artifacts at %s: %s", uri, exc)
    return 0
