"""Model serving: Shipyard's server side by side with `mlflow models serve` on the same model, in one run.

    python benchmarks/serving.py [--quick] [--json out.json] [--no-pin] [--keep]
                                 [--gpu | --gpu-only] [--gpu-device cuda|cpu]

Needs the peer and the ONNX export: ``pip install -e '.[bench,onnx]'``. One RandomForestClassifier
(n_estimators=50) fitted on scikit-learn's breast_cancer is logged to Shipyard (registered as
``models:/bench@champion``) and to MLflow 3 (a SQLite store); ``shipyard serve`` and
``mlflow models serve --env-manager local`` each run as a subprocess on a free loopback port, one at a time,
pinned to the CPUs the load generator leaves free. The load generator (``serving_load.py``) runs in its own
process on its own CPU: a closed loop of single-row requests at concurrency 1, 16 and 64, a fixed window
after a warm-up, every latency recorded, every non-2xx answer or transport error counted.

MLflow gets its own format (``dataframe_split`` to ``/invocations``); Shipyard the same row as an Open
Inference Protocol v2 tensor (``/v2/models/bench/infer``, one [1, 30] FP64 tensor), over gRPC
(``ModelInfer`` with the tensor in ``raw_input_contents``, as tritonclient sends it, ``--grpc-port``), and in
extra rows as records, with batching off, and on scikit-learn itself (``--prefer native``: by default
``shipyard serve`` runs the model's verified ONNX copy). Both servers must first give the same predictions
as the fitted model for the same rows. Progress goes to stderr, the tables to stdout.

``--gpu`` adds (``--gpu-only`` runs alone) a section on a torch MLP (256 -> 1024 -> 1024 -> 10, FP32,
logged as TorchScript, ``models:/mlp@champion``) served from a deploy.yaml with ``options: {device: cuda}``,
once with batching (``max_batch_size: 256``) and once without: single-row OIP v2 requests at concurrency 64
and 256, target batched >= 10x unbatched req/s at 256. Without CUDA it prints one line saying so and measures
nothing; ``--gpu-device cpu`` runs the same section on the CPU to check it (no target there).
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import warnings
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import harness
from harness import Result, progress

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
TITLE = "Shipyard model server vs `mlflow models serve`: RandomForest(50), breast_cancer, single-row requests"
PACKAGES = ("shipyard", "mlflow", "scikit-learn", "onnxruntime", "torch", "starlette", "uvicorn", "numpy")
MODEL, ALIAS = "bench", "champion"
LEVELS = (1, 16, 64)
TOP = LEVELS[-1]
INFER, RECORDS, READY = f"/v2/models/{MODEL}/infer", f"/models/{MODEL}/predict", f"/v2/models/{MODEL}/ready"


@dataclass(frozen=True)
class Plan:
    quick: bool
    warmup_s: float = 2.0
    duration_s: float = 10.0
    timeout_s: float = 30.0  # one request
    start_budget_s: float = 180.0  # a server's start, until ready

    @classmethod
    def for_args(cls, quick: bool) -> Plan:
        return cls(quick=True, warmup_s=1.0, duration_s=3.0) if quick else cls(quick=False)


# ---------------------------------------------------------------------- the model, in both registries
@dataclass(frozen=True)
class Fixture:
    model: Any
    frame: Any  # pandas DataFrame of the 30 features
    shipyard_home: Path
    mlflow_uri: str
    mlflow_env: dict[str, str]
    onnx: str | None  # why the Shipyard package has no ONNX copy, or None when it has one


def prepare(root: Path) -> Fixture:
    from sklearn.datasets import load_breast_cancer
    from sklearn.ensemble import RandomForestClassifier

    data = load_breast_cancer(as_frame=True)
    frame = data.frame.drop(columns=["target"])
    model = RandomForestClassifier(n_estimators=50, random_state=0).fit(frame, data.target)
    home, onnx = register_shipyard(root / "shipyard-home", model, frame)
    uri, env = log_mlflow(root / "mlflow", model, frame)
    return Fixture(model, frame, home, uri, env, onnx)


def register_shipyard(home: Path, model: Any, frame: Any) -> tuple[Path, str | None]:
    import shipyard

    settings = shipyard.Settings.load(environ={"SHIPYARD_HOME": str(home)}, cwd=home.parent)
    with shipyard.start_run("serving", settings=settings) as run:
        info = shipyard.models.log(model, name="model", run=run, input_example=frame.head(5))
    version = shipyard.models.register(info.uri, MODEL, settings=settings)
    shipyard.models.set_alias(MODEL, ALIAS, version.version, settings=settings)
    loaded = shipyard.models.load(f"models:/{MODEL}@{ALIAS}", settings=settings, prefer="onnx")
    onnx = (loaded.manifest.loader.get("onnx") or {}).get("reason", "no ONNX copy")
    return home, None if getattr(loaded.raw, "runtime", None) == "onnx" else str(onnx)


def log_mlflow(home: Path, model: Any, frame: Any) -> tuple[str, dict[str, str]]:
    env = {"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"}
    env["MLFLOW_TRACKING_URI"] = f"sqlite:///{home / 'mlflow.db'}"
    os.environ.update(env)  # NOTE: MLflow reads these when imported
    home.mkdir(parents=True)
    try:
        import mlflow
        import mlflow.sklearn
        import skops.io
    except ModuleNotFoundError as exc:
        sys.exit(f"MLflow is not installed ({exc}); install the peers with: pip install -e '.[bench]'")
    for name in ("mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)
    experiment = mlflow.create_experiment("serving", artifact_location=(home / "artifacts").as_uri())
    types = skops.io.get_untrusted_types(data=skops.io.dumps(model))  # MLflow 3's default format: skops
    with warnings.catch_warnings(), mlflow.start_run(experiment_id=experiment):
        warnings.simplefilter("ignore")
        info = mlflow.sklearn.log_model(
            model, name="model", input_example=frame.head(5), skops_trusted_types=types
        )
    return info.model_uri, env


# ---------------------------------------------------------------------- servers
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http(method: str, url: str, body: Any = None, timeout: float = 10.0) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data, {"Content-Type": "application/json"}, method=method)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, text = response.status, response.read()
    except urllib.error.HTTPError as exc:
        status, text = exc.code, exc.read()
    try:
        return status, json.loads(text)
    except ValueError:  # MLflow's /ping answers a newline
        return status, text[:300].decode(errors="replace")


class Server:
    """A server subprocess in its own process group; :meth:`stop` ends the whole group, bounded."""

    def __init__(self, label: str, cmd: list[str], env: dict[str, str], cwd: Path, cpus: set[int]) -> None:
        self.label, self.log = label, cwd / f"{label.replace(' ', '-')}.log"
        self.port = int(cmd[cmd.index("--port") + 1])
        self.url = f"http://127.0.0.1:{self.port}"
        pin = (lambda: os.sched_setaffinity(0, cpus)) if cpus else None
        with self.log.open("wb") as out:  # a file, not a pipe: a full pipe would stall the server
            self.proc = subprocess.Popen(
                cmd,
                env=env,
                cwd=cwd,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=pin,
            )

    def wait_ready(self, path: str, budget_s: float) -> float:
        started = time.monotonic()
        while time.monotonic() - started < budget_s:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.label} exited with {self.proc.returncode}: {self.tail()}")
            with contextlib.suppress(OSError):
                status, document = http("GET", self.url + path, timeout=2.0)
                if status == 200:
                    return time.monotonic() - started
                failed = isinstance(document, dict) and "failed to load" in str(document.get("error"))
                if failed:  # Shipyard's model ready endpoint: no point in waiting
                    raise RuntimeError(f"{self.label}: {document['error']}")
            time.sleep(0.1)
        raise RuntimeError(f"{self.label} was not ready in {budget_s:.0f} s: {self.tail()}")

    def cpu_seconds(self) -> float:
        """User + system CPU time of every live process of the server's group (its workers included)."""
        ticks = 0
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                with contextlib.suppress(OSError, IndexError, ValueError):
                    fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                    if int(fields[2]) == self.proc.pid:  # pgrp: the group this server leads
                        ticks += int(fields[11]) + int(fields[12])
        return ticks / os.sysconf("SC_CLK_TCK")

    def tail(self, lines: int = 5) -> str:
        text = self.log.read_text(errors="replace").strip().splitlines() if self.log.exists() else []
        return " | ".join(text[-lines:]) or "(no output)"

    def stop(self, budget_s: float = 30.0) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(budget_s)
            except subprocess.TimeoutExpired:
                progress(f"{self.label} did not stop in {budget_s:.0f} s after SIGTERM; killing it")
        with contextlib.suppress(ProcessLookupError):  # a worker the leader left behind
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)


