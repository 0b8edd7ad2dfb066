"""The layered DAG layout: edges run forward, nodes never overlap, crossings go down, bad graphs are named."""

from __future__ import annotations

import random
from itertools import combinations, pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks.ui_dag import pipeline_dag
from shipyard.errors import InvalidInput
from shipyard.ui.dag_graph import DagGraph, DagNode
from shipyard.ui.dag_layout import DagLayout, NodeBox, count_crossings, layout_dag


def assert_valid(layout: DagLayout, graph: DagGraph) -> None:
    """Everything the UI relies on: every node placed inside the drawing, edges from a lower layer to a
    higher one with one bend point on each side of every layer passed, layers 0..k all used, no two boxes
    overlapping, and no edge running through a box in a layer it passes."""
    lr = layout.direction == "LR"
    assert list(layout.nodes) == [n.id for n in graph.nodes]
    boxes = list(layout.nodes.values())
    for b in boxes:
        assert b.w > 0 and b.h > 0
        assert b.x >= -1e-6 and b.x + b.w <= layout.width + 1e-6
        assert b.y >= -1e-6 and b.y + b.h <= layout.height + 1e-6
    assert {b.layer for b in boxes} == set(range(max((b.layer for b in boxes), default=-1) + 1))

    def along(b: NodeBox) -> tuple[float, float]:
        return (b.x, b.x + b.w) if lr else (b.y, b.y + b.h)

    def across(b: NodeBox) -> tuple[float, float]:
        return (b.y, b.y + b.h) if lr else (b.x, b.x + b.w)

    by_layer: dict[int, list[NodeBox]] = {}
    for b in boxes:
        by_layer.setdefault(b.layer, []).append(b)
    for lay, members in by_layer.items():
        spans = sorted(across(b) for b in members)
        for (_, end), (start, _) in pairwise(spans):
            assert end <= start + 1e-6, f"boxes overlap in layer {lay}"
        if lay + 1 in by_layer:  # layers are separated along their axis, so boxes of two layers cannot meet
            assert max(along(b)[1] for b in members) < min(along(b)[0] for b in by_layer[lay + 1])

    assert len(layout.edges) == len(dict.fromkeys(graph.edges))
    for edge in layout.edges:
        src, dst = layout.nodes[edge.src], layout.nodes[edge.dst]
        assert src.layer < dst.layer
        pts = edge.points
        assert len(pts) == 2 * (dst.layer - src.layer)
        axis = [p[0] if lr else p[1] for p in pts]
        assert axis == sorted(axis)
        assert axis[0] == pytest.approx(along(src)[1]) and axis[-1] == pytest.approx(along(dst)[0])
        for k, lay in enumerate(range(src.layer + 1, dst.layer)):
            a, b = pts[1 + 2 * k], pts[2 + 2 * k]
            cross = a[1] if lr else a[0]
            assert cross == (b[1] if lr else b[0])
            for box in by_layer[lay]:
                low, high = across(box)
                assert not low < cross < high, f"{edge.src} → {edge.dst} runs through {box.node.id}"


def brute_crossings(layout: DagLayout) -> int:
    """Crossings the slow way: every pair of edge segments between the same two layers, by their ends."""
    lr = layout.direction == "LR"
    segments = []
    for edge in layout.edges:
        cross = [p[1] if lr else p[0] for p in [edge.points[0], *edge.points[1:-1:2], edge.points[-1]]]
        first = layout.nodes[edge.src].layer
        segments += [(first + i, cross[i], cross[i + 1]) for i in range(len(cross) - 1)]
    return sum(
        1
        for (l1, a1, b1), (l2, a2, b2) in combinations(segments, 2)
        if l1 == l2 and (a1 - a2) * (b1 - b2) < 0
    )


def test_a_chain_with_a_shortcut_routes_the_long_edge_around_the_middle_node() -> None:
    graph = DagGraph.of(["a", "b", "c"], [("a", "b"), ("b", "c"), ("a", "c")])
    layout = layout_dag(graph)
    assert [b.layer for b in layout.nodes.values()] == [0, 1, 2]
    assert len(layout.edges[2].points) == 4
    assert_valid(layout, graph)


def test_top_to_bottom_layers_run_down_the_page() -> None:
    graph = DagGraph.of(["a", "b", "c"], [("a", "b"), ("a", "c")])
    layout = layout_dag(graph, direction="TB")
    a, b, c = layout.nodes.values()
    assert a.y + a.h < b.y and b.y == c.y
    assert_valid(layout, graph)


def test_barycenter_sweeps_untangle_a_shuffled_ladder() -> None:
    # a_i → b_i and a_i → b_{i+1}: drawable with no crossing, but listed with the b's shuffled.
    tops = [f"a{i}" for i in range(8)]
    bottoms = [f"b{i}" for i in range(9)]
    random.Random(4).shuffle(bottoms)
    edges = [(f"a{i}", f"b{i + d}") for i in range(8) for d in (0, 1)]
    graph = DagGraph.of(tops + bottoms, edges)
    unswept = layout_dag(graph, sweeps=0)
    swept = layout_dag(graph)
    assert count_crossings(unswept) == brute_crossings(unswept) > 0
    assert count_crossings(swept) < count_crossings(unswept)
    assert count_crossings(swept) == 0
    assert_valid(swept, graph)


