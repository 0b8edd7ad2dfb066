"""Deployment records: a served model's name and its inference server's URL, kept by the platform server.

A records-level module: the platform server keeps these (so grants can name ``deployment:NAME``), an
inference server started with ``--platform`` registers the models it serves, and the CLI lists them — none of
them imports another. A deployment's name is its served model's name (``/v2/models/{name}``); its URL is the
inference server's base URL, ``http`` or ``https`` only.

:class:`Deployments` holds the rules over a :class:`~shipyard.store.protocol.DeploymentStore` (the server's
own database); :class:`RemoteDeployments` is the same over the platform server's REST API.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

from pydantic import BaseModel, ConfigDict, Field

from shipyard.errors import InvalidInput, NotFound
from shipyard.tracking import naming
from shipyard.tracking.records import now_ms

if TYPE_CHECKING:
    from shipyard.store.http import HttpClient
    from shipyard.store.protocol import DeploymentStore

_SCHEMES = frozenset({"http", "https"})  # an allow-list: no file:, javascript:, unix sockets, …
_MAX_URL = 2000
_HEADER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,63}")  # an HTTP header name (a token), allow-listed


@dataclass(frozen=True)
class DeploymentRecord:
    """A served model the platform knows of: where it is served, who registered it, and when (epoch ms); with
    the last :class:`DeploymentReport` its serving server published (as JSON) and when."""

    name: str
    url: str
    created_by: str
    created_at: int
    updated_at: int
    report: Mapping[str, Any] | None = None
    reported_at: int | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class ServedVersion(BaseModel):
    """One version a serving server serves under a deployment's name."""

    model_config = ConfigDict(extra="forbid")

    label: str = Field(max_length=256)
    version: str = Field(max_length=256)
    state: str = Field(max_length=32)
    weight: float = Field(ge=0, le=1e6)
    shadow: bool = False


class DeploymentReport(BaseModel):
    """What a serving server says of one served model over its last ``window_s`` seconds: the versions it
    serves with their traffic weights, requests answered, server errors (5xx) and latency percentiles."""

    model_config = ConfigDict(extra="forbid")

    versions: list[ServedVersion] = Field(max_length=100)
    window_s: float = Field(gt=0, le=86_400)
    requests: int = Field(ge=0)
    errors: int = Field(ge=0)
    requests_per_s: float = Field(ge=0)
    p50_ms: float | None = Field(default=None, ge=0)
    p95_ms: float | None = Field(default=None, ge=0)
    host: str = Field(default="", max_length=256)
    pid: int | None = None


def check_header_name(name: object, what: str = "unit") -> str:
    """``name`` when it can name a request header (an A/B test's unit of assignment): letters, digits and
    '-', at most 64; `InvalidInput` naming ``what`` otherwise."""
    if not isinstance(name, str) or not _HEADER_NAME.fullmatch(name):
        raise InvalidInput(
            f"{what} must be a request header's name (letters, digits, '-', at most 64), got {name!r}"
        )
    return name


def check_deployment_name(name: object) -> str:
    """A deployment (served model) name: printable, at most 256 characters, no '/' (it is a path segment of
    the inference server's routes), no surrounding spaces."""
    naming.check_name(name, "deployment name")
    assert isinstance(name, str)
    if "/" in name or name != name.strip() or set(name) == {"."}:
        raise InvalidInput(
            f"deployment name {name!r} must not contain '/', be only dots, or have surrounding spaces"
        )
    return name


def check_deployment_url(url: object) -> str:
    """An inference server's base URL (see :func:`check_server_url`)."""
    return check_server_url(url, "a deployment's url", "the inference server's base URL")


def check_server_url(url: object, what: str, meaning: str) -> str:
    """A server's base URL: ``http://`` or ``https://`` with a host, no credentials, query or fragment;
    returned without a trailing slash. ``what`` names it in errors, ``meaning`` says what it should be."""
    if not isinstance(url, str) or not url.strip():
        raise InvalidInput(f"{what} must be a non-empty string, got {url!r}")
    url = url.strip()
    if len(url) > _MAX_URL or not url.isprintable():
        raise InvalidInput(f"{what} must be printable and at most {_MAX_URL} characters")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (raises ValueError for a port out of range)
    except ValueError as exc:
        raise InvalidInput(f"{what} {url!r} does not parse: {exc}") from None
    if parts.scheme.lower() not in _SCHEMES or not parts.hostname:
        raise InvalidInput(f"{what} {url!r} must be http://HOST[:PORT] or https://HOST[:PORT] ({meaning})")
    if parts.username is not None or parts.password is not None:
        raise InvalidInput(f"{what} must not hold credentials (user:password@)")
    if parts.query or parts.fragment:
        raise InvalidInput(f"{what} {url!r} must have no query or fragment")
    return url.rstrip("/")


