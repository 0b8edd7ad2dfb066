"""The Open Inference Protocol v2 over gRPC (``inference.GRPCInferenceService``), beside REST in one server.

``shipyard serve --grpc-port 8081`` starts it with the REST server, over the same
:class:`~shipyard.serving.app.InferenceServer`: the same models, batchers, traffic weights and shadow, payload
log and Prometheus metrics (``protocol="grpc"``, the status code's name as ``code``). grpcio's threads take
the calls in; each is then answered on the REST server's event loop, where it joins the same batches as REST
requests (see :meth:`GrpcInferenceService.start` for why not grpc.aio). ServerLive,
ServerReady, ModelReady, ServerMetadata, ModelMetadata and ModelInfer are served; tritonclient's gRPC
client works unchanged.

Errors are gRPC status codes with the REST answer's message as details: bad input ``INVALID_ARGUMENT``,
unknown model or version ``NOT_FOUND``, a full queue (or more calls in flight than the server takes)
``RESOURCE_EXHAUSTED``, a model that has not loaded or a store out of reach ``UNAVAILABLE``, a model that
raised ``INTERNAL``; a message over the server's body limit is refused by gRPC itself
(``RESOURCE_EXHAUSTED``). Call metadata mirrors REST's headers: ``x-shipyard-version`` pins a version (and
the answer's metadata says which version answered), ``x-request-id`` is echoed (the request's ``id`` wins,
else the server makes one).

Inference requests are parsed here, not by gRPC: a message over
:attr:`~shipyard.serving.app.ServerConfig.decode_off_loop_bytes` is parsed and decoded on a thread, as a
large REST body is, so one large request does not stall the event loop.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc

from shipyard import __version__
from shipyard.errors import (
    InvalidInput,
    ModelNotReady,
    NotFound,
    Overloaded,
    PredictionFailed,
    ServingError,
    ShipyardError,
    StoreError,
)
from shipyard.serving import grpc_messages as messages
from shipyard.serving.app import (
    REQUEST_ID_HEADER,
    VERSION_HEADER,
    InferenceServer,
    checked_request_id,
    new_request_id,
    request_input,
)
from shipyard.serving.repository import ModelState, ServedModel
from shipyard.serving.server import read_tls
from shipyard.serving.tensors import InferRequest
from shipyard.serving.wire_grpc import decode_model_infer, encode_model_infer

log = logging.getLogger("shipyard.serving")
access_log = logging.getLogger("shipyard.serving.access")


_CODES: list[tuple[type[ShipyardError], grpc.StatusCode]] = [
    (NotFound, grpc.StatusCode.NOT_FOUND),
    (InvalidInput, grpc.StatusCode.INVALID_ARGUMENT),
    (Overloaded, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (ModelNotReady, grpc.StatusCode.UNAVAILABLE),
    (StoreError, grpc.StatusCode.UNAVAILABLE),
]


def code_for(exc: ShipyardError) -> grpc.StatusCode:
    """The gRPC status code for ``exc``; INTERNAL for anything not listed (a model that raised, a bug)."""
    for kind, code in _CODES:
        if isinstance(exc, kind):
            return code
    return grpc.StatusCode.INTERNAL


class _Abort(Exception):
    """Ends a call with a status code: raised on the loop, turned into ``context.abort`` on gRPC's thread."""

    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(details)
        self.code, self.details = code, details


class _Call:
    """What one RPC learned on the way, for its metadata, metrics and access log."""

    __slots__ = ("experiment", "model", "request_id", "served")

    def __init__(self) -> None:
        self.model = ""
        self.served: ServedModel | None = None
        self.request_id: str | None = None
        self.experiment: str | None = None


