"""Naming a dataset version: ``customers@3``, ``customers@latest`` or ``customers`` (the newest), and the
``data:customers@3`` URI that runs, pipelines and lineage use."""

from __future__ import annotations

import re
from dataclasses import dataclass

from shipyard.errors import InvalidInput

URI_PREFIX = "data:"
LATEST = "latest"
MAX_VERSION = 2**31 - 1  # a version number fits every backend's INTEGER
# Letters, digits, '.', '_' and '-', starting with a letter or digit: safe in a URI, a path and a shell.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def check_dataset_name(name: object) -> str:
    """``name`` if it is a valid dataset name, else `InvalidInput` saying what a name may hold."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise InvalidInput(
            f"dataset name {name!r} is not valid: use 1 to 128 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return name


@dataclass(frozen=True)
class DatasetRef:
    """A dataset and one of its versions (``version`` None: the newest)."""

    name: str
    version: int | None = None

    def __str__(self) -> str:
        return f"{self.name}@{self.version if self.version is not None else LATEST}"


def parse_ref(text: str) -> DatasetRef:
    """``name``, ``name@latest``, ``name@3`` or any of them behind ``data:``.

    Raises:
        InvalidInput: a bad name, or a version that is neither ``latest`` nor a number from 1 up.
    """
    if not isinstance(text, str):
        raise InvalidInput(f"a dataset reference is text like customers@3, got {type(text).__name__}")
    name, sep, version = text.removeprefix(URI_PREFIX).partition("@")
    check_dataset_name(name)
    if not sep or version == LATEST:
        return DatasetRef(name)
    if not version.isascii() or not version.isdigit() or not 1 <= int(version) <= MAX_VERSION:
        raise InvalidInput(
            f"dataset reference {text!r}: version {version!r} is not a number from 1 up or 'latest' "
            f"(e.g. {name}@3, {name}@latest)"
        )
    return DatasetRef(name, int(version))


def is_dataset_uri(value: object) -> bool:
    """Whether ``value`` is a ``data:name@version`` reference (as a run input or pipeline argument)."""
    return isinstance(value, str) and value.startswith(URI_PREFIX)
