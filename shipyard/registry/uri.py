"""Model URIs: ``runs:/<run_id>/<path>``, ``models:/<name>/<version>``, ``models:/<name>@<alias>``,
``models:/<name>/latest`` and ``models:/<name>/<stage>``; a plain folder path is a local package."""

from __future__ import annotations

import numbers
import re
from dataclasses import dataclass
from typing import Any

from shipyard.errors import InvalidInput
from shipyard.registry.records import Stage
from shipyard.tracking.values import describe_number

MAX_VERSION = 2**31 - 1
"""The highest version number: ``model_versions.version`` is a 32-bit INTEGER on PostgreSQL."""

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
            if ref.isascii() and ref.isdigit():  # str.isdigit alone also takes '²', which int() refuses
                # Length first: int() refuses over 4,300 digits, and the message must stay one short line.
                if len(ref) > len(str(MAX_VERSION)) or not 1 <= int(ref) <= MAX_VERSION:
                    shown = ref if len(ref) <= 24 else f"{ref[:12]}... ({len(ref)} digits)"
                    raise InvalidInput(
                        f"bad model URI {_clip(uri)!r}: version {shown} is out of range: "
                        f"versions are 1 to {MAX_VERSION}"
                    )
                return RegistryUri(match["name"], version=int(ref))
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


def check_version(version: Any) -> int:
    """A version number given to the registry: a whole number from 1 to :data:`MAX_VERSION`.

    Raises:
        InvalidInput: naming the bad version (a huge one by its size), before it reaches the database, which
            would raise an ``OverflowError`` (SQLite) or an out-of-range error (PostgreSQL).
    """
    if isinstance(version, bool) or not isinstance(version, numbers.Integral):
        raise InvalidInput(
            f"version must be a whole number, got {type(version).__name__} {describe_number(version)}"
        )
    number = int(version)
    if not 1 <= number <= MAX_VERSION:
        raise InvalidInput(
            f"version {describe_number(number)} is out of range: versions are 1 to {MAX_VERSION}"
        )
    return number


def _clip(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else f"{text[: limit - 3]}..."
