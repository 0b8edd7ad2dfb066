"""`SqlLineageStore`: lineage artifacts, executions and events in SQL, walked upstream as a graph."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from shipyard.errors import NotFound
from shipyard.lineage.records import (
    ArtifactType,
    Edge,
    EventKind,
    Execution,
    LineageArtifact,
    LineageGraph,
)
from shipyard.store.db import MetadataStore
from shipyard.store.schema import lineage_artifacts, lineage_events, lineage_executions

_MAX_NODES = 10_000  # a bound on a lineage walk, so a corrupted cycle cannot run away


def _now() -> int:
    return time.time_ns() // 1_000_000


class SqlLineageStore:
    """Lineage records in one SQL metadata database. Thread-safe."""

    def __init__(self, db: MetadataStore) -> None:
        self.db = db

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
    ) -> int:
        """Record one execution with its input and output artifacts, each ``(uri, type, sha256, name)``,
        in one transaction; artifacts already known by (uri, sha256) are reused. Returns the execution id."""
        now = _now()
        with self.db.write() as conn:
            execution_id = conn.execute(
                lineage_executions.insert().values(
                    type=execution_type,
                    name=name,
                    run_id=run_id,
                    pipeline_run_id=pipeline_run_id,
                    properties_json=json.dumps(dict(properties or {}), sort_keys=True, default=str),
                    created_at=now,
                )
            ).inserted_primary_key[0]
            for kind, artifacts in ((EventKind.INPUT, inputs), (EventKind.OUTPUT, outputs)):
                for uri, artifact_type, sha256, artifact_name in artifacts:
                    artifact_id = self._artifact_id(conn, uri, artifact_type, sha256, artifact_name, now)
                    conn.execute(
                        lineage_events.insert().values(
                            execution_id=execution_id,
                            artifact_id=artifact_id,
                            kind=kind.value,
                            role=artifact_name,
                            created_at=now,
                        )
                    )
        return execution_id

    def find(self, uri: str) -> LineageArtifact:
        """The newest artifact recorded under ``uri``; `NotFound` if lineage never saw it."""
        with self.db.read() as conn:
            row = conn.execute(
                sa.select(lineage_artifacts)
                .where(lineage_artifacts.c.uri == uri)
                .order_by(lineage_artifacts.c.id.desc())
                .limit(1)
            ).first()
        if row is None:
            raise NotFound(f"no lineage recorded for {uri!r}")
        return _artifact(row)

    def upstream(self, uri: str) -> LineageGraph:
        """Everything ``uri`` was derived from: producing executions, their inputs, and so on back."""
        root = self.find(uri)
        artifacts = {root.id: root}
        executions: dict[int, Execution] = {}
        edges: list[Edge] = []
        frontier = [root.id]
        with self.db.read() as conn:
            while frontier and len(artifacts) + len(executions) < _MAX_NODES:
                producing = conn.execute(
                    sa.select(lineage_events).where(
                        lineage_events.c.artifact_id.in_(frontier),
                        lineage_events.c.kind == EventKind.OUTPUT.value,
                    )
                ).all()
                new_executions = {e.execution_id for e in producing} - set(executions)
                edges += [_edge(e) for e in producing]
                if not new_executions:
                    break
                for row in conn.execute(
                    sa.select(lineage_executions).where(lineage_executions.c.id.in_(new_executions))
                ):
                    executions[row.id] = _execution(row)
                consumed = conn.execute(
                    sa.select(lineage_events).where(
                        lineage_events.c.execution_id.in_(new_executions),
                        lineage_events.c.kind == EventKind.INPUT.value,
                    )
                ).all()
                edges += [_edge(e) for e in consumed]
                new_artifacts = {e.artifact_id for e in consumed} - set(artifacts)
                for row in conn.execute(
                    sa.select(lineage_artifacts).where(lineage_artifacts.c.id.in_(new_artifacts))
                ):
                    artifacts[row.id] = _artifact(row)
                frontier = list(new_artifacts)
        return LineageGraph(root, artifacts, executions, tuple(dict.fromkeys(edges)))

    def _artifact_id(
        self, conn: Connection, uri: str, artifact_type: ArtifactType, sha256: str, name: str | None, now: int
    ) -> int:
        existing = conn.execute(
            sa.select(lineage_artifacts.c.id).where(
                lineage_artifacts.c.uri == uri, lineage_artifacts.c.sha256 == sha256
            )
        ).scalar()
        if existing is not None:
            return existing
        return conn.execute(
            lineage_artifacts.insert().values(
                uri=uri, sha256=sha256, type=ArtifactType(artifact_type).value, name=name, created_at=now
            )
        ).inserted_primary_key[0]


def _artifact(row: Any) -> LineageArtifact:
    return LineageArtifact(
        row.id, row.uri, row.sha256, ArtifactType(row.type), row.name, json.loads(row.properties_json)
    )


def _execution(row: Any) -> Execution:
    return Execution(
        row.id, row.type, row.name, row.run_id, row.pipeline_run_id, json.loads(row.properties_json)
    )


def _edge(row: Any) -> Edge:
    return Edge(row.execution_id, row.artifact_id, EventKind(row.kind), row.role)
