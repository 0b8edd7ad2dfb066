"""Sugiyama-style layered layout of a pipeline DAG, for the web UI to draw as inline SVG.

Four phases, each linear or near-linear in nodes + edges so that a 2,000-step run lays out in tens of ms:

1. Layers: longest path from the sources, then nodes with more outputs than inputs (parameters, shared
   config) pulled forward next to their first consumer, which shortens edges.
2. Dummy nodes on edges that span several layers, so those edges bend around nodes instead of through them.
3. Crossing reduction: barycenter sweeps, alternately down and up, keeping the best order seen; bounded in
   sweeps and in time, O(edges · log) each.
4. Coordinates: within each layer, nodes are pulled toward their neighbours by weighted least squares under
   a no-overlap constraint (isotonic regression, O(n) per layer); a few passes, alternately down and up.

Connected components are laid out apart and stacked; isolated nodes come last, in a grid.
"""

from __future__ import annotations

import math
import time
from bisect import bisect_right, insort
from collections.abc import Mapping
from dataclasses import dataclass
from itertools import pairwise
from typing import Literal

from shipyard.errors import InvalidInput
from shipyard.ui.dag_graph import DagGraph, DagNode, IndexedDag, index_dag

Direction = Literal["LR", "TB"]

CHAR_WIDTH = 7.0  # px per character of a 12px sans-serif label, on average
LABEL_PADDING = 12.0  # px between a box's edge and its label
NODE_HEIGHT = 32.0
MIN_WIDTH = 56.0
MAX_WIDTH = 184.0  # longer labels are cut with an ellipsis when drawn
_DUMMY_WEIGHT = 4.0  # long edges hold their line harder than nodes hold theirs: fewer bends
_COORD_PASSES = 4


@dataclass(frozen=True)
class NodeBox:
    """Where a node goes: its top-left corner, size, and layer (0 = the first column or row)."""

    node: DagNode
    x: float
    y: float
    w: float
    h: float
    layer: int


@dataclass(frozen=True)
class EdgePath:
    """An edge's route: from the side of ``src`` facing the next layer, through one point on each side of
    every layer it passes, to the side of ``dst`` facing back."""

    src: str
    dst: str
    points: tuple[tuple[float, float], ...]


@dataclass(frozen=True)
class DagLayout:
    """A laid-out graph; coordinates run from 0 to ``width`` and ``height``, in px."""

    width: float
    height: float
    direction: Direction
    nodes: Mapping[str, NodeBox]  # in the graph's node order
    edges: tuple[EdgePath, ...]  # one per distinct edge, in the graph's edge order


def node_size(node: DagNode) -> tuple[float, float]:
    """A node's box ``(width, height)``: its size hints, else wide enough for its label (within bounds)."""
    width = node.width
    if width is None:
        width = min(MAX_WIDTH, max(MIN_WIDTH, len(node.text) * CHAR_WIDTH + 2 * LABEL_PADDING))
    return width, NODE_HEIGHT if node.height is None else node.height


def layout_dag(
    graph: DagGraph,
    *,
    direction: Direction = "LR",
    node_gap: float = 12.0,
    layer_gap: float = 48.0,
    sweeps: int = 8,
    time_budget_s: float | None = 0.1,
) -> DagLayout:
    """Lay ``graph`` out in layers, left to right (``"LR"``) or top to bottom (``"TB"``).

    Args:
        graph: the nodes and edges; duplicate edges are ignored.
        direction: which way the layers run.
        node_gap: px between neighbouring nodes of a layer (and between stacked components).
        layer_gap: px between layers, where edges bend.
        sweeps: barycenter sweeps at most (0 keeps the graph's own order within each layer).
        time_budget_s: stop sweeping once this much time has gone (None: no limit); the layout stays
            valid, only less tidy.

    Raises:
        InvalidInput: an unknown direction, or a graph :func:`~shipyard.ui.dag_graph.index_dag` rejects.
    """
    if direction not in ("LR", "TB"):
        raise InvalidInput(f"direction must be 'LR' or 'TB', not {direction!r}")
    deadline = None if time_budget_s is None else time.perf_counter() + time_budget_s
    dag = index_dag(graph)
    sizes = [node_size(node) for node in dag.nodes]
    # `along` is a node's extent in the direction the layers run, `across` the other one.
    along = [s[0] if direction == "LR" else s[1] for s in sizes]
    across = [s[1] if direction == "LR" else s[0] for s in sizes]
    ranked = _Ranked(dag, _layers(dag), across, node_gap)
    _order(ranked, sweeps, deadline)
    centre = _coordinates(ranked)
    return _assemble(dag, ranked, centre, along, across, direction, layer_gap, node_gap)