class GrpcInferenceService:
    """The gRPC face of ``server``: :meth:`start` binds and serves it, :meth:`stop` ends it gracefully."""

    def __init__(self, server: InferenceServer) -> None:
        self.server = server
        self._grpc: grpc.Server | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._threads: ThreadPoolExecutor | None = None
        self.port: int | None = None

    def handler(self) -> grpc.GenericRpcHandler:
        """The service's method handlers (ModelInfer takes its request unparsed: see the module's notes)."""
        methods = {
            "ServerLive": self.server_live,
            "ServerReady": self.server_ready,
            "ModelReady": self.model_ready,
            "ServerMetadata": self.server_metadata,
            "ModelMetadata": self.model_metadata,
            "ModelInfer": self.model_infer,
        }
        handlers = {}
        for name, method in methods.items():
            request_class, response_class = messages.METHODS[name]
            handlers[name] = grpc.unary_unary_rpc_method_handler(
                self._on_loop(method),
                request_deserializer=None if name == "ModelInfer" else request_class.FromString,
                response_serializer=response_class.SerializeToString,
            )
        return grpc.method_handlers_generic_handler(messages.SERVICE, handlers)

    async def start(self, host: str, port: int) -> int:
        """Bind ``host:port`` (0: a free port) and start serving; the port bound.

        Raises:
            ServingError: the address cannot be bound (in use, or not this machine's).
        """
        config = self.server.config
        options = [
            ("grpc.max_receive_message_length", config.max_body_bytes),
            ("grpc.max_send_message_length", -1),
            # One process owns the port: a second server on it is an error, not a silent share.
            ("grpc.so_reuseport", 0),
        ]
        self._loop = asyncio.get_running_loop()
        # grpcio's threaded server, not grpc.aio: its asyncio server takes in one call at a time through
        # the event loop, so under load calls arrive spread out and the batcher merges almost none of them
        # (measured: 1.0-1.2 requests a predict at 64 concurrent calls, against ~11 over REST, and half the
        # throughput). Here gRPC's threads take calls in concurrently and hand each to the event loop, where
        # it joins a batch. Answering on gRPC's threads without the loop was measured ~25% slower: 64
        # threads then contend for the GIL call by call, where the loop does a burst of calls in one go.
        threads = ThreadPoolExecutor(min(config.max_connections, 256), thread_name_prefix="grpc")
        self._threads = threads
        self._grpc = grpc.server(threads, options=options, maximum_concurrent_rpcs=config.max_connections)
        self._grpc.add_generic_rpc_handlers((self.handler(),))
        address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        tls = read_tls(config.ssl_certfile, config.ssl_keyfile)
        try:
            if tls is None:
                bound = self._grpc.add_insecure_port(address)
            else:
                certificate, key = tls
                bound = self._grpc.add_secure_port(address, grpc.ssl_server_credentials([(key, certificate)]))
        except RuntimeError as exc:
            raise ServingError(f"gRPC could not bind {address}: {exc}") from None
        if not bound:
            raise ServingError(f"gRPC could not bind {address} (in use?)")
        self._grpc.start()
        self.port = bound
        log.info("OIP v2 over gRPC%s on %s", "" if tls is None else " (TLS)", f"{host}:{bound}")
        return bound

    async def stop(self, grace_s: float = 30.0) -> None:
        """Stop taking calls; those in flight get ``grace_s`` to finish."""
        if self._grpc is not None:
            stopped = self._grpc.stop(grace_s)
            # Waited for off the loop: the calls finishing need it.
            await asyncio.get_running_loop().run_in_executor(None, stopped.wait)
            if self._threads is not None:
                self._threads.shutdown(wait=False)
            self._grpc = None

    def _on_loop(self, method: Callable[[Any, Any], Awaitable[Any]]) -> Callable[[Any, Any], Any]:
        """``method`` run on the server's event loop for gRPC's handler thread, which waits for it."""

        def handle(request: Any, context: grpc.ServicerContext) -> Any:
            assert self._loop is not None, "started: start() keeps the loop"
            done = asyncio.run_coroutine_threadsafe(method(request, context), self._loop)
            try:
                return done.result()
            except _Abort as exc:
                context.abort(exc.code, exc.details)

        return handle

    # ------------------------------------------------------------------ health and metadata
    async def server_live(self, request: Any, context: grpc.ServicerContext) -> Any:
        return messages.ServerLiveResponse(live=True)

    async def server_ready(self, request: Any, context: grpc.ServicerContext) -> Any:
        return messages.ServerReadyResponse(ready=(await self.server.readiness())["ready"])

    async def model_ready(self, request: Any, context: grpc.ServicerContext) -> Any:
        async def answer(call: _Call) -> Any:
            try:
                served = self._served(call, request.name, request.version, context)
            except ModelNotReady:  # no version of it is ready to take traffic: an answer, not an error
                return messages.ModelReadyResponse(ready=False)
            return messages.ModelReadyResponse(ready=served.state is ModelState.READY)

        return await self._guard(context, answer)

    async def server_metadata(self, request: Any, context: grpc.ServicerContext) -> Any:
        return messages.ServerMetadataResponse(name="shipyard", version=__version__, extensions=[])

    async def model_metadata(self, request: Any, context: grpc.ServicerContext) -> Any:
        async def answer(call: _Call) -> Any:
            served = self._served(call, request.name, request.version, context)
            pinned = bool(request.version or _metadata(context, VERSION_HEADER))
            body = self.server.metadata(served, pinned)
            response = messages.ModelMetadataResponse(
                name=body["name"], versions=body["versions"], platform=body["platform"]
            )
            for field in ("inputs", "outputs"):
                for tensor in body[field]:
                    getattr(response, field).add(
                        name=tensor["name"], datatype=tensor["datatype"], shape=tensor["shape"]
                    )
            return response

        return await self._guard(context, answer)

    # ------------------------------------------------------------------ inference
    async def model_infer(self, body: bytes, context: grpc.ServicerContext) -> Any:
        return await self._guard(context, lambda call: self._infer(call, body, context), protocol="grpc")

    async def _infer(self, call: _Call, body: bytes, context: grpc.ServicerContext) -> Any:
        server = self.server
        decoded, request = await server.decode(body, _parse, body)
        if decoded.id:
            call.request_id = checked_request_id(decoded.id, "id")
        served = self._served(call, request.model_name, request.model_version, context)
        item = await server.decode(body, request_input, served, decoded)
        pinned = request.model_version or _metadata(context, VERSION_HEADER)
        outputs = await server.predict(
            served, item, "grpc", call.request_id, pinned=pinned, experiment=call.experiment
        )
        answered = [(name, outputs[name]) for name in item.outputs]  # in the order asked
        # The answer comes back raw to a raw request (decode_model_infer marks it binary_output_default).
        return encode_model_infer(
            served.name, served.version, decoded.id, answered, raw=decoded.binary_output_default
        )

    # ------------------------------------------------------------------ plumbing
    def _served(self, call: _Call, name: str, version: str, context: grpc.ServicerContext) -> ServedModel:
        call.model = name
        if not name:
            raise InvalidInput("model name is empty")
        # gRPC metadata keys are lower case: the A/B test's unit header is looked up so.
        served, call.experiment = self.server.choose(
            name, version or _metadata(context, VERSION_HEADER), lambda key: _metadata(context, key.lower())
        )
        call.served = served
        return served

    async def _guard(
        self,
        context: grpc.ServicerContext,
        answer: Callable[[_Call], Awaitable[Any]],
        protocol: str = "",
    ) -> Any:
        """Run ``answer``; a ShipyardError becomes its status code and message, a bug INTERNAL (logged).
        Inference calls also get a request id, metadata, metrics and an access-log line."""
        started = time.perf_counter()
        call = _Call()
        code = grpc.StatusCode.OK
        message = ""
        response = None
        try:
            if protocol:
                given = _metadata(context, REQUEST_ID_HEADER)
                call.request_id = (
                    new_request_id() if given is None else checked_request_id(given, "x-request-id")
                )
            response = await answer(call)
        except ShipyardError as exc:
            code, message = code_for(exc), str(exc)
        except Exception as exc:  # a bug of ours: INTERNAL with the reason, keep serving
            log.exception("unexpected error serving gRPC %s", call.model)
            code = grpc.StatusCode.INTERNAL
            message = str(PredictionFailed(f"internal error: {type(exc).__name__}: {exc}"))
        sent: list[tuple[str, str]] = []
        if call.served is not None:
            sent.append((VERSION_HEADER, call.served.label))
        if protocol and call.request_id is not None:
            sent.append((REQUEST_ID_HEADER, call.request_id))
        if sent:
            context.set_trailing_metadata(tuple(sent))
        if protocol:
            self._observe(call, protocol, code, time.perf_counter() - started, context)
        if code is not grpc.StatusCode.OK:
            raise _Abort(code, message)
        return response

    def _observe(
        self, call: _Call, protocol: str, code: grpc.StatusCode, seconds: float, context: grpc.ServicerContext
    ) -> None:
        served = call.served
        version = served.version if served is not None else ""
        self.server.metrics.observe_request(call.model, version, protocol, code.name, seconds)
        if access_log.isEnabledFor(logging.INFO):
            access_log.info(
                json.dumps(
                    {
                        "method": "ModelInfer",
                        "status": code.name,
                        "ms": round(seconds * 1000, 3),
                        "model": call.model,
                        "version": version,
                        "label": served.label if served is not None else "",
                        "protocol": protocol,
                        "request_id": call.request_id,
                        "client": context.peer(),
                    }
                )
            )


def _parse(body: bytes) -> tuple[InferRequest, Any]:
    """The raw ModelInfer message, parsed and decoded into tensors."""
    try:
        request = messages.ModelInferRequest.FromString(body)
    except Exception as exc:  # protobuf's DecodeError: not a ModelInferRequest
        raise InvalidInput(f"the message is not a ModelInferRequest: {exc}") from None
    return decode_model_infer(request), request


def _metadata(context: grpc.ServicerContext, key: str) -> str | None:
    for name, value in context.invocation_metadata() or ():
        if name == key:
            return value if isinstance(value, str) else None
    return None