@contextlib.contextmanager
def serving(
    label: str, cmd: list[str], env: dict[str, str], cwd: Path, ready: str, ctx: Context
) -> Iterator[Server]:
    """Start a server, wait until ``ready`` answers 200, and stop it (and its workers) on the way out."""
    cwd.mkdir(parents=True, exist_ok=True)
    server = Server(label, cmd, env, cwd, ctx.server_cpus)
    try:
        progress(f"{label}: starting on {server.url}")
        seconds = server.wait_ready(ready, ctx.plan.start_budget_s)
        progress(f"{label}: ready in {seconds:.1f} s")
        yield server
    finally:
        server.stop()
        progress(f"{label}: stopped (exit {server.proc.returncode})")


# ---------------------------------------------------------------------- requests and load
@dataclass(frozen=True)
class Context:
    plan: Plan
    fixture: Fixture  # NOTE: None when only the GPU section runs (it does not use it)
    root: Path
    server_cpus: set[int]  # empty: not pinned
    client_cpu: int | None


def bodies(frame: Any, row: int) -> dict[str, Any]:
    """The same row in each server's format."""
    values = [float(v) for v in frame.iloc[row]]
    columns = [str(c) for c in frame.columns]
    return {
        "mlflow": {"dataframe_split": {"columns": columns, "data": [values]}},
        "v2": {
            "inputs": [{"name": "input-0", "shape": [1, len(values)], "datatype": "FP64", "data": values}]
        },
        "records": [dict(zip(columns, values, strict=True))],
    }


