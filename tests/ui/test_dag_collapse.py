"""Folding a big run's fan-outs into summary nodes: what folds, what stays, and that the result is a DAG."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks.ui_dag import pipeline_dag
from shipyard.ui.dag_collapse import collapse_fanouts, summary_status
from shipyard.ui.dag_graph import DagGraph, index_dag
from shipyard.ui.dag_layout import layout_dag


def fan_out(width: int, loop: str = "", parent: str = "prep") -> tuple[list[str], list[tuple[str, str]]]:
    """``parent`` → train[i] → eval[i] → select, ``width`` iterations: no two train[i] share a successor."""
    ids, edges = [], []
    for i in range(width):
        train, evaluate = f"{loop}train[{i}]", f"{loop}eval[{i}]"
        ids += [train, evaluate]
        edges += [(parent, train), (train, evaluate), (evaluate, f"{loop}select")]
    return ids, edges


def test_a_1000_wide_loop_body_folds_into_one_node_per_step() -> None:
    body, edges = fan_out(1000)
    graph = DagGraph.of(["prep", *body, "select"], edges)
    groups = {i: i.split("[")[0] for i in body}
    statuses = {i: "succeeded" for i in body} | {"prep": "succeeded", "eval[7]": "failed"}
    del statuses["eval[8]"]  # not started yet: counts as pending
    folded = collapse_fanouts(graph, groups, statuses=statuses)
    assert [n.id for n in folded.graph.nodes] == ["prep", "train[*]", "eval[*]", "select"]
    assert folded.graph.edges == (("prep", "train[*]"), ("train[*]", "eval[*]"), ("eval[*]", "select"))
    train = folded.graph.nodes[1]
    assert (train.label, train.count) == ("train \N{MULTIPLICATION SIGN} 1000", 1000)
    assert folded.members["eval[*]"] == tuple(f"eval[{i}]" for i in range(1000))
    assert folded.status_counts["eval[*]"] == {"succeeded": 998, "failed": 1, "pending": 1}
    assert folded.statuses == {"prep": "succeeded", "train[*]": "succeeded", "eval[*]": "failed"}
    assert folded.graph.nodes[2].title.endswith(": 998 succeeded, 1 failed, 1 pending")


def test_a_graph_within_the_threshold_is_left_alone() -> None:
    body, edges = fan_out(10)
    graph = DagGraph.of(["prep", *body, "select"], edges)
    folded = collapse_fanouts(graph, {i: i[:4] for i in body}, statuses={"prep": "running"})
    assert (folded.graph, folded.members, folded.statuses) == (graph, {}, {"prep": "running"})


def test_the_largest_fan_outs_fold_first_and_small_ones_stay() -> None:
    big, big_edges = fan_out(400, "big_", "prep")
    small, small_edges = fan_out(3, "small_", "prep")
    graph = DagGraph.of(["prep", *big, "big_select", *small, "small_select"], big_edges + small_edges)
    groups = {i: i.split("[")[0] for i in big + small}
    folded = collapse_fanouts(graph, groups, threshold=300)
    assert set(folded.members) == {"big_train[*]", "big_eval[*]"}  # 809 nodes, 410 after the first
    assert len(folded.graph.nodes) == 11 and "small_train[0]" in {n.id for n in folded.graph.nodes}
    assert set(collapse_fanouts(graph, groups, threshold=500).members) == {
        "big_train[*]"
    }  # ties: graph order


def test_one_group_under_two_parents_folds_into_two_nodes_and_ungrouped_nodes_never_fold() -> None:
    a, a_edges = fan_out(5, "", "prep_a")
    b = [f"train[{i}]" for i in range(5, 10)]
    loose = [f"loose{i}" for i in range(5)]
    edges = a_edges + [("prep_b", t) for t in b] + [("prep_b", x) for x in loose]
    graph = DagGraph.of(["prep_a", "prep_b", *a, "select", *b, *loose], edges)
    groups = {i: i.split("[")[0] for i in a + b}
    folded = collapse_fanouts(graph, groups, threshold=0)
    assert folded.members["train[*]"] == tuple(f"train[{i}]" for i in range(5))
    assert folded.members["train[*]#2"] == tuple(b)
    assert all(x in {n.id for n in folded.graph.nodes} for x in loose)


def test_the_worst_status_shows_and_cached_only_when_all_are() -> None:
    assert summary_status({"succeeded": 900, "failed": 1, "running": 3}) == "failed"
    assert summary_status({"succeeded": 9, "cached": 90}) == "succeeded"
    assert summary_status({"cached": 9}) == "cached"
    assert summary_status({"weird": 1, "odd": 2}) == "odd"


def test_the_benchmark_pipeline_folds_to_a_drawable_dag() -> None:
    graph, groups = pipeline_dag(2000)
    folded = collapse_fanouts(graph, groups)
    assert len(folded.graph.nodes) < 30
    layout_dag(folded.graph)


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_folding_any_dag_keeps_a_dag_and_every_node_and_edge(data: st.DataObject) -> None:
    n = data.draw(st.integers(1, 40))
    ids = [f"n{i}" for i in range(n)]
    pairs = st.tuples(st.integers(0, n - 1), st.integers(0, n - 1))
    edges = [
        (ids[min(i, j)], ids[max(i, j)]) for i, j in data.draw(st.lists(pairs, max_size=3 * n)) if i != j
    ]
    groups = {i: g for i in ids if (g := data.draw(st.sampled_from(["", "x", "y", None]))) is not None}
    graph = DagGraph.of(ids, edges)
    folded = collapse_fanouts(graph, groups, threshold=data.draw(st.integers(0, n)))
    index_dag(folded.graph)  # raises on a cycle
    where = {m: s for s, members in folded.members.items() for m in members}
    shown = {node.id for node in folded.graph.nodes}
    assert all(i in shown for i in ids if i not in where)
    assert sum(len(m) for m in folded.members.values()) + len(shown) - len(folded.members) == n
    assert {(where.get(u, u), where.get(v, v)) for u, v in edges} == set(folded.graph.edges)
    for members in folded.members.values():
        assert len({groups[m] for m in members}) == 1
