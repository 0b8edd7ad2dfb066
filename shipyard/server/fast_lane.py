"""The fast lane: the routes a training script calls per run and per flush, without the framework's layers.

Creating a run, ending it and storing a batch of points are most of a busy server's requests, and most of
each one's server time went to FastAPI's routing, dependency solving and middleware layers rather than to
the store. :class:`FastLane` sits inside the security middleware (so authentication, body limits and the
audit log are the same for every request) and serves those routes itself when a request is the ordinary
case: the route's content type, a well-formed ``Idempotency-Key`` if any, no query string, and a body its
model accepts. Anything else — a body that fails its model, say — is handed, body and all, to the full app,
whose answer (a 422 naming the field) is then the only one. Both paths run the same functions of
:mod:`shipyard.server.tracking_routes`, so a route's meaning lives in one place and the OpenAPI document
still describes it. The MLflow client's per-value calls (``runs/log-metric``, ``log-batch``,
``log-parameter``, ``set-tag``: one request each) take the lane too, answering refusals in its error shape.

On SQLite (``inline``) a small request's work runs on the event loop itself: the store's write is tens of
microseconds there, and the hop to a worker thread and back cost several times the whole request. It runs
under :func:`shipyard.store.db.without_waiting`: a write that would wait for the lock (another process
writing) or for a pooled connection goes to a worker thread instead, before it has written anything.

On PostgreSQL (``statements``) MLflow's ``log_metric`` — one statement there — is sent from the event loop on
an asynchronous connection (:mod:`shipyard.store.async_pg`) once its checks have passed from caches (the
run's key, its experiment); a check that needs the database, or a statement not carried out, goes to a
worker thread as every other write does, which answers it as before.
"""

from __future__ import annotations

import contextvars
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shipyard.errors import ShipyardError
from shipyard.server import tracking_routes as tr
from shipyard.server.answers import error_answer, send_json
from shipyard.server.mlflow import protocol as mlflow_protocol
from shipyard.server.mlflow import tracking as mlflow_tracking
from shipyard.server.threads import in_thread
from shipyard.store import wire
from shipyard.store.async_pg import AsyncStatements
from shipyard.store.waiting import WouldWait, without_waiting

_PREFIX = "/api/v1/"
# The same rule as tracking_routes.IdempotencyKey's: a key that breaks it goes the long way, to its 422.
_IDEMPOTENCY_KEY = re.compile(r"[A-Za-z0-9_-]{8,64}")
_JSON = "application/json"
# Bodies up to this size are served on the event loop when the lane is inline: a few dozen points. A larger
# batch's parsing and writing would hold up every other request for milliseconds: it goes to a thread.
_INLINE_BYTES = 8 << 10


class _LongWay(Exception):
    """A body the lane does not take: the full app answers it."""


@dataclass(frozen=True)
class _Route:
    media_type: str
    # bytes -> the work's input; a `ValidationError` or `_LongWay` sends the request the long way
    parse: Callable[[bytes], Any]
    # (request, parsed body, idempotency key, *path values) -> the answer's JSON, run in a worker thread
    work: Callable[..., Any]
    status: int
    # a refusal's (status, body): the server's error shape, or the MLflow client's on its routes
    refusal: Callable[[ShipyardError], tuple[int, Any]] = error_answer
    # (request, parsed body) -> the write as one PostgreSQL statement (None: not one), and the answer then
    statement: Callable[[Request, Any], tuple[str, list[Any]] | None] | None = None
    done: Any = None


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        found = json.loads(body)
    except (ValueError, RecursionError):
        raise _LongWay from None
    if not isinstance(found, dict):
        raise _LongWay
    return found


_METRICS = _Route(_JSON, tr.MetricBatch.model_validate_json, tr.store_metrics, 204)
_PACKED = _Route(wire.PACKED_METRICS, tr.parse_packed, tr.store_packed, 204)
_CREATE = _Route(_JSON, tr.NewRun.model_validate_json, tr.start_run, 201)
_END = _Route(_JSON, tr.EndRun.model_validate_json, tr.finish_run, 200)
# The MLflow client's per-value calls (one request each: their server cost is most of a script's logging).
_MLFLOW_PREFIX = "/api/2.0/mlflow/runs/"
_MLFLOW = {
    name: _Route(_JSON, _json_object, work, 200, mlflow_protocol.refusal, statement, {})
    for name, work, statement in (
        ("log-metric", mlflow_tracking.log_metric_call, mlflow_tracking.log_metric_statement),
        ("log-batch", mlflow_tracking.log_batch_call, None),
        ("log-parameter", mlflow_tracking.log_param_call, None),
        ("set-tag", mlflow_tracking.set_tag_call, None),
    )
}


