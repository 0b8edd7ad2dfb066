"""Data-parallel training on the CPU: Shipyard's ``training.run`` against torchrun, side by side in one run.

    python benchmarks/training.py [--quick] [--json out.json] [--keep]

Needs PyTorch (``pip install -e '.[torch]'``). Both sides train the same compute-bound model, a small CNN
(three 3x3 convolutions of 32/64/64 channels, ReLU, a max pool, global average pooling, a linear layer to 10
classes; float32, cross-entropy, SGD lr 0.01; the same initial weights from seed 0) on 3x32x32 synthetic
images made in each worker (8 batches per rank from seed 1 + rank, labelled by a fixed random linear teacher,
cycled), 64 images per worker per step, data-parallel over gloo. Shipyard runs the module-level
:func:`shipyard_job` through ``training.run(workers=N)`` (``ctx.prepare_model``: DistributedDataParallel when
N > 1) on its own store in a temporary folder, with its default settings; the peer is ``python -m
torch.distributed.run --standalone --nproc-per-node N`` on this same file with ``--peer-worker`` (plain
torch: ``init_process_group("gloo")`` and ``DistributedDataParallel`` by hand), each worker with
``torch.set_num_threads`` at the share Shipyard's launcher gives (usable CPUs // N). Throughput is rank 0's
samples/s over the steady-state steps: a few warm-up steps, a barrier, then the timed steps and a barrier,
counting steps x batch x world size.

(a) samples/s with 1 worker (both cores as intra-op threads) and 2 workers (one thread each); (b) the speedup
    of 2 workers over 1 worker, one core each (the data-parallel scaling; target >= 1.6x on 2 cores); (c) for
    context, 2 workers over 1 worker given both cores as intra-op threads; (d) the job's wall time from the
    caller, start-up included, and the launch
    overhead: wall time outside the training function, which starts once the worker's threads are set and
    its process group joined (interpreters, imports, rendezvous, process group, Shipyard's run bookkeeping,
    tear-down). Every cell runs once per round, the second round in reverse
    order (a drift in CPU speed cancels), and each figure is the mean of the rounds (quick: one round).

The same seeds on both sides make the same losses: a cell whose last loss differs from the peer's with the
same workers and threads is marked INVALID. Every job is bounded in steps, and torchrun in time. The machine
may be shared: before each round the script waits (at most 20 s; quick: 10 s) for other processes to leave
the CPUs idle, and a footnote says when they did not. Progress goes to stderr, the table to stdout; the exit
status is 0 whatever the figures (missed targets are printed).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import harness
from harness import clock, progress, wait_for_idle

TITLE = "Shipyard vs torchrun: data-parallel training on the CPU (same model, data and threads, one machine)"
MIN_SCALING = 1.6  # the target: 2 workers vs 1 on 2 cores
MIN_VS_TORCHRUN = 0.9  # a soft target of this benchmark (no issue sets one): within 10% of torchrun
SOFT_NOTE = (
    "soft target, this benchmark's own (no issue sets one): Shipyard adds nothing to a training step, so its "
    "steady state should be torchrun's",
)
SEED = 0
CHANNELS, SIDE, CLASSES = 3, 32, 10  # CIFAR-sized images
POOL = 8  # distinct batches per rank: generated once, cycled (no data cost inside the timed steps)
LR = 0.01


@dataclass(frozen=True)
class Plan:
    quick: bool
    steps: int = 60  # timed steps per worker
    warmup: int = 3  # untimed steps before them
    # Per worker. A convolutional net is compute-bound: ~220 ms of compute a step on one core against
    # 57k gradients (228 KB) to all-reduce. (An MLP 512-1024-1024-10 at 128 samples a step is not: its 1.6M
    # gradients made 2 workers 1.05x one on both sides, measured 2026-12-07.)
    batch: int = 64
    rounds: int = 2
    job_budget_s: float = 180.0  # per torchrun job
    idle_wait_s: float = 20.0

    @classmethod
    def for_args(cls, quick: bool) -> Plan:
        if quick:
            return cls(quick=True, steps=5, warmup=1, rounds=1, job_budget_s=90.0, idle_wait_s=10.0)
        return cls(quick=False)


@dataclass(frozen=True)
class Cell:
    """One configuration, run on both sides: ``workers`` processes, ``threads`` torch threads in each."""

    key: str
    workers: int
    threads: int  # what Shipyard's launcher gives (or the override); torchrun's workers are given the same
    override: bool  # Shipyard: the training function sets ``threads`` itself (the launcher would give more)


@dataclass(frozen=True)
class Row:
    """One table row. ``passed`` is None for a row shown for context (no target of its own)."""

    key: str
    title: str
    unit: str
    shipyard: float | None
    peer: float | None = None
    ratio: str = "-"
    target: str = "-"
    passed: bool | None = None
    valid: bool = True
    notes: tuple[str, ...] = ()
    details: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# ---------------------------------------------------------------------- the training (both sides)
def build_model() -> Any:
    import torch

    torch.manual_seed(SEED)  # every rank, and both sides, start from the same weights
    return torch.nn.Sequential(
        torch.nn.Conv2d(CHANNELS, 32, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.Conv2d(32, 64, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(64, 64, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(1),
        torch.nn.Flatten(),
        torch.nn.Linear(64, CLASSES),
    )


def make_batches(rank: int, batch: int) -> list[tuple[Any, Any]]:
    """This rank's ``POOL`` batches: inputs from seed 1 + rank, labels from a teacher every rank shares."""
    import torch

    teacher = torch.randn(CHANNELS * SIDE * SIDE, CLASSES, generator=torch.Generator().manual_seed(SEED))
    generator = torch.Generator().manual_seed(SEED + 1 + rank)
    batches = []
    for _ in range(POOL):
        x = torch.randn(batch, CHANNELS, SIDE, SIDE, generator=generator)
        batches.append((x, (x.flatten(1) @ teacher).argmax(dim=1)))
    return batches