def answer(kind: str, document: Any) -> Any:
    """The predicted label in a server's answer."""
    if kind == "v2":
        return next(o for o in document["outputs"] if o["name"] == "predict")["data"][0]
    return document["predictions"][0]


def check(server: Server, kind: str, path: str, ctx: Context, rows: int = 10) -> str | None:
    """Whether ``server`` predicts what the fitted model does on the first ``rows`` rows (None) or not."""
    expected = ctx.fixture.model.predict(ctx.fixture.frame.iloc[:rows])
    for row in range(rows):
        status, document = http("POST", server.url + path, bodies(ctx.fixture.frame, row)[kind])
        if status != 200:
            return f"{server.label} {path}: HTTP {status} on row {row}: {document}"
        got = answer(kind, document)
        if got != expected[row]:
            return f"{server.label} {path}: row {row} predicted {got!r}, the model predicts {expected[row]!r}"
    return None


GRPC_INFER = "/inference.GRPCInferenceService/ModelInfer"


def grpc_body(frame: Any, row: int) -> bytes:
    """The row as tritonclient sends it: one [1, 30] FP64 tensor in raw_input_contents."""
    import numpy as np

    from shipyard.serving import grpc_messages as messages

    values = np.asarray(frame.iloc[row], dtype="<f8")
    request = messages.ModelInferRequest(model_name=MODEL)
    request.inputs.add(name="input-0", datatype="FP64", shape=[1, values.size])
    request.raw_input_contents.append(values.tobytes())
    return request.SerializeToString()


def check_grpc(server: Server, port: int, ctx: Context, rows: int = 10) -> str | None:
    """Whether ``server``'s gRPC service predicts what the fitted model does on the first ``rows`` rows."""
    import grpc
    import numpy as np

    from shipyard.serving import grpc_messages as messages

    expected = ctx.fixture.model.predict(ctx.fixture.frame.iloc[:rows])
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        call = channel.unary_unary(GRPC_INFER, response_deserializer=messages.ModelInferResponse.FromString)
        for row in range(rows):
            try:
                answer = call(grpc_body(ctx.fixture.frame, row), timeout=30)
            except grpc.RpcError as exc:
                return f"{server.label} gRPC ModelInfer: {exc.code().name} on row {row}: {exc.details()}"
            index = [o.name for o in answer.outputs].index("predict")
            got = np.frombuffer(answer.raw_output_contents[index], dtype="<i8")[0]
            if got != expected[row]:
                return (
                    f"{server.label} gRPC: row {row} predicted {got!r}, the model predicts {expected[row]!r}"
                )
    return None


