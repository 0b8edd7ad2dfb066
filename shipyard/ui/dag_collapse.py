"""Collapse a big run's fan-outs (ParallelFor iterations) into summary nodes, so its DAG stays drawable.

Nodes are collapsible together when the caller puts them in one group (e.g. the loop's step name) and they
sit alike in the graph: the same groups before them and the same groups after them. That is found by
refining the caller's groups until stable, as in bisimulation: a group splits while its members differ in
which groups feed them or consume them. So ``prep → train[i] → eval[i] → select`` becomes
``prep → train[*] → eval[*] → select`` even though no two ``train[i]`` share a successor. Collapsing such a
class can never make a cycle: every member of a class has an input from each class that feeds any member.

Classes are collapsed largest first until at most ``threshold`` nodes remain (or none is left to collapse);
small fan-outs stay expanded when the large ones suffice.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass

from shipyard.ui.dag_graph import DagGraph, DagNode, index_dag

STATUS_PRIORITY = ("failed", "lost", "running", "pending", "skipped", "not_run", "succeeded", "cached")
"""The order in which a summary node takes its members' statuses: any failure shows, then any running step
…; "cached" only when every member was cached. Other statuses rank after these."""


@dataclass(frozen=True)
class CollapsedDag:
    """A graph with some fan-outs folded into summary nodes.

    Attributes:
        graph: the graph to draw; a summary node ``<group>[*]`` is labelled with its group, a
            multiplication sign and its count.
        members: summary node id → the ids it stands for, in the graph's order.
        status_counts: summary node id → how many of its members have each status, most first.
        statuses: every node of ``graph`` → its status (a summary's by :data:`STATUS_PRIORITY`); only nodes
            with a status (empty when none was given).
    """

    graph: DagGraph
    members: dict[str, tuple[str, ...]]
    status_counts: dict[str, dict[str, int]]
    statuses: dict[str, str]


def collapse_fanouts(
    graph: DagGraph,
    groups: Mapping[str, str],
    *,
    statuses: Mapping[str, str] | None = None,
    threshold: int = 300,
) -> CollapsedDag:
    """``graph`` with alike members of a group folded into one node each, when it has over ``threshold``.

    Args:
        graph: the run's DAG.
        groups: node id → its group key (e.g. the ParallelFor step's name); nodes without one never fold.
        statuses: node id → status; a summary counts its members' (a member with none counts "pending").
        threshold: fold nothing when the graph has at most this many nodes; else fold until it has.

    Raises:
        InvalidInput: a graph that :func:`~shipyard.ui.dag_graph.index_dag` rejects.
    """
    dag = index_dag(graph)
    nodes = dag.nodes
    statuses = statuses or {}
    if len(nodes) <= threshold:
        return CollapsedDag(graph, {}, {}, {n.id: statuses[n.id] for n in nodes if n.id in statuses})
    cls = _stable_classes(dag.preds, dag.succs, [groups.get(n.id) for n in nodes])
    classes: dict[int, list[int]] = {}
    for v, c in enumerate(cls):
        classes.setdefault(c, []).append(v)
    # Largest first; sorted() is stable, so equal sizes go in the graph's order.
    foldable = sorted((m for m in classes.values() if len(m) > 1), key=len, reverse=True)
    fold: list[list[int]] = []
    shown = len(nodes)
    for members in foldable:
        if shown <= threshold:
            break
        fold.append(members)
        shown -= len(members) - 1

    taken = {n.id for n in nodes}
    visible = [n.id for n in nodes]  # each node's id in the new graph: its own, or its summary's
    summaries: dict[int, DagNode] = {}  # first member → the summary node standing in its place
    members_of: dict[str, tuple[str, ...]] = {}
    counts_of: dict[str, dict[str, int]] = {}
    shown_status = {n.id: statuses[n.id] for n in nodes if n.id in statuses}
    for members in fold:
        group = groups[nodes[members[0]].id]
        summary = _fresh_id(f"{group}[*]", taken)
        ids = tuple(nodes[v].id for v in members)
        label = f"{group} \N{MULTIPLICATION SIGN} {len(ids)}"
        counts: dict[str, int] = {}
        if statuses:
            counts = dict(Counter(statuses.get(i, "pending") for i in ids).most_common())
            shown_status[summary] = summary_status(counts)
        detail = ", ".join(f"{n} {s}" for s, n in counts.items())
        summaries[members[0]] = DagNode(
            summary, label, f"{label}: {detail}" if detail else "", count=len(ids)
        )
        members_of[summary] = ids
        counts_of[summary] = counts
        for v in members:
            visible[v] = summary
            shown_status.pop(nodes[v].id, None)
    kept = [summaries.get(v, node) for v, node in enumerate(nodes) if visible[v] == node.id or v in summaries]
    edges = dict.fromkeys((visible[u], visible[v]) for u, v in dag.edges)
    return CollapsedDag(DagGraph(tuple(kept), tuple(edges)), members_of, counts_of, shown_status)


def summary_status(counts: Mapping[str, int]) -> str:
    """The status a summary node shows for its members' ``counts`` (status → how many), by priority."""
    rank = {s: i for i, s in enumerate(STATUS_PRIORITY)}
    return min(counts, key=lambda s: (rank.get(s, len(rank)), -counts[s]))


def _stable_classes(preds: list[list[int]], succs: list[list[int]], keys: list[str | None]) -> list[int]:
    """The coarsest refinement of ``keys`` in which alike nodes have the same classes before and after.

    A node without a key is a class of its own. Each round is linear in the edges; a round that splits
    nothing ends it (rounds only ever split classes, so an equal count means an equal partition).
    """
    ids: dict[object, int] = {}
    cls = [ids.setdefault(("key", k) if k is not None else ("node", v), len(ids)) for v, k in enumerate(keys)]
    count = len(ids)
    while True:
        ids = {}
        cls = [
            ids.setdefault(
                (c, frozenset(cls[u] for u in preds[v]), frozenset(cls[w] for w in succs[v])), len(ids)
            )
            for v, c in enumerate(cls)
        ]
        if len(ids) == count:
            return cls
        count = len(ids)


def _fresh_id(wanted: str, taken: set[str]) -> str:
    node_id, n = wanted, 1
    while node_id in taken:
        n += 1
        node_id = f"{wanted}#{n}"
    taken.add(node_id)
    return node_id


__all__ = ["STATUS_PRIORITY", "CollapsedDag", "collapse_fanouts", "summary_status"]
