"""`LineageClient`: record artifacts, executions and events, and walk lineage upstream, over whichever
:class:`~shipyard.store.protocol.LineageStore` the deployment has."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from shipyard.lineage.records import ArtifactType, LineageArtifact, LineageGraph
from shipyard.store.protocol import LineageStore
from shipyard.tracking.client import TrackingClient


class LineageClient:
    """Lineage records in the same deployment as ``tracking``'s runs. Thread-safe."""

    def __init__(self, tracking: TrackingClient) -> None:
        self.backend: LineageStore = tracking.stores.lineage

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
        at once; artifacts already known by (uri, sha256) are reused. Returns the execution id."""
        return self.backend.record(
            execution_type,
            name=name,
            run_id=run_id,
            pipeline_run_id=pipeline_run_id,
            inputs=inputs,
            outputs=outputs,
            properties=properties,
        )

    def find(self, uri: str) -> LineageArtifact:
        """The newest artifact recorded at ``uri``; `NotFound` if none is."""
        return self.backend.find(uri)

    def upstream(self, uri: str) -> LineageGraph:
        """Everything ``uri`` was made from, back to the sources: the executions and their inputs."""
        return self.backend.upstream(uri)


def render(graph: LineageGraph) -> str:
    """The chain back to the sources as an indented tree, for people."""
    lines: list[str] = []

    def artifact_line(artifact: LineageArtifact) -> str:
        digest = f" sha256:{artifact.sha256[:12]}" if artifact.sha256 else ""
        return f"{artifact.type.value} {artifact.uri}{digest}"

    def walk(artifact: LineageArtifact, depth: int, seen: frozenset[int]) -> None:
        lines.append("  " * depth + ("└─ " if depth else "") + artifact_line(artifact))
        for execution in graph.producers(artifact.id):
            if execution.id in seen:
                continue
            label = f"{execution.type} {execution.name or ''}".strip()
            run = f" (run {execution.run_id})" if execution.run_id else ""
            lines.append("  " * (depth + 1) + f"← {label}{run}")
            for source in graph.inputs(execution.id):
                walk(source, depth + 2, seen | {execution.id})

    walk(graph.root, 0, frozenset())
    return "\n".join(lines)
