"""Model URIs: ``runs:/<run_id>/<path>``, ``models:/<name>/<version>``, ``models:/<name>@<alias>``,
``models:/<name>/latest`` and ``models:/<name>/<stage>``; a plain folder path is a local package."""

from __future__ import annotations

import re
from dataclasses import dataclass

from shipyard.errors import InvalidInput
from shipyard.registry.records import Stage

_NAME = r"[^/@\s][^/@]*"
_RUNS = re.compile(r"^runs:/(?P<run_id>[0-9a-fA-F]{32})/(?P<path>.+)$")
_ALIAS = re.compile(rf"^models:/(?P<name>{_NAME})@(?P<alias>[A-Za-z0-9_\-.]+)$")
_VERSION = re.compile(rf"^models:/(?P<name>{_NAME})/(?P<ref>[^/@]+)$")


@dataclass(frozen=True)
class RunModelUri:
    run_id: str
    path: str


@dataclass(frozen=True)
class RegistryUri:
    """Exactly one of version, alias, stage is set, or ``latest`` is True."""

    name: str
    version: int | None = None
    alias: str | None = None
    stage: Stage | None = None
    latest: bool = False


@dataclass(frozen=True)
class PathUri:
    path: str


ModelUri = RunModelUri | RegistryUri | PathUri


def parse_model_uri(uri: str) -> ModelUri:
    """Parse a model URI; `InvalidInput` names the URI and shows the accepted forms."""
    if not isinstance(uri, str) or not uri.strip():
        raise InvalidInput(f"model URI must be a non-empty string, got {uri!r}")
    uri = uri.strip()
    if uri.startswith("runs:"):
        match = _RUNS.match(uri)
        if not match:
            raise InvalidInput(f"bad model URI {uri!r}: expected runs:/<32-hex run id>/<artifact path>")
        return RunModelUri(match["run_id"].lower(), match["path"].strip("/"))
    if uri.startswith("models:"):
        if match := _ALIAS.match(uri):
            return RegistryUri(match["name"], alias=match["alias"])
        if match := _VERSION.match(uri):
            ref = match["ref"]
            if ref.isdigit():
                version = int(ref)
                if version < 1:
                    raise InvalidInput(f"bad model URI {uri!r}: versions start at 1")
                return RegistryUri(match["name"], version=version)
            if ref.lower() == "latest":
                return RegistryUri(match["name"], latest=True)
            try:
                return RegistryUri(match["name"], stage=Stage.parse(ref))
            except InvalidInput:
                pass
        raise InvalidInput(
            f"bad model URI {uri!r}: expected models:/<name>/<version>, models:/<name>@<alias>, "
            "models:/<name>/latest or models:/<name>/<stage>"
        )
    if "://" in uri:
        raise InvalidInput(f"unsupported model URI scheme in {uri!r}: use runs:/, models:/ or a local path")
    return PathUri(uri)