def load(
    server: Server,
    path: str,
    body: Any,
    concurrency: int,
    ctx: Context,
    label: str,
    grpc_port: int | None = None,
) -> dict[str, Any]:
    """One timed cell: the load generator in its own process against ``server`` (over gRPC when
    ``grpc_port`` is given: ``path`` is then the method and ``body`` the serialized request)."""
    plan = ctx.plan
    spec = {
        "port": server.port,
        "path": path,
        "body": json.dumps(body) if body is not None and grpc_port is None else None,
        "concurrency": concurrency,
        "warmup_s": plan.warmup_s,
        "duration_s": plan.duration_s,
        "timeout_s": plan.timeout_s,
        "cpu": ctx.client_cpu,
    }
    if grpc_port is not None:
        spec |= {"port": grpc_port, "grpc_method": path}
        spec["grpc_body_b64"] = base64.b64encode(body).decode()
    harness.settle()
    budget = plan.warmup_s + plan.duration_s + plan.timeout_s + 30
    cpu_before, started = server.cpu_seconds(), time.monotonic()
    try:
        proc = subprocess.run(
            [sys.executable, str(HERE / "serving_load.py")],
            input=json.dumps(spec),
            capture_output=True,
            text=True,
            timeout=budget,
        )
    except subprocess.TimeoutExpired:
        sys.exit(f"the load generator ran past {budget:.0f} s against {server.label}; {server.tail()}")
    if proc.returncode != 0:
        sys.exit(f"the load generator failed: {proc.stderr.strip()[-500:]}")
    cell = json.loads(proc.stdout)
    # NOTE: the server's CPU share over the whole run of the client (warm-up included), a rough figure
    cell["server_cpu"] = (server.cpu_seconds() - cpu_before) / (time.monotonic() - started)
    cell.update(label=label, server=server.label, path=path)
    cell["alive"] = server.proc.poll() is None
    errors = sum(cell["errors"].values())
    progress(
        f"    {label}: {cell['rps']:,.1f} req/s, p50 {fmt_ms(cell['p50_ms'])}, p99 {fmt_ms(cell['p99_ms'])}, "
        f"{errors} errors, server CPU {cell['server_cpu']:.0%}, client CPU {cell['client_cpu']:.0%}"
    )
    if not cell["alive"]:
        progress(f"    {server.label} DIED during the load: {server.tail()}")
    return cell


def fmt_ms(value: float | None) -> str:
    return harness.format_value(value, "ms")


# ---------------------------------------------------------------------- the cells
def shipyard_cmd(target: str, port: int, *flags: str) -> list[str]:
    return [sys.executable, "-m", "shipyard.cli", "serve", target, "--port", str(port), *flags]


def mlflow_cmd(uri: str, port: int) -> list[str]:
    # NOTE: `mlflow models serve` shells out to `uvicorn`, found on PATH (the venv's bin, see measure)
    serve = [str(BIN / "mlflow"), "models", "serve", "-m", uri, "--env-manager", "local"]
    return [*serve, "--host", "127.0.0.1", "--port", str(port)]