class Deployments:
    """The deployment records of one platform server's database (``store``). Thread-safe."""

    def __init__(self, store: DeploymentStore) -> None:
        self.store = store

    def register(self, name: str, url: str, *, by: str) -> DeploymentRecord:
        """A new deployment ``name`` served at ``url`` (`AlreadyExists` if the name is taken)."""
        now = now_ms()
        row = {
            "name": check_deployment_name(name),
            "url": check_deployment_url(url),
            "created_by": by[:256],
            "created_at": now,
            "updated_at": now,
        }
        return self.store.insert_deployment(row)

    def update(self, name: str, url: str) -> DeploymentRecord:
        """Point deployment ``name`` at ``url`` (`NotFound` if there is none)."""
        return self.store.update_deployment(
            check_deployment_name(name), {"url": check_deployment_url(url), "updated_at": now_ms()}
        )

    def get(self, name: str) -> DeploymentRecord:
        return self.store.deployment(check_deployment_name(name))

    def report(self, name: str, url: str, report: DeploymentReport, *, by: str) -> DeploymentRecord:
        """Keep ``report`` as deployment ``name``'s latest (registering it at ``url`` when it is new, as
        ``by``; pointing it at ``url`` otherwise: the server reporting is where it is served now)."""
        name, url = check_deployment_name(name), check_deployment_url(url)
        now = now_ms()
        values = {"url": url, "report": report.model_dump_json(), "reported_at": now, "updated_at": now}
        try:
            return self.store.update_deployment(name, values)
        except NotFound:
            self.register(name, url, by=by)
            return self.store.update_deployment(name, values)

    def list(self) -> list[DeploymentRecord]:
        return self.store.list_deployments()

    def delete(self, name: str) -> None:
        """Forget deployment ``name`` and the grants on it (`NotFound` if there is none)."""
        self.store.delete_deployment(check_deployment_name(name))


class RemoteDeployments:
    """The deployment records of the platform server ``client`` talks to, as its signed-in user sees them."""

    def __init__(self, client: HttpClient) -> None:
        self._client = client

    def put(self, name: str, url: str) -> DeploymentRecord:
        """Register deployment ``name`` at ``url``, or point it there if it exists."""
        body = {"url": check_deployment_url(url)}
        return DeploymentRecord(**self._client.call("PUT", _path(name), json=body))

    def get(self, name: str) -> DeploymentRecord:
        return DeploymentRecord(**self._client.call("GET", _path(name)))

    def report(self, name: str, url: str, report: DeploymentReport) -> DeploymentRecord:
        """Publish ``report`` as deployment ``name``'s latest, served at ``url``."""
        body = {"url": check_deployment_url(url), "report": report.model_dump(mode="json")}
        return DeploymentRecord(**self._client.call("PUT", f"{_path(name)}/report", json=body))

    def list(self) -> list[DeploymentRecord]:
        return [DeploymentRecord(**d) for d in self._client.call("GET", "/deployments")]

    def delete(self, name: str) -> None:
        self._client.call("DELETE", _path(name))


def record_from_row(row: Mapping[str, Any]) -> DeploymentRecord:
    """A record from a stored row (its report kept as JSON text)."""
    values = dict(row)
    if isinstance(values.get("report"), str):
        values["report"] = json.loads(values["report"])
    return DeploymentRecord(**values)


def _path(name: str) -> str:
    return f"/deployments/{quote(check_deployment_name(name), safe='')}"


__all__ = [
    "DeploymentRecord",
    "DeploymentReport",
    "Deployments",
    "RemoteDeployments",
    "ServedVersion",
    "check_deployment_name",
    "check_deployment_url",
    "check_server_url",
    "record_from_row",
]
