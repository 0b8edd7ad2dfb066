"""A pipeline run's DAG for the UI: its steps (a ParallelFor step once per iteration) and their edges from
the spec, big fan-outs folded into summary boxes, laid out and drawn as SVG with each step's status."""

from __future__ import annotations

from dataclasses import dataclass

from shipyard.pipelines.run_status import PipelineRunState
from shipyard.pipelines.spec import PipelineSpec
from shipyard.ui.dag_collapse import CollapsedDag, collapse_fanouts
from shipyard.ui.dag_graph import DagGraph, DagNode
from shipyard.ui.dag_layout import layout_dag
from shipyard.ui.dag_svg import render_dag_svg

# Nodes drawn before fan-outs are folded: a browser keeps a few hundred boxes legible and quick.
VISIBLE_NODES = 300
_STATUS = {
    "FINISHED": "succeeded",
    "RUNNING": "running",
    "FAILED": "failed",
    "KILLED": "failed",
    "LOST": "failed",
    "PENDING": "pending",
    "NOT_RUN": "not_run",
    "SKIPPED": "skipped",
}


@dataclass(frozen=True)
class Drawing:
    """The SVG and, for each folded fan-out, how it reads ("train x 1000", with a multiplication sign)."""

    svg: str
    collapsed: list[str]


def step_status(status: str, cached: bool) -> str:
    """The class a step's box takes: a cached step shows as cached whatever its run says."""
    return "cached" if cached else _STATUS.get(status, status.lower())


def _iteration_of(key: str, spec_steps: set[str]) -> tuple[str, int | None]:
    base, _, index = key.rpartition(".")
    if index.isdigit() and base in spec_steps:
        return base, int(index)
    return key, None


def run_graph(spec: PipelineSpec | None, state: PipelineRunState) -> tuple[DagGraph, dict[str, str]]:
    """The run's nodes (its steps, iterations apart) and edges, and each iteration's group (its step)."""
    steps = set(spec.steps) if spec is not None else set()
    nodes: list[DagNode] = []
    of_step: dict[str, list[tuple[str, int | None]]] = {}
    groups: dict[str, str] = {}
    for step in state.steps:
        base, index = _iteration_of(step.key, steps)
        nodes.append(DagNode(step.key))
        of_step.setdefault(base, []).append((step.key, index))
        if index is not None:
            groups[step.key] = base
    edges: list[tuple[str, str]] = []
    if spec is not None:
        for name, step in spec.steps.items():
            for up in sorted(step.upstream()):
                upstream = spec.steps.get(up)
                same_loop = (
                    upstream is not None
                    and step.loop is not None
                    and upstream.loop is not None
                    and step.loop.loop_id == upstream.loop.loop_id
                )
                for src, i in of_step.get(up, ()):
                    for dst, j in of_step.get(name, ()):
                        if not same_loop or i == j:  # a loop's body pairs iteration i with iteration i
                            edges.append((src, dst))
    return DagGraph.of(nodes, edges), groups


def _collapsed(spec: PipelineSpec | None, state: PipelineRunState) -> CollapsedDag:
    graph, groups = run_graph(spec, state)
    statuses = {s.key: step_status(s.status, s.cached) for s in state.steps}
    return collapse_fanouts(graph, groups, statuses=statuses, threshold=VISIBLE_NODES)


def draw(spec: PipelineSpec | None, state: PipelineRunState) -> Drawing:
    """The run's DAG as SVG (nodes carry ``data-step`` for live updates)."""
    folded = _collapsed(spec, state)
    layout = layout_dag(folded.graph)
    described = [node.label for node in folded.graph.nodes if node.id in folded.members]
    return Drawing(render_dag_svg(layout, statuses=folded.statuses), described)


def summary_statuses(spec: PipelineSpec | None, state: PipelineRunState) -> dict[str, str]:
    """The status each folded fan-out's box shows now (for a page that polls for changes)."""
    folded = _collapsed(spec, state)
    return {summary: folded.statuses[summary] for summary in folded.members if summary in folded.statuses}
