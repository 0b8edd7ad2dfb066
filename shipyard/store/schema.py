"""The metadata tables (SQLAlchemy Core).

Every schema change also needs an Alembic revision in ``store/migrations/versions``; a test compares the two.

Runs carry two ids: ``run_id`` (UUID hex, stable, public) and ``id`` (an integer surrogate key, private).
Child
tables point at the integer so that a metric row stays small and the hot insert path stays fast.

Latest metric values: SQLite turns a NaN into NULL, so a NULL ``latest_metrics.value`` *means* NaN on every
backend; ±inf are stored as is. History chunks keep IEEE floats, NaN included.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

experiments = Table(
    "experiments",
    metadata,
    Column("experiment_id", String(32), primary_key=True),
    Column("name", String(256), nullable=False, unique=True),
    Column("description", Text, nullable=True),
    Column("artifact_location", Text, nullable=False),
    Column("lifecycle_stage", String(16), nullable=False, server_default="active"),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

runs = Table(
    "runs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(32), nullable=False, unique=True),
    Column(
        "experiment_id",
        String(32),
        ForeignKey("experiments.experiment_id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("name", String(256), nullable=False),
    Column("status", String(16), nullable=False),
    Column("parent_run_id", String(32), nullable=True),
    Column("user", String(256), nullable=True),
    Column("start_time", BigInteger, nullable=False),
    Column("end_time", BigInteger, nullable=True),
    Column("artifact_uri", Text, nullable=False),
    Column("lifecycle_stage", String(16), nullable=False, server_default="active"),
    # Revision 0005: the run's process beats (epoch ms) while it runs; a RUNNING run whose heartbeat is
    # older than the heartbeat timeout has lost its process. pid and host name that process.
    Column("heartbeat_at", BigInteger, nullable=True),
    Column("pid", Integer, nullable=True),
    Column("host", String(256), nullable=True),
    UniqueConstraint("experiment_id", "name", name="uq_runs_experiment_name"),
    Index("ix_runs_experiment_start", "experiment_id", "start_time"),
    Index("ix_runs_parent", "parent_run_id"),
    Index("ix_runs_status_heartbeat", "status", "heartbeat_at"),
)

params = Table(
    "params",
    metadata,
    Column("run_pk", Integer, ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    Column("key", String(250), primary_key=True),
    Column("value", Text, nullable=False),
    Index("ix_params_key_value", "key", "value"),
)

tags = Table(
    "tags",
    metadata,
    Column("run_pk", Integer, ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    Column("key", String(250), primary_key=True),
    Column("value", Text, nullable=False),
    Index("ix_tags_key_value", "key", "value"),
)

# Full history, stored in chunks: one row holds up to a few hundred thousand points of one (run, key), as
# little-endian arrays (int64 steps, float64 values, int64 epoch-ms timestamps). Points arrive in batches, and
# writing a batch as one row per key instead of one row per point is what lets a million points commit in
# well under a second on SQLite — a per-point B-tree insert costs ~2 µs on its own.
metric_chunks = Table(
    "metric_chunks",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_pk", Integer, ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
    Column("key", String(250), nullable=False),
    Column("count", Integer, nullable=False),
    Column("min_step", BigInteger, nullable=False),
    Column("max_step", BigInteger, nullable=False),
    Column("steps", LargeBinary, nullable=False),
    Column("values", LargeBinary, nullable=False),
    Column("timestamps", LargeBinary, nullable=False),
    Index("ix_metric_chunks_run_key", "run_pk", "key"),
)

# The value at the highest (step, timestamp) of each (run, key): what search filters and sorts on.
latest_metrics = Table(
    "latest_metrics",
    metadata,
    Column("run_pk", Integer, ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    Column("key", String(250), primary_key=True),
    Column("value", Float, nullable=True),
    Column("step", BigInteger, nullable=False),
    Column("timestamp", BigInteger, nullable=False),
    Index("ix_latest_metrics_key_value", "key", "value"),
)

artifacts = Table(
    "artifacts",
    metadata,
    Column("run_pk", Integer, ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    Column("path", String(1024), primary_key=True),
    Column("size", BigInteger, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("created_at", BigInteger, nullable=False),
)

dataset_inputs = Table(
    "dataset_inputs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_pk", Integer, ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(256), nullable=False),
    Column("digest", String(64), nullable=False),
    Column("source", Text, nullable=False),
    Column("source_type", String(32), nullable=False),
    Column("num_rows", BigInteger, nullable=True),
    Column("schema_json", Text, nullable=False),
    Column("context", String(64), nullable=True),
    Column("created_at", BigInteger, nullable=False),
    UniqueConstraint("run_pk", "name", "digest", name="uq_dataset_inputs_run_name_digest"),
    Index("ix_dataset_inputs_name", "name"),
    Index("ix_dataset_inputs_digest", "digest"),
)

# ---------------------------------------------------------------------- model registry (revision 0002)
registered_models = Table(
    "registered_models",
    metadata,
    Column("model_id", String(32), primary_key=True),
    Column("name", String(256), nullable=False, unique=True),
    Column("description", Text, nullable=True),
    # The highest version number ever given out: numbers are never reused, even after deletions.
    Column("last_version", Integer, nullable=False, server_default="0"),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

registered_model_tags = Table(
    "registered_model_tags",
    metadata,
    Column(
        "model_id",
        String(32),
        ForeignKey("registered_models.model_id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("key", String(250), primary_key=True),
    Column("value", Text, nullable=False),
)

# Lineage lives in columns that later workflows fill: run_id (the training run), pipeline_run_id (the
# pipeline run that produced it) and lineage_json (dataset digests and anything else the package records).
model_versions = Table(
    "model_versions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column(
        "model_id",
        String(32),
        ForeignKey("registered_models.model_id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("version", Integer, nullable=False),
    Column("flavor", String(64), nullable=False),
    Column("stage", String(16), nullable=False, server_default="None"),
    Column("description", Text, nullable=True),
    Column("source_uri", Text, nullable=False),
    Column("package_uri", Text, nullable=False),
    Column("manifest_sha256", String(64), nullable=False),
    Column("run_id", String(32), nullable=True),
    Column("pipeline_run_id", String(32), nullable=True),
    Column("lineage_json", Text, nullable=False),
    Column("created_by", String(256), nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    UniqueConstraint("model_id", "version", name="uq_model_versions_model_version"),
    Index("ix_model_versions_run", "run_id"),
)

model_version_tags = Table(
    "model_version_tags",
    metadata,
    Column("version_pk", Integer, ForeignKey("model_versions.id", ondelete="CASCADE"), primary_key=True),
    Column("key", String(250), primary_key=True),
    Column("value", Text, nullable=False),
)

model_aliases = Table(
    "model_aliases",
    metadata,
    Column(
        "model_id",
        String(32),
        ForeignKey("registered_models.model_id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("alias", String(256), primary_key=True),
    Column("version_pk", Integer, ForeignKey("model_versions.id"), nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

# The audit log: every registration, stage transition, alias move and deletion — who, when, why.
model_events = Table(
    "model_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("model_name", String(256), nullable=False),
    Column("version", Integer, nullable=True),
    Column("action", String(32), nullable=False),
    Column("from_value", Text, nullable=True),
    Column("to_value", Text, nullable=True),
    Column("user", String(256), nullable=True),
    Column("reason", Text, nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Index("ix_model_events_model", "model_name", "id"),
)

# ---------------------------------------------------------------------- lineage (revision 0003)
# ML-Metadata style: artifacts (a URI with a content hash), executions (a run, a registration, a pipeline
# step) and events saying which artifacts each execution read (input) and wrote (output).
lineage_artifacts = Table(
    "lineage_artifacts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("uri", Text, nullable=False),
    # "" when the content hash is unknown: NULLs would defeat the uniqueness of (uri, sha256).
    Column("sha256", String(64), nullable=False, server_default=""),
    Column("type", String(32), nullable=False),
    Column("name", String(256), nullable=True),
    Column("properties_json", Text, nullable=False, server_default="{}"),
    Column("created_at", BigInteger, nullable=False),
    UniqueConstraint("uri", "sha256", name="uq_lineage_artifacts_uri_sha"),
)

lineage_executions = Table(
    "lineage_executions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("type", String(64), nullable=False),
    Column("name", String(256), nullable=True),
    Column("run_id", String(32), nullable=True),
    Column("pipeline_run_id", String(32), nullable=True),
    Column("properties_json", Text, nullable=False, server_default="{}"),
    Column("created_at", BigInteger, nullable=False),
    Index("ix_lineage_executions_run", "run_id"),
)

lineage_events = Table(
    "lineage_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("execution_id", Integer, ForeignKey("lineage_executions.id", ondelete="CASCADE"), nullable=False),
    Column("artifact_id", Integer, ForeignKey("lineage_artifacts.id", ondelete="CASCADE"), nullable=False),
    Column("kind", String(8), nullable=False),
    Column("role", String(256), nullable=True),
    Column("created_at", BigInteger, nullable=False),
    UniqueConstraint("execution_id", "artifact_id", "kind", name="uq_lineage_events_edge"),
    Index("ix_lineage_events_artifact", "artifact_id", "kind"),
)

# ---------------------------------------------------------------------- pipeline schedules (revision 0004)
# A recurring run of a compiled pipeline spec. The spec text is stored, not the file's path, so a schedule
# runs what was registered even if the file changes. next_run_at (epoch ms, UTC) is also the claim token:
# a scheduler runs a schedule only if its compare-and-set on next_run_at updated the row.
pipeline_schedules = Table(
    "pipeline_schedules",
    metadata,
    Column("schedule_id", String(32), primary_key=True),
    Column("name", String(256), nullable=False, unique=True),
    Column("pipeline_name", String(256), nullable=False),
    Column("spec_yaml", Text, nullable=False),
    Column("parameters_json", Text, nullable=False),
    Column("cron", String(256), nullable=False),
    Column("timezone", String(64), nullable=False),
    Column("catchup", String(8), nullable=False),
    Column("experiment", String(256), nullable=True),
    Column("executor", String(32), nullable=False),
    Column("cache", Boolean, nullable=False),
    Column("paused", Boolean, nullable=False),
    Column("next_run_at", BigInteger, nullable=False),
    Column("last_run_at", BigInteger, nullable=True),
    Column("last_run_id", String(32), nullable=True),
    Column("last_status", String(16), nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Column("created_by", String(256), nullable=True),  # revision 0010
    Index("ix_pipeline_schedules_due", "paused", "next_run_at"),
)

# ---------------------------------------------------------------------- idempotency keys (revision 0006)
# A retried write (a metric batch, a run's end or creation) carries the key of its first attempt; recorded in
# the write's own transaction, so a retry after a lost answer stores nothing twice. Pruned after a day.
request_keys = Table(
    "request_keys",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("created_at", BigInteger, nullable=False),
    Column("result", String(64), nullable=True),
    Index("ix_request_keys_created", "created_at"),
)

# ------------------------------------------------------------- users, tokens, grants, audit (revision 0007)
# The platform server's access records. Passwords are argon2id hashes; an API token's secret is stored only as
# its sha256 (a token is 256 random bits, so a fast hash is enough and keeps each request's check cheap).
users = Table(
    "users",
    metadata,
    Column("user_id", String(32), primary_key=True),
    Column("name", String(256), nullable=False, unique=True),
    Column("role", String(16), nullable=False),
    Column("password_hash", Text, nullable=True),
    Column("disabled", Boolean, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    # Consecutive failed logins, and until when (epoch ms) further attempts are refused unchecked.
    Column("failed_logins", Integer, nullable=False),
    Column("locked_until", BigInteger, nullable=True),
)

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("token_id", String(32), primary_key=True),
    Column("user_id", String(32), ForeignKey("users.user_id", ondelete="CASCADE"), nullable=False),
    Column("name", String(256), nullable=False),
    Column("secret_sha256", String(64), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=True),
    Column("revoked_at", BigInteger, nullable=True),
    Column("last_used_at", BigInteger, nullable=True),
    Index("ix_api_tokens_user", "user_id"),
)

grants = Table(
    "grants",
    metadata,
    Column("user_id", String(32), ForeignKey("users.user_id", ondelete="CASCADE"), primary_key=True),
    Column("resource_type", String(32), primary_key=True),
    Column("resource", String(256), primary_key=True),
    Column("permission", String(16), nullable=False),
    Column("granted_by", String(256), nullable=False),
    Column("created_at", BigInteger, nullable=False),
)

audit_events = Table(
    "audit_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", BigInteger, nullable=False),
    Column("user_name", String(256), nullable=False),
    Column("method", String(8), nullable=False),
    Column("path", Text, nullable=False),
    Column("status", Integer, nullable=False),
    Column("address", String(64), nullable=False),
    Index("ix_audit_events_at", "at"),
)

# ---------------------------------------------------------------------------- deployments (revision 0009)
# The served models a platform server knows of, so grants can name them (``deployment:NAME``): an inference
# server started with --platform registers each model it serves under the model's name, with its own URL.
deployments = Table(
    "deployments",
    metadata,
    Column("name", String(256), primary_key=True),
    Column("url", Text, nullable=False),
    Column("created_by", String(256), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Column("report", Text, nullable=True),  # the serving server's last report (JSON)
    Column("reported_at", BigInteger, nullable=True),
)


# Feature definitions, one row a version: an apply that changes a definition adds one (its spec as JSON);
# removing it adds one marked deleted.
feature_definitions = Table(
    "feature_definitions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(32), nullable=False),
    Column("name", String(128), nullable=False),
    Column("version", Integer, nullable=False),
    Column("spec", Text, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("deleted", Boolean, nullable=False),
    Column("created_by", String(256), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    UniqueConstraint("kind", "name", "version", name="uq_feature_definitions_version"),
)


# ------------------------------------------------------------------------ dataset versions (revision 0013)
# Named, numbered, immutable snapshots of a file or folder. The files themselves are content-addressed blobs
# in the artifact store (datasets/blobs/ab/abcdef…); these rows are each version's manifest. A version row
# is inserted only once every blob it names is stored.
datasets = Table(
    "datasets",
    metadata,
    Column("dataset_id", String(32), primary_key=True),
    Column("name", String(128), nullable=False, unique=True),
    # The highest version number given out: allocated by UPDATE … RETURNING in the adding transaction.
    Column("last_version", Integer, nullable=False, server_default="0"),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

dataset_versions = Table(
    "dataset_versions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("dataset_id", String(32), ForeignKey("datasets.dataset_id", ondelete="CASCADE"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("num_files", Integer, nullable=False),
    Column("description", Text, nullable=True),
    Column("tags_json", Text, nullable=False, server_default="{}"),
    Column("created_by", String(256), nullable=True),
    Column("created_at", BigInteger, nullable=False),
    UniqueConstraint("dataset_id", "version", name="uq_dataset_versions_dataset_version"),
    Index("ix_dataset_versions_sha", "dataset_id", "sha256"),
)

dataset_files = Table(
    "dataset_files",
    metadata,
    Column("version_pk", Integer, ForeignKey("dataset_versions.id", ondelete="CASCADE"), primary_key=True),
    Column("path", Text, primary_key=True),
    Column("size", BigInteger, nullable=False),
    Column("sha256", String(64), nullable=False),
    Index("ix_dataset_files_sha", "sha256"),
)

# ------------------------------------------------------------------------ logged models (revision 0014)
logged_models = Table(
    "logged_models",
    metadata,
    Column("model_id", String(64), primary_key=True),
    Column("experiment_id", String(32), nullable=False),
    Column("name", String(256), nullable=False),
    Column("source_run_id", String(32), nullable=True),
    Column("status", String(32), nullable=False),
    Column("model_type", String(256), nullable=True),
    Column("artifact_location", Text, nullable=False),
    Column("params_json", Text, nullable=False, server_default="{}"),
    Column("tags_json", Text, nullable=False, server_default="{}"),
    Column("lifecycle_stage", String(16), nullable=False, server_default="active"),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Index("ix_logged_models_experiment_name", "experiment_id", "name"),
    Index("ix_logged_models_source_run", "source_run_id"),
)

logged_model_outputs = Table(
    "logged_model_outputs",
    metadata,
    Column("run_id", String(32), primary_key=True),
    Column(
        "model_id", String(64), ForeignKey("logged_models.model_id", ondelete="CASCADE"), primary_key=True
    ),
    Column("step", BigInteger, nullable=False, server_default="0"),
)