def _match(method: str, path: str) -> tuple[_Route, tuple[str, ...]] | None:
    if method == "POST" and path.startswith(_MLFLOW_PREFIX):
        mlflow_route = _MLFLOW.get(path[len(_MLFLOW_PREFIX) :])
        return None if mlflow_route is None else (mlflow_route, ())
    if method != "POST" or not path.startswith(_PREFIX):
        return None
    rest = path[len(_PREFIX) :]
    if rest == "metrics/binary":
        return _PACKED, ()
    if rest == "metrics":
        return _METRICS, ()
    if rest == "runs":
        return _CREATE, ()
    if rest.startswith("runs/") and rest.endswith("/end"):
        run_id = rest[5:-4]
        if run_id and "/" not in run_id:
            return _END, (run_id,)
    return None


class FastLane:
    """Pure ASGI middleware serving :func:`_match`'s routes directly (see the module's docstring)."""

    def __init__(self, app: ASGIApp, inline: bool = False, statements: AsyncStatements | None = None) -> None:
        self.app = app
        self.inline = inline
        self.statements = statements

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        hit = _match(scope["method"], scope["path"]) if scope["type"] == "http" else None
        if hit is None or scope.get("query_string"):
            await self.app(scope, receive, send)
            return
        route, path_values = hit
        media_type = key = None
        for name, value in scope["headers"]:  # the first of a repeated header, as Starlette reads them
            if name == b"content-type" and media_type is None:
                media_type = value.decode("latin-1").partition(";")[0].strip().lower()
            elif name == b"idempotency-key" and key is None:
                key = value.decode("latin-1")
        if media_type != route.media_type or (key is not None and not _IDEMPOTENCY_KEY.fullmatch(key)):
            await self.app(scope, receive, send)
            return
        body = await _read_body(receive)
        if body is None:  # the client went away
            return
        request = Request(scope)
        try:
            answer = _NOT_YET
            if len(body) <= _INLINE_BYTES:
                if self.inline:
                    context = contextvars.copy_context()
                    answer = context.run(_serve_inline, route, body, request, key, path_values)
                elif self.statements is not None and route.statement is not None and key is None:
                    answer = await self._send_statement(route, body, request)
            if answer is _NOT_YET:
                answer = await in_thread(_serve, route, body, request, key, path_values)
        except ShipyardError as exc:  # a malformed packed body, a missing run, a refused write, ...
            status, answer = route.refusal(exc)
        else:
            if answer is _LONG_WAY:
                await self.app(scope, _replay(body, receive), send)
                return
            status = route.status
        await send_json(send, status, answer)

    async def _send_statement(self, route: _Route, body: bytes, request: Request) -> Any:
        assert self.statements is not None and route.statement is not None
        prepared = contextvars.copy_context().run(_prepare_inline, route, body, request)
        if prepared is _NOT_YET or prepared is None:
            return _NOT_YET
        return route.done if await self.statements.execute(*prepared) else _NOT_YET


_LONG_WAY = object()
_NOT_YET = object()


def _prepare_inline(route: _Route, body: bytes, request: Request) -> Any:
    assert route.statement is not None
    try:
        with without_waiting():
            return route.statement(request, route.parse(body))
    except (ValidationError, _LongWay, WouldWait):  # the thread's path answers these
        return _NOT_YET


def _serve_inline(
    route: _Route, body: bytes, request: Request, key: str | None, path_values: tuple[str, ...]
) -> Any:
    try:
        with without_waiting():
            return _serve(route, body, request, key, path_values)
    except WouldWait:  # nothing was written: a worker thread does it, waiting as long as it must
        return _NOT_YET


def _serve(
    route: _Route, body: bytes, request: Request, key: str | None, path_values: tuple[str, ...]
) -> Any:
    # In the worker thread: a large batch is parsed off the event loop too.
    try:
        parsed = route.parse(body)
    except (ValidationError, _LongWay):  # nothing written yet: the full app answers, naming the field
        return _LONG_WAY
    return route.work(request, parsed, key, *path_values)


async def _read_body(receive: Receive) -> bytes | None:
    parts = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        parts.append(message.get("body", b""))
        if not message.get("more_body", False):
            return parts[0] if len(parts) == 1 else b"".join(parts)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay
