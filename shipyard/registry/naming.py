"""What a registered model name and an alias may be (checked by every registry store)."""

from __future__ import annotations

from shipyard.errors import InvalidInput
from shipyard.tracking import naming

_ALIAS_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.")


def check_model_name(name: str) -> None:
    """A registered model name: printable, no '/' or '@' (they delimit model URIs), no padding."""
    naming.check_name(name, "model name")
    if "/" in name or "@" in name or name != name.strip() or set(name) == {"."}:
        raise InvalidInput(
            f"model name {name!r} must not contain '/' or '@', be only dots, or have surrounding spaces"
        )


def check_alias(alias: str) -> None:
    """An alias: letters, digits, '_', '-' or '.', not a plain number, not 'latest'."""
    if not isinstance(alias, str) or not alias or not set(alias) <= _ALIAS_CHARS or alias.isdigit():
        raise InvalidInput(
            f"alias {alias!r} must be letters, digits, '_', '-' or '.', "
            "and not a plain number (that is a version)"
        )
    if alias.lower() == "latest":
        raise InvalidInput(
            "alias 'latest' is reserved: models:/<name>/latest always means the newest version"
        )