# ---------------------------------------------------------------------- 1. layers
def _layers(dag: IndexedDag) -> list[int]:
    layer = [0] * len(dag.nodes)
    for v in dag.topo:
        for u in dag.preds[v]:
            if layer[u] >= layer[v]:
                layer[v] = layer[u] + 1
    # Pull forward a node with more outputs than inputs: every layer it moves shortens more edges than it
    # lengthens. Reverse topological order, so a node's consumers have settled before it moves.
    for u in reversed(dag.topo):
        out = dag.succs[u]
        if out and len(out) > len(dag.preds[u]):
            layer[u] = min(layer[v] for v in out) - 1
    return layer


# ---------------------------------------------------------------------- 2. the ranked graph
class _Ranked:
    """Real nodes (``0..n-1``) and dummies (``n..``), each edge between adjacent layers, per component.

    Attributes:
        n: how many real nodes.
        layer, comp: each node's layer and component (-1 for the grid of isolated nodes).
        up, down: neighbours in the layer before and after.
        comps: per component, its layers, each a list of nodes in their current order.
        chains: per graph edge, the nodes it runs through (its ends and its dummies).
        across: each node's extent across the layers (0 for a dummy).
        weight: how hard a node holds to its neighbours' average when placed.
    """

    def __init__(self, dag: IndexedDag, layer: list[int], across: list[float], gap: float) -> None:
        n = len(dag.nodes)
        comp = _components(dag)
        self.n = n
        self.gap = gap
        self.up: list[list[int]] = [[] for _ in range(n)]
        self.down: list[list[int]] = [[] for _ in range(n)]
        self.layer = list(layer)
        self.across = list(across)
        self.weight = [1.0] * n
        self.chains: list[list[int]] = []
        self.comp = comp
        isolated = [v for v in range(n) if not dag.succs[v] and not dag.preds[v]]
        # Isolated nodes are one more component: a grid of roughly square columns (or rows).
        per_layer = max(1, math.ceil(math.sqrt(len(isolated))))
        for i, v in enumerate(isolated):
            self.layer[v] = i // per_layer
            comp[v] = -1
        for u, v in dag.edges:
            chain = [u]
            for lay in range(self.layer[u] + 1, self.layer[v]):
                chain.append(self._dummy(lay, comp[u]))
            chain.append(v)
            for a, b in pairwise(chain):
                self.down[a].append(b)
                self.up[b].append(a)
            self.chains.append(chain)
        # Components in the order of their first node in the graph; within a layer, the graph's own order,
        # then each edge's dummies.
        slots: dict[int, list[list[int]]] = {}
        for v in [*(v for v in range(n) if comp[v] != -1), *isolated, *range(n, len(self.layer))]:
            layers = slots.setdefault(comp[v], [])
            while len(layers) <= self.layer[v]:
                layers.append([])
            layers[self.layer[v]].append(v)
        self.comps = list(slots.values())

    def _dummy(self, layer: int, comp: int) -> int:
        self.up.append([])
        self.down.append([])
        self.layer.append(layer)
        self.across.append(0.0)
        self.weight.append(_DUMMY_WEIGHT)
        self.comp.append(comp)
        return len(self.layer) - 1

    def separation(self, a: int, b: int) -> float:
        """Least distance between the centres of ``a`` and ``b``, neighbours in a layer."""
        # Dummies sit closer together than nodes: a bundle of edges is thinner than a box.
        gap = self.gap if a < self.n or b < self.n else self.gap / 2
        return (self.across[a] + self.across[b]) / 2 + gap


def _components(dag: IndexedDag) -> list[int]:
    comp = [-1] * len(dag.nodes)
    count = 0
    for start in range(len(dag.nodes)):
        if comp[start] != -1:
            continue
        comp[start] = count
        stack = [start]
        while stack:
            u = stack.pop()
            for v in dag.succs[u] + dag.preds[u]:
                if comp[v] == -1:
                    comp[v] = count
                    stack.append(v)
        count += 1
    return comp


