"""The storage boundary: what the rest of Shipyard may ask of a metadata store, whatever holds it.

Two implementations: SQL (SQLite or PostgreSQL, :mod:`shipyard.store.sql`; every SQL statement of the package
lives there) and, in team mode, the platform server over HTTP. Code above ``store/`` holds a
:class:`MetadataStores` (or one of its parts) and never knows which.

A store validates what it is given (names, keys, value sizes) and raises the typed errors of
:mod:`shipyard.errors`, so a script gets the same answer from either implementation.

A :data:`RunKey` is the store's handle on a run, handed out by :meth:`TrackingStore.create_run`,
:meth:`TrackingStore.resume_run` and :meth:`TrackingStore.run_key`: an integer valid for that store object
only (the SQL store's row key; a client-side number for HTTP). The per-point hot path (metric buffers,
params, the end of a run) passes it instead of the 32-character run id.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from shipyard.auth.records import AuditEvent, Grant, Permission, ResourceType, Token, User
    from shipyard.datasets.records import DatasetFile, DatasetSummary, DatasetVersion, SnapshotKind
    from shipyard.deployments import DeploymentRecord
    from shipyard.features.records import Change, DefinitionVersion
    from shipyard.lineage.records import ArtifactType, LineageArtifact, LineageGraph
    from shipyard.pipelines.schedule_store import Schedule
    from shipyard.registry.records import ModelEvent, ModelVersion, RegisteredModel, Stage
    from shipyard.registry.uri import RegistryUri
    from shipyard.tracking.backing import BackedVersion
    from shipyard.tracking.chunks import SeriesMap
    from shipyard.tracking.cursors import RunPage, SearchCursor
    from shipyard.tracking.logged_models import LoggedModel
    from shipyard.tracking.records import (
        ArtifactRecord,
        DatasetInput,
        Experiment,
        GcReport,
        Metric,
        Run,
        RunCopy,
        RunStatus,
    )

RunKey = int


@dataclass(frozen=True)
class Garbage:
    """What garbage collection may purge (see :meth:`TrackingStore.garbage`).

    ``experiments``: (experiment id, artifact location); ``runs``: (run key, run folder URI, experiment id);
    ``protected``: by run folder, the registered versions whose packages lie inside it.
    """

    experiments: list[tuple[str, str]]
    runs: list[tuple[RunKey, str, str]]
    protected: Mapping[str, list[BackedVersion]] = field(default_factory=dict)


class TrackingStore(Protocol):
    """Experiments, runs and everything logged to them."""

    # True where a call is a round trip (a server): an active run then sends its params with its metric
    # batches instead of one request per log_params.
    buffers_params: bool

    # experiments
    def create_experiment(
        self, name: str, *, description: str | None = None, artifact_location: str | None = None
    ) -> Experiment: ...
    def get_experiment(self, id_or_name: str) -> Experiment: ...
    def get_or_create_experiment(self, name: str) -> Experiment: ...
    def list_experiments(self, *, include_deleted: bool = False) -> list[Experiment]: ...
    def delete_experiment(self, id_or_name: str, *, force: bool = False) -> Experiment: ...
    def restore_experiment(self, id_or_name: str) -> Experiment: ...
    def rename_experiment(self, id_or_name: str, new_name: str) -> Experiment: ...
    def versions_backed_by_experiment(self, id_or_name: str) -> list[BackedVersion]: ...

    # runs
    def create_run(
        self,
        experiment: str = ...,
        *,
        name: str | None = None,
        parent_run_id: str | None = None,
        tags: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
        beats: bool = True,
    ) -> tuple[Run, RunKey]: ...
    def resume_run(self, run_id: str) -> tuple[Run, RunKey]: ...
    def run_key(self, run_id: str) -> RunKey: ...
    def beat(self, run_keys: Iterable[RunKey]) -> None: ...
    def get_run(self, run_id: str) -> Run: ...
    def get_run_by_name(self, name: str, experiment: str = ...) -> Run: ...
    def find_run(self, id_or_name: str, experiment: str | None = None) -> Run: ...
    def set_terminated(
        self,
        run_key: RunKey,
        status: RunStatus,
        pending: SeriesMap | None = None,
        *,
        idempotency_key: str | None = None,
        params: Mapping[RunKey, Mapping[str, Any]] | None = None,
    ) -> int: ...
    def run_status(self, run_key: RunKey) -> RunStatus: ...
    def delete_run(self, run_id: str, *, force: bool = False) -> list[BackedVersion]: ...
    def restore_run(self, run_id: str) -> None: ...

    # params, tags, metrics
    def log_params(self, run_key: RunKey, values: Mapping[str, Any]) -> None: ...
    def set_tags(self, run_key: RunKey, values: Mapping[str, Any]) -> None: ...
    def delete_tag(self, run_key: RunKey, key: str) -> None: ...
    def write_metrics(
        self,
        pending: SeriesMap,
        *,
        idempotency_key: str | None = None,
        params: Mapping[RunKey, Mapping[str, Any]] | None = None,
    ) -> None: ...
    def metric_history(self, run_id: str, key: str) -> list[Metric]: ...
    def latest_metrics(self, run_ids: Sequence[str]) -> dict[str, list[Metric]]: ...

    # artifact records and dataset inputs (the files themselves live in an ArtifactStore)
    def record_artifacts(self, run_key: RunKey, files: Iterable[ArtifactRecord]) -> None: ...
    def list_artifacts(self, run_id: str, prefix: str = "") -> list[ArtifactRecord]: ...
    def log_dataset_input(self, run_key: RunKey, dataset: DatasetInput) -> None: ...
    def dataset_inputs(self, run_id: str) -> list[DatasetInput]: ...

    # queries
    def runs_with_tag(
        self, key: str, value: str, *, status: RunStatus | None = None, limit: int = 10
    ) -> list[Run]: ...
    def child_runs(self, run_id: str, *, limit: int = 100) -> tuple[list[Run], int]: ...
    def recent_metric_keys(
        self, run_ids: Sequence[str], *, limit: int = 6, exclude_prefixes: Sequence[str] = ...
    ) -> list[str]: ...
    def search_page(
        self,
        experiment_ids: Sequence[str],
        filter: str | None,
        order_by: Sequence[str] | None,
        *,
        offset: int = 0,
        limit: int,
        columns: Sequence[str] | None,
        include_deleted: bool,
        after: SearchCursor | None = None,
    ) -> RunPage: ...

    # maintenance: garbage collection and lost runs (on a server, admin operations it runs itself)
    def collect_garbage(self, *, older_than_ms: int = 0, dry_run: bool = False) -> GcReport: ...
    def mark_stale_runs(self, *, timeout_s: float | None = None, dry_run: bool = False) -> list[Run]: ...


class RegistryStore(Protocol):
    """Registered models, their versions, aliases, stages, tags and audit events."""

    def create_model(
        self, name: str, *, description: str | None = None, tags: Mapping[str, Any] | None = None
    ) -> RegisteredModel: ...
    def get_model(self, name: str) -> RegisteredModel: ...
    def list_models(self) -> list[RegisteredModel]: ...
    def delete_model(self, name: str, *, force: bool = False) -> None: ...
    def rename_model(self, name: str, new_name: str) -> RegisteredModel: ...
    def update_model(self, name: str, *, description: str | None) -> RegisteredModel: ...
    def delete_model_tag(self, name: str, key: str) -> None: ...
    def create_version(
        self,
        name: str,
        *,
        flavor: str,
        source_uri: str,
        package_uri: str,
        manifest_sha256: str,
        run_id: str | None,
        lineage: Mapping[str, Any],
        description: str | None = None,
        tags: Mapping[str, Any] | None = None,
    ) -> ModelVersion: ...
    def get_version(self, name: str, version: int) -> ModelVersion: ...
    def list_versions(self, name: str) -> list[ModelVersion]: ...
    def resolve(self, ref: RegistryUri) -> ModelVersion: ...
    def delete_version(self, name: str, version: int, *, force: bool = False) -> ModelVersion: ...
    def set_alias(
        self, name: str, alias: str, version: int, *, reason: str | None = None
    ) -> ModelVersion: ...
    def delete_alias(self, name: str, alias: str) -> None: ...
    def transition(
        self,
        name: str,
        version: int,
        stage: Stage | str,
        *,
        reason: str | None = None,
        archive_others: bool = False,
    ) -> ModelVersion: ...
    def update_version(self, name: str, version: int, *, description: str | None) -> ModelVersion: ...
    def delete_version_tag(self, name: str, version: int, key: str) -> None: ...
    def set_version_tags(self, name: str, version: int, tags: Mapping[str, Any]) -> None: ...
    def set_model_tags(self, name: str, tags: Mapping[str, Any]) -> None: ...
    def record_gate(
        self, name: str, version: int, *, passed: bool, summary: str, facts: Mapping[str, Any]
    ) -> ModelVersion: ...
    def events(self, name: str) -> list[ModelEvent]: ...


class LineageStore(Protocol):
    """Lineage: artifacts (by URI and sha256), the executions that read and wrote them, walked upstream."""

    def record(
        self,
        execution_type: str,
        *,
        name: str | None = None,
        run_id: str | None = None,
        pipeline_run_id: str | None = None,
        inputs: Iterable[tuple[str, ArtifactType, str, str | None]] = (),
        outputs: Iterable[tuple[str, ArtifactType, str, str | None]] = (),
        properties: Mapping[str, Any] | None = None,
    ) -> int: ...
    def find(self, uri: str) -> LineageArtifact: ...
    def upstream(self, uri: str) -> LineageGraph: ...


class ImportStore(Protocol):
    """Records copied from another system (an MLflow store) as they were recorded there: original ids, names,
    times, statuses and version numbers, which the ordinary calls above allocate themselves.

    Every call is idempotent: a record that is already there (by run id, experiment or model name, version
    number) is left as it is, so an interrupted import run again copies only what is missing. A run and
    everything logged to it commit together. Only SQL implements it: an import writes the database itself.
    """

    def put_experiment(
        self,
        name: str,
        *,
        description: str | None,
        artifact_location: str | None,
        created_at: int,
        updated_at: int,
    ) -> Experiment: ...
    def existing_runs(self, run_ids: Sequence[str]) -> set[str]: ...
    def put_runs(self, runs: Sequence[RunCopy]) -> dict[str, str]: ...
    def existing_logged_models(self, model_ids: Sequence[str]) -> set[str]: ...
    def put_logged_model(self, model: LoggedModel, outputs: Sequence[tuple[str, int]]) -> bool: ...
    def put_model(
        self,
        name: str,
        *,
        description: str | None,
        tags: Mapping[str, str],
        created_at: int,
        updated_at: int,
    ) -> bool: ...
    def put_version(
        self,
        name: str,
        version: int,
        *,
        flavor: str,
        stage: Stage,
        source_uri: str,
        package_uri: str,
        manifest_sha256: str,
        run_id: str | None,
        lineage: Mapping[str, Any],
        description: str | None,
        tags: Mapping[str, str],
        created_by: str | None,
        created_at: int,
        updated_at: int,
    ) -> bool: ...


class ScheduleStore(Protocol):
    """Pipeline schedules. Times are epoch milliseconds; ticks are claimed with :meth:`advance`."""

    def insert(self, row: Mapping[str, Any]) -> Schedule: ...
    def get(self, name: str) -> Schedule | None: ...
    def list(self) -> list[Schedule]: ...
    def update(self, schedule_id: str, values: Mapping[str, Any]) -> None: ...
    def delete(self, name: str) -> bool: ...
    def due(self, now_ms: int) -> list[Schedule]: ...
    def earliest_next_run(self) -> int | None: ...
    def advance(
        self, schedule_id: str, expected_next_run_at: int, next_run_at: int, updated_at: int
    ) -> bool: ...


class FeatureRegistryStore(Protocol):
    """Versioned feature definitions (:mod:`shipyard.features.registry` plans what to record)."""

    def record(self, changes: Sequence[Change], user: str) -> list[DefinitionVersion]: ...
    def current(self) -> list[DefinitionVersion]: ...
    def history(self, kind: str, name: str) -> list[DefinitionVersion]: ...


class DatasetStore(Protocol):
    """Dataset versions: named, numbered, immutable snapshots, each with its manifest. The files are blobs in
    an :class:`~shipyard.store.artifacts.ArtifactStore`; a caller stores every blob before it records a
    version naming them.

    ``create_version`` checks the manifest against ``sha256`` and allocates the next number in one
    transaction; content a version of ``name`` already has returns that version (``created`` False) unless
    ``force``. ``get_version`` without a version is the newest; a missing one is `NotFound` naming those that
    exist. ``blob_holders`` says which of ``sha256s`` some version records, with the datasets holding each.
    """

    def create_version(
        self,
        name: str,
        *,
        sha256: str,
        kind: SnapshotKind,
        files: Sequence[DatasetFile],
        description: str | None = None,
        tags: Mapping[str, Any] | None = None,
        force: bool = False,
    ) -> DatasetVersion: ...
    def get_version(self, name: str, version: int | None = None) -> DatasetVersion: ...
    def list_versions(self, name: str) -> list[DatasetVersion]: ...
    def list_datasets(self) -> list[DatasetSummary]: ...
    def blob_holders(self, sha256s: Sequence[str]) -> dict[str, list[str]]: ...


class MetadataStores(Protocol):
    """Every kind of record one deployment keeps, behind one object: what a client is built on."""

    tracking: TrackingStore
    registry: RegistryStore
    lineage: LineageStore
    schedules: ScheduleStore
    features: FeatureRegistryStore
    datasets: DatasetStore


class AuthStore(Protocol):
    """Users, API tokens, grants and the audit log: rows only (hashing and rules are
    :class:`shipyard.auth.accounts.Accounts`'). Only a server keeps them, so only SQL implements it."""

    def insert_user(self, row: Mapping[str, Any]) -> User: ...
    def user(self, name: str) -> User: ...
    def credentials(self, name: str) -> tuple[User, str | None, int, int | None] | None: ...
    def list_users(self) -> list[User]: ...
    def update_user(self, name: str, values: Mapping[str, Any]) -> User: ...
    def count_admins(self) -> int: ...
    def login_failed(self, name: str, failed: int, locked_until: int | None) -> None: ...
    def insert_token(self, row: Mapping[str, Any]) -> Token: ...
    def token(self, token_id: str) -> Token: ...
    def token_secret(self, token_id: str) -> tuple[Token, str, User] | None: ...
    def list_tokens(self, user: str | None = None) -> list[Token]: ...
    def update_token(self, token_id: str, values: Mapping[str, Any]) -> None: ...
    def put_grant(
        self, user: str, kind: ResourceType, resource: str, permission: Permission, by: str, at: int
    ) -> Grant: ...
    def delete_grant(self, user: str, kind: ResourceType, resource: str) -> bool: ...
    def grants_of(
        self, user: str | None = None, kind: ResourceType | None = None, resource: str | None = None
    ) -> list[Grant]: ...
    def append_audit(self, events: Iterable[Mapping[str, Any]]) -> None: ...
    def audit(
        self, *, since: int | None = None, user: str | None = None, limit: int = 100
    ) -> list[AuditEvent]: ...


class DeploymentStore(Protocol):
    """Deployment records: the served models a platform server knows of, so grants can name them. Rows only
    (names and URLs are checked by :class:`shipyard.deployments.Deployments`); only a server keeps them, so
    only SQL implements it."""

    def insert_deployment(self, row: Mapping[str, Any]) -> DeploymentRecord: ...
    def update_deployment(self, name: str, values: Mapping[str, Any]) -> DeploymentRecord: ...
    def deployment(self, name: str) -> DeploymentRecord: ...
    def list_deployments(self) -> list[DeploymentRecord]: ...
    def delete_deployment(self, name: str) -> None: ...


class ServerStores(MetadataStores, Protocol):
    """The stores a platform server keeps records in itself (SQL): every record kind, access records,
    deployment records and records copied from other systems."""

    auth: AuthStore
    deployments: DeploymentStore
    imports: ImportStore
