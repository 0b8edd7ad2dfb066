"""What a server serves: one model URI from the command line, or a ``deploy.yaml`` with several.

::

    server: {max_body_mb: 16, workers: 4}   # also allowed_hosts: [models.internal], forwarded_allow_ips,
                                            # header_timeout_s, body_timeout_s, max_connections,
                                            # grpc_port, ssl_certfile, ssl_keyfile (ServerConfig)
    payload_log: {sample_rate: 0.1, max_rows: 10000, max_seconds: 60}   # into <artifact root>/payloads
    models:
      - name: churn                       # default: the registered model's name (or the folder's)
        versions:                         # or, for one version: uri: models:/churn@champion
          champion: models:/churn@champion
          challenger: models:/churn@challenger
        traffic: {champion: 90, challenger: 10}
        shadow: null                      # a label that gets a copy of every request (answer discarded)
        batching: {max_batch_size: 64, max_latency_ms: 2, max_queue: 2048, enabled: true}
        options: {device: auto}           # passed to the model's loader
        # uri: ./model                    # a package folder: a relative path is from this file
        trusted: false                    # true: a pickled model may load (unpickling runs code from it)
        feature_service: churn            # requests send entity keys; the features are looked up online
        preprocess: models:/churn-prep@champion   # request rows -> the model's rows, in the same batch
        postprocess: models:/churn-labels/1       # outputs -> the answer (see serving/transformers.py)
    features: {repo: features/, online_store: redis://cache:6379/0}   # the feature repository (a relative
                                          # path is from this file); online_store: default the setting's
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from shipyard.errors import InvalidInput
from shipyard.payloads import PayloadLogConfig
from shipyard.registry.uri import PathUri, RegistryUri, RunModelUri, parse_model_uri
from shipyard.serving.app import ServerConfig
from shipyard.serving.batching import BatchPolicy
from shipyard.serving.repository import ModelConfig

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
NAME_RULE = "a model name is letters, digits, '_', '.' and '-' (at most 128)"


class BatchingSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_batch_size: int = Field(64, ge=1)
    max_latency_ms: float = Field(2.0, ge=0)
    max_queue: int = Field(2048, ge=1)
    max_in_flight: int = Field(2, ge=1)
    enabled: bool = True


class ModelSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    uri: str | None = None
    versions: dict[str, str] = Field(default_factory=dict)
    traffic: dict[str, float] = Field(default_factory=dict)
    shadow: str | None = None
    name: str | None = None
    version: str | None = None
    batching: BatchingSpec = Field(default_factory=BatchingSpec)  # type: ignore[arg-type]
    options: dict[str, Any] = Field(default_factory=dict)
    trusted: bool = False
    feature_service: str | None = None
    preprocess: str | None = None
    postprocess: str | None = None

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str | None) -> str | None:
        if value is not None and not NAME.match(value):
            raise ValueError(NAME_RULE)
        return value


class PayloadLogSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sample_rate: float = Field(0.0, ge=0, le=1)
    max_rows: int = Field(10_000, ge=1)
    max_seconds: float = Field(60.0, gt=0)


class ServerSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_body_mb: float = Field(16, gt=0)
    workers: int = Field(4, ge=1)
    header_timeout_s: float = Field(10.0, gt=0)
    body_timeout_s: float = Field(60.0, gt=0)
    max_connections: int = Field(1000, ge=1)
    allowed_hosts: list[str] = Field(default_factory=list)
    forwarded_allow_ips: str | None = None
    grpc_port: int | None = Field(None, ge=0, le=65535)
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None


class FeaturesSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    repo: str
    online_store: str | None = None


class DeploymentSpec(BaseModel):
    """A whole ``deploy.yaml``."""

    model_config = ConfigDict(extra="forbid")

    models: list[ModelSpec] = Field(min_length=1)
    features: FeaturesSpec | None = None
    server: ServerSpec = Field(default_factory=ServerSpec)  # type: ignore[arg-type]
    payload_log: PayloadLogSpec = Field(default_factory=PayloadLogSpec)  # type: ignore[arg-type]

    def model_configs(self) -> list[ModelConfig]:
        """Each model's configuration, names defaulted from their URIs."""
        configs = []
        for index, spec in enumerate(self.models):
            if bool(spec.uri) == bool(spec.versions):
                raise InvalidInput(f"models.{index}: give either uri or versions")
            first_uri = spec.uri or next(iter(spec.versions.values()))
            config = ModelConfig(
                name=spec.name or default_name(first_uri),
                uri=spec.uri,
                version=spec.version,
                batching=BatchPolicy(**spec.batching.model_dump()),
                options={**spec.options, "trusted": True} if spec.trusted else dict(spec.options),
                versions=dict(spec.versions),
                traffic=dict(spec.traffic),
                shadow=spec.shadow,
                feature_service=spec.feature_service,
                preprocess=spec.preprocess,
                postprocess=spec.postprocess,
            )
            configs.append(config)
        return configs

    def payload_config(self) -> PayloadLogConfig:
        return PayloadLogConfig(**self.payload_log.model_dump())

    def server_config(self) -> ServerConfig:
        server = self.server
        return ServerConfig(
            max_body_bytes=int(server.max_body_mb * 1024 * 1024),
            workers=server.workers,
            header_timeout_s=server.header_timeout_s,
            body_timeout_s=server.body_timeout_s,
            max_connections=server.max_connections,
            allowed_hosts=tuple(server.allowed_hosts),
            forwarded_allow_ips=server.forwarded_allow_ips,
            grpc_port=server.grpc_port,
            ssl_certfile=server.ssl_certfile,
            ssl_keyfile=server.ssl_keyfile,
        )


