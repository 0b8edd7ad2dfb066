"""Validation of user-given names and keys, and friendly generated run names."""

from __future__ import annotations

import re

from shipyard.errors import InvalidInput

_KEY_RE = re.compile(r"^[\w\-./: ]{1,250}$")
_MAX_NAME = 256
valid_keys: set[str] = set()  # keys are few and repeated: validate each once per process

_ADJECTIVES = (
    "amber",
    "bold",
    "brisk",
    "calm",
    "clever",
    "crisp",
    "eager",
    "gentle",
    "glad",
    "keen",
    "lively",
    "lucid",
    "merry",
    "nimble",
    "proud",
    "quick",
    "quiet",
    "rapid",
    "sharp",
    "steady",
    "sunny",
    "swift",
    "tidy",
    "vivid",
    "witty",
)
_NOUNS = (
    "anchor",
    "barge",
    "beacon",
    "buoy",
    "cutter",
    "dock",
    "ferry",
    "harbor",
    "hull",
    "keel",
    "ketch",
    "lantern",
    "mast",
    "pier",
    "rudder",
    "sail",
    "schooner",
    "sloop",
    "tide",
    "wharf",
)


def check_key(key: object, what: str) -> str:
    """A metric/param/tag key: 1-250 of letters, digits, ``_ - . / :`` and space."""
    if key.__class__ is str and key in valid_keys:
        return key  # type: ignore[return-value]
    if not isinstance(key, str):
        raise InvalidInput(f"{what} key must be a string, got {type(key).__name__} {key!r}")
    if not _KEY_RE.match(key) or key.strip() != key:
        raise InvalidInput(
            f"invalid {what} key {key!r}: use 1-250 letters, digits, '_', '-', '.', '/', ':' or inner spaces"
        )
    if len(valid_keys) < 100_000:
        valid_keys.add(key)
    return key


def check_name(name: object, what: str) -> str:
    """An experiment or run name: non-empty, printable, at most 256 characters."""
    if not isinstance(name, str) or not name.strip():
        raise InvalidInput(f"{what} must be a non-empty string, got {name!r}")
    if len(name) > _MAX_NAME or not name.isprintable():
        raise InvalidInput(f"{what} {name!r} must be printable and at most {_MAX_NAME} characters")
    return name


def generate_run_name(run_id: str) -> str:
    """A readable name, unique in practice (callers retry on a clash): ``swift-ketch-3f2a91c0``."""
    number = int(run_id[:8], 16)
    return f"{_ADJECTIVES[number % len(_ADJECTIVES)]}-{_NOUNS[(number // 31) % len(_NOUNS)]}-{run_id[-8:]}"