def test_no_time_left_keeps_the_graphs_own_order() -> None:
    graph, _ = pipeline_dag(200, fan_out=20)
    assert layout_dag(graph, time_budget_s=0.0) == layout_dag(graph, sweeps=0)


def test_components_and_lone_nodes_are_stacked_apart() -> None:
    graph = DagGraph.of(
        ["a", "b", "x", "y", "z", *(f"lone{i}" for i in range(5))], [("a", "b"), ("x", "y"), ("y", "z")]
    )
    layout = layout_dag(graph)
    assert_valid(layout, graph)
    bands = [
        (min(layout.nodes[i].y for i in ids), max(layout.nodes[i].y + layout.nodes[i].h for i in ids))
        for ids in (["a", "b"], ["x", "y", "z"], [f"lone{i}" for i in range(5)])
    ]
    assert bands[0][1] < bands[1][0] and bands[1][1] < bands[2][0]
    assert {layout.nodes[f"lone{i}"].layer for i in range(5)} == {0, 1}  # a grid, not one tall column


def test_duplicate_edges_are_drawn_once_and_the_empty_graph_is_empty() -> None:
    graph = DagGraph.of(["a", "b"], [("a", "b"), ("a", "b")])
    assert len(layout_dag(graph).edges) == 1
    empty = layout_dag(DagGraph.of([]))
    assert (empty.width, empty.height, dict(empty.nodes), empty.edges) == (0, 0, {}, ())


def test_size_hints_are_kept_and_labels_size_the_rest() -> None:
    graph = DagGraph.of([DagNode("a", width=300, height=50), DagNode("b", "a much longer label")])
    a, b = layout_dag(graph).nodes.values()
    assert (a.w, a.h) == (300, 50)
    assert b.w > layout_dag(DagGraph.of(["b"])).nodes["b"].w


def test_a_source_is_pulled_next_to_its_only_consumer() -> None:
    graph = DagGraph.of(["a", "b", "c", "param"], [("a", "b"), ("b", "c"), ("param", "c")])
    assert layout_dag(graph).nodes["param"].layer == 1


def test_a_fan_out_of_1000_siblings_centres_its_parent_and_join() -> None:
    siblings = [f"train[{i}]" for i in range(1000)]
    edges = [("prep", s) for s in siblings] + [(s, "join") for s in siblings]
    graph = DagGraph.of(["prep", *siblings, "join"], edges)
    layout = layout_dag(graph)
    assert_valid(layout, graph)
    middle = layout.height / 2
    for end in ("prep", "join"):
        box = layout.nodes[end]
        assert box.y < middle < box.y + box.h


def test_a_2000_node_pipeline_lays_out_validly() -> None:
    graph, _ = pipeline_dag(2000)
    assert len(graph.nodes) == 2000
    for direction in ("LR", "TB"):
        layout = layout_dag(graph, direction=direction, time_budget_s=None)
        assert_valid(layout, graph)


@pytest.mark.parametrize(
    ("edges", "named", "not_named"),
    [
        ([("a", "b"), ("b", "c"), ("c", "a"), ("d", "a")], ["'a'", "'b'", "'c'"], "'d'"),
        ([("d", "a"), ("a", "a")], ["'a' → 'a'"], "'d'"),
    ],
)
def test_a_cycle_is_invalid_input_naming_its_nodes(
    edges: list[tuple[str, str]], named: list[str], not_named: str
) -> None:
    with pytest.raises(InvalidInput, match="cycle") as caught:
        layout_dag(DagGraph.of(["a", "b", "c", "d"], edges))
    for name in named:
        assert name in str(caught.value)
    assert not_named not in str(caught.value)


def test_bad_graphs_are_invalid_input_naming_the_culprit() -> None:
    with pytest.raises(InvalidInput, match="'ghost', which is not a node"):
        layout_dag(DagGraph.of(["a"], [("a", "ghost")]))
    with pytest.raises(InvalidInput, match="node id 'a' appears twice"):
        layout_dag(DagGraph.of(["a", "a"]))
    with pytest.raises(InvalidInput, match="direction"):
        layout_dag(DagGraph.of(["a"]), direction="RL")  # type: ignore[arg-type]


@st.composite
def dags(draw: st.DrawFn) -> DagGraph:
    """Random DAGs up to 60 nodes: edges go from earlier to later in a hidden order, nodes listed shuffled."""
    n = draw(st.integers(0, 60))
    ids = [f"n{i}" for i in range(n)]
    pairs = st.tuples(st.integers(0, max(n - 1, 0)), st.integers(0, max(n - 1, 0)))
    edges = [(ids[min(i, j)], ids[max(i, j)]) for i, j in draw(st.lists(pairs, max_size=3 * n)) if i != j]
    labels = st.text(max_size=40)
    nodes = [DagNode(i, draw(labels)) for i in draw(st.permutations(ids))]
    return DagGraph.of(nodes, edges)


@settings(max_examples=150, deadline=None)
@given(graph=dags(), direction=st.sampled_from(["LR", "TB"]))
def test_random_dags_lay_out_validly(graph: DagGraph, direction: str) -> None:
    layout = layout_dag(graph, direction=direction, time_budget_s=None)  # type: ignore[arg-type]
    assert_valid(layout, graph)
    assert count_crossings(layout) == brute_crossings(layout)
    assert count_crossings(layout) <= count_crossings(layout_dag(graph, direction=direction, sweeps=0))  # type: ignore[arg-type]
