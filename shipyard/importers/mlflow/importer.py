"""`import_mlflow`: copy an MLflow store into a Shipyard deployment, idempotently.

Order: experiments, then their runs in batches (each batch one transaction: runs with params, tags, full
metric histories, dataset inputs and artifact records), then MLflow 3's logged models, then registered
models, versions and aliases.
Runs keep their MLflow ids, names, times, statuses and lifecycle; experiments are matched by name; versions
keep their numbers. Whatever is stored already is skipped, so a second import copies nothing and an import
killed midway (``kill -9``) finishes when run again.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence

from shipyard.config import Settings, get_settings
from shipyard.errors import InvalidInput, NotFound
from shipyard.importers.mlflow.logged import LoggedModelCopier
from shipyard.importers.mlflow.logged import location as logged_location
from shipyard.importers.mlflow.records import NOTE_TAG, MlflowExperiment, MlflowLoggedModel, MlflowRun
from shipyard.importers.mlflow.registry import RegistryCopier
from shipyard.importers.mlflow.report import ImportReport
from shipyard.importers.mlflow.runs import RunCopier
from shipyard.importers.mlflow.source import MlflowSource, open_source
from shipyard.store import open_server_stores
from shipyard.tracking.client import TrackingClient
from shipyard.tracking.records import Experiment, LifecycleStage, RunCopy, now_ms

# Called as runs are copied: (what, done, total).
Progress = Callable[[str, int, int], None]
BATCH_RUNS = 200


def import_mlflow(
    source: str,
    *,
    settings: Settings | None = None,
    dry_run: bool = False,
    artifacts_destination: str | None = None,
    progress: Progress | None = None,
    batch_size: int = BATCH_RUNS,
) -> ImportReport:
    """Copy the MLflow store at ``source`` (a tracking URI or an ``mlruns`` folder) into ``settings``'s
    deployment; with ``dry_run``, only say what would be copied.

    Args:
        artifacts_destination: where a tracking server that proxied artifacts (``mlflow-artifacts:/``) keeps
            them (its ``--artifacts-destination``); without it such artifacts are reported, not copied.
        progress: called as runs are copied with (what, done, total).

    Raises:
        InvalidInput: ``source`` is not an MLflow store this importer reads, or ``settings`` name a platform
            server (an import writes the database itself: run it where ``db_url`` names that database).
    """
    settings = settings or get_settings()
    if settings.tracking_uri:
        raise InvalidInput(
            f"an import writes the metadata database itself, and these settings name the server "
            f"{settings.tracking_uri}; run it on the server's host with its db_url "
            "(unset SHIPYARD_TRACKING_URI)"
        )
    opened = open_source(source)
    try:
        return _Import(opened, settings, dry_run, artifacts_destination, progress, batch_size).run()
    finally:
        opened.close()


class _Import:
    def __init__(
        self,
        source: MlflowSource,
        settings: Settings,
        dry_run: bool,
        artifacts_destination: str | None,
        progress: Progress | None,
        batch_size: int,
    ) -> None:
        self.source = source
        self.settings = settings
        self.dry_run = dry_run
        self.progress = progress or (lambda what, done, total: None)
        self.batch_size = max(1, batch_size)
        self.stores = open_server_stores(settings)
        self.tracking = TrackingClient(settings, stores=self.stores)
        self.report = ImportReport(source=source.uri, dry_run=dry_run)
        self.artifacts_destination = artifacts_destination

    def run(self) -> ImportReport:
        experiments = self.source.experiments()
        logged = self.source.logged_models()
        runs = {e.experiment_id: self.source.runs(e.experiment_id) for e in experiments}
        copier = RunCopier(
            self.settings,
            self.report,
            dry_run=self.dry_run,
            fetch=lambda uri: self.source.fetch_artifacts(uri, self.artifacts_destination),
        )
        total = sum(len(r) for r in runs.values())
        done = 0
        self.progress("runs", 0, total)
        stored = {e.name: e for e in self.tracking.list_experiments(include_deleted=True)}
        targets: dict[str, Experiment | None] = {}
        for experiment in experiments:
            target = targets[experiment.experiment_id] = self._experiment(
                experiment, stored.get(experiment.name)
            )
            done = self._runs(experiment, runs[experiment.experiment_id], target, copier, done, total)
        locations = self._logged_models(logged, targets)
        for experiment in experiments:  # once all of it is copied (a soft delete marks its runs deleted)
            self._delete_if_deleted(experiment, targets[experiment.experiment_id])
        all_runs = {r.run_id: r for found in runs.values() for r in found}
        RegistryCopier(
            self.stores,
            self.tracking,
            self.report,
            dry_run=self.dry_run,
            fetch=lambda uri: self.source.fetch_artifacts(uri, self.artifacts_destination),
            runs=all_runs,
            logged={m.model_id: m for m in logged},
            locations=locations,
        ).copy(self.source.registered_models())
        return self.report

    def _logged_models(
        self, logged: Sequence[MlflowLoggedModel], targets: dict[str, Experiment | None]
    ) -> dict[str, str]:
        """Copy the logged models; by model id, where each copy's files are (for the registry)."""
        copier = LoggedModelCopier(
            self.settings,
            self.stores.imports,
            self.report,
            dry_run=self.dry_run,
            fetch=lambda uri: self.source.fetch_artifacts(uri, self.artifacts_destination),
        )
        stored = self.stores.imports.existing_logged_models([m.model_id for m in logged])
        locations = {}
        for number, model in enumerate(logged, 1):
            target = targets.get(model.experiment_id)
            copier.copy(model, target, model.model_id in stored)
            if target is not None:
                locations[model.model_id] = logged_location(model, target)
            self.progress("logged models", number, len(logged))
        return locations

    def _experiment(self, experiment: MlflowExperiment, stored: Experiment | None) -> Experiment | None:
        other = sorted(k for k in experiment.tags if k != NOTE_TAG)
        if other:
            self.report.skip(
                "experiment tags",
                repr(experiment.name),
                f"Shipyard experiments have no tags: {', '.join(other)}",
            )
        if stored is not None:
            self.report.already["experiments"] += 1
            return stored
        self.report.add("experiments")
        if self.dry_run:
            return None
        created = experiment.creation_time or now_ms()
        return self.stores.imports.put_experiment(
            experiment.name,
            description=experiment.tags.get(NOTE_TAG),
            artifact_location=None,
            created_at=created,
            updated_at=experiment.last_update_time or created,
        )

    def _runs(
        self,
        experiment: MlflowExperiment,
        runs: Sequence[MlflowRun],
        target: Experiment | None,
        copier: RunCopier,
        done: int,
        total: int,
    ) -> int:
        existing = self.stores.imports.existing_runs([r.run_id for r in runs])
        self.report.already["runs"] += len(existing)
        done += len(existing)
        self.progress("runs", done, total)
        todo = [r for r in runs if r.run_id not in existing]
        for start in range(0, len(todo), self.batch_size):
            batch = todo[start : start + self.batch_size]
            data = self.source.run_data(batch)
            copies = [copier.copy(run, data[run.run_id], target) for run in batch]
            if not self.dry_run:
                names = self._store(copies)
                for copy in copies:
                    if copy.run_id in names and names[copy.run_id] != copy.name:
                        self.report.note(
                            f"run {copy.run_id} of {experiment.name!r} is named {names[copy.run_id]!r}: "
                            f"another run there is named {copy.name!r} (Shipyard's run names are unique "
                            "per experiment; tag mlflow.runName keeps the original)"
                        )
            self.report.add("runs", len(batch))
            done += len(batch)
            self.progress("runs", done, total)
        return done

    def _store(self, copies: Sequence[RunCopy]) -> dict[str, str]:
        """Store a batch; when Shipyard refuses something in it, the runs one by one, each refused run
        reported (the rest of the import goes on)."""
        try:
            return self.stores.imports.put_runs(copies)
        except InvalidInput:
            pass
        names: dict[str, str] = {}
        for copy in copies:
            try:
                names.update(self.stores.imports.put_runs([copy]))
            except InvalidInput as exc:
                self.report.skip("run", copy.run_id, str(exc))
        return names

    def _delete_if_deleted(self, experiment: MlflowExperiment, target: Experiment | None) -> None:
        """Soft-delete the copy of an experiment MLflow deleted (only the copy: an experiment of Shipyard's
        own with the same name keeps its state)."""
        if experiment.lifecycle_stage != "deleted" or target is None or self.dry_run:
            return
        if target.lifecycle_stage is LifecycleStage.DELETED or target.created_at != experiment.creation_time:
            return
        with contextlib.suppress(NotFound):  # deleted meanwhile
            self.tracking.delete_experiment(target.experiment_id, force=True)
