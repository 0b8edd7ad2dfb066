"""`SqlRegistryStore`: registered models, versions, aliases, stages, tags and the audit log in SQL.

Version numbers are allocated inside the registering transaction (SQLite serialises writers with BEGIN
IMMEDIATE; on PostgreSQL the model row is locked ``FOR UPDATE``), so concurrent registrations get distinct
numbers and none is lost. Moving an alias, a stage transition and their audit entries commit together.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError as SAIntegrityError

from shipyard.auth.records import ResourceType
from shipyard.errors import AlreadyExists, Conflict, InvalidInput, NotFound
from shipyard.registry.naming import check_alias, check_model_name
from shipyard.registry.records import (
    GATE_PREFIX,
    GATE_REQUIRED_FOR,
    GATE_STATUS,
    ModelEvent,
    ModelVersion,
    RegisteredModel,
    Stage,
)
from shipyard.registry.uri import RegistryUri, check_version
from shipyard.store.db import MetadataStore
from shipyard.store.schema import (
    lineage_artifacts,
    model_aliases,
    model_events,
    model_version_tags,
    model_versions,
    registered_model_tags,
    registered_models,
)
from shipyard.store.sql import dialect
from shipyard.store.sql.auth import move_grants
from shipyard.store.sql.tracking import acting_user
from shipyard.tracking.records import new_id, now_ms
from shipyard.tracking.values import checked_texts


class SqlRegistryStore:
    """Registry records in one SQL metadata database (that of the runs they come from). Thread-safe."""

    def __init__(self, db: MetadataStore) -> None:
        self.db = db

    # ------------------------------------------------------------------ registered models
    def create_model(
        self, name: str, *, description: str | None = None, tags: Mapping[str, Any] | None = None
    ) -> RegisteredModel:
        """Create a registered model; `AlreadyExists` if the name is taken."""
        check_model_name(name)
        now = now_ms()
        try:
            with self.db.write() as conn:
                model_id = self._insert_model(conn, name, description, now)
                self._set_model_tags(conn, model_id, tags or {})
                insert_model_event(conn, name, None, "create_model", None, None, None)
        except SAIntegrityError as exc:
            raise AlreadyExists(f"registered model {name!r} already exists") from exc
        return self.get_model(name)

    def get_model(self, name: str) -> RegisteredModel:
        with self.db.read() as conn:
            row = self._model_row(conn, name)
            tags = dict(
                conn.execute(
                    sa.select(registered_model_tags.c.key, registered_model_tags.c.value).where(
                        registered_model_tags.c.model_id == row.model_id
                    )
                ).all()
            )
            aliases = dict(
                conn.execute(
                    sa.select(model_aliases.c.alias, model_versions.c.version)
                    .join(model_versions, model_versions.c.id == model_aliases.c.version_pk)
                    .where(model_aliases.c.model_id == row.model_id)
                ).all()
            )
            latest = conn.execute(
                sa.select(sa.func.max(model_versions.c.version)).where(
                    model_versions.c.model_id == row.model_id
                )
            ).scalar()
        return RegisteredModel(
            row.model_id, row.name, row.description, row.created_at, row.updated_at, tags, aliases, latest
        )

    def list_models(self) -> list[RegisteredModel]:
        with self.db.read() as conn:
            names = (
                conn.execute(sa.select(registered_models.c.name).order_by(registered_models.c.name))
                .scalars()
                .all()
            )
        return [self.get_model(name) for name in names]

    def delete_model(self, name: str, *, force: bool = False) -> None:
        """Delete a model and all its versions; refused while aliases point at it unless ``force``."""
        with self.db.write() as conn:
            row = self._model_row(conn, name)
            aliases = (
                conn.execute(sa.select(model_aliases.c.alias).where(model_aliases.c.model_id == row.model_id))
                .scalars()
                .all()
            )
            if aliases and not force:
                raise Conflict(
                    f"model {name!r} has aliases ({', '.join(sorted(aliases))}); delete them or pass force"
                )
            conn.execute(model_aliases.delete().where(model_aliases.c.model_id == row.model_id))
            conn.execute(registered_models.delete().where(registered_models.c.model_id == row.model_id))
            insert_model_event(conn, name, None, "delete_model", None, None, None)

    def rename_model(self, name: str, new_name: str) -> RegisteredModel:
        """Rename a model: its versions, aliases, tags, audit log, lineage and grants follow it.

        ``models:/OLD/…`` references elsewhere (deployments, code) are not rewritten; they fail as unknown
        until they are changed, never reach another model by accident.

        Raises:
            NotFound: no model ``name``.
            AlreadyExists: ``new_name`` is taken.
            InvalidInput: ``new_name`` is not a valid model name.
        """
        check_model_name(new_name)
        if new_name == name:
            return self.get_model(name)
        try:
            with self.db.write() as conn:
                row = self._model_row(conn, name)
                conn.execute(
                    registered_models.update()
                    .where(registered_models.c.model_id == row.model_id)
                    .values(name=new_name, updated_at=now_ms())
                )
                # Its history moves with it: the events since it was created (not a deleted namesake's).
                created = conn.execute(
                    sa.select(sa.func.max(model_events.c.id)).where(
                        model_events.c.model_name == name, model_events.c.action == "create_model"
                    )
                ).scalar()
                own = model_events.c.model_name == name
                if created is not None:
                    own = sa.and_(own, model_events.c.id >= created)
                conn.execute(model_events.update().where(own).values(model_name=new_name))
                insert_model_event(conn, new_name, None, "rename_model", name, new_name, None)
                move_grants(conn, ResourceType.REGISTERED_MODEL, name, new_name)
                _rename_lineage(conn, name, new_name)
        except SAIntegrityError as exc:
            raise AlreadyExists(f"registered model {new_name!r} already exists; choose another name") from exc
        return self.get_model(new_name)

    def update_model(self, name: str, *, description: str | None) -> RegisteredModel:
        """Set (or with None clear) a model's description."""
        with self.db.write() as conn:
            row = self._model_row(conn, name)
            conn.execute(
                registered_models.update()
                .where(registered_models.c.model_id == row.model_id)
                .values(description=description, updated_at=now_ms())
            )
        return self.get_model(name)

    def delete_model_tag(self, name: str, key: str) -> None:
        """Remove tag ``key`` from a model; `NotFound` if the model or the tag is missing."""
        with self.db.write() as conn:
            row = self._model_row(conn, name)
            gone = conn.execute(
                registered_model_tags.delete().where(
                    registered_model_tags.c.model_id == row.model_id, registered_model_tags.c.key == key
                )
            ).rowcount
        if not gone:
            raise NotFound(f"registered model {name!r} has no tag {key!r}")

    # ------------------------------------------------------------------ versions
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
    ) -> ModelVersion:
        """Register a new version (the model is created on first use); numbers are 1, 2, 3… per model."""
        check_model_name(name)
        _refuse_gate_keys(tags or {})
        now = now_ms()
        with self.db.write() as conn:
            model_id = self._model_id_or_create(conn, name, now)
            where = registered_models.c.model_id == model_id
            version = dialect.next_number(conn, registered_models, where, "last_version", updated_at=now)
            version_pk = conn.execute(
                model_versions.insert().values(
                    model_id=model_id,
                    version=version,
                    flavor=flavor,
                    stage=Stage.NONE.value,
                    description=description,
                    source_uri=source_uri,
                    package_uri=package_uri,
                    manifest_sha256=manifest_sha256,
                    run_id=run_id,
                    pipeline_run_id=lineage.get("pipeline_run_id"),
                    lineage_json=json.dumps(dict(lineage), sort_keys=True, default=str),
                    created_by=acting_user(),
                    created_at=now,
                    updated_at=now,
                )
            ).inserted_primary_key[0]
            self._set_version_tags(conn, version_pk, tags or {})
            insert_model_event(conn, name, version, "register", None, source_uri, None)
        return self.get_version(name, version)

    def get_version(self, name: str, version: int) -> ModelVersion:
        version = check_version(version)
        with self.db.read() as conn:
            row = self._model_row(conn, name)
            found = self._versions(conn, row, model_versions.c.version == version)
        if not found:
            raise NotFound(f"model {name!r} has no version {version}")
        return found[0]

    def list_versions(self, name: str) -> list[ModelVersion]:
        with self.db.read() as conn:
            row = self._model_row(conn, name)
            return self._versions(conn, row, sa.true())

    def resolve(self, ref: RegistryUri) -> ModelVersion:
        """The version a ``models:/`` URI names (by number, alias, stage or latest)."""
        if ref.version is not None:
            check_version(ref.version)  # a RegistryUri may be built by hand, not only parsed
        with self.db.read() as conn:
            row = self._model_row(conn, ref.name)
            if ref.version is not None:
                condition = model_versions.c.version == ref.version
            elif ref.alias is not None:
                version_pk = conn.execute(
                    sa.select(model_aliases.c.version_pk).where(
                        model_aliases.c.model_id == row.model_id, model_aliases.c.alias == ref.alias
                    )
                ).scalar()
                if version_pk is None:
                    aliases = (
                        conn.execute(
                            sa.select(model_aliases.c.alias).where(model_aliases.c.model_id == row.model_id)
                        )
                        .scalars()
                        .all()
                    )
                    have = ", ".join(sorted(aliases)) or "none"
                    raise NotFound(f"model {ref.name!r} has no alias {ref.alias!r}; it has: {have}")
                condition = model_versions.c.id == version_pk
            else:
                latest = sa.select(sa.func.max(model_versions.c.version)).where(
                    model_versions.c.model_id == row.model_id
                )
                if ref.stage is not None:
                    latest = latest.where(model_versions.c.stage == ref.stage.value)
                condition = model_versions.c.version == latest.scalar_subquery()
            found = self._versions(conn, row, condition)
        if not found:
            what = (
                f"in stage {ref.stage.value}"
                if ref.stage is not None
                else f"version {ref.version}"
                if ref.version
                else "any version"
            )
            raise NotFound(f"model {ref.name!r} has no {what}")
        return found[0]

    def delete_version(self, name: str, version: int, *, force: bool = False) -> ModelVersion:
        """Delete one version; refused while an alias points at it unless ``force`` (drops the aliases)."""
        version = check_version(version)
        with self.db.write() as conn:
            row = self._model_row(conn, name)
            found = self._versions(conn, row, model_versions.c.version == version)
            if not found:
                raise NotFound(f"model {name!r} has no version {version}")
            target = found[0]
            if target.aliases and not force:
                raise Conflict(
                    f"version {version} of {name!r} is aliased as {', '.join(target.aliases)}; "
                    "move or delete "
                    "the alias first, or force the delete"
                )
            pk = self._version_pk(conn, row.model_id, version)
            conn.execute(model_aliases.delete().where(model_aliases.c.version_pk == pk))
            conn.execute(model_versions.delete().where(model_versions.c.id == pk))
            aliases = ",".join(target.aliases) or None
            insert_model_event(conn, name, version, "delete_version", aliases, None, None)
        return target

    # ------------------------------------------------------------------ aliases, stages, tags
    def set_alias(self, name: str, alias: str, version: int, *, reason: str | None = None) -> ModelVersion:
        """Point ``alias`` at ``version`` (moving it atomically if it pointed elsewhere)."""
        check_alias(alias)
        version = check_version(version)
        with self.db.write() as conn:
            row = self._model_row(conn, name)
            pk = self._version_pk(conn, row.model_id, version)
            self._check_gate(conn, row, pk, name, version, f"@{alias}", f"moving alias {alias!r} to it")
            previous = conn.execute(
                sa.select(model_versions.c.version)
                .join(model_aliases, model_aliases.c.version_pk == model_versions.c.id)
                .where(model_aliases.c.model_id == row.model_id, model_aliases.c.alias == alias)
            ).scalar()
            stmt = dialect.insert(self.db, model_aliases).values(
                model_id=row.model_id, alias=alias, version_pk=pk, updated_at=now_ms()
            )
            conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=["model_id", "alias"],
                    set_={"version_pk": stmt.excluded.version_pk, "updated_at": stmt.excluded.updated_at},
                )
            )
            before, after = _fmt(alias, previous), _fmt(alias, version)
            insert_model_event(conn, name, version, "set_alias", before, after, reason)
        return self.get_version(name, version)

    def delete_alias(self, name: str, alias: str) -> None:
        with self.db.write() as conn:
            row = self._model_row(conn, name)
            previous = conn.execute(
                sa.select(model_versions.c.version)
                .join(model_aliases, model_aliases.c.version_pk == model_versions.c.id)
                .where(model_aliases.c.model_id == row.model_id, model_aliases.c.alias == alias)
            ).scalar()
            if previous is None:
                raise NotFound(f"model {name!r} has no alias {alias!r}")
            conn.execute(
                model_aliases.delete().where(
                    model_aliases.c.model_id == row.model_id, model_aliases.c.alias == alias
                )
            )
            insert_model_event(conn, name, previous, "delete_alias", _fmt(alias, previous), None, None)

    def transition(
        self,
        name: str,
        version: int,
        stage: Stage | str,
        *,
        reason: str | None = None,
        archive_others: bool = False,
    ) -> ModelVersion:
        """Move a version to a stage, recording who, when and why; optionally archive the stage's others."""
        target = Stage.parse(stage)
        version = check_version(version)
        now = now_ms()
        with self.db.write() as conn:
            row = self._model_row(conn, name)
            pk = self._version_pk(conn, row.model_id, version)
            self._check_gate(conn, row, pk, name, version, target.value, f"moving it to {target.value}")
            current = conn.execute(
                sa.select(model_versions.c.stage).where(model_versions.c.id == pk)
            ).scalar_one()
            conn.execute(
                model_versions.update()
                .where(model_versions.c.id == pk)
                .values(stage=target.value, updated_at=now)
            )
            insert_model_event(conn, name, version, "transition", current, target.value, reason)
            if archive_others and target in (Stage.STAGING, Stage.PRODUCTION):
                others = conn.execute(
                    sa.select(model_versions.c.id, model_versions.c.version).where(
                        model_versions.c.model_id == row.model_id,
                        model_versions.c.stage == target.value,
                        model_versions.c.id != pk,
                    )
                ).all()
                for other_pk, other_version in others:
                    conn.execute(
                        model_versions.update()
                        .where(model_versions.c.id == other_pk)
                        .values(stage=Stage.ARCHIVED.value, updated_at=now)
                    )
                    insert_model_event(
                        conn,
                        name,
                        other_version,
                        "transition",
                        target.value,
                        Stage.ARCHIVED.value,
                        f"archived when version {version} entered {target.value}",
                    )
        return self.get_version(name, version)

    def set_version_tags(self, name: str, version: int, tags: Mapping[str, Any]) -> None:
        version = check_version(version)
        _refuse_gate_keys(tags)
        with self.db.write() as conn:
            row = self._model_row(conn, name)
            self._set_version_tags(conn, self._version_pk(conn, row.model_id, version), tags)

    def update_version(self, name: str, version: int, *, description: str | None) -> ModelVersion:
        """Set (or with None clear) a version's description."""
        version = check_version(version)
        with self.db.write() as conn:
            pk = self._version_pk(conn, self._model_row(conn, name).model_id, version)
            conn.execute(
                model_versions.update()
                .where(model_versions.c.id == pk)
                .values(description=description, updated_at=now_ms())
            )
        return self.get_version(name, version)

    def delete_version_tag(self, name: str, version: int, key: str) -> None:
        """Remove tag ``key`` from a version; `NotFound` if the version or the tag is missing."""
        version = check_version(version)
        _refuse_gate_keys({key: ""})
        with self.db.write() as conn:
            pk = self._version_pk(conn, self._model_row(conn, name).model_id, version)
            gone = conn.execute(
                model_version_tags.delete().where(
                    model_version_tags.c.version_pk == pk, model_version_tags.c.key == key
                )
            ).rowcount
        if not gone:
            raise NotFound(f"version {version} of model {name!r} has no tag {key!r}")

    def set_model_tags(self, name: str, tags: Mapping[str, Any]) -> None:
        with self.db.write() as conn:
            self._set_model_tags(conn, self._model_row(conn, name).model_id, tags)

    def record_gate(
        self, name: str, version: int, *, passed: bool, summary: str, facts: Mapping[str, Any]
    ) -> ModelVersion:
        """A gate's outcome on a version (its ``shipyard.gate.*`` tags) and in the audit log, together."""
        version = check_version(version)
        status = "passed" if passed else "failed"
        tags = {f"{GATE_PREFIX}{key}": value for key, value in facts.items()} | {GATE_STATUS: status}
        with self.db.write() as conn:
            pk = self._version_pk(conn, self._model_row(conn, name).model_id, version)
            before = conn.execute(
                sa.select(model_version_tags.c.value).where(
                    model_version_tags.c.version_pk == pk, model_version_tags.c.key == GATE_STATUS
                )
            ).scalar()
            conn.execute(
                model_version_tags.delete().where(
                    model_version_tags.c.version_pk == pk, model_version_tags.c.key.startswith(GATE_PREFIX)
                )
            )
            self._set_version_tags(conn, pk, tags)
            insert_model_event(conn, name, version, "gate", before, status, summary)
        return self.get_version(name, version)

    def _check_gate(
        self, conn: Connection, row: Any, pk: int, name: str, version: int, target: str, what: str
    ) -> None:
        """Refuse ``what`` unless the version passed its gate, when the model requires one for ``target``."""
        required = conn.execute(
            sa.select(registered_model_tags.c.value).where(
                registered_model_tags.c.model_id == row.model_id,
                registered_model_tags.c.key == GATE_REQUIRED_FOR,
            )
        ).scalar()
        wanted = {item.strip().lower() for item in (required or "").split(",") if item.strip()}
        if target.lower() not in wanted:
            return
        status = conn.execute(
            sa.select(model_version_tags.c.value).where(
                model_version_tags.c.version_pk == pk, model_version_tags.c.key == GATE_STATUS
            )
        ).scalar()
        if status != "passed":
            state = f"its gate {status}" if status else "it has no gate result"
            raise Conflict(
                f"version {version} of model {name!r} cannot be promoted ({what}): {state}, and the model "
                f"requires a passed gate for {target} (model tag {GATE_REQUIRED_FOR}={required!r}); run "
                "`shipyard models gate` first"
            )

    def events(self, name: str) -> list[ModelEvent]:
        """The audit log of a model, oldest first (kept after the model is deleted)."""
        with self.db.read() as conn:
            rows = conn.execute(
                sa.select(model_events).where(model_events.c.model_name == name).order_by(model_events.c.id)
            ).all()
        return [
            ModelEvent(
                r.model_name, r.version, r.action, r.from_value, r.to_value, r.user, r.reason, r.created_at
            )
            for r in rows
        ]

    # ------------------------------------------------------------------ internals
    def _insert_model(self, conn: Connection, name: str, description: str | None, now: int) -> str:
        model_id = new_id()
        conn.execute(
            registered_models.insert().values(
                model_id=model_id, name=name, description=description, created_at=now, updated_at=now
            )
        )
        return model_id

    def _model_id_or_create(self, conn: Connection, name: str, now: int) -> str:
        insert = dialect.insert(self.db, registered_models).values(
            model_id=new_id(), name=name, description=None, created_at=now, updated_at=now
        )
        # RETURNING, not rowcount: a driver may count a skipped row (PostgreSQL logged a second create).
        insert = insert.on_conflict_do_nothing(index_elements=["name"])
        if conn.execute(insert.returning(registered_models.c.model_id)).first() is not None:
            insert_model_event(conn, name, None, "create_model", None, None, None)
        return conn.execute(
            sa.select(registered_models.c.model_id).where(registered_models.c.name == name)
        ).scalar_one()

    def _model_row(self, conn: Connection, name: str) -> Any:
        row = conn.execute(sa.select(registered_models).where(registered_models.c.name == name)).first()
        if row is None:
            raise NotFound(f"no registered model named {name!r}")
        return row

    def _version_pk(self, conn: Connection, model_id: str, version: int) -> int:
        pk = conn.execute(
            sa.select(model_versions.c.id).where(
                model_versions.c.model_id == model_id, model_versions.c.version == version
            )
        ).scalar()
        if pk is None:
            name = conn.execute(
                sa.select(registered_models.c.name).where(registered_models.c.model_id == model_id)
            ).scalar()
            raise NotFound(f"model {name!r} has no version {version}")
        return pk

    def _versions(self, conn: Connection, model: Any, condition: Any) -> list[ModelVersion]:
        rows = conn.execute(
            sa.select(model_versions)
            .where(model_versions.c.model_id == model.model_id, condition)
            .order_by(model_versions.c.version)
        ).all()
        if not rows:
            return []
        pks = [r.id for r in rows]
        aliases: dict[int, list[str]] = {}
        for alias, pk in conn.execute(
            sa.select(model_aliases.c.alias, model_aliases.c.version_pk).where(
                model_aliases.c.version_pk.in_(pks)
            )
        ):
            aliases.setdefault(pk, []).append(alias)
        tags: dict[int, dict[str, str]] = {}
        for pk, key, value in conn.execute(
            sa.select(
                model_version_tags.c.version_pk, model_version_tags.c.key, model_version_tags.c.value
            ).where(model_version_tags.c.version_pk.in_(pks))
        ):
            tags.setdefault(pk, {})[key] = value
        return [
            ModelVersion(
                name=model.name,
                version=r.version,
                flavor=r.flavor,
                stage=Stage(r.stage),
                source_uri=r.source_uri,
                package_uri=r.package_uri,
                manifest_sha256=r.manifest_sha256,
                run_id=r.run_id,
                pipeline_run_id=r.pipeline_run_id,
                lineage=json.loads(r.lineage_json),
                created_by=r.created_by,
                created_at=r.created_at,
                updated_at=r.updated_at,
                description=r.description,
                aliases=tuple(sorted(aliases.get(r.id, []))),
                tags=tags.get(r.id, {}),
            )
            for r in rows
        ]

    def _set_version_tags(self, conn: Connection, version_pk: int, tags: Mapping[str, Any]) -> None:
        checked = checked_texts(tags, "tag")
        rows = [{"version_pk": version_pk, "key": k, "value": v} for k, v in checked.items()]
        if rows:
            conn.execute(dialect.upsert(self.db, model_version_tags), rows)

    def _set_model_tags(self, conn: Connection, model_id: str, tags: Mapping[str, Any]) -> None:
        rows = [{"model_id": model_id, "key": k, "value": v} for k, v in checked_texts(tags, "tag").items()]
        if rows:
            conn.execute(dialect.upsert(self.db, registered_model_tags), rows)