# ---------------------------------------------------------------------- 3. crossing reduction
def _order(ranked: _Ranked, sweeps: int, deadline: float | None) -> None:
    pos = [0] * len(ranked.layer)
    for layers in ranked.comps:
        for row in layers:
            for i, v in enumerate(row):
                pos[v] = i
    best = _crossings(ranked, pos)
    best_rows = [[list(row) for row in layers] for layers in ranked.comps]
    for sweep in range(sweeps):
        if best == 0 or (deadline is not None and time.perf_counter() > deadline):
            break
        downward = sweep % 2 == 0
        nbrs = ranked.up if downward else ranked.down
        for layers in ranked.comps:
            rows = range(1, len(layers)) if downward else range(len(layers) - 2, -1, -1)
            for i in rows:
                row = layers[i]
                scale = len(layers[i - 1 if downward else i + 1]) / len(row)
                keys = []
                for v in row:
                    nb = nbrs[v]
                    if len(nb) == 1:
                        keys.append(pos[nb[0]])
                    elif nb:
                        keys.append(sum(map(pos.__getitem__, nb)) / len(nb))
                    else:  # no neighbour on this side: hold its place, scaled to the other layer
                        keys.append(pos[v] * scale)
                row[:] = [row[j] for j in sorted(range(len(row)), key=keys.__getitem__)]
                for j, v in enumerate(row):
                    pos[v] = j
        count = _crossings(ranked, pos)
        if count < best:
            best = count
            best_rows = [[list(row) for row in layers] for layers in ranked.comps]
    ranked.comps = best_rows


def _crossings(ranked: _Ranked, pos: list[int]) -> int:
    total = 0
    down = ranked.down
    for layers in ranked.comps:
        for row in layers[:-1]:
            ends: list[float] = []
            for u in row:
                targets = down[u]
                if len(targets) == 1:
                    ends.append(pos[targets[0]])
                elif targets:
                    ends.extend(sorted(pos[v] for v in targets))
            total += _inversions(ends)
    return total


def _inversions(ends: list[float]) -> int:
    """Crossings between two adjacent layers: pairs of edges whose ends come in opposite orders.

    ``ends`` holds each edge's position in the next layer, edges in the order of their sources in this one
    and, from one source, ascending: those never count, as an inversion must be strictly greater.
    """
    total = 0
    seen: list[float] = []
    for t in ends:
        total += len(seen) - bisect_right(seen, t)
        insort(seen, t)
    return total


# ---------------------------------------------------------------------- 4. coordinates
def _coordinates(ranked: _Ranked) -> list[float]:
    """Each node's centre across the layers, per component, starting at 0."""
    centre = [0.0] * len(ranked.layer)
    weight = ranked.weight
    for layers in ranked.comps:
        # The least distance from a row's first centre to each of the others; the order is final now.
        offsets = []
        for row in layers:
            at = 0.0
            row_offsets = [at]
            for a, b in pairwise(row):
                at += ranked.separation(a, b)
                row_offsets.append(at)
            offsets.append(row_offsets)
            for v, o in zip(row, row_offsets, strict=True):
                centre[v] = o - at / 2
        for p in range(_COORD_PASSES):
            downward = p % 2 == 0
            nbrs = ranked.up if downward else ranked.down
            for i in range(1, len(layers)) if downward else range(len(layers) - 2, -1, -1):
                row = layers[i]
                desired = []
                weights = []
                for v in row:
                    nb = nbrs[v]
                    if len(nb) == 1:
                        desired.append(centre[nb[0]])
                        weights.append(weight[v])
                    elif nb:
                        desired.append(sum(map(centre.__getitem__, nb)) / len(nb))
                        weights.append(weight[v] * len(nb))
                    else:  # nothing to pull it: it stays, unless its neighbours push it
                        desired.append(centre[v])
                        weights.append(0.5)
                _place(row, offsets[i], desired, weights, centre)
        low = min(centre[v] - ranked.across[v] / 2 for row in layers for v in row)
        for row in layers:
            for v in row:
                centre[v] -= low
    return centre