def train(
    model: Any,
    rank: int,
    world: int,
    plan: tuple[int, int, int],
    barrier: Callable[[], None],
    begun: float,
) -> dict[str, Any]:
    """``warmup`` + ``steps`` SGD steps of ``model`` (on its device, DDP-wrapped when ``world`` > 1), ``plan``
    = (steps, warmup, batch); rank 0's figures. Both ranks time the same window: each starts after a barrier
    and stops after one. ``begun``: when the training code started (after the process group was joined)."""
    import torch

    steps, warmup, batch = plan
    batches = make_batches(rank, batch)
    optimizer = torch.optim.SGD(model.parameters(), lr=LR)
    loss = torch.zeros(())

    def step(i: int) -> None:
        nonlocal loss
        x, y = batches[i % POOL]
        optimizer.zero_grad(set_to_none=True)
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()

    for i in range(warmup):
        step(i)
    barrier()
    start = clock()
    for i in range(warmup, warmup + steps):
        step(i)
    barrier()
    seconds = clock() - start
    samples = steps * batch * world
    return {
        "rank": rank,
        "world": world,
        "threads": torch.get_num_threads(),
        "steps": steps,
        "samples": samples,
        "timed_s": seconds,
        "samples_per_s": samples / seconds,
        "loss": float(loss.detach()),
        "function_s": clock() - begun,
    }


def shipyard_job(steps: int, warmup: int, batch: int) -> dict[str, Any]:
    """Shipyard's side: a training function for ``training.run`` (module level: the workers import it)."""
    begun = clock()
    from shipyard import training

    ctx = training.context()
    model = ctx.prepare_model(build_model())
    return train(model, ctx.rank, ctx.world_size, (steps, warmup, batch), ctx.barrier, begun)


def peer_worker(steps: int, warmup: int, batch: int, threads: int) -> None:
    """The peer's side, one torchrun worker: plain torch, no Shipyard; rank 0 prints its figures as JSON."""
    import torch
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    torch.set_num_threads(threads)
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    if world > 1:
        dist.init_process_group("gloo")
    begun = clock()  # where Shipyard's training function starts: threads set, process group joined
    model = build_model()
    if world > 1:
        model = DistributedDataParallel(model)
    barrier = dist.barrier if world > 1 else lambda: None
    try:
        result = train(model, rank, world, (steps, warmup, batch), barrier, begun)
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
    if rank == 0:
        print(json.dumps(result), flush=True)


# ---------------------------------------------------------------------- the two sides, one cell each
def run_shipyard(cell: Cell, plan: Plan, settings: Any, name: str) -> dict[str, Any]:
    from shipyard import training

    harness.settle()
    start = clock()
    result = training.run(
        shipyard_job,
        plan.steps,
        plan.warmup,
        plan.batch,
        # The one-thread cell asks for one CPU a worker; the others take the launcher's default share.
        resources={"cpu": cell.threads} if cell.override else None,
        workers=cell.workers,
        backend="gloo",
        name=name,
        settings=settings,
    )
    wall = clock() - start
    return {**result.value, "wall_s": wall, "job_seconds": result.seconds, "run_id": result.run_id}


