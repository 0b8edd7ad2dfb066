"""The graph the UI draws: nodes with labels and size hints, edges between them, checked once.

:func:`index_dag` turns a :class:`DagGraph` into integer adjacency lists in topological order, which the
layout and the fan-out collapse both work on. It is where bad input is caught: a duplicate node id, an edge
naming an unknown node, a cycle (a pipeline has none, but a graph read from stored records might); each
raises :class:`~shipyard.errors.InvalidInput` naming the nodes. Duplicate edges are dropped.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from shipyard.errors import InvalidInput

_MAX_NAMED = 12  # nodes named in a cycle message before "…"


@dataclass(frozen=True)
class DagNode:
    """One node to draw.

    Attributes:
        id: unique in its graph; the SVG's ``data-step``, so a page can update the node by polling.
        label: the text drawn in the node ("" draws the id).
        title: hover text ("" shows the label).
        width: size hint in px (None: from the label's length).
        height: size hint in px (None: the default height).
        count: how many steps the node stands for (above 1 for a collapsed fan-out).
    """

    id: str
    label: str = ""
    title: str = ""
    width: float | None = None
    height: float | None = None
    count: int = 1

    @property
    def text(self) -> str:
        """The label to draw: ``label``, or the id when it has none."""
        return self.label or self.id


@dataclass(frozen=True)
class DagGraph:
    """Nodes (in the order a caller would list them, e.g. spec order) and directed edges ``(src, dst)``."""

    nodes: tuple[DagNode, ...]
    edges: tuple[tuple[str, str], ...] = ()

    @classmethod
    def of(cls, nodes: Iterable[DagNode | str], edges: Iterable[tuple[str, str]] = ()) -> DagGraph:
        """A graph from nodes (a bare string is a node with that id) and ``(src, dst)`` pairs."""
        return cls(
            tuple(n if isinstance(n, DagNode) else DagNode(n) for n in nodes),
            tuple((src, dst) for src, dst in edges),
        )


@dataclass(frozen=True)
class IndexedDag:
    """A checked graph as integers: node ``i`` is ``nodes[i]``; edges are unique and in input order."""

    nodes: tuple[DagNode, ...]
    index: dict[str, int]
    edges: list[tuple[int, int]]
    succs: list[list[int]]
    preds: list[list[int]]
    topo: list[int]  # a topological order, stable: ties follow the input order


def index_dag(graph: DagGraph) -> IndexedDag:
    """Check ``graph`` and index it.

    Raises:
        InvalidInput: a node id given twice, an edge naming an unknown node, or a cycle (its nodes named).
    """
    index: dict[str, int] = {}
    for i, node in enumerate(graph.nodes):
        if index.setdefault(node.id, i) != i:
            raise InvalidInput(f"node id {node.id!r} appears twice in the graph")
    n = len(graph.nodes)
    succs: list[list[int]] = [[] for _ in range(n)]
    preds: list[list[int]] = [[] for _ in range(n)]
    edges: list[tuple[int, int]] = []
    seen: set[tuple[int, int]] = set()
    for src, dst in graph.edges:
        u, v = index.get(src), index.get(dst)
        if u is None or v is None:
            unknown = src if u is None else dst
            raise InvalidInput(f"edge {src!r} → {dst!r} names {unknown!r}, which is not a node of the graph")
        if (u, v) in seen:
            continue
        seen.add((u, v))
        edges.append((u, v))
        succs[u].append(v)
        preds[v].append(u)
    return IndexedDag(graph.nodes, index, edges, succs, preds, _topological(graph.nodes, succs, preds))


def _topological(nodes: tuple[DagNode, ...], succs: list[list[int]], preds: list[list[int]]) -> list[int]:
    indegree = [len(p) for p in preds]
    order = [i for i, d in enumerate(indegree) if d == 0]
    for u in order:  # Kahn's algorithm; `order` grows as we walk it
        for v in succs[u]:
            indegree[v] -= 1
            if indegree[v] == 0:
                order.append(v)
    if len(order) < len(nodes):
        raise InvalidInput(f"the graph has a cycle: {_describe_cycle(nodes, preds, indegree)}")
    return order


def _describe_cycle(nodes: tuple[DagNode, ...], preds: list[list[int]], indegree: list[int]) -> str:
    # Every node Kahn could not order has a predecessor it could not order either, so walking backwards
    # through those must come round to a node already seen: that stretch of the walk is a cycle.
    left = [d > 0 for d in indegree]
    at = left.index(True)
    step: dict[int, int] = {}
    while at not in step:
        step[at] = next(p for p in preds[at] if left[p])
        at = step[at]
    cycle = [at]
    while (back := step[cycle[-1]]) != at:
        cycle.append(back)
    cycle.reverse()  # the walk went against the edges
    names = [repr(nodes[i].id) for i in cycle[:_MAX_NAMED]]
    if len(cycle) > _MAX_NAMED:
        names.append("…")
    return " → ".join([*names, repr(nodes[cycle[0]].id)])


__all__ = ["DagGraph", "DagNode", "IndexedDag", "index_dag"]
