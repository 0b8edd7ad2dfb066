"""A closed-loop HTTP (or gRPC) load generator, run as its own process so that it has a core of its own.

    echo '{"port": 8080, "path": "/v2/health/live", "concurrency": 16, "duration_s": 3}' \\
        | python benchmarks/serving_load.py

Reads one JSON spec on stdin and writes one JSON result on stdout. ``concurrency`` workers each hold one
keep-alive HTTP/1.1 connection to 127.0.0.1 and send the next request as soon as the previous answer has been
read (raw asyncio streams, uvloop when installed: a general-purpose client such as httpx costs more CPU per
request than the servers measured here). Requests during ``warmup_s`` are not recorded; then, for
``duration_s``, every response that completes is: a 2xx adds its latency, anything else (another status, a
reset connection, a timeout) is counted as an error by kind, never dropped. Everything is bounded: at most
``max_requests`` requests, ``timeout_s`` per request, and a few seconds of grace after the window.

With ``grpc_method`` (``/inference.GRPCInferenceService/ModelInfer``) and ``grpc_body_b64`` (the serialized
request), each worker holds a gRPC channel of its own (one HTTP/2 connection, as each HTTP worker holds one
connection) and sends the bytes as they are; answers are not parsed (a non-OK status is an error by its
code), so the client's cost stays as low as grpcio's allows.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

clock = time.perf_counter


@dataclass
class Spec:
    port: int
    path: str
    body: str | None = None  # JSON text; None sends a GET
    concurrency: int = 1
    warmup_s: float = 2.0
    duration_s: float = 10.0
    timeout_s: float = 30.0
    max_requests: int = 5_000_000
    cpu: int | None = None  # pin this process to one CPU
    grpc_method: str | None = None  # a gRPC call instead of HTTP: the method's path
    grpc_body_b64: str | None = None  # its serialized request


@dataclass
class Tally:
    start: float  # the measured window, in `clock()` seconds
    end: float
    latencies: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    samples: list[str] = field(default_factory=list)  # the first few errors, in words
    sent: int = 0
    warmup: int = 0

    def error(self, kind: str, detail: str, at: float) -> None:
        if self.start <= at <= self.end:
            self.errors[kind] += 1
        if len(self.samples) < 3:
            self.samples.append(f"{kind}: {detail}"[:300])


def request_bytes(spec: Spec) -> bytes:
    body = spec.body.encode() if spec.body is not None else b""
    method = "POST" if spec.body is not None else "GET"
    head = f"{method} {spec.path} HTTP/1.1\r\nHost: 127.0.0.1:{spec.port}\r\n"
    if spec.body is not None:
        head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
    return (head + "\r\n").encode() + body


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
    """One response: status, body, and whether the connection may be reused."""
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    lower = head.lower()
    at = lower.find(b"\r\ncontent-length:")
    if at >= 0:
        length = int(lower[at + 17 : lower.index(b"\r\n", at + 2)])
        body = await reader.readexactly(length)
    elif b"\r\ntransfer-encoding: chunked" in lower:
        parts = []
        while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
            parts.append((await reader.readexactly(size + 2))[:-2])
        await reader.readuntil(b"\r\n")  # no trailers expected
        body = b"".join(parts)
    else:
        raise ValueError("response has neither Content-Length nor chunked encoding")
    return status, body, b"\r\nconnection: close" not in lower


async def worker(spec: Spec, payload: bytes, tally: Tally) -> None:
    reader: asyncio.StreamReader | None = None
    writer: asyncio.StreamWriter | None = None
    while clock() < tally.end and tally.sent < spec.max_requests:
        tally.sent += 1
        started = clock()
        try:
            async with asyncio.timeout(spec.timeout_s):
                if writer is None:
                    reader, writer = await asyncio.open_connection("127.0.0.1", spec.port)
                    started = clock()  # a (re)connection is not part of the request's latency
                writer.write(payload)
                status, body, keep = await read_response(reader)  # type: ignore[arg-type]
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as exc:
            tally.error(type(exc).__name__, str(exc), clock())
            keep = False
            await asyncio.sleep(0.01)  # no hot loop against a server that refuses connections
        except TimeoutError:
            tally.error("timeout", f"no answer in {spec.timeout_s:g} s", clock())
            keep = False
        else:
            done = clock()
            if 200 <= status < 300:
                if done >= tally.start and done <= tally.end:
                    tally.latencies.append(done - started)
                elif done < tally.start:
                    tally.warmup += 1
            else:
                tally.error(f"HTTP {status}", body[:200].decode(errors="replace"), done)
        if not keep and writer is not None:
            writer.close()
            reader = writer = None
    if writer is not None:
        writer.close()


async def grpc_worker(spec: Spec, payload: bytes, tally: Tally) -> None:
    import grpc

    assert spec.grpc_method is not None
    async with grpc.aio.insecure_channel(f"127.0.0.1:{spec.port}") as channel:
        call = channel.unary_unary(spec.grpc_method)  # bytes in, bytes out: nothing parsed here
        while clock() < tally.end and tally.sent < spec.max_requests:
            tally.sent += 1
            started = clock()
            try:
                await call(payload, timeout=spec.timeout_s)
            except grpc.aio.AioRpcError as exc:
                code = exc.code()
                kind = "timeout" if code is grpc.StatusCode.DEADLINE_EXCEEDED else f"gRPC {code.name}"
                tally.error(kind, exc.details() or "", clock())
                if code is grpc.StatusCode.UNAVAILABLE:
                    await asyncio.sleep(0.01)  # no hot loop against a server that is not there
            else:
                done = clock()
                if tally.start <= done <= tally.end:
                    tally.latencies.append(done - started)
                elif done < tally.start:
                    tally.warmup += 1


def percentile(ordered: list[float], q: float) -> float | None:
    """Nearest-rank percentile of sorted values, in ms."""
    if not ordered:
        return None
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))] * 1000.0


async def run(spec: Spec) -> dict[str, Any]:
    if spec.grpc_method is not None:
        payload, work = base64.b64decode(spec.grpc_body_b64 or ""), grpc_worker
    else:
        payload, work = request_bytes(spec), worker
    now = clock()
    tally = Tally(start=now + spec.warmup_s, end=now + spec.warmup_s + spec.duration_s)
    tasks = [asyncio.create_task(work(spec, payload, tally)) for _ in range(spec.concurrency)]
    cpu_at_start: float | None = None
    while (now := clock()) < tally.start:  # sample this process's CPU time at the window's edges
        await asyncio.sleep(min(0.05, tally.start - now))
    cpu_at_start = time.process_time()
    await asyncio.sleep(max(0.0, tally.end - clock()))
    cpu_s = time.process_time() - cpu_at_start
    _, late = await asyncio.wait(tasks, timeout=min(spec.timeout_s, 10.0))
    for task in late:  # still waiting on an answer well after the window: counted, then abandoned
        task.cancel()
    ordered = sorted(tally.latencies)
    return {
        "requests": len(ordered),
        "rps": len(ordered) / spec.duration_s,
        "p50_ms": percentile(ordered, 50),
        "p90_ms": percentile(ordered, 90),
        "p99_ms": percentile(ordered, 99),
        "max_ms": ordered[-1] * 1000.0 if ordered else None,
        "mean_ms": sum(ordered) / len(ordered) * 1000.0 if ordered else None,
        "errors": dict(tally.errors),
        "error_samples": tally.samples,
        "unfinished": len(late),
        "warmup_requests": tally.warmup,
        "hit_max_requests": tally.sent >= spec.max_requests,
        "client_cpu": cpu_s / spec.duration_s,
        "duration_s": spec.duration_s,
        "concurrency": spec.concurrency,
        "loop": type(asyncio.get_running_loop()).__module__.split(".")[0],
    }


def main() -> None:
    spec = Spec(**json.loads(sys.stdin.read()))
    if spec.cpu is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {spec.cpu})
    try:
        import uvloop
    except ImportError:
        result = asyncio.run(run(spec))
    else:
        result = uvloop.run(run(spec))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