def measure(ctx: Context) -> tuple[dict[str, dict[str, Any]], list[str], str]:
    """Every timed cell by key; the servers' disagreements with the model; the runtime Shipyard served the
    model on by default."""
    fixture, root = ctx.fixture, ctx.root
    body = bodies(fixture.frame, 0)
    inherited = {k: v for k, v in os.environ.items() if not k.startswith(("SHIPYARD_", "MLFLOW_"))}
    ml_env = inherited | fixture.mlflow_env | {"PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    sy_env = inherited | {"SHIPYARD_HOME": str(fixture.shipyard_home)}
    uri = f"models:/{MODEL}@{ALIAS}"
    cells: dict[str, dict[str, Any]] = {}
    problems: list[str] = []

    with serving(
        "MLflow", mlflow_cmd(fixture.mlflow_uri, free_port()), ml_env, root / "ml", "/ping", ctx
    ) as ml:
        problems += filter(None, [check(ml, "mlflow", "/invocations", ctx)])
        for c in LEVELS:
            cells[f"mlflow-{c}"] = load(ml, "/invocations", body["mlflow"], c, ctx, f"MLflow, c={c}")

    grpc_port = free_port()
    cmd = shipyard_cmd(uri, free_port(), "--grpc-port", str(grpc_port))
    with serving("Shipyard", cmd, sy_env, root / "sy", READY, ctx) as sy:
        problems += filter(None, [check(sy, "v2", INFER, ctx), check(sy, "records", RECORDS, ctx)])
        default_runtime = runtime(sy)
        progress(f"Shipyard serves the model on {default_runtime} by default")
        problems += filter(None, [check_grpc(sy, grpc_port, ctx)])
        cells["ceiling"] = load(sy, "/v2/health/live", None, TOP, ctx, "ceiling: GET /v2/health/live")
        for c in LEVELS:
            cells[f"shipyard-{c}"] = load(sy, INFER, body["v2"], c, ctx, f"Shipyard v2, c={c}")
        for c in LEVELS:
            grpc_request = grpc_body(fixture.frame, 0)
            label = f"Shipyard v2 over gRPC, c={c}"
            cells[f"grpc-{c}"] = load(sy, GRPC_INFER, grpc_request, c, ctx, label, grpc_port=grpc_port)
        cells["records"] = load(sy, RECORDS, body["records"], TOP, ctx, f"Shipyard records, c={TOP}")

    cmd = shipyard_cmd(uri, free_port(), "--no-batching")
    with serving("Shipyard no batching", cmd, sy_env, root / "sy", READY, ctx) as sy:
        problems += filter(None, [check(sy, "v2", INFER, ctx)])
        cells["unbatched"] = load(sy, INFER, body["v2"], TOP, ctx, f"Shipyard v2 no batching, c={TOP}")

    cmd = shipyard_cmd(uri, free_port(), "--prefer", "native")
    with serving("Shipyard scikit-learn", cmd, sy_env, root / "sy", READY, ctx) as sy:
        problems += filter(None, [check(sy, "v2", INFER, ctx)])
        if runtime(sy) != "scikit-learn":
            problems.append(f"--prefer native served {runtime(sy)}, not scikit-learn")
        label = f"Shipyard v2 scikit-learn (--prefer native), c={TOP}"
        cells["native"] = load(sy, INFER, body["v2"], TOP, ctx, label)
    return cells, problems, default_runtime


def runtime(server: Server) -> str:
    """What runs the served model: scikit-learn answers predict_proba in FP64, its ONNX copy in FP32."""
    _, metadata = http("GET", f"{server.url}/v2/models/{MODEL}")
    proba = {o["name"]: o["datatype"] for o in metadata.get("outputs", [])}.get("predict_proba")
    return {"FP32": "ONNX Runtime", "FP64": "scikit-learn"}.get(proba, f"an unknown runtime ({proba})")


# ---------------------------------------------------------------------- table
def clean(cell: dict[str, Any]) -> bool:
    """Measured completely: answers in the window, no error, nothing left hanging, the server alive."""
    problems = cell["errors"] or cell["unfinished"] or cell["hit_max_requests"] or not cell["alive"]
    return cell["requests"] > 0 and not problems


def cell_notes(*cells: dict[str, Any]) -> list[str]:
    notes = []
    for cell in cells:
        if cell["errors"] or cell["unfinished"] or not cell["alive"]:
            kinds = ", ".join(f"{k}: {n:,}" for k, n in sorted(cell["errors"].items())) or "none"
            first = f"; first: {cell['error_samples'][0]}" if cell["error_samples"] else ""
            died = "; the server DIED" if not cell["alive"] else ""
            notes.append(
                f"{cell['label']}: errors {kinds}, {cell['unfinished']} requests unanswered after the "
                f"window{died}{first}"
            )
        if cell["client_cpu"] >= 0.9:
            notes.append(
                f"{cell['label']}: the load generator used {cell['client_cpu']:.0%} of its CPU: this figure "
                "may be the client's limit, not the server's"
            )
    return notes


def results(cells: dict[str, dict[str, Any]], problems: Sequence[str], ctx: Context) -> list[Result]:
    plan, agree = ctx.plan, not problems
    ceiling = cells["ceiling"]
    pinning = (
        f"servers pinned to CPU {','.join(map(str, sorted(ctx.server_cpus)))}, "
        f"the load generator to CPU {ctx.client_cpu}"
        if ctx.server_cpus
        else "no CPU pinning"
    )
    setup = [
        "MLflow: `mlflow models serve --env-manager local` (its defaults: 1 uvicorn worker), "
        "`dataframe_split` JSON to /invocations. Shipyard: `shipyard serve models:/bench@champion` (its "
        "defaults: adaptive batching, the package's verified ONNX copy), OIP v2 JSON to "
        f"{INFER}, one [1, 30] FP64 tensor. Both with their "
        "default access log on; the same row for every request; both servers first predict the model's "
        "own labels for 10 rows",
        f"closed loop: c keep-alive connections, each sending its next request when the last answer has "
        f"been read; {plan.warmup_s:g} s warm-up, then {plan.duration_s:g} s measured per cell; req/s counts "
        f"2xx answers; {pinning}",
        f"the load generator's own ceiling (raw asyncio streams, {ceiling['loop']}): "
        f"{ceiling['rps']:,.0f} req/s at c={TOP} on Shipyard's GET /v2/health/live (client CPU "
        f"{ceiling['client_cpu']:.0%}, server CPU {ceiling['server_cpu']:.0%})",
        *problems,
    ]
    rows: list[Result] = []

    def row(title: str, field: str, ours: dict[str, Any], theirs: dict[str, Any], **kw: Any) -> None:
        unit, rate = ("req/s", True) if field == "rps" else ("ms", False)
        valid = agree and clean(ours)  # no answer at all: 0, and the row is invalid
        key = chr(ord("a") + len(rows))
        rows.append(Result(key, title, unit, rate, ours[field] or 0.0, theirs[field], valid=valid, **kw))

    for c in LEVELS:
        sy, ml = cells[f"shipyard-{c}"], cells[f"mlflow-{c}"]
        notes = (setup if c == LEVELS[0] else []) + cell_notes(sy, ml)
        # Issue 18's targets at c=64, REST and gRPC alike: >= 30x MLflow's requests/s, p99 < 50 ms.
        row(f"c={c}: requests/s", "rps", sy, ml, min_speedup=30 if c == TOP else None, notes=tuple(notes))
        row(f"c={c}: p50 latency", "p50_ms", sy, ml)
        row(f"c={c}: p99 latency", "p99_ms", sy, ml, max_shipyard=50 if c == TOP else None)
    for c in LEVELS:
        sy, ml = cells[f"grpc-{c}"], cells[f"mlflow-{c}"]
        title = f"c={c}: requests/s over gRPC (ModelInfer, raw FP64 tensor)"
        row(title, "rps", sy, ml, min_speedup=30 if c == TOP else None, notes=tuple(cell_notes(sy)))
        if c == TOP:
            row(f"c={c}: p99 latency over gRPC", "p99_ms", sy, ml, max_shipyard=50)
    rest, grpc_top = cells[f"shipyard-{TOP}"], cells[f"grpc-{TOP}"]
    row(
        f"c={TOP}: gRPC vs REST requests/s (the peer column here is Shipyard's own REST v2)",
        "rps",
        grpc_top,
        rest,
        min_speedup=1.0,
    )
    extra = {"records": f"records to {RECORDS}", "unbatched": "batching off", "native": "scikit-learn itself"}
    for name, what in extra.items():
        if name in cells:
            notes = tuple(cell_notes(cells[name]))
            row(f"c={TOP}: requests/s, {what}", "rps", cells[name], cells[f"mlflow-{TOP}"], notes=notes)
    return rows


def print_cells(cells: dict[str, dict[str, Any]]) -> None:
    """Every timed cell in full: the figures behind the table."""
    header = ("cell", "req/s", "p50", "p90", "p99", "max", "answers", "errors", "server CPU", "client CPU")
    rows = [
        (
            cell["label"],
            f"{cell['rps']:,.1f}",
            *(fmt_ms(cell[k]) for k in ("p50_ms", "p90_ms", "p99_ms", "max_ms")),
            f"{cell['requests']:,}",
            f"{sum(cell['errors'].values()) + cell['unfinished']:,}",
            f"{cell['server_cpu']:.0%}",
            f"{cell['client_cpu']:.0%}",
        )
        for cell in cells.values()
    ]
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]
    print()
    for row in (header, tuple("-" * w for w in widths), *rows):
        print(
            "  ".join(
                c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))
            )
        )
    sys.stdout.flush()