def run_torchrun(cell: Cell, plan: Plan, cwd: Path) -> dict[str, Any]:
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(cell.workers),
        str(Path(__file__).resolve()), "--peer-worker", "--steps", str(plan.steps), "--warmup",
        str(plan.warmup), "--batch", str(plan.batch), "--threads", str(cell.threads),
    ]  # fmt: skip
    harness.settle()
    start = clock()
    try:
        proc = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=plan.job_budget_s)
    except subprocess.TimeoutExpired:
        return {"error": f"torchrun timed out after {plan.job_budget_s:.0f} s"}
    wall = clock() - start
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["?"]
        return {"error": f"torchrun exit {proc.returncode}: {tail[0][:200]}"}
    return {**json.loads(lines[-1]), "wall_s": wall}


def run_cell(side: str, cell: Cell, plan: Plan, root: Path, settings: Any, round_: int) -> dict[str, Any]:
    progress(f"  {side} {cell.key}: {cell.workers} worker(s) x {cell.threads} thread(s), {plan.steps} steps")
    try:
        if side == "shipyard":
            out = run_shipyard(cell, plan, settings, f"bench-{cell.key}-round{round_}")
        else:
            out = run_torchrun(cell, plan, root)
    except Exception as exc:  # a failed cell is reported in the table, the others still run
        out = {"error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"}
    if "error" in out:
        progress(f"    FAILED: {out['error']}")
    else:
        progress(
            f"    {out['samples_per_s']:,.0f} samples/s (timed {out['timed_s']:.2f} s), wall "
            f"{out['wall_s']:.2f} s, threads {out['threads']}, last loss {out['loss']:.6f}"
        )
    return out


# ---------------------------------------------------------------------- a shared machine
# ---------------------------------------------------------------------- rows
def mean_of(runs: list[dict[str, Any]], key: str) -> float | None:
    values = [r[key] for r in runs if "error" not in r]
    return statistics.mean(values) if values and len(values) == len(runs) else None


def ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b is not None and b > 0 else None


def verdict(ours: float | None, theirs: float | None, higher_is_better: bool) -> str:
    """ "1.3x slower" / "2.0x faster" (how many times faster Shipyard is)."""
    if ours is None or theirs is None or ours <= 0 or theirs <= 0:
        return "-"
    return harness.verdict(harness.Result("", "", "", higher_is_better, ours, theirs))


