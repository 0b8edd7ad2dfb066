"""The DAG's SVG: well-formed whatever the labels say, styled by classes only, small and pollable."""

from __future__ import annotations

import itertools
import re
import xml.etree.ElementTree as ET

from hypothesis import given, settings
from hypothesis import strategies as st

from shipyard.ui.dag_graph import DagGraph, DagNode
from shipyard.ui.dag_layout import layout_dag
from shipyard.ui.dag_svg import render_dag_svg

SVG = "{http://www.w3.org/2000/svg}"
EVIL = ["<script>alert(1)</script>", '"onload="alert(1)', "a & b < c", "it's \x00\x1b\ud800 odd"]


def steps(root: ET.Element) -> dict[str, ET.Element]:
    return {g.attrib["data-step"]: g for g in root.iter(f"{SVG}g") if "data-step" in g.attrib}


def test_one_group_per_step_with_its_status_class_and_one_path_per_edge() -> None:
    graph = DagGraph.of(["a", "b", "c", "d"], [("a", "b"), ("a", "c"), ("b", "d"), ("c", "d"), ("a", "d")])
    statuses = {"a": "succeeded", "b": "cached", "c": "Failed", "d": "not run!"}
    root = ET.fromstring(render_dag_svg(layout_dag(graph), statuses=statuses))
    assert root.tag == f"{SVG}svg" and len(root.attrib["viewBox"].split()) == 4
    nodes = steps(root)
    assert {i: g.attrib["class"] for i, g in nodes.items()} == {
        "a": "step-succeeded",
        "b": "step-cached",
        "c": "step-failed",
        "d": "step-not-run-",
    }
    for g in nodes.values():
        assert g.find(f"{SVG}rect") is not None and g.find(f"{SVG}text") is not None
    edges = root.find(f"{SVG}g[@class='dag-edges']")
    assert edges is not None and len(edges.findall(f"{SVG}path")) == 5


def test_a_step_without_a_status_has_no_status_class() -> None:
    root = ET.fromstring(render_dag_svg(layout_dag(DagGraph.of(["a"]))))
    assert "class" not in steps(root)["a"].attrib


def test_user_text_is_escaped_and_the_page_policy_holds() -> None:
    nodes = [DagNode(f"id{i}{text}", text, title=text) for i, text in enumerate(EVIL)]
    graph = DagGraph.of(nodes, [(nodes[0].id, nodes[1].id), (nodes[2].id, nodes[3].id)])
    svg = render_dag_svg(layout_dag(graph), statuses={n.id: n.label for n in nodes})
    root = ET.fromstring(svg)  # well-formed
    assert "<script" not in svg.lower() and "<style" not in svg.lower()
    for element in root.iter():
        assert element.tag not in (f"{SVG}script", f"{SVG}style", f"{SVG}foreignObject")
        for name in element.attrib:
            assert name != "style" and not name.lower().startswith("on"), name
    ids = steps(root)
    assert set(ids) == {n.id for n in nodes[:3]} | {"id3it's \ufffd\ufffd\ufffd odd"}
    assert ids[nodes[0].id].findtext(f"{SVG}title") == EVIL[0]
    assert all(re.fullmatch(r"[\w -]*", g.attrib.get("class", "")) for g in ids.values())


@settings(max_examples=100, deadline=None)
@given(st.lists(st.text(max_size=60), min_size=1, max_size=8, unique=True))
def test_any_text_makes_a_well_formed_svg(texts: list[str]) -> None:
    nodes = [DagNode(text, text) for text in texts]
    graph = DagGraph.of(nodes, list(itertools.pairwise(texts)))
    ET.fromstring(render_dag_svg(layout_dag(graph), statuses=dict(zip(texts, texts, strict=True))))


def test_a_long_label_is_cut_with_its_full_text_in_the_title() -> None:
    label = "evaluate_the_model_on_the_holdout_set_and_write_the_report"
    root = ET.fromstring(render_dag_svg(layout_dag(DagGraph.of([DagNode("e", label)]))))
    g = steps(root)["e"]
    shown = g.findtext(f"{SVG}text") or ""
    assert shown.endswith("…") and label.startswith(shown[:-1]) and len(shown) < len(label)
    assert g.findtext(f"{SVG}title") == label
    short = ET.fromstring(render_dag_svg(layout_dag(DagGraph.of(["train"]))))
    assert steps(short)["train"].find(f"{SVG}title") is None  # nothing hidden, nothing to hover for


def test_a_collapsed_fan_out_is_marked_as_a_group_with_its_count() -> None:
    node = DagNode("train[*]", "train x 1000", "train x 1000: 998 succeeded, 2 failed", count=1000)
    g = steps(ET.fromstring(render_dag_svg(layout_dag(DagGraph.of([node])), statuses={"train[*]": "failed"})))
    assert g["train[*]"].attrib["class"] == "step-failed step-group"
    assert g["train[*]"].attrib["data-count"] == "1000"
    assert g["train[*]"].findtext(f"{SVG}title") == node.title


def test_coordinates_are_whole_numbers_in_both_directions() -> None:
    graph = DagGraph.of([DagNode("a", width=33.3), "b", "c"], [("a", "b"), ("b", "c"), ("a", "c")])
    for direction, straight in (("LR", "H"), ("TB", "V")):
        svg = render_dag_svg(layout_dag(graph, direction=direction))  # type: ignore[arg-type]
        paths = re.findall(r'<path d="([^"]*)"', svg)[1:]  # [0] is the arrowhead
        assert len(paths) == 3 and any(straight in d for d in paths)
        assert all(re.fullmatch(r"M-?\d+ -?\d+([CHVL][-\d ]+)+", d) for d in paths), paths
        assert not re.search(r'(x|y|width|height)="[^"]*\.', svg)
