"""``shipyard serve``: serve one registered model, or the models of a ``deploy.yaml``."""

from __future__ import annotations

import importlib.util
import logging
import sys
from pathlib import Path

import typer

from shipyard.config import get_settings
from shipyard.errors import InvalidInput

_LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def serve(
    target: str = typer.Argument(
        ..., help="A model URI (models:/churn@champion, runs:/…, a folder) or deploy.yaml."
    ),
    name: str = typer.Option(None, "--name", help="Name to serve a single model under (default: its own)."),
    host: str = typer.Option("127.0.0.1", "--host", help="Interface to listen on (loopback by default)."),
    port: int = typer.Option(8080, "--port", min=1, max=65535),
    grpc_port: int = typer.Option(
        None,
        "--grpc-port",
        min=0,
        max=65535,
        help="Also serve OIP v2 over gRPC on this port, on --host (needs the grpc extra; default off).",
        show_default=False,
    ),
    ssl_certfile: str = typer.Option(
        None,
        "--ssl-certfile",
        help="Serve HTTPS, and gRPC over TLS, with this PEM certificate (deploy.yaml: server: ssl_certfile).",
        show_default=False,
    ),
    ssl_keyfile: str = typer.Option(
        None, "--ssl-keyfile", help="The certificate's private key (PEM).", show_default=False
    ),
    max_batch_size: int = typer.Option(64, "--max-batch-size", min=1, help="Most rows in one predict call."),
    max_latency_ms: float = typer.Option(
        2.0, "--max-latency-ms", min=0, help="Longest wait to fill a batch."
    ),
    batching: bool = typer.Option(True, "--batching/--no-batching", help="Merge concurrent requests."),
    max_queue: int = typer.Option(2048, "--max-queue", min=1, help="Waiting requests before 503."),
    workers: int = typer.Option(4, "--workers", min=1, help="Predict threads."),
    max_body_mb: float = typer.Option(16.0, "--max-body-mb", min=0.001, help="Largest request body (413)."),
    payload_log_rate: float = typer.Option(
        0.0,
        "--payload-log-rate",
        min=0.0,
        max=1.0,
        help="Share of requests logged to <artifact root>/payloads.",
    ),
    admin_token: str = typer.Option(
        None,
        "--admin-token",
        envvar="SHIPYARD_ADMIN_TOKEN",
        help="Bearer token for /admin routes (default: loopback clients only).",
        show_default=False,
    ),
    platform: str = typer.Option(
        None,
        "--platform",
        envvar="SHIPYARD_PLATFORM_URL",
        help="Platform server whose grants on deployment:NAME decide who may use /admin routes with a "
        "platform token; each served model is registered there (as the user of SHIPYARD_TRACKING_TOKEN).",
        show_default=False,
    ),
    public_url: str = typer.Option(
        None,
        "--public-url",
        help="This server's URL as the platform records it (default: http(s)://HOST:PORT).",
        show_default=False,
    ),
    heartbeat: float = typer.Option(
        15.0,
        "--heartbeat",
        min=0.0,
        help="Seconds between reports of what this server serves and how (versions, traffic, requests, "
        "errors, latency) to the platform, or to this machine's store without one; 0 turns them off.",
    ),
    allowed_hosts: list[str] = typer.Option(
        [],
        "--allowed-hosts",
        help="Host names clients may use besides localhost, IP addresses and --host (repeat or "
        "comma-separate; '*' allows any).",
        show_default=False,
    ),
    forwarded_allow_ips: str = typer.Option(
        None,
        "--forwarded-allow-ips",
        help="Proxies whose X-Forwarded-For/-Proto to believe ('10.0.0.5,10.0.0.6' or '*'); default none.",
        show_default=False,
    ),
    access_log: bool = typer.Option(
        True, "--access-log/--no-access-log", help="One JSON line per inference request on stderr."
    ),
    log_level: str = typer.Option("info", "--log-level", help="debug, info, warning or error."),
    features: Path = typer.Option(
        None,
        "--features",
        help="A feature repository: serves /v1/features/get-online-features, and looks features up for "
        "models that name a feature service (--feature-service, or deploy.yaml).",
        show_default=False,
    ),
    feature_service: str = typer.Option(
        None,
        "--feature-service",
        help="With one model URI: requests send entity keys; the model gets this feature service's features.",
        show_default=False,
    ),
    preprocess: str = typer.Option(
        None,
        "--preprocess",
        help="With one model URI: a model URI whose predict turns request rows into the model's rows, "
        "run in the same batch (a pyfunc; deploy.yaml: preprocess).",
        show_default=False,
    ),
    postprocess: str = typer.Option(
        None,
        "--postprocess",
        help="With one model URI: a model URI whose predict turns the model's outputs into the answer.",
        show_default=False,
    ),
    prefer: str = typer.Option(
        "auto",
        "--prefer",
        help="Which runtime runs a model that has a verified ONNX copy: auto (the ONNX copy), native or "
        "onnx. A deploy.yaml model's `options: {prefer: ...}` overrides it for that model.",
    ),
    trusted: bool = typer.Option(
        False,
        "--trusted",
        help="Load pickled models too (unpickling runs code from the file): only models whose authors you "
        "trust. With a deploy.yaml it trusts every model there; `trusted: true` trusts one.",
    ),
) -> None:
    """Serve models over Open Inference Protocol v2 (and KServe v1) until Ctrl-C or SIGTERM.

    Examples:

        shipyard serve models:/churn@champion --port 8080

        shipyard serve deploy.yaml --payload-log-rate 0.1

        shipyard serve models:/churn@champion --name churn --platform http://platform:5000

        shipyard serve models:/churn@champion --features features/ --feature-service churn

        shipyard serve models:/churn/3 --trusted

        shipyard serve models:/churn@champion --port 8080 --grpc-port 8081

        shipyard serve models:/churn@champion --preprocess models:/churn-prep@champion

        shipyard serve models:/churn@champion --ssl-certfile cert.pem --ssl-keyfile key.pem --grpc-port 8081
    """
    # NOTE: imported here, not at the top: the server stack (starlette, uvicorn, prometheus, the registry)
    # would add ~0.7 s to every other shipyard command.
    from dataclasses import replace

    from shipyard.models import get as get_version
    from shipyard.models import load
    from shipyard.payloads import PayloadLogConfig, PayloadLogger
    from shipyard.registry.flavors.sklearn import PREFERENCES
    from shipyard.serving.accesslog import ACCESS_LOGGER, log_access_in_blocks
    from shipyard.serving.app import InferenceServer, ServerConfig
    from shipyard.serving.batching import BatchPolicy
    from shipyard.serving.deployment import default_name, load_deployment
    from shipyard.serving.platform import PlatformAccess, register_deployments
    from shipyard.serving.repository import ModelConfig, ModelRepository
    from shipyard.serving.server import read_tls, run_server
    from shipyard.store.artifacts import ArtifactStore

    settings = get_settings()
    path = Path(target)
    feature_repo, online_store = features, settings.online_store
    if path.suffix in (".yaml", ".yml"):
        if preprocess or postprocess:
            raise InvalidInput(
                "--preprocess and --postprocess go with one model URI; in a deploy.yaml give each model's "
                "preprocess: and postprocess:"
            )
        deployment = load_deployment(path)
        configs, server_config = deployment.model_configs(), deployment.server_config()
        if deployment.features is not None:
            feature_repo = feature_repo or Path(deployment.features.repo)
            online_store = deployment.features.online_store or online_store
        payload_config = deployment.payload_config()
        if payload_log_rate:
            payload_config = PayloadLogConfig(
                payload_log_rate, payload_config.max_rows, payload_config.max_seconds
            )
    else:
        payload_config = PayloadLogConfig(payload_log_rate)
        policy = BatchPolicy(max_batch_size, max_latency_ms, max_queue, enabled=batching)
        configs = [
            ModelConfig(
                name or default_name(target),
                target,
                batching=policy,
                feature_service=feature_service,
                preprocess=preprocess,
                postprocess=postprocess,
            )
        ]
        server_config = ServerConfig(int(max_body_mb * 1024 * 1024), workers)
    if prefer not in PREFERENCES:
        raise InvalidInput(f"--prefer must be one of {', '.join(PREFERENCES)}, got {prefer!r}")
    # The ONNX copy by default: it is kept only when it reproduced the model's predictions at save time.
    configs = [replace(c, options={"prefer": prefer, **c.options}) for c in configs]
    if trusted:  # the loader's trusted=True: without it a pickled model fails to load, saying why
        configs = [replace(c, options={**c.options, "trusted": True}) for c in configs]
    names = tuple(n.strip() for given in allowed_hosts for n in given.split(",") if n.strip())
    server_config = replace(
        server_config,
        allowed_hosts=(*server_config.allowed_hosts, *names),
        forwarded_allow_ips=forwarded_allow_ips or server_config.forwarded_allow_ips,
        grpc_port=server_config.grpc_port if grpc_port is None else grpc_port,
        grpc_host=host,
    )
    if ssl_certfile is not None or ssl_keyfile is not None:  # the command line's pair replaces deploy.yaml's
        server_config = replace(server_config, ssl_certfile=ssl_certfile, ssl_keyfile=ssl_keyfile)
    read_tls(server_config.ssl_certfile, server_config.ssl_keyfile)  # before anything starts
    scheme = "https" if server_config.ssl_certfile else "http"
    if server_config.grpc_port is not None:
        if server_config.grpc_port == port:
            raise InvalidInput(f"--grpc-port {port} is also the REST --port; give each its own")
        if importlib.util.find_spec("grpc") is None:
            raise InvalidInput("--grpc-port needs grpcio: pip install 'shipyard[grpc]'")
    logging.basicConfig(level=getattr(logging, log_level.upper(), logging.INFO), format=_LOG_FORMAT)
    access = None
    if platform:
        access = PlatformAccess(platform)
        # Before loading anything: a refusal is one line and no server starts.
        own_url = public_url or f"{scheme}://{_url_host(host)}:{port}"
        served = [c.name for c in configs]
        records = register_deployments(access.url, served, own_url, settings.tracking_token)
        logging.getLogger("shipyard.serving").info(
            "registered %s on the platform %s as %s", ", ".join(r.name for r in records), access.url, own_url
        )
    lookup = None
    if feature_repo is not None:
        from shipyard.features import FeatureStore
        from shipyard.features.online import open_online_store
        from shipyard.serving.features import FeatureLookup, services_from_models

        online = open_online_store(online_store, Path(settings.home))
        lookup = FeatureLookup(
            FeatureStore.from_repository(feature_repo, online_store=online, settings=settings)
        )
        # A model trained on a service's training set recorded it: requests then send entity keys.
        configs = services_from_models(configs, lambda uri: get_version(uri, settings=settings))
    repository = ModelRepository(configs, lambda uri, **options: load(uri, settings=settings, **options))
    store = ArtifactStore.configured(settings)
    payloads = PayloadLogger(store, payload_config)
    server = InferenceServer(
        repository,
        server_config,
        payloads=payloads,
        admin_token=admin_token,
        platform=access,
        monitoring=store,
        features=lookup,
    )
    access_lines = None
    if access_log:
        access_lines = log_access_in_blocks(sys.stderr, logging.Formatter(_LOG_FORMAT))
    else:
        logging.getLogger(ACCESS_LOGGER).setLevel(logging.WARNING)
    beats = None
    if heartbeat > 0:
        from shipyard.serving.heartbeat import Heartbeat, publisher

        own_url = public_url or f"{scheme}://{_url_host(host)}:{port}"
        publish = publisher(settings, access.url if access is not None else None, own_url)
        beats = Heartbeat(
            server.metrics, lambda: repository.deployments.values(), publish, interval_s=heartbeat
        )
        beats.start()
    try:
        run_server(server, host=host, port=port, log_level=log_level)
    finally:
        if beats is not None:
            beats.stop()
        if access_lines is not None:
            access_lines.close()


def _url_host(host: str) -> str:
    """The host part of this server's URL: a wildcard bind is reached by the machine's name."""
    if host in ("", "0.0.0.0", "::"):
        import socket

        return socket.getfqdn()
    return f"[{host}]" if ":" in host else host