def _refuse_gate_keys(tags: Mapping[str, Any]) -> None:
    reserved = sorted(k for k in tags if str(k).startswith(GATE_PREFIX))
    if reserved:
        raise InvalidInput(
            f"tag {reserved[0]!r} is written only by `shipyard models gate` (its {GATE_PREFIX}* tags record "
            "a gate's outcome with an audit entry)"
        )


def insert_model_event(
    conn: Connection,
    name: str,
    version: int | None,
    action: str,
    from_value: str | None,
    to_value: str | None,
    reason: str | None,
    at: int | None = None,
) -> None:
    """One audit-log entry by the acting user, at ``at`` (epoch ms; now when None)."""
    conn.execute(
        model_events.insert().values(
            model_name=name,
            version=version,
            action=action,
            from_value=from_value,
            to_value=to_value,
            user=acting_user(),
            reason=reason,
            created_at=now_ms() if at is None else at,
        )
    )


def _rename_lineage(conn: Connection, name: str, new_name: str) -> None:
    """Point the lineage records of ``models:/NAME/N`` at the new name (compared as a prefix, not LIKE,
    whose ``_`` and ``%`` a model name may hold)."""
    prefix, new_prefix = f"models:/{name}/", f"models:/{new_name}/"
    uri = lineage_artifacts.c.uri
    conn.execute(
        lineage_artifacts.update()
        .where(sa.func.substr(uri, 1, len(prefix)) == prefix)
        .values(uri=sa.literal(new_prefix) + sa.func.substr(uri, len(prefix) + 1))
    )


def _fmt(alias: str, version: int | None) -> str | None:
    return None if version is None else f"{alias}->{version}"
