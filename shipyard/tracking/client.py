"""`TrackingClient`: experiments, runs, params, tags, metrics and artifacts, over whichever store holds them.

It delegates the records to a :class:`~shipyard.store.protocol.TrackingStore` (SQL today, the platform server
in team mode) and adds what needs no store: reading artifact files, search pages and their tokens. Thread-safe
and cheap to share; the fluent API (`shipyard.start_run`) uses one per process.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shipyard.config import Settings, get_settings
from shipyard.errors import NotFound
from shipyard.store import open_stores
from shipyard.store.artifacts import ArtifactStore, safe_relpath
from shipyard.store.protocol import MetadataStores, RunKey, TrackingStore
from shipyard.tracking import querying
from shipyard.tracking.backing import BackedVersion
from shipyard.tracking.chunks import SeriesMap
from shipyard.tracking.records import (
    DEFAULT_EXPERIMENT,
    ArtifactRecord,
    DatasetInput,
    Experiment,
    Metric,
    Run,
    RunList,
    RunStatus,
)

if TYPE_CHECKING:
    import pandas as pd


class TrackingClient:
    """Reads and writes tracking records in one deployment's stores and artifact root."""

    def __init__(self, settings: Settings | None = None, *, stores: MetadataStores | None = None) -> None:
        self.settings = settings or get_settings()
        self.stores = stores or open_stores(self.settings)
        self.backend: TrackingStore = self.stores.tracking

    # ------------------------------------------------------------------ experiments
    def create_experiment(
        self, name: str, *, description: str | None = None, artifact_location: str | None = None
    ) -> Experiment:
        """Create an experiment; `AlreadyExists` if the name is taken (even by a deleted one)."""
        return self.backend.create_experiment(
            name, description=description, artifact_location=artifact_location
        )

    def get_experiment(self, id_or_name: str) -> Experiment:
        """An experiment by id or name; `NotFound` names what was asked for."""
        return self.backend.get_experiment(id_or_name)

    def get_or_create_experiment(self, name: str) -> Experiment:
        """The active experiment called ``name``, created if missing (safe under concurrent creators)."""
        return self.backend.get_or_create_experiment(name)

    def list_experiments(self, *, include_deleted: bool = False) -> list[Experiment]:
        return self.backend.list_experiments(include_deleted=include_deleted)

    def delete_experiment(self, id_or_name: str, *, force: bool = False) -> Experiment:
        """Soft-delete an experiment and its runs (purged by ``shipyard gc``).

        Raises:
            Conflict: its runs back registered versions (named) and not ``force`` (see :meth:`delete_run`).
        """
        return self.backend.delete_experiment(id_or_name, force=force)

    def versions_backed_by_experiment(self, id_or_name: str) -> list[BackedVersion]:
        """The registered versions whose packages runs of this experiment hold."""
        return self.backend.versions_backed_by_experiment(id_or_name)

    def restore_experiment(self, id_or_name: str) -> Experiment:
        """Undo a soft delete that garbage collection has not purged yet."""
        return self.backend.restore_experiment(id_or_name)

    def rename_experiment(self, id_or_name: str, new_name: str) -> Experiment:
        """Rename an active experiment; its id, runs and grants stay with it.

        Raises:
            AlreadyExists: ``new_name`` is taken. Conflict: the experiment is deleted.
        """
        return self.backend.rename_experiment(id_or_name, new_name)

    # ------------------------------------------------------------------ runs
    def create_run(
        self,
        experiment: str = DEFAULT_EXPERIMENT,
        *,
        name: str | None = None,
        parent_run_id: str | None = None,
        tags: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> tuple[Run, RunKey]:
        """Create a RUNNING run; returns its record and the store's key for it.

        Run names are unique per experiment: an explicit name that is taken raises `AlreadyExists`. A call
        retried with the ``idempotency_key`` of a creation that was stored returns that run.
        """
        return self.backend.create_run(
            experiment, name=name, parent_run_id=parent_run_id, tags=tags, idempotency_key=idempotency_key
        )

    def resume_run(self, run_id: str) -> tuple[Run, RunKey]:
        """Mark an existing run RUNNING again (to log more into it), beating from this process."""
        return self.backend.resume_run(run_id)

    def beat(self, run_keys: Iterable[RunKey]) -> None:
        """Record that this process is alive and still running these runs (ended runs are left alone)."""
        self.backend.beat(run_keys)

    def run_pk(self, run_id: str) -> RunKey:
        """The store's key for ``run_id``; `NotFound` if there is no such run."""
        return self.backend.run_key(run_id)

    def get_run(self, run_id: str) -> Run:
        """A run with its params, tags and latest metrics; `NotFound` if the id is unknown."""
        return self.backend.get_run(run_id)

    def get_run_by_name(self, name: str, experiment: str = DEFAULT_EXPERIMENT) -> Run:
        return self.backend.get_run_by_name(name, experiment)

    def find_run(self, id_or_name: str, experiment: str | None = None) -> Run:
        """A run by id, or by name within ``experiment`` (or any experiment when the name is unique)."""
        return self.backend.find_run(id_or_name, experiment)

    def set_terminated(
        self,
        run_key: RunKey,
        status: RunStatus,
        pending: SeriesMap | None = None,
        *,
        idempotency_key: str | None = None,
        params: Mapping[RunKey, Mapping[str, Any]] | None = None,
    ) -> int:
        """End a run: its last metric points (and buffered ``params`` of any run) and its terminal status
        are stored together; the end time.

        The points are stored once however often a call with the same ``idempotency_key`` is retried.
        """
        return self.backend.set_terminated(
            run_key, status, pending, idempotency_key=idempotency_key, params=params
        )

    def run_status(self, run_key: RunKey) -> RunStatus:
        return self.backend.run_status(run_key)

    def delete_run(self, run_id: str, *, force: bool = False) -> list[BackedVersion]:
        """Soft-delete a run and its descendants (purged by ``shipyard gc``).

        Returns:
            The registered versions whose packages the deleted runs hold (empty unless ``force``): they keep
            loading, as garbage collection leaves their packages in place, but lose their run.

        Raises:
            Conflict: the runs back registered versions (named, with stages and aliases) and not ``force``.
        """
        return self.backend.delete_run(run_id, force=force)

    def restore_run(self, run_id: str) -> None:
        self.backend.restore_run(run_id)

    # ------------------------------------------------------------------ params, tags, metrics
    def log_params(self, run_key: RunKey, values: Mapping[str, Any]) -> None:
        """Record params. Re-logging a key with the same value is fine; a different value is a `Conflict`."""
        self.backend.log_params(run_key, values)

    def set_tags(self, run_key: RunKey, values: Mapping[str, Any]) -> None:
        self.backend.set_tags(run_key, values)

    def delete_tag(self, run_key: RunKey, key: str) -> None:
        self.backend.delete_tag(run_key, key)

    def write_metrics(
        self,
        pending: SeriesMap,
        *,
        idempotency_key: str | None = None,
        params: Mapping[RunKey, Mapping[str, Any]] | None = None,
    ) -> None:
        """Store buffered points (and buffered ``params``, per run) and advance each key's latest value,
        all or nothing (and once, however often a batch with the same ``idempotency_key`` is retried)."""
        self.backend.write_metrics(pending, idempotency_key=idempotency_key, params=params)

    @property
    def buffers_params(self) -> bool:
        """Whether active runs send params with their metric batches (the store is a server)."""
        return self.backend.buffers_params

    def metric_history(self, run_id: str, key: str) -> list[Metric]:
        """Every point of ``key`` in ``run_id``, ordered by step then time."""
        return self.backend.metric_history(run_id, key)

    # ------------------------------------------------------------------ artifacts and datasets
    def record_artifacts(self, run_key: RunKey, files: Iterable[ArtifactRecord]) -> None:
        self.backend.record_artifacts(run_key, files)

    def list_artifacts(self, run_id: str, prefix: str = "") -> list[ArtifactRecord]:
        return self.backend.list_artifacts(run_id, prefix)

    def read_artifact(self, run_id: str, path: str) -> bytes:
        """An artifact's bytes, verified against the sha256 recorded when it was logged."""
        return self.read_recorded(self.get_run(run_id), self._artifact_record(run_id, path))

    def read_recorded(self, run: Run, record: ArtifactRecord) -> bytes:
        """The bytes of a file of ``run`` as :meth:`list_artifacts` gave it, verified against its sha256
        (for callers that listed already: no second lookup of the run or the record)."""
        return ArtifactStore.configured(self.settings, run.artifact_uri).read_bytes(
            record.path, record.sha256
        )

    def download_artifacts(self, run_id: str, path: str, local_dir: str | os.PathLike[str]) -> Path:
        """Copy an artifact file, or every file under a folder, into ``local_dir``, verifying each sha256."""
        store = ArtifactStore.configured(self.settings, self.get_run(run_id).artifact_uri)
        files = self.list_artifacts(run_id, path)
        if not files:
            raise NotFound(f"run {run_id} has no artifact {path!r}")
        root = Path(local_dir)
        for record in files:
            # A path as recorded, checked again: a tampered store must not write outside local_dir.
            target = root / safe_relpath(record.path)
            target.parent.mkdir(parents=True, exist_ok=True)
            store.get(record.path, target, expected_sha256=record.sha256)
        return root / path if path else root

    def _artifact_record(self, run_id: str, path: str) -> ArtifactRecord:
        clean = safe_relpath(path)
        for record in self.list_artifacts(run_id, clean):
            if record.path == clean:
                return record
        raise NotFound(f"run {run_id} has no artifact file {path!r}")

    def log_dataset_input(self, run_key: RunKey, dataset: DatasetInput) -> None:
        self.backend.log_dataset_input(run_key, dataset)

    def dataset_inputs(self, run_id: str) -> list[DatasetInput]:
        return self.backend.dataset_inputs(run_id)

    # ------------------------------------------------------------------ search
    def runs_with_tag(
        self, key: str, value: str, *, status: RunStatus | None = None, limit: int = 10
    ) -> list[Run]:
        """Active runs of any experiment whose tag ``key`` is ``value``, newest first: one indexed lookup,
        for a hot path (a pipeline step's cache key) where parsing a filter costs too much."""
        return self.backend.runs_with_tag(key, value, status=status, limit=limit)

    def child_runs(self, run_id: str, *, limit: int = 100) -> tuple[list[Run], int]:
        """The active runs nested under ``run_id``, oldest first (at most ``limit``), and how many in all."""
        return self.backend.child_runs(run_id, limit=limit)

    def recent_metric_keys(
        self, run_ids: Sequence[str], *, limit: int = 6, exclude_prefixes: Sequence[str] = ("system/",)
    ) -> list[str]:
        """The metric keys logged most recently to any of ``run_ids``, newest first (system metrics left
        out): the columns a runs table shows when nobody chose them."""
        return self.backend.recent_metric_keys(run_ids, limit=limit, exclude_prefixes=exclude_prefixes)

    def search_runs(
        self,
        experiments_: str | Sequence[str] | None = None,
        filter: str | None = None,
        *,
        order_by: Sequence[str] | None = None,
        max_results: int = 1000,
        page_token: str | None = None,
        columns: Sequence[str] | None = None,
        include_deleted: bool = False,
        output_format: str = "records",
        page_scope: str | None = None,
    ) -> RunList | pd.DataFrame:
        """Runs matching a filter, one page at a time (grammar: :mod:`shipyard.tracking.filter_parser`).

        A page token belongs to its search: the same experiments, filter and order (all experiments, when
        none are named, however many are created meanwhile). ``page_scope`` names the experiments instead
        when the caller resolved them from a rule, say "every experiment this user may read", which stays
        the same rule as experiments appear.
        """
        return querying.search_runs(
            self,
            experiments_,
            filter,
            order_by=order_by,
            max_results=max_results,
            page_token=page_token,
            columns=columns,
            include_deleted=include_deleted,
            output_format=output_format,
            page_scope=page_scope,
        )
