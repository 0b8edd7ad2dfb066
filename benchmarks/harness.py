"""Shared pieces of the peer benchmarks: timing, progress, the result table and its JSON copy, a free
loopback port and a throw-away PostgreSQL cluster.

A benchmark script builds one `Result` per row (Shipyard's figure, the peer's figure, the target) and hands
the list to :func:`print_table` and, with ``--json PATH``, to :func:`write_json`. Figures are always measured
in the same process, on the same machine, at run time; nothing here knows any expected number.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import glob
import json
import os
import platform
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

clock = time.perf_counter


# ---------------------------------------------------------------------- progress and timing
def peak_rss_mib() -> float:
    """This process's peak RSS in MiB. On Linux VmHWM: ``ru_maxrss`` survives exec, so in a worker process
    it would also count the parent's RSS at fork time."""
    import resource

    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text(encoding="utf-8").splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def progress(message: str) -> None:
    """A progress line on stderr (the table goes to stdout)."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def other_cpu_busy(seconds: float = 1.0) -> float | None:
    """How many CPUs' worth of work other processes did while this one slept ``seconds`` (/proc/stat; None
    where it cannot be read): the machine may be shared, and parallel figures need idle CPUs."""

    def sample() -> tuple[int, int]:
        with open("/proc/stat", encoding="ascii") as stat:
            values = [int(v) for v in stat.readline().split()[1:9]]
        return sum(values), values[3] + values[4]  # all jiffies; idle + iowait

    try:
        total0, idle0 = sample()
        time.sleep(seconds)
        total1, idle1 = sample()
    except (OSError, ValueError, IndexError):
        return None
    total = total1 - total0
    return (total - (idle1 - idle0)) / total * (os.cpu_count() or 1) if total > 0 else None


def busy_text(busy: float | None) -> str:
    return "unknown" if busy is None else f"{busy:.2f} of {os.cpu_count()} CPUs"


def wait_for_idle(section: str, max_s: float, threshold: float = 0.3) -> float | None:
    """Wait at most ``max_s`` until other processes use under ``threshold`` CPUs (1 s samples); the last
    sample (None where /proc/stat cannot be read)."""
    start = time.perf_counter()
    busy = other_cpu_busy()
    while busy is not None and busy > threshold and time.perf_counter() - start < max_s:
        busy = other_cpu_busy()
    waited = time.perf_counter() - start
    progress(f"({section}) other processes' CPU use: {busy_text(busy)} (1 s sample, after {waited:.0f} s)")
    return busy


def settle() -> None:
    """Collect garbage before a timed section, so that no section pays for a full collection of objects
    that an earlier one (or an import) left behind. The collector stays on while timing."""
    gc.collect()


def timed(fn: Callable[[], Any]) -> float:
    """Seconds one call of ``fn`` takes."""
    start = clock()
    fn()
    return clock() - start


def median_ms(fn: Callable[[], Any], *, repeats: int = 20, warmup: int = 1) -> tuple[float, list[float]]:
    """The median, in milliseconds, of ``repeats`` calls after ``warmup`` untimed ones; also every sample."""
    for _ in range(warmup):
        fn()
    settle()
    samples = [timed(fn) * 1000.0 for _ in range(repeats)]
    return statistics.median(samples), samples


# ---------------------------------------------------------------------- results
@dataclass(frozen=True)
class Result:
    """One table row. ``higher_is_better`` is True for rates (points/s), False for latencies (ms).

    The speedup is always "how many times faster Shipyard is": ``shipyard / peer`` for a rate,
    ``peer / shipyard`` for a latency. A row passes when its speedup reaches ``min_speedup`` and/or
    Shipyard's own figure is below ``max_shipyard`` (for latencies), whichever targets are set, and the
    measurement is ``valid`` (complete, with correct results).
    """

    key: str
    title: str
    unit: str
    higher_is_better: bool
    shipyard: float
    peer: float | None = None
    min_speedup: float | None = None
    max_shipyard: float | None = None
    valid: bool = True
    notes: tuple[str, ...] = ()
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def speedup(self) -> float | None:
        if self.peer is None or self.peer <= 0 or self.shipyard <= 0:
            return None
        return self.shipyard / self.peer if self.higher_is_better else self.peer / self.shipyard

    @property
    def passed(self) -> bool:
        ok = self.valid
        if self.min_speedup is not None:
            ok = ok and self.speedup is not None and self.speedup >= self.min_speedup
        if self.max_shipyard is not None:
            ok = ok and self.shipyard < self.max_shipyard
        return ok

    @property
    def has_target(self) -> bool:
        return self.min_speedup is not None or self.max_shipyard is not None

    @property
    def target(self) -> str:
        parts = []
        if self.min_speedup is not None:
            parts.append(f">= {self.min_speedup:g}x")
        if self.max_shipyard is not None:
            parts.append(f"< {self.max_shipyard:g} {self.unit}")
        return ", ".join(parts) or "-"

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.update(speedup=self.speedup, passed=self.passed, target=self.target)
        return data


def format_value(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "ms":
        return f"{value:,.2f} ms" if value < 100 else f"{value:,.0f} ms"
    if value >= 100:
        return f"{value:,.0f} {unit}"
    return f"{value:,.1f} {unit}"


def format_speedup(speedup: float | None) -> str:
    if speedup is None:
        return "-"
    return f"{speedup:,.0f}x" if speedup >= 100 else f"{speedup:,.1f}x"


def verdict(result: Result) -> str:
    """How many times faster or slower Shipyard is ("2.1x faster", "3.4x slower")."""
    speedup = result.speedup
    if speedup is None:
        return "-"
    if speedup >= 1:
        return f"{format_speedup(speedup)} faster"
    return f"{format_speedup(1 / speedup)} slower"


def note_marks(notes: Iterable[str], footnotes: list[str]) -> str:
    """Append ``notes`` to ``footnotes``; return their marks (" [1][2]", or "") for a row title."""
    marks = ""
    for note in notes:
        footnotes.append(note)
        marks += f"[{len(footnotes)}]"
    return f" {marks}" if marks else ""


def print_rows(
    title: str,
    machine: str | None,
    header: Sequence[str],
    rows: Sequence[Sequence[str]],
    footnotes: Sequence[str],
    *,
    right: Collection[int],
    summary: str,
) -> None:
    """Print a benchmark table: title, machine line, aligned rows (``right``: right-aligned column indexes),
    numbered footnotes and a closing summary line. Every benchmark's table goes through here."""
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]

    def line(cells: Iterable[str]) -> str:
        padded = (
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        )
        return "  ".join(padded).rstrip()

    print(title)
    if machine:
        print(machine)
    print(line(header))
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print(line(row))
    for number, note in enumerate(footnotes, 1):
        print(f"  [{number}] {note}")
    print(summary)
    sys.stdout.flush()