# ---------------------------------------------------------------------- the GPU section: a torch MLP
MLP, MLP_LEVELS, MLP_TARGET = "mlp", (64, 256), 10.0
MLP_INFER, MLP_READY = f"/v2/models/{MLP}/infer", f"/v2/models/{MLP}/ready"
MLP_INPUT = [{"name": "input-0", "datatype": "FP32", "shape": [-1, 256]}]
NO_CUDA = "GPU section not measured: no CUDA device (torch.cuda.is_available() is False)"
BATCHED = "{max_batch_size: 256, max_latency_ms: 2, max_in_flight: 2}"
BATCHING = {"batched": BATCHED, "unbatched": "{enabled: false}"}


def gpu_unavailable(device: str) -> str | None:
    """Why the GPU section cannot run on ``device`` (one line), or None when it can."""
    try:
        import torch
    except ImportError as exc:
        return f"GPU section not measured: torch is not installed ({exc}); pip install torch safetensors"
    return NO_CUDA if device == "cuda" and not torch.cuda.is_available() else None


def mlp_body(row: Any) -> dict[str, Any]:
    return {"inputs": [{"name": "input-0", "shape": [1, len(row)], "datatype": "FP32", "data": row.tolist()}]}


def requests_per_predict(server: Server) -> float | None:
    """Mean requests merged into one predict call over the server's life, from its ``/metrics``."""
    with urllib.request.urlopen(f"{server.url}/metrics", timeout=10) as response:
        lines = response.read().decode().splitlines()
    total = {
        k: float(x.rsplit(" ", 1)[1])
        for k in ("sum", "count")
        for x in lines
        if x.startswith(f"shipyard_batch_size_{k}{{")
    }
    return total["sum"] / total["count"] if total.get("count") else None


def check_mlp(server: Server, rows: Any, expected: Any) -> str | None:
    """Whether the answers to ``rows``, sent 16 at a time (so that they batch), match the local forward."""
    import numpy as np

    _, metadata = http("GET", f"{server.url}/v2/models/{MLP}")
    if not isinstance(metadata, dict) or metadata.get("inputs") != MLP_INPUT:
        return f"{server.label}: /v2/models/{MLP} declares inputs {metadata!r}, not {MLP_INPUT}"
    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(lambda row: http("POST", server.url + MLP_INFER, mlp_body(row)), rows))
    for i, (status, document) in enumerate(answers):
        if status != 200:
            return f"{server.label}: HTTP {status} on row {i}: {str(document)[:300]}"
        got = np.asarray(document["outputs"][0]["data"], np.float32)
        if got.shape != expected[i].shape or not np.allclose(got, expected[i], rtol=1e-3, atol=1e-4):
            gap = np.abs(got - expected[i]).max() if got.shape == expected[i].shape else got.shape
            return f"{server.label}: row {i} differs from the local forward pass (max |diff| {gap})"
    return None