def _place(
    row: list[int], offsets: list[float], desired: list[float], weights: list[float], centre: list[float]
) -> None:
    """Centres for ``row`` as close to ``desired`` as they can be (least squares) without overlapping.

    With ``offsets[i]`` the least distance from the row's first centre to its i-th, the positions minus the
    offsets must not decrease; the best such sequence is the weighted isotonic regression of ``desired``
    minus the offsets, which pool-adjacent-violators finds in one pass.
    """
    # The pooled blocks, as three stacks: total weight, weighted sum, and how many values each holds.
    weight: list[float] = []
    total: list[float] = []
    count: list[int] = []
    for d, o, w in zip(desired, offsets, weights, strict=True):
        bw, bt, bc = w, w * (d - o), 1
        while weight and total[-1] * bw >= bt * weight[-1]:  # the previous block's mean ≥ this one's
            bw += weight.pop()
            bt += total.pop()
            bc += count.pop()
        weight.append(bw)
        total.append(bt)
        count.append(bc)
    i = 0
    for bw, bt, bc in zip(weight, total, count, strict=True):
        value = bt / bw
        for _ in range(bc):
            centre[row[i]] = value + offsets[i]
            i += 1


# ---------------------------------------------------------------------- assembly
def _assemble(
    dag: IndexedDag,
    ranked: _Ranked,
    centre: list[float],
    along: list[float],
    across: list[float],
    direction: Direction,
    layer_gap: float,
    node_gap: float,
) -> DagLayout:
    depth = max(ranked.layer, default=-1) + 1
    band = [0.0] * depth  # each layer's thickness: its thickest node
    for v in range(ranked.n):
        band[ranked.layer[v]] = max(band[ranked.layer[v]], along[v])
    start = [0.0] * depth
    for i in range(1, depth):
        start[i] = start[i - 1] + band[i - 1] + layer_gap
    # Stack the components across the layers, in order.
    offset = [0.0] * len(ranked.comps)
    extent = 0.0
    for c, layers in enumerate(ranked.comps):
        offset[c] = extent + (node_gap if c else 0.0)
        extent = offset[c] + max(centre[v] + ranked.across[v] / 2 for row in layers for v in row)
    for c, layers in enumerate(ranked.comps):
        for row in layers:
            for v in row:
                centre[v] += offset[c]
    length = start[-1] + band[-1] if depth else 0.0

    lr = direction == "LR"
    nodes: dict[str, NodeBox] = {}
    for v, node in enumerate(dag.nodes):
        lay = ranked.layer[v]
        a = start[lay] + (band[lay] - along[v]) / 2
        b = centre[v] - across[v] / 2
        x, y, w, h = (a, b, along[v], across[v]) if lr else (b, a, across[v], along[v])
        nodes[node.id] = NodeBox(node, x, y, w, h, lay)
    edges = []
    for (u, v), chain in zip(dag.edges, ranked.chains, strict=True):
        lay_u, lay_v = ranked.layer[u], ranked.layer[v]
        points = [(start[lay_u] + (band[lay_u] + along[u]) / 2, centre[u])]
        for d in chain[1:-1]:
            lay = ranked.layer[d]
            points.append((start[lay], centre[d]))
            points.append((start[lay] + band[lay], centre[d]))
        points.append((start[lay_v] + (band[lay_v] - along[v]) / 2, centre[v]))
        if not lr:
            points = [(b, a) for a, b in points]
        edges.append(EdgePath(dag.nodes[u].id, dag.nodes[v].id, tuple(points)))
    width, height = (length, extent) if lr else (extent, length)
    return DagLayout(width, height, direction, nodes, tuple(edges))


def count_crossings(layout: DagLayout) -> int:
    """How many pairs of edges cross between adjacent layers (a measure of a layout's tidiness)."""
    lr = layout.direction == "LR"
    # Each edge, as its position across the layers at each layer it meets: its ends and one per dummy.
    by_gap: dict[int, list[tuple[float, float]]] = {}
    for edge in layout.edges:
        pts = edge.points
        cross = [p[1] if lr else p[0] for p in [pts[0], *pts[1:-1:2], pts[-1]]]
        first = layout.nodes[edge.src].layer
        for i, (a, b) in enumerate(pairwise(cross)):
            by_gap.setdefault(first + i, []).append((a, b))
    total = 0
    for segments in by_gap.values():
        segments.sort()  # by source, then by end: edges from one source never count as crossing
        total += _inversions([b for _, b in segments])
    return total


__all__ = [
    "CHAR_WIDTH",
    "LABEL_PADDING",
    "MAX_WIDTH",
    "MIN_WIDTH",
    "NODE_HEIGHT",
    "DagLayout",
    "Direction",
    "EdgePath",
    "NodeBox",
    "count_crossings",
    "layout_dag",
    "node_size",
]