def build_rows(
    cells: Sequence[Cell], runs: dict[tuple[str, str], list[dict[str, Any]]], busy: list[float | None]
) -> list[Row]:
    def figure(side: str, key: str, name: str = "samples_per_s") -> float | None:
        return mean_of(runs[(side, key)], name)

    def errors(key: str) -> list[str]:
        return [
            f"{side}: {r['error']}"
            for side in ("shipyard", "torchrun")
            for r in runs[(side, key)]
            if "error" in r
        ]

    def same_loss(key: str) -> tuple[bool, str]:
        """Both sides' last losses, which the same seeds make equal (a check that they did the same work)."""
        pairs = zip(runs[("shipyard", key)], runs[("torchrun", key)], strict=True)
        losses = [(s.get("loss"), t.get("loss")) for s, t in pairs]
        ok = all(s is not None and t is not None and abs(s - t) <= 1e-5 * max(1.0, abs(t)) for s, t in losses)
        shown = ", ".join(f"{s:.6f} / {t:.6f}" for s, t in losses if s is not None and t is not None)
        return ok, f"last loss, Shipyard / torchrun: {shown or '-'}"

    threads = {c.key: c.threads for c in cells}
    shared = []
    worst = max((b for b in busy if b is not None), default=None)
    if worst is not None and worst > 0.3:
        shared.append(
            f"other processes kept up to {worst:.2f} of {os.cpu_count()} CPUs busy as a round began (the "
            "machine is shared): a process of 2 OpenMP threads suffers most, which inflates this ratio"
        )
    rows: list[Row] = []
    for key, label in (("1w", "1 worker"), ("2w", "2 workers")):
        ok, losses = same_loss(key)
        ours, theirs = figure("shipyard", key), figure("torchrun", key)
        soft = key == "2w"
        passed = ok and ours is not None and theirs is not None and ours >= MIN_VS_TORCHRUN * theirs
        rows.append(
            Row(
                f"a{key[0]}",
                f"samples/s, {label} x {threads[key]} thread(s)",
                "samples/s",
                ours,
                theirs,
                ratio=verdict(ours, theirs, True),
                target=f">= {MIN_VS_TORCHRUN:g}x torchrun (soft)" if soft else "-",
                passed=passed if soft else None,
                valid=ok and ours is not None and theirs is not None,
                notes=(losses, *errors(key), *(SOFT_NOTE if soft else ())),
                details={"shipyard": runs[("shipyard", key)], "torchrun": runs[("torchrun", key)]},
            )
        )
    scaling = {s: ratio(figure(s, "2w"), figure(s, "1w")) for s in ("shipyard", "torchrun")}
    per_core = {s: ratio(figure(s, "2w"), figure(s, "1w1t")) for s in ("shipyard", "torchrun")}
    ok_1t, losses_1t = same_loss("1w1t")
    valid_b = rows[0].valid and rows[1].valid
    rows += [
        Row(
            "b",
            "speedup, 2 workers vs 1 worker, one core each (samples/s)",
            "x",
            per_core["shipyard"],
            per_core["torchrun"],
            target=f">= {MIN_SCALING:g}x",
            passed=ok_1t
            and valid_b
            and per_core["shipyard"] is not None
            and per_core["shipyard"] >= MIN_SCALING,
            valid=ok_1t and valid_b,
            notes=(
                "data-parallel scaling holds each worker's resources fixed: 1 worker on one core (resources="
                "{'cpu': 1}: one thread) against 2 workers on one core each; 1-thread samples/s, "
                f"Shipyard / torchrun: {fmt(figure('shipyard', '1w1t'), 'samples/s')} / "
                f"{fmt(figure('torchrun', '1w1t'), 'samples/s')}; {losses_1t}",
                *errors("1w1t"),
                *shared,
            ),
            details={"shipyard": runs[("shipyard", "1w1t")], "torchrun": runs[("torchrun", "1w1t")]},
        ),
        Row(
            "c",
            "  context: 2 workers vs 1 worker on both cores (intra-op threads)",
            "x",
            scaling["shipyard"],
            scaling["torchrun"],
            valid=valid_b,
            notes=(
                f"the 1-worker job runs {threads['1w']} intra-op threads (its default share of the CPUs): "
                f"2 processes x {threads['2w']} thread(s) against 1 process x {threads['1w']} threads on the "
                "same cores, which parallelizes each matrix product instead of the batch",
                *shared,
            ),
        ),
    ]
    for key, label in (("1w", "1 worker"), ("2w", "2 workers")):
        wall = {s: figure(s, key, "wall_s") for s in ("shipyard", "torchrun")}
        inside = {s: figure(s, key, "function_s") for s in ("shipyard", "torchrun")}
        over = {s: wall[s] - inside[s] if wall[s] and inside[s] else None for s in wall}
        rows += [
            Row(
                f"d{key[0]}",
                f"job wall time, {label}, start-up included",
                "s",
                wall["shipyard"],
                wall["torchrun"],
                ratio=verdict(wall["shipyard"], wall["torchrun"], False),
                notes=(
                    (
                        "from the caller: Shipyard's training.run() in this process (its run created and "
                        "ended in a SQLite store, workers spawned by torch's elastic agent); torchrun a "
                        "subprocess (a fresh interpreter that imports torch, then its workers)"
                    ),
                )
                if key == "1w"
                else (),
            ),
            Row(
                f"e{key[0]}",
                f"  launch overhead, {label}: wall time outside the training function",
                "s",
                over["shipyard"],
                over["torchrun"],
                ratio=verdict(over["shipyard"], over["torchrun"], False),
            ),
        ]
    return rows


def fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "x":
        return f"{value:.2f}x"
    if unit == "s":
        return f"{value:,.2f} s"
    return harness.format_value(value, unit)