def measure_gpu(ctx: Context, device: str) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """The MLP served on ``device`` with batching on, then off: every cell by key; the wrong answers."""
    import numpy as np
    import torch

    import shipyard

    torch.manual_seed(0)
    nn = torch.nn
    layers = (nn.Linear(256, 1024), nn.ReLU(), nn.Linear(1024, 1024), nn.ReLU(), nn.Linear(1024, 10))
    net = nn.Sequential(*layers).eval()
    rows = np.random.default_rng(0).standard_normal((64, 256)).astype(np.float32)
    with torch.no_grad():  # NOTE: the reference runs here, on the CPU
        expected = net(torch.from_numpy(rows)).numpy()
    home = ctx.root / "shipyard-home"
    settings = shipyard.Settings.load(environ={"SHIPYARD_HOME": str(home)}, cwd=ctx.root)
    with shipyard.start_run("serving-gpu", settings=settings) as run:
        info = shipyard.models.log(net, name=MLP, run=run, input_example=rows[:8])
    version = shipyard.models.register(info.uri, MLP, settings=settings)
    shipyard.models.set_alias(MLP, ALIAS, version.version, settings=settings)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHIPYARD_")}
    env["SHIPYARD_HOME"] = str(home)
    cells: dict[str, dict[str, Any]] = {}
    problems: list[str] = []
    for mode, batching in BATCHING.items():
        deploy = ctx.root / f"deploy-{mode}.yaml"
        deploy.write_text(
            f"models:\n  - uri: models:/{MLP}@{ALIAS}\n    batching: {batching}\n"
            f"    options: {{device: {device}}}\n",
            encoding="utf-8",
        )
        label, cmd = f"MLP {mode} on {device}", shipyard_cmd(str(deploy), free_port())
        with serving(label, cmd, env, ctx.root / "gpu", MLP_READY, ctx) as sy:
            if mode == "batched":
                top = MLP_LEVELS[-1]
                cells["ceiling"] = load(sy, "/v2/health/live", None, top, ctx, f"ceiling: health, c={top}")
            for c in MLP_LEVELS:
                cells[f"{mode}-{c}"] = load(sy, MLP_INFER, mlp_body(rows[0]), c, ctx, f"{label}, c={c}")
            problems += filter(None, [check_mlp(sy, rows, expected)])  # after the load: still right
            cells[f"{mode}-{MLP_LEVELS[-1]}"]["requests_per_predict"] = requests_per_predict(sy)
    return cells, problems


def print_gpu(cells: dict[str, dict[str, Any]], problems: Sequence[str], device: str) -> None:
    import torch

    where = torch.cuda.get_device_name(0) if device == "cuda" else "the CPU (a check of the code, not a GPU)"
    print(f"\nGPU section: torch MLP 256-1024-1024-10 FP32 (TorchScript) on {where}; single-row OIP v2 JSON")
    print(f"requests to {MLP_INFER}, batched (max_batch_size 256, max_latency_ms 2) vs batching off")
    print_cells(cells)
    for c in MLP_LEVELS:
        batched, unbatched = cells[f"batched-{c}"], cells[f"unbatched-{c}"]
        ratio = batched["rps"] / unbatched["rps"] if unbatched["rps"] else 0.0
        valid = clean(batched) and clean(unbatched) and not problems
        if device != "cuda":
            verdict = f"context only: the >= {MLP_TARGET:g}x target is for CUDA"
        elif c != MLP_LEVELS[-1]:
            verdict = "context only"
        else:
            verdict = f"target >= {MLP_TARGET:g}x: " + ("PASS" if valid and ratio >= MLP_TARGET else "MISS")
        print(
            f"{device}: batched / unbatched req/s at c={c}: {ratio:,.1f}x ({batched['rps']:,.0f} / "
            f"{unbatched['rps']:,.0f}){'' if valid else ' INVALID'}; {verdict}"
        )
    on, off = (cells[f"{m}-{MLP_LEVELS[-1]}"]["requests_per_predict"] or 0.0 for m in BATCHING)
    print(f"requests per predict call (each server's /metrics, whole life): {on:.1f} batched, {off:.1f} not")
    if not problems:
        print(f"answers checked after the load: /v2/models/{MLP} takes {MLP_INPUT}; 64 rows sent")
        print("16 at a time match a local forward pass on the CPU (rtol 1e-3, atol 1e-4), batched or not")
    for note in [*problems, *cell_notes(*cells.values())]:
        print(f"  {note}")
    sys.stdout.flush()