def print_table(
    title: str,
    results: Sequence[Result],
    *,
    machine: str | None = None,
    targets: bool = True,
    peer: str = "MLflow",
) -> None:
    """Print the results as a plain-text table on stdout, notes as numbered footnotes below it.

    With ``targets=False`` (a benchmark whose issue sets no figures to reach) the last column says whether
    each row was measured completely with correct answers instead of PASS/MISS; so does a row without a
    target of its own in a table with targets (it is not counted among the targets met).
    """
    last = ("target", "result") if targets else ("measurement",)
    header = ("", "benchmark", "Shipyard", peer, f"Shipyard vs {peer}", *last)
    rows: list[tuple[str, ...]] = []
    footnotes: list[str] = []
    for result in results:
        marks = note_marks(result.notes, footnotes)
        measured = "valid" if result.valid else "INVALID"
        if not targets:
            outcome: tuple[str, ...] = (measured,)
        elif result.has_target:
            outcome = (result.target, "PASS" if result.passed else "MISS")
        else:  # a row shown for context, with no target of its own
            outcome = ("-", measured)
        rows.append(
            (
                f"({result.key})",
                result.title + marks,
                format_value(result.shipyard, result.unit),
                format_value(result.peer, result.unit),
                verdict(result),
                *outcome,
            )
        )
    if targets:
        aimed = [r for r in results if r.has_target]
        summary = f"{sum(r.passed for r in aimed)}/{len(aimed)} targets met"
    else:
        valid = sum(r.valid for r in results)
        faster = sum(1 for r in results if r.speedup is not None and r.speedup >= 1)
        summary = (
            f"no targets are set for these rows; Shipyard is faster on {faster} of {len(results)}, and "
            f"{valid}/{len(results)} were measured completely with correct answers"
        )
    print_rows(title, machine, header, rows, footnotes, right={2, 3, 4}, summary=summary)