def default_name(uri: str) -> str:
    """The name to serve a model under when none is given: ``models:/churn@champion`` → ``churn``."""
    problem = f"cannot derive a model name from {uri!r}; give one with --name"
    try:
        parsed = parse_model_uri(uri)
    except InvalidInput as exc:
        raise InvalidInput(f"{problem} ({exc})") from exc
    if isinstance(parsed, RegistryUri):
        name = parsed.name
    elif isinstance(parsed, RunModelUri):
        name = parsed.path.rsplit("/", 1)[-1]
    else:
        name = Path(parsed.path).resolve().name
    if not NAME.match(name):
        raise InvalidInput(problem)
    return name


def load_deployment(path: Path) -> DeploymentSpec:
    """Read and check a ``deploy.yaml``; errors name the file and the field.

    Raises:
        InvalidInput: unreadable YAML, or a field that is missing, unknown or out of range.
    """
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InvalidInput(f"cannot read deployment file {path}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise InvalidInput(f"{path} is not valid YAML{where}: {problem}") from exc
    try:
        found = DeploymentSpec.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top level)"
        raise InvalidInput(f"{path}: {where}: {first['msg']}") from exc
    # Files and package folders named by relative paths are found from this file, wherever the server starts.
    if found.features is not None:
        found.features.repo = _beside(found.features.repo, path)
    server = found.server
    server.ssl_certfile = None if server.ssl_certfile is None else _beside(server.ssl_certfile, path)
    server.ssl_keyfile = None if server.ssl_keyfile is None else _beside(server.ssl_keyfile, path)
    for spec in found.models:
        if spec.uri is not None:
            spec.uri = _from_file(spec.uri, path)
        spec.versions = {label: _from_file(uri, path) for label, uri in spec.versions.items()}
        spec.preprocess = None if spec.preprocess is None else _from_file(spec.preprocess, path)
        spec.postprocess = None if spec.postprocess is None else _from_file(spec.postprocess, path)
    return found


def _beside(name: str, deploy_file: Path) -> str:
    return name if Path(name).is_absolute() else str(deploy_file.parent / name)


def _from_file(uri: str, deploy_file: Path) -> str:
    try:
        parsed = parse_model_uri(uri)
    except InvalidInput:
        return uri  # model_configs names it
    if isinstance(parsed, PathUri) and not Path(parsed.path).is_absolute():
        return str(deploy_file.parent / parsed.path)
    return uri
