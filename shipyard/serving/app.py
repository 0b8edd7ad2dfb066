"""The inference server as an ASGI app: Open Inference Protocol v2, KServe v1 and a records endpoint.

Routes (``{v}`` optional everywhere a version may be named):

- ``GET /v2/health/live``, ``GET /v2/health/ready``, ``GET /v2`` (server metadata)
- ``GET /v2/models/{name}[/versions/{v}]`` (model metadata), ``…/ready``, ``POST …/infer``
- ``POST /v1/models/{name}:predict`` with ``{"instances": [...]}``
- ``POST /v1/models/{name}:explain``, ``POST /v2/models/{name}[/versions/{v}]/explain``: SHAP values of the
  rows of a predict body (:mod:`.explanations`)
- ``POST /models/{name}/predict`` with pandas records (``[{col: value}, …]`` or ``{"dataframe_records": …}``)
- ``GET /metrics`` (Prometheus)
- ``GET /admin/deployments``, ``PUT /admin/deployments/{name}/traffic``, ``POST …/rollback`` (:mod:`.admin`;
  guarded by an admin token, a platform server's grants (:mod:`.platform`), or loopback only)

Answers are labels (``predict``) unless a request asks for probabilities (``predict_proba``, for a model
that has it): v2 by ``parameters.output`` (``labels`` / ``probabilities``) or by name in ``outputs``, v1 and
records by ``?output=probabilities`` (the answer then adds ``classes``). The metadata names the classes.

A request without a version is routed by the model's traffic weights; ``X-Shipyard-Version`` pins one (by
label or number), and every answer says which version gave it in the same header.

Every inference answer carries ``X-Request-ID``: the v2 body's ``id``, else the request's own ``X-Request-ID``
header, else one the server made. Payload logs record it, so ground truth that arrives later joins on it
(:mod:`shipyard.monitoring.performance`).

Errors map to status codes in one place (:func:`.statuses.status_for`): bad input 400, unknown model
404, body too slow 408, body too large 413, model raised 500, not ready or overloaded 503 (with
``Retry-After``). A value the model cannot take (NaN, ±Infinity, null where the signature does not allow a
missing value) is the client's error: 400 naming the column, not the model's 500.

Every request first passes :class:`.guard.RequestGuard` (Host allow-list, same-origin writes, declared body
size); bodies over :attr:`ServerConfig.decode_off_loop_bytes` are parsed and decoded on a thread, so a large
request does not stall the event loop (health checks, other requests).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import json
import logging
import os
import time
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from shipyard import __version__
from shipyard.errors import (
    InvalidInput,
    NotFound,
    PredictionFailed,
    ShipyardError,
)
from shipyard.payloads import PayloadLogger
from shipyard.serving.admin import admin_routes
from shipyard.serving.batching import Batcher
from shipyard.serving.explanations import ServedExplainers, header_length, v1_explanations, v2_explanation
from shipyard.serving.guard import RequestGuard, read_body
from shipyard.serving.inference import (
    PREDICT,
    PREDICT_PROBA,
    ModelInput,
    input_names,
    model_input,
    requested_outputs,
)
from shipyard.serving.metrics import ServerMetrics
from shipyard.serving.platform import PlatformAccess
from shipyard.serving.repository import ModelRepository, ModelState, ServedModel
from shipyard.serving.routing import Experiment
from shipyard.serving.statuses import error_response, status_for
from shipyard.serving.tensors import (
    InferRequest,
    decode_infer_request,
    encode_infer_response,
    model_metadata,
    parse_json_body,
)
from shipyard.serving.wire_json import json_type
from shipyard.store.artifacts import ArtifactStore

if TYPE_CHECKING:
    from shipyard.serving.features import FeatureLookup
    from shipyard.serving.grpc_service import GrpcInferenceService

log = logging.getLogger("shipyard.serving")
# One JSON object per inference request; off unless the logger is enabled at INFO (shipyard serve does).
access_log = logging.getLogger("shipyard.serving.access")
HEADER_LENGTH = "inference-header-content-length"
VERSION_HEADER = "x-shipyard-version"
REQUEST_ID_HEADER = "x-request-id"
_MAX_REQUEST_ID = 256
_T = TypeVar("_T")


@dataclass(frozen=True)
class ServerConfig:
    """Server-wide settings and limits.

    Attributes:
        max_body_bytes: the largest request body, on every route (413).
        workers: predict threads in all.
        header_timeout_s: how long a client may take to send a request's headers (408, connection closed).
        body_timeout_s: how long a client may take to send a request's body (408, connection closed).
        max_connections: connections and requests in flight before new requests get 503 (uvicorn's
            ``limit_concurrency``).
        allowed_hosts: host names clients may reach the server by, besides ``localhost``, IP addresses and
            the bound host; ``"*"`` allows any (turns the DNS-rebinding check off).
        forwarded_allow_ips: proxies whose ``X-Forwarded-For``/``-Proto`` are believed (uvicorn's syntax,
            ``"10.0.0.5,10.0.0.6"`` or ``"*"``); None believes none. Admin's loopback rule never does.
        decode_off_loop_bytes: bodies larger than this are parsed and decoded on a thread.
        grpc_port: where the OIP v2 gRPC service listens (0: a free port); None: no gRPC.
        grpc_host: the address it binds.
        ssl_certfile: a PEM certificate (chain): REST answers HTTPS only and gRPC takes TLS only; None:
            plain HTTP and plaintext gRPC. Check it with :func:`~shipyard.serving.server.read_tls`.
        ssl_keyfile: the certificate's private key (PEM), with ``ssl_certfile``.
    """

    max_body_bytes: int = 16 * 1024 * 1024
    workers: int = 4
    header_timeout_s: float = 10.0
    body_timeout_s: float = 60.0
    max_connections: int = 1000
    allowed_hosts: tuple[str, ...] = ()
    forwarded_allow_ips: str | None = None
    decode_off_loop_bytes: int = 256 * 1024
    grpc_port: int | None = None
    grpc_host: str = "127.0.0.1"
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None


class InferenceServer:
    """Holds the repository, one batcher per model version, the metrics and the payload log; :attr:`app` is
    the ASGI app.

    Args:
        payloads: where sampled requests are logged (default: nowhere).
        admin_token: bearer token the admin routes require; without one they answer loopback clients only.
        platform: the platform server whose grants on ``deployment:<name>`` decide what a caller's platform
            token may do on the admin routes (besides ``admin_token``).
        monitoring: the artifact store whose monitoring gauges ``/metrics`` re-exports for the served models,
            and whose running A/B tests (:mod:`shipyard.releases.abtests`) are resumed at start-up.
        features: the feature store behind ``/v1/features/get-online-features`` and the models that name a
            feature service (their requests send entity keys; the features are looked up here).
    """

    def __init__(
        self,
        repository: ModelRepository,
        config: ServerConfig | None = None,
        *,
        payloads: PayloadLogger | None = None,
        admin_token: str | None = None,
        platform: PlatformAccess | None = None,
        monitoring: ArtifactStore | None = None,
        features: FeatureLookup | None = None,
    ) -> None:
        self.repository = repository
        self.features = features
        wanting = {m.name: m.config.feature_service for m in repository.models if m.config.feature_service}
        if features is not None:
            features.check_services(list(wanting.values()))
        elif wanting:
            raise InvalidInput(
                f"model {next(iter(wanting))!r} names a feature service, but the deployment has no feature "
                "repository (deploy.yaml: features: {repo: ...}, or shipyard serve --features)"
            )
        self.config = config or ServerConfig()
        self.executor = ThreadPoolExecutor(self.config.workers, thread_name_prefix="predict")
        # Large bodies are decoded here, apart from the predict threads, so neither starves the other.
        self.decoder = ThreadPoolExecutor(2, thread_name_prefix="decode")
        self.metrics = ServerMetrics(repository, monitoring)
        self.store = monitoring
        self.payloads = payloads
        self.admin_token = admin_token
        self.platform = platform
        self.explainers = ServedExplainers(repository.loader)
        self.batchers: dict[tuple[str, str], Batcher] = {}
        for served in repository.models:
            self.batchers[served.name, served.label] = Batcher(
                served.predict_batch,
                served.config.batching,
                self.executor,
                on_batch=lambda n, s, served=served: self.metrics.observe_batch(served, n, s),
            )
        self.metrics.queue_depth_of = lambda served: self.batchers[served.name, served.label].queue_depth
        self._shadows: set[asyncio.Task[None]] = set()
        self.grpc: GrpcInferenceService | None = None
        routes: ASGIApp = Starlette(routes=self._routes() + admin_routes(self), lifespan=self._lifespan)
        if self.config.forwarded_allow_ips is not None:
            # Inside the guard, which records the socket's peer before this rewrites the client address.
            routes = ProxyHeadersMiddleware(routes, trusted_hosts=self.config.forwarded_allow_ips)
        self.guard = RequestGuard(
            routes, max_body_bytes=self.config.max_body_bytes, allowed_hosts=self.config.allowed_hosts
        )
        self.app: ASGIApp = self.guard

    @contextlib.asynccontextmanager
    async def _lifespan(self, app: Starlette) -> AsyncIterator[None]:
        self.repository.load_all()
        if self.payloads is not None:
            self.payloads.start()
        if self.store is not None:
            await asyncio.get_running_loop().run_in_executor(None, self._resume_experiments, self.store)
        if self.config.grpc_port is not None:
            # Imported only here: grpcio is the optional `grpc` extra.
            from shipyard.serving.grpc_service import GrpcInferenceService

            self.grpc = GrpcInferenceService(self)
            await self.grpc.start(self.config.grpc_host, self.config.grpc_port)
        yield
        # Graceful shutdown: uvicorn stops accepting first; what is queued or running finishes here.
        if self.grpc is not None:
            await self.grpc.stop()
        await asyncio.gather(*(b.drain() for b in self.batchers.values()))
        self.executor.shutdown(wait=True)
        self.decoder.shutdown(wait=True)
        self.explainers.close()
        if self.payloads is not None:
            self.payloads.close()
        if self.platform is not None:
            await self.platform.aclose()

    def _resume_experiments(self, store: ArtifactStore) -> None:
        """Assign by the A/B tests recorded as running on the served models, as before a restart."""
        from shipyard.releases import abtests  # NOTE: here: pandas-heavy, and most servers run no test

        for name, deployment in self.repository.deployments.items():
            try:
                test = abtests.running(store, name)
                if test is not None:
                    deployment.start_experiment(Experiment(test.id, test.arms, test.unit))
                    log.info("model %s: A/B test %s resumed", name, test.id)
            except ShipyardError as exc:  # a test this server can no longer run: say so, serve anyway
                log.warning("model %s: the running A/B test was not resumed: %s", name, exc)

    def _routes(self) -> list[Route]:
        model = "/v2/models/{name}"
        versioned = "/v2/models/{name}/versions/{version}"
        # Inference first: Starlette tries routes in order (no two of these patterns match one path).
        return [
            Route(model + "/infer", self.infer, methods=["POST"]),
            Route(versioned + "/infer", self.infer, methods=["POST"]),
            Route(model + "/explain", self.v2_explain, methods=["POST"]),
            Route(versioned + "/explain", self.v2_explain, methods=["POST"]),
            Route("/v2/health/live", self.live),
            Route("/v2/health/ready", self.ready),
            Route("/v2", self.server_metadata),
            Route(model, self.model_metadata),
            Route(versioned, self.model_metadata),
            Route(model + "/ready", self.model_ready),
            Route(versioned + "/ready", self.model_ready),
            Route("/v1/models/{name}:predict", self.v1_predict, methods=["POST"]),
            Route("/v1/models/{name}:explain", self.v1_explain, methods=["POST"]),
            Route("/models/{name}/predict", self.records_predict, methods=["POST"]),
            Route("/metrics", self.metrics_endpoint),
            Route("/v1/features/get-online-features", self.online_features, methods=["POST"]),
        ]

    # ------------------------------------------------------------------ health and metadata
    async def live(self, request: Request) -> Response:
        return JSONResponse({"live": True})

    async def ready(self, request: Request) -> Response:
        body = await self.readiness()
        return JSONResponse(body, status_code=200 if body["ready"] else 503)

    async def readiness(self) -> dict[str, Any]:
        """``{"ready": bool}``: every model version loaded and, with a feature repository, its online store
        answering (else ``"features"`` says why not; asked on a worker thread, it is I/O)."""
        body: dict[str, Any] = {"ready": self.repository.ready}
        if self.features is not None:
            problem = await asyncio.get_running_loop().run_in_executor(self.executor, self.features.problem)
            if problem is not None:
                body = {"ready": False, "features": problem}
        return body

    async def online_features(self, request: Request) -> Response:
        return await self._guard(request, self._online_features)

    async def _online_features(self, request: Request) -> Response:
        if self.features is None:
            raise NotFound("this server has no feature repository (deploy.yaml: features: {repo: ...})")
        body = await self._body(request)
        loop = asyncio.get_running_loop()
        return JSONResponse(await loop.run_in_executor(self.executor, self.features.feast_request, body))

    async def server_metadata(self, request: Request) -> Response:
        return JSONResponse(
            {"name": "shipyard", "version": __version__, "extensions": ["binary_tensor_data"]}
        )

    async def model_metadata(self, request: Request) -> Response:
        return await self._guard(request, self._model_metadata)

    async def _model_metadata(self, request: Request) -> Response:
        served = self._served(request)
        pinned = bool(request.path_params.get("version") or _pinned(request))
        return JSONResponse(self.metadata(served, pinned))

    def metadata(self, served: ServedModel, pinned: bool) -> dict[str, Any]:
        """The v2 model metadata of ``served``: unpinned, it describes the version traffic picks and lists
        every version served.

        Raises:
            ModelNotReady: the version has not loaded (or failed to).
        """
        served.require_ready()
        inputs = [(t.name, t.datatype, t.shape) for t in served.inputs]
        outputs = [(t.name, t.datatype, t.shape) for t in served.outputs]
        deployment = self.repository.deployment(served.name)
        versions = [served.version] if pinned else _distinct_versions(deployment.versions.values())
        body = model_metadata(served.name, versions, served.platform, inputs, outputs)
        for entry, info in zip(body["outputs"], served.outputs, strict=True):
            if info.parameters:
                entry["parameters"] = info.parameters  # predict_proba's classes, in column order
        return body

    async def model_ready(self, request: Request) -> Response:
        return await self._guard(request, self._model_ready)

    async def _model_ready(self, request: Request) -> Response:
        served = self._served(request)
        body: dict[str, Any] = {"name": served.name, "version": served.version, "ready": False}
        body["state"] = served.state.value
        if served.state is ModelState.READY:
            body["ready"] = True
            return JSONResponse(body)
        if served.error:
            body["error"] = served.error
        return JSONResponse(body, status_code=503)

    async def metrics_endpoint(self, request: Request) -> Response:
        payload, content_type = self.metrics.render()
        return Response(payload, media_type=content_type)

    # ------------------------------------------------------------------ inference
    async def infer(self, request: Request) -> Response:
        return await self._guard(request, self._infer, protocol="v2")

    async def _infer(self, request: Request) -> Response:
        served = self._served(request)
        body = await self._body(request)
        length = request.headers.get(HEADER_LENGTH)
        try:
            header_length = int(length) if length is not None else None
        except ValueError:
            raise InvalidInput(
                f"header Inference-Header-Content-Length is not a number: {length!r}"
            ) from None
        decoded, item = await self.decode(body, _v2_input, served, body, header_length)
        if decoded.id:
            request.state.request_id = checked_request_id(decoded.id, "id")
        outputs = await self._predict_for(request, served, item, "v2")
        binary = {o.name for o in decoded.outputs if o.binary}
        if decoded.binary_output_default and not decoded.outputs:
            binary = set(item.outputs)
        answered = [(name, outputs[name]) for name in item.outputs]  # in the order asked
        payload, length_out = encode_infer_response(served.name, served.version, decoded.id, answered, binary)
        headers = {HEADER_LENGTH: str(length_out)} if length_out is not None else None
        media = "application/octet-stream" if length_out is not None else "application/json"
        return Response(payload, media_type=media, headers=headers)

    async def v1_predict(self, request: Request) -> Response:
        return await self._guard(request, self._v1_predict, protocol="v1")

    async def _v1_predict(self, request: Request) -> Response:
        served = self._served(request)
        wanted = _query_output(request, served)
        body = await self._body(request)
        if served.config.feature_service:
            item = await self._with_features(served, body, "instances", wanted)
        else:
            item = await self.decode(body, _v1_input, served, body, wanted)
        outputs = await self._predict_for(request, served, item, "v1")
        return JSONResponse(_predictions(served, outputs, wanted))

    async def records_predict(self, request: Request) -> Response:
        return await self._guard(request, self._records_predict, protocol="records")

    async def _records_predict(self, request: Request) -> Response:
        served = self._served(request)
        wanted = _query_output(request, served)
        body = await self._body(request)
        if served.config.feature_service:
            item = await self._with_features(served, body, "records", wanted)
        else:
            item = await self.decode(body, _records_input, served, body, wanted)
        outputs = await self._predict_for(request, served, item, "records")
        return JSONResponse(_predictions(served, outputs, wanted))

    # ------------------------------------------------------------------ explanations (:mod:`.explanations`)
    async def v1_explain(self, request: Request) -> Response:
        return await self._guard(request, self._v1_explain, protocol="v1-explain")

    async def _v1_explain(self, request: Request) -> Response:
        served = self._served(request)
        body = await self._body(request)
        if served.config.feature_service:
            item = await self._with_features(served, body, "instances", (PREDICT,))
        else:
            item = await self.decode(body, _v1_input, served, body)
        return JSONResponse(v1_explanations(await self.explainers.explain(served, item)))

    async def v2_explain(self, request: Request) -> Response:
        return await self._guard(request, self._v2_explain, protocol="v2-explain")

    async def _v2_explain(self, request: Request) -> Response:
        served = self._served(request)
        body = await self._body(request)
        length = header_length(request.headers.get(HEADER_LENGTH))
        decoded, item = await self.decode(body, _v2_input, served, body, length)
        if decoded.id:
            request.state.request_id = checked_request_id(decoded.id, "id")
        explanation = await self.explainers.explain(served, item)
        return JSONResponse(v2_explanation(served, decoded.id, explanation))

    async def _with_features(
        self, served: ServedModel, body: bytes, field: str, wanted: tuple[str, ...]
    ) -> ModelInput:
        """The model's input for records of entity keys: its feature service's features looked up (on a
        worker thread: the online store is I/O), plus request data the model takes."""
        assert self.features is not None and served.config.feature_service is not None
        document = parse_json_body(body)
        if isinstance(document, dict):
            document = document.get("instances", document.get("dataframe_records"))
        records = document if isinstance(document, list) else None
        if not records or not all(isinstance(r, dict) for r in records):
            raise InvalidInput(
                f"{field}: a model served with features takes records [{{join_key: value, ...}}, ...]"
            )
        columns = await asyncio.get_running_loop().run_in_executor(
            self.executor,
            self.features.model_columns,
            served.config.feature_service,
            records,
            input_names(served.signature),
        )
        return model_input(served.name, served.signature, columns, wanted)

    async def predict(
        self,
        served: ServedModel,
        item: ModelInput,
        protocol: str,
        request_id: str | None,
        *,
        pinned: str | None = None,
        experiment: str | None = None,
    ) -> dict[str, np.ndarray]:
        """``served``'s outputs for one request, through its batcher; mirrored to the deployment's shadow
        unless the request ``pinned`` a version; payload-logged (sampled) either way, and always when the
        ``experiment`` (an A/B test's id) assigned it: its analysis needs every exposure.

        Raises:
            ShipyardError: the version is not ready, the queue is full, or the model raised.
        """
        served.require_ready()
        shadow = None if pinned else self.repository.deployment(served.name).shadow_for(served)
        if shadow is not None and shadow.is_ready:
            task = asyncio.get_running_loop().create_task(self._mirror(shadow, item, protocol, request_id))
            self._shadows.add(task)  # held until done, so the task is not collected mid-flight
            task.add_done_callback(self._shadows.discard)
        started = time.perf_counter()
        try:
            result: dict[str, np.ndarray] = await self.batchers[served.name, served.label].submit(
                item, item.rows
            )
        except ShipyardError as exc:
            status = status_for(exc)
            self._log_payload(
                served, protocol, request_id, item, None, started, status, str(exc), experiment=experiment
            )
            raise
        self._log_payload(
            served, protocol, request_id, item, result, started, 200, None, experiment=experiment
        )
        return result

    async def _predict_for(
        self, request: Request, served: ServedModel, item: ModelInput, protocol: str
    ) -> dict[str, np.ndarray]:
        """:meth:`predict` for a REST request: its id, pinned version and A/B test from the request."""
        state = request.state
        return await self.predict(
            served, item, protocol, state.request_id, pinned=_pinned(request), experiment=state.experiment
        )

    async def _mirror(
        self, shadow: ServedModel, item: ModelInput, protocol: str, request_id: str | None
    ) -> None:
        """Run a copy of a request on the shadow version: logged, never answered, never raised."""
        if shadow.is_ready and any(o not in shadow.output_names for o in item.outputs):
            # A shadow without probabilities still shows how its labels compare.
            item = dataclasses.replace(item, outputs=(PREDICT,))
        started = time.perf_counter()
        try:
            result = await self.batchers[shadow.name, shadow.label].submit(item, item.rows)
        except ShipyardError as exc:
            self._log_payload(
                shadow, protocol, request_id, item, None, started, status_for(exc), str(exc), True
            )
            return
        except Exception as exc:
            log.warning("shadow %s/%s failed: %s", shadow.name, shadow.label, exc)
            return
        self._log_payload(shadow, protocol, request_id, item, result, started, 200, None, True)

    def _log_payload(
        self,
        served: ServedModel,
        protocol: str,
        request_id: str | None,
        item: ModelInput,
        outputs: dict[str, np.ndarray] | None,
        started: float,
        status: int,
        error: str | None,
        shadow: bool = False,
        experiment: str | None = None,
    ) -> None:
        if self.payloads is None or (experiment is None and not self.payloads.sampled()):
            return
        inputs = dict(item.columns) if item.columns is not None else item.array
        self.payloads.log(
            model=served.name,
            version=served.version,
            label=served.label,
            protocol=protocol,
            request_id=request_id,
            status=status,
            latency_s=time.perf_counter() - started,
            inputs=inputs,
            outputs=outputs,
            rows=item.rows,
            shadow=shadow,
            error=error,
            model_uri=served.source_uri,
            experiment=experiment,
            transformed=getattr(outputs, "transformed", None),
        )

    # ------------------------------------------------------------------ plumbing
    def _served(self, request: Request) -> ServedModel:
        params = request.path_params
        served, experiment = self.choose(
            params["name"], params.get("version") or _pinned(request), request.headers.get
        )
        request.state.served = served
        request.state.experiment = experiment
        return served

    def choose(
        self, name: str, version: str | None, header: Callable[[str], str | None]
    ) -> tuple[ServedModel, str | None]:
        """The version of ``name`` a request gets — the one it pins (``version``), its arm of the A/B test
        running on ``name`` (by the unit ``header``), or the one traffic picks — and the test's id if it
        assigned the request.

        Raises:
            NotFound: no such model or version (both named).
            ModelNotReady: no version of it that takes traffic is ready.
        """
        deployment = self.repository.deployment(name)
        if version is not None:
            return deployment.find(version), None
        experiment = deployment.experiment
        if experiment is None:
            return deployment.route(), None
        return deployment.assigned(header(experiment.unit))

    async def _body(self, request: Request) -> bytes:
        return await read_body(request, self.config.max_body_bytes, self.config.body_timeout_s)

    async def decode(self, body: bytes, decode: Callable[..., _T], *args: Any) -> _T:
        """``decode(*args)``: inline for a small body, on a decode thread for a large one (parsing megabytes
        of JSON on the event loop would hold every other request, health checks included)."""
        if len(body) <= self.config.decode_off_loop_bytes:
            return decode(*args)
        return await asyncio.get_running_loop().run_in_executor(self.decoder, decode, *args)

    async def _guard(self, request: Request, handler: Any, protocol: str = "") -> Response:
        started = time.perf_counter()
        name = request.path_params.get("name", "")
        try:
            if protocol:
                given = request.headers.get(REQUEST_ID_HEADER)
                request.state.request_id = (
                    new_request_id() if given is None else checked_request_id(given, "X-Request-ID")
                )
            response: Response = await handler(request)
        except ShipyardError as exc:
            response = error_response(exc)
        except Exception as exc:  # a bug of ours: answer 500 with the reason, keep serving
            log.exception("unexpected error serving %s", request.url.path)
            response = error_response(PredictionFailed(f"internal error: {type(exc).__name__}: {exc}"))
        served = getattr(request.state, "served", None)
        if served is not None:
            response.headers[VERSION_HEADER] = served.label
        if protocol:
            request_id = getattr(request.state, "request_id", None)
            if request_id is not None:
                response.headers[REQUEST_ID_HEADER] = request_id
            version = served.version if served is not None else ""
            seconds = time.perf_counter() - started
            self.metrics.observe_request(name, version, protocol, response.status_code, seconds)
            if access_log.isEnabledFor(logging.INFO):
                access_log.info(
                    json.dumps(
                        {
                            "method": request.method,
                            "path": request.scope["path"],  # request.url would build a whole URL
                            "status": response.status_code,
                            "ms": round(seconds * 1000, 3),
                            "model": name,
                            "version": version,
                            "label": served.label if served is not None else "",
                            "protocol": protocol,
                            "request_id": request_id,
                            "client": request.client.host if request.client else "",
                        }
                    )
                )
        return response


class _RequestIds:
    """Request ids: 32 hex characters, like ``uuid4().hex``, unique across processes by a random prefix
    (drawn again in a forked child) and within one by a counter, so no request pays for a getrandom call
    (~50 µs on some VMs, a tenth of a request's cost)."""

    def __init__(self) -> None:
        self.reseed()
        os.register_at_fork(after_in_child=self.reseed)

    def reseed(self) -> None:
        self._prefix = os.urandom(8).hex()
        self._counter = itertools.count()

    def __call__(self) -> str:
        return f"{self._prefix}{next(self._counter):016x}"


new_request_id = _RequestIds()
"""A fresh request id, for a request that did not bring one."""


def checked_request_id(value: str, field: str) -> str:
    """A request id fit to log and to echo in a header: 1-256 printable ASCII characters.

    Raises:
        InvalidInput: naming ``field``.
    """
    if not value or len(value) > _MAX_REQUEST_ID or not (value.isascii() and value.isprintable()):
        raise InvalidInput(
            f"request {field} must be 1-{_MAX_REQUEST_ID} printable ASCII characters, got {value[:40]!r}"
        )
    return value


def _distinct_versions(served: Iterable[ServedModel]) -> list[str]:
    """Each version once (two labels, ``@champion`` and ``/3``, may load one version), numbers in numeric
    order and named versions after them."""
    versions = {v.version for v in served}
    return sorted(versions, key=lambda v: (0, int(v), "") if v.isdigit() else (1, 0, v))


def _pinned(request: Request) -> str | None:
    """The version a request pins by header, if any."""
    return request.headers.get(VERSION_HEADER) or None


def _available_outputs(served: ServedModel) -> tuple[str, ...] | None:
    """What ``served`` can answer; None until it has loaded (predicting then says why it cannot)."""
    return served.output_names if served.is_ready else None


def _v2_input(served: ServedModel, body: bytes, header_length: int | None) -> tuple[InferRequest, ModelInput]:
    """A v2 body as its decoded request and the model's input."""
    decoded = decode_infer_request(body, header_length)
    return decoded, request_input(served, decoded)


def request_input(served: ServedModel, decoded: InferRequest) -> ModelInput:
    """A decoded v2 request (REST or gRPC) as the model's input, with the outputs it asks for: by name
    (``outputs``) or by kind (``parameters.output``: ``labels`` or ``probabilities``)."""
    names = [o.name for o in decoded.outputs]
    kind = decoded.parameters.get("output")
    wanted = requested_outputs(served.name, _available_outputs(served), names, kind)
    tensors = [(t.name, t.data) for t in decoded.inputs]
    return model_input(served.name, served.signature, tensors, wanted)


def _query_output(request: Request, served: ServedModel) -> tuple[str, ...]:
    """The outputs a v1 or records request asks for with ``?output=labels|probabilities`` (labels without)."""
    kind = request.query_params.get("output")
    if kind is None:
        return (PREDICT,)
    return requested_outputs(
        served.name, _available_outputs(served), kind=kind, where="query parameter output"
    )


def _predictions(
    served: ServedModel, outputs: dict[str, np.ndarray], wanted: tuple[str, ...]
) -> dict[str, Any]:
    """A v1 or records answer: ``{"predictions": […]}``, with ``classes`` (the columns' labels) beside
    probabilities."""
    (name,) = wanted
    answer: dict[str, Any] = {"predictions": outputs[name].tolist()}
    if name == PREDICT_PROBA:
        classes = next((o.parameters for o in served.outputs if o.name == name and o.parameters), None)
        if classes is not None:
            answer["classes"] = classes["classes"]
    return answer


def _v1_input(served: ServedModel, body: bytes, wanted: tuple[str, ...] = (PREDICT,)) -> ModelInput:
    """A KServe v1 body (``{"instances": [...]}``) as the model's input."""
    document = parse_json_body(body)
    if not isinstance(document, dict) or "instances" not in document:
        raise InvalidInput('a v1 predict body is {"instances": [...]}')
    return _rows_input(served, document["instances"], "instances", wanted)


def _records_input(served: ServedModel, body: bytes, wanted: tuple[str, ...] = (PREDICT,)) -> ModelInput:
    """A records body (``[{col: value}, …]`` or ``{"dataframe_records": …}``) as the model's input."""
    document = parse_json_body(body)
    if isinstance(document, dict) and "dataframe_records" in document:
        document = document["dataframe_records"]
    if not isinstance(document, list) or not all(isinstance(r, dict) for r in document):
        raise InvalidInput('a predict body is a list of records [{"column": value, ...}, ...]')
    return _rows_input(served, document, "records", wanted)


def _rows_input(served: ServedModel, rows: Any, field: str, wanted: tuple[str, ...]) -> ModelInput:
    """Rows of JSON (records or lists) as one request's input. ``null`` stays None for the model's signature
    to judge (a missing value where the column allows one); nested values in a record are refused."""
    if not isinstance(rows, list) or not rows:
        raise InvalidInput(f"{field} must be a non-empty list")
    if all(isinstance(r, dict) for r in rows):
        names = list(dict.fromkeys(k for r in rows for k in r))
        columns = [(n, _column([r.get(n) for r in rows], n)) for n in names]
        return model_input(served.name, served.signature, columns, wanted)
    try:
        matrix = np.asarray(rows)
    except ValueError as exc:
        raise InvalidInput(f"{field} rows must all have the same length: {exc}") from None
    if matrix.dtype == object and not all(_is_scalar(v) for v in matrix.ravel()):
        raise InvalidInput(f"{field} rows must all have the same length and hold plain values")
    if matrix.dtype.kind == "U" and not all(type(v) is str for v in matrix.ravel().tolist()):
        matrix = np.array(rows, dtype=object)  # numbers among strings: each keeps its own type
    return model_input(served.name, served.signature, [("instances", matrix)], wanted)


def _column(values: Sequence[Any], name: str) -> np.ndarray:
    """One record column as an array; values keep their JSON types (numpy would turn ``[1.5, "a"]`` into
    strings, and fails on a list among scalars)."""
    try:
        array: np.ndarray | None = np.asarray(values)
    except ValueError:  # a list among scalars, or lists of different lengths
        array = None
    if array is None or array.ndim != 1 or array.dtype == object:
        nested = next((i for i, v in enumerate(values) if isinstance(v, list | dict)), None)
        if nested is not None:
            raise InvalidInput(
                f"column {name!r} holds {json_type(values[nested])} at row {nested}; a record maps each "
                "column to one value"
            )
    if array is None or (array.dtype.kind == "U" and not all(type(v) is str for v in values)):
        return np.array(values, dtype=object)
    return array


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, bool | int | float | str)
