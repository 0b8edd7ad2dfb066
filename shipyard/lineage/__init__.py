"""Lineage: ML-Metadata style artifacts, executions and events, queried upstream as a graph."""

from shipyard.lineage.client import LineageClient, render
from shipyard.lineage.records import ArtifactType, Edge, EventKind, Execution, LineageArtifact, LineageGraph

__all__ = [
    "ArtifactType",
    "Edge",
    "EventKind",
    "Execution",
    "LineageArtifact",
    "LineageClient",
    "LineageGraph",
    "render",
]
