"""Pipeline DAG drawing for the web UI: layout + SVG of a 2,000- and a 5,000-step run, in Python.

    python benchmarks/ui_dag.py [--repeats 7] [--sizes 2000,5000]

Shipyard alone (no peer): the browser's part of "a 2,000-node DAG drawn < 2 s" comes with the full UI
benchmark. Each row is the median of ``--repeats`` runs after one warm-up, with a garbage collection before
each: the layout (``layout_dag``), the SVG (``render_dag_svg``), their sum (target < 200 ms at 2,000 steps)
and the SVG's size; then the same run with its fan-outs collapsed (``collapse_fanouts``, 300 visible), as the
run page draws it. The graphs come from :func:`pipeline_dag`, which the tests share.
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import statistics
import time
from collections.abc import Callable
from typing import Any

from shipyard.ui.dag_collapse import collapse_fanouts
from shipyard.ui.dag_graph import DagGraph, DagNode
from shipyard.ui.dag_layout import count_crossings, layout_dag
from shipyard.ui.dag_svg import render_dag_svg

TARGET_MS = 200.0  # layout + SVG of 2,000 steps
STATUSES = ("succeeded", "succeeded", "succeeded", "cached", "failed", "running", "skipped", "pending")


def pipeline_dag(size: int, fan_out: int = 500) -> tuple[DagGraph, dict[str, str]]:
    """A pipeline-shaped DAG of exactly ``size`` nodes, and each loop iteration's group (its step name).

    ingest → validate → split, then blocks of: a ParallelFor of ``fan_out`` iterations of train[i] →
    eval[i], joined by select, and a diamond (select → report, register → publish); a config node feeds every
    select (long edges). A shorter last fan-out and a tail chain make up the exact size.
    """
    ids: list[str] = []
    edges: list[tuple[str, str]] = []
    groups: dict[str, str] = {}

    def add(node: str, *after: str) -> str:
        ids.append(node)
        edges.extend((src, node) for src in after)
        return node

    last = add("split", add("validate", add("ingest")))
    config = add("config")
    block = 0
    while size - len(ids) >= 8:  # a block of fan-out 1 is 2 + 1 + 3 nodes, plus room for the tail
        width = min(fan_out, (size - len(ids) - 4) // 2)
        select = f"select_{block}"
        for i in range(width):
            train = add(f"train_{block}[{i}]", last)
            groups[train] = f"train_{block}"
            groups[add(f"eval_{block}[{i}]", train)] = f"eval_{block}"
        add(select, config, *(f"eval_{block}[{i}]" for i in range(width)))
        report = add(f"report_{block}", select)
        register = add(f"register_{block}", select)
        last = add(f"publish_{block}", report, register)
        block += 1
    while len(ids) < size:
        last = add(f"tail_{len(ids)}", last)
    return DagGraph.of([DagNode(i) for i in ids], edges), groups


def median_ms(fn: Callable[[], Any], repeats: int) -> float:
    fn()  # warm-up
    samples = []
    for _ in range(repeats):
        gc.collect()
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000.0)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--sizes", default="2000,5000")
    args = parser.parse_args()
    print(f"# {os.cpu_count()} CPUs, Python {platform.python_version()}; median wall time of {args.repeats}")
    header = ("graph", "nodes", "layout ms", "svg ms", "total ms", "svg KB", "crossings")
    print(f"{header[0]:<28}" + "".join(f"{h:>{len(h) + 2}}" for h in header[1:]))
    for size in (int(s) for s in args.sizes.split(",")):
        graph, groups = pipeline_dag(size)
        statuses = {node.id: STATUSES[i % len(STATUSES)] for i, node in enumerate(graph.nodes)}
        folded = collapse_fanouts(graph, groups, statuses=statuses)
        rows = [
            (f"pipeline {size:,}", graph, statuses),
            ("  fan-outs collapsed", folded.graph, folded.statuses),
        ]
        for name, g, st in rows:
            layout = layout_dag(g)
            svg = render_dag_svg(layout, statuses=st)
            t_layout = median_ms(lambda g=g: layout_dag(g), args.repeats)
            t_svg = median_ms(lambda lay=layout, st=st: render_dag_svg(lay, statuses=st), args.repeats)
            total = t_layout + t_svg
            verdict = ""
            if size == 2000 and g is graph:
                verdict = f"  {'PASS' if total < TARGET_MS else 'MISS'} (target < {TARGET_MS:.0f} ms)"
            print(
                f"{name:<28}{len(g.nodes):>7}{t_layout:>11.1f}{t_svg:>8.1f}{total:>10.1f}"
                f"{len(svg.encode()) / 1024:>8.0f}{count_crossings(layout):>11}{verdict}"
            )
        t_fold = median_ms(lambda g=graph, gr=groups, st=statuses: collapse_fanouts(g, gr, statuses=st), 3)
        print(f"  (collapse_fanouts itself: {t_fold:.1f} ms)")


if __name__ == "__main__":
    main()
