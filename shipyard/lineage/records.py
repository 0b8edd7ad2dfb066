"""Lineage records: artifacts, executions, events, and the graph a lineage query returns."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


class ArtifactType(enum.StrEnum):
    DATASET = "Dataset"
    MODEL = "Model"
    METRICS = "Metrics"
    HTML = "HTML"
    ARTIFACT = "Artifact"


class EventKind(enum.StrEnum):
    INPUT = "input"
    OUTPUT = "output"


@dataclass(frozen=True)
class LineageArtifact:
    """A piece of data identified by its URI and content hash (``sha256`` is "" when unknown)."""

    id: int
    uri: str
    sha256: str
    type: ArtifactType
    name: str | None = None
    properties: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Execution:
    """Something that read and wrote artifacts: a training run, a registration, a pipeline step."""

    id: int
    type: str
    name: str | None
    run_id: str | None = None
    pipeline_run_id: str | None = None
    properties: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Edge:
    """``artifact`` was an input to, or an output of, ``execution``."""

    execution_id: int
    artifact_id: int
    kind: EventKind
    role: str | None = None


@dataclass(frozen=True)
class LineageGraph:
    """The upstream graph of one artifact: everything it was derived from, back to its sources."""

    root: LineageArtifact
    artifacts: Mapping[int, LineageArtifact]
    executions: Mapping[int, Execution]
    edges: tuple[Edge, ...]

    def producers(self, artifact_id: int) -> list[Execution]:
        """Executions that wrote ``artifact_id``."""
        return [
            self.executions[e.execution_id]
            for e in self.edges
            if e.artifact_id == artifact_id and e.kind is EventKind.OUTPUT
        ]

    def inputs(self, execution_id: int) -> list[LineageArtifact]:
        """Artifacts ``execution_id`` read."""
        return [
            self.artifacts[e.artifact_id]
            for e in self.edges
            if e.execution_id == execution_id and e.kind is EventKind.INPUT
        ]

    def sources(self) -> list[LineageArtifact]:
        """Artifacts in the graph that nothing produced (raw datasets, imported files)."""
        return [a for a in self.artifacts.values() if not self.producers(a.id)]
