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
    run): the run's records go, its artifact folder stays, and ``kept`` names the versions.
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
            sa.select(runs.c.id, runs.c.artifact_uri).where(
                sa.or_(
                    sa.and_(runs.c.lifecycle_stage == deleted, runs.c.start_time <= cutoff),
                    runs.c.experiment_id.in_(experiment_ids),
                )
            )
        ).all()
        run_folders = {uri: uri.removesuffix("/artifacts") for _, uri in doomed_runs}
        protected = backing.versions_under(
            conn, [*run_folders.values(), *(location for _, location in doomed_experiments)]
        )
    kept = tuple(
        sorted({v.describe() for versions in protected.values() for v in versions}, key=str.casefold)
    )
    if dry_run:
        purgeable = sum(1 for folder in run_folders.values() if folder.rstrip("/") not in protected)
        return GcReport(len(doomed_runs), len(doomed_experiments), purgeable, True, kept)
    run_pks = [row[0] for row in doomed_runs]
    with client.store.write() as conn:
        # Child rows go by ON DELETE CASCADE (foreign keys are enforced on SQLite too).
        for start in range(0, len(run_pks), 900):
            conn.execute(runs.delete().where(runs.c.id.in_(run_pks[start : start + 900])))
        if experiment_ids:
            conn.execute(experiments.delete().where(experiments.c.experiment_id.in_(experiment_ids)))
    removed = 0
    for folder in run_folders.values():
        if folder.rstrip("/") in protected:
            log.info("kept %s: it holds %s", folder, backing.describe_all(protected[folder.rstrip("/")]))
        else:
            removed += _remove_tree(folder)
    for _, location in doomed_experiments:
        if location.rstrip("/") not in protected:
            _remove_tree(location)
    return GcReport(len(doomed_runs), len(doomed_experiments), removed, False, kept)


def _remove_tree(uri: str) -> int:
    try:
        store = ArtifactStore(uri)
        if store.exists(""):
            store.delete("")
            return 1
    except ShipyardError as exc:  # metadata is gone already; leftover files are only disk space
        log.warning("could not remove artifacts at %s: %s", uri, exc)
    return 0