def write_json(path: str | os.PathLike[str], title: str, results: Sequence[Result], **extra: Any) -> None:
    """Write the machine description and every row (figures, speedup, target, verdict) as JSON."""
    payload = {
        "benchmark": title,
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": machine_info(),
        **extra,
        "results": [r.as_dict() for r in results],
    }
    Path(path).write_text(json.dumps(payload, indent=2, sort_keys=False) + "\n", encoding="utf-8")


# ---------------------------------------------------------------------- machine
_PACKAGES = ("shipyard", "mlflow", "sqlalchemy", "pandas", "numpy")


def machine_info(packages: Sequence[str] = _PACKAGES) -> dict[str, Any]:
    versions = {}
    for name in packages:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "packages": versions,
    }


def machine_line(info: dict[str, Any] | None = None) -> str:
    """One line: CPU count, Python, SQLite and package versions."""
    info = info or machine_info()
    packages = " ".join(f"{k} {v}" for k, v in info["packages"].items() if v)
    return (
        f"machine: {info['cpus']} CPUs, {info['platform']}, Python {info['python']}, "
        f"SQLite {info['sqlite']}; {packages}"
    )


# ---------------------------------------------------------------------- servers
def free_port() -> int:
    """A loopback port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PostgresCluster:
    """A throw-away PostgreSQL cluster on 127.0.0.1 and a free port (the minimum of the test suite's
    fixture, tests/conftest.py): Debian's initdb/pg_ctl on ``root``, run as the ``postgres`` user when we are
    root (initdb refuses root). ``fsync=off``: nothing here needs to survive a crash of the machine."""

    def __init__(self, root: Path) -> None:
        self.root = root  # keep it short: the socket path has a length limit
        self.port = free_port()
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
        if not found and not shutil.which("initdb"):
            raise RuntimeError("PostgreSQL is not installed (apt-get install postgresql)")
        self.bin = Path(found[-1]).parent if found else Path(shutil.which("initdb") or "").parent
        self.as_postgres = os.geteuid() == 0

    def _run(self, *args: str | Path) -> None:
        command = [str(a) for a in args]
        if self.as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        if self.as_postgres:
            shutil.chown(self.root, "postgres", "postgres")
        self._run(self.bin / "initdb", "-D", self.root / "data", "-A", "trust", "-U", "postgres")
        options = f"-k {self.root} -c listen_addresses=127.0.0.1 -p {self.port} -c fsync=off"
        self._run(
            self.bin / "pg_ctl",
            "-D",
            self.root / "data",
            "-o",
            options,
            "-l",
            self.root / "log",
            "-w",
            "start",
        )

    def stop(self) -> None:
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            self._run(self.bin / "pg_ctl", "-D", self.root / "data", "-m", "fast", "-w", "stop")

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        import sqlalchemy as sa

        engine = sa.create_engine(self.url(), isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.exec_driver_sql(f"CREATE DATABASE {name}")
        engine.dispose()
        return self.url(name)


# ---------------------------------------------------------------------- command line
def base_parser(description: str) -> argparse.ArgumentParser:
    """A parser with the options every benchmark takes: ``--quick`` and ``--json PATH``."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="smaller sizes and time budgets (a smoke run)")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON to PATH")
    return parser