def print_table(title: str, rows: Sequence[Row], machine: str) -> None:
    header = ("", "benchmark", "Shipyard", "torchrun", "Shipyard vs torchrun", "target", "result")
    lines: list[tuple[str, ...]] = []
    footnotes: list[str] = []
    for r in rows:
        marks = harness.note_marks(r.notes, footnotes)
        if r.passed is not None:
            outcome = "PASS" if r.passed else "MISS"
        else:  # a row shown for context: whether it was measured completely with the same results
            outcome = "valid" if r.valid else "INVALID"
        shown = (fmt(r.shipyard, r.unit), fmt(r.peer, r.unit), r.ratio, r.target, outcome)
        lines.append((f"({r.key})", r.title + marks, *shown))
    aimed = [r for r in rows if r.passed is not None]
    summary = f"{sum(bool(r.passed) for r in aimed)}/{len(aimed)} targets met (one of them soft, marked so)"
    harness.print_rows(title, machine, header, lines, footnotes, right={2, 3, 4}, summary=summary)
    for r in aimed:
        if not r.passed:
            print(f"TARGET MISSED: ({r.key}) {r.title.strip()}: {fmt(r.shipyard, r.unit)}, target {r.target}")
    sys.stdout.flush()


# ---------------------------------------------------------------------- main
def fresh_settings(root: Path) -> Any:
    """Settings on a new store under ``root`` (created now, so no timed job pays for it)."""
    from shipyard.config import Settings
    from shipyard.tracking import get_client

    home = root / "home"
    home.parent.mkdir(parents=True, exist_ok=True)
    settings = Settings.load(environ={"SHIPYARD_HOME": str(home)}, cwd=home.parent)
    get_client(settings)
    return settings


def peer_main(argv: Sequence[str]) -> int:
    """``--peer-worker``: this file as a torchrun worker."""
    parser = argparse.ArgumentParser(description="one torchrun worker of benchmarks/training.py")
    parser.add_argument("--peer-worker", action="store_true")
    for name in ("--steps", "--warmup", "--batch", "--threads"):
        parser.add_argument(name, type=int, required=True)
    args = parser.parse_args(argv)
    peer_worker(args.steps, args.warmup, args.batch, args.threads)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--peer-worker" in argv:
        return peer_main(argv)
    parser = harness.base_parser(__doc__.splitlines()[0])
    parser.add_argument("--keep", action="store_true", help="keep the temporary store, and say where")
    args = parser.parse_args(argv)
    plan = Plan.for_args(args.quick)
    mode = "quick" if plan.quick else "full"

    from shipyard import training  # noqa: F401  (imports outside every timed job)
    from shipyard.processes import usable_cpus

    cpus = usable_cpus()
    cells = (
        Cell("1w", 1, max(1, cpus), override=False),
        Cell("1w1t", 1, 1, override=True),
        Cell("2w", 2, max(1, cpus // 2), override=False),
    )
    root = Path(tempfile.mkdtemp(prefix="shipyard-bench-training-"))
    progress(f"store under {root}; {mode} mode; {cpus} usable CPUs")
    begun = clock()
    runs: dict[tuple[str, str], list[dict[str, Any]]] = {
        (side, c.key): [] for side in ("shipyard", "torchrun") for c in cells
    }
    busy: list[float | None] = []
    try:
        settings = fresh_settings(root)
        progress("warm-up: a 1-worker job of 2 steps on each side (page cache, first-use costs; untimed)")
        tiny = Plan(quick=True, steps=2, warmup=1, rounds=1, job_budget_s=plan.job_budget_s)
        run_shipyard(cells[0], tiny, settings, "bench-warmup")
        run_torchrun(cells[0], tiny, root)
        order = [(side, c) for c in cells for side in ("torchrun", "shipyard")]
        for round_ in range(plan.rounds):
            busy.append(wait_for_idle(f"round {round_ + 1}", plan.idle_wait_s))
            for side, cell in order if round_ % 2 == 0 else reversed(order):
                runs[(side, cell.key)].append(run_cell(side, cell, plan, root, settings, round_))
    finally:
        if args.keep:
            progress(f"kept the store under {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    progress(f"done in {clock() - begun:.0f} s")
    rows = build_rows(cells, runs, busy)
    info = harness.machine_info(("shipyard", "torch", "numpy"))
    title = (
        f"{TITLE}, {mode} mode: a small CNN on 3x32x32, {plan.batch}/worker/step, {plan.steps} timed steps"
    )
    print_table(title, rows, harness.machine_line(info))
    if args.json:
        payload = {
            "benchmark": TITLE,
            "created_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "machine": {**info, "usable_cpus": cpus},
            "mode": mode,
            "plan": asdict(plan),
            "argv": list(sys.argv[1:]),
            "other_busy": busy,
            "results": [r.as_dict() for r in rows],
        }
        Path(args.json).write_text(json.dumps(payload, indent=2, default=str) + "\n", encoding="utf-8")
        progress(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