# ---------------------------------------------------------------------- main
def stolen_cpu() -> tuple[int, int] | None:
    """(steal, total) clock ticks of all CPUs since boot, from /proc/stat; None where there is none."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except (OSError, IndexError):
        return None
    ticks = [int(f) for f in fields[:8]]  # user nice system idle iowait irq softirq steal
    return (ticks[7], sum(ticks)) if len(ticks) == 8 else None


def share_stolen(before: tuple[int, int] | None, after: tuple[int, int] | None) -> float | None:
    """The share of CPU time the hypervisor took between two `stolen_cpu` readings."""
    if before is None or after is None or after[1] <= before[1]:
        return None
    return (after[0] - before[0]) / (after[1] - before[1])


def main(argv: Sequence[str] | None = None) -> int:
    parser = harness.base_parser(__doc__.splitlines()[0])
    parser.add_argument("--no-pin", action="store_true", help="do not pin the servers and the client to CPUs")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (stores, server logs)")
    parser.add_argument("--gpu", action="store_true", help="add the GPU section (torch MLP)")
    parser.add_argument("--gpu-only", action="store_true", help="the GPU section alone, no MLflow")
    parser.add_argument("--gpu-device", choices=("cuda", "cpu"), default="cuda", help="with --gpu(-only)")
    args = parser.parse_args(argv)
    # NOTE: the servers run in sessions of their own; SIGTERM must unwind through `serving` to stop them
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    plan = Plan.for_args(args.quick)
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    pin = not args.no_pin and len(cpus) >= 2
    server_cpus, client_cpu = (set(cpus[:-1]), cpus[-1]) if pin else (set(), None)
    gpu_skip = gpu_unavailable(args.gpu_device) if args.gpu or args.gpu_only else None
    gpu: tuple[dict[str, dict[str, Any]], list[str]] | None = None
    stolen_before = stolen_cpu()
    root = Path(tempfile.mkdtemp(prefix="shipyard-bench-serving-"))
    progress(f"stores and server logs under {root}; {'quick' if plan.quick else 'full'} mode")
    try:
        if not args.gpu_only:
            progress("fitting the model; logging it to Shipyard and to MLflow")
            fixture = prepare(root)
            ctx = Context(plan, fixture, root, server_cpus, client_cpu)
            cells, problems, default_runtime = measure(ctx)
        if (args.gpu or args.gpu_only) and gpu_skip is None:
            progress(f"GPU section: a torch MLP on {args.gpu_device}, batched and not")
            gpu_ctx = Context(plan, None, root, server_cpus, client_cpu)  # type: ignore[arg-type]
            try:
                gpu = measure_gpu(gpu_ctx, args.gpu_device)
            except RuntimeError as exc:  # a server that did not start, or whose model did not load
                gpu_skip = f"GPU section not measured: {exc}"
    finally:
        if args.keep:
            progress(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    steal = share_stolen(stolen_before, stolen_cpu())
    mode = "quick" if plan.quick else "full"
    info = harness.machine_info(PACKAGES)
    extra: dict[str, Any] = {}
    rows: list[Result] = []
    if not args.gpu_only:
        rows = results(cells, problems, ctx)
        harness.print_table(f"{TITLE}, {mode} mode", rows, machine=harness.machine_line(info))
        print(f"shipyard serve ran the model on {default_runtime} by default")
        if steal is not None:
            # On a shared VM other guests take CPU time; a run with much of it stolen is not a quiet one.
            print(f"CPU time stolen by the hypervisor during the run: {steal:.1%}")
        print_cells(cells)
        extra = dict(cells=cells, prediction_problems=problems, default_runtime=default_runtime)
    else:
        print(harness.machine_line(info))
    if gpu is not None:
        print_gpu(*gpu, args.gpu_device)
        extra.update(gpu_device=args.gpu_device, gpu_cells=gpu[0], gpu_problems=gpu[1])
    elif gpu_skip is not None:
        print(gpu_skip)
        extra.update(gpu_not_measured=gpu_skip)
    if args.json:
        harness.write_json(
            args.json,
            TITLE,
            rows,
            mode=mode,
            argv=list(sys.argv[1:]),
            **extra,
            cpu_stolen=steal,
            server_cpus=sorted(server_cpus),
            client_cpu=client_cpu,
        )
        progress(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
