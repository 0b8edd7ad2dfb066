"""A feature repository: a folder of Python files whose module-level entities, feature views, on-demand
feature views and feature services are the project's definitions.

Each top-level ``*.py`` file is imported with the folder first on ``sys.path`` (so the files import each
other by name, as Feast repositories do); files and folders starting with ``_`` or ``.``, and ``test_*.py``,
are skipped. Importing runs the files' code: a repository is code you trust, like a pipeline's components.
"""

from __future__ import annotations

import contextlib
import importlib
import sys
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from shipyard.errors import InvalidInput
from shipyard.features.definitions import Entity, FeatureService, FeatureView, OnDemandFeatureView

_KINDS = (Entity, FeatureView, OnDemandFeatureView, FeatureService)


@dataclass(frozen=True)
class Repository:
    """The definitions found in a repository folder, in file order."""

    path: Path
    definitions: tuple[Entity | FeatureView | OnDemandFeatureView | FeatureService, ...]
    files: tuple[str, ...]


def repository_files(path: Path) -> list[Path]:
    return sorted(
        p
        for p in path.glob("*.py")
        if not p.name.startswith(("_", ".")) and not p.name.startswith("test_") and p.is_file()
    )


def load_repository(path: str | Path) -> Repository:
    """Import the repository at ``path`` and collect its definitions (a view's entities come with it).

    Raises:
        InvalidInput: ``path`` is not a folder, holds no Python files, or a file fails to import (the
            message names the file, the line and the error).
    """
    root = Path(path).resolve()
    if not root.is_dir():
        raise InvalidInput(f"feature repository {path}: not a folder")
    files = repository_files(root)
    if not files:
        raise InvalidInput(f"feature repository {path}: no Python files (definitions live in *.py files)")
    found: list[Entity | FeatureView | OnDemandFeatureView | FeatureService] = []
    seen: set[int] = set()
    with _on_path(root):
        for file in files:
            module = _import(file)
            for value in vars(module).values():
                if isinstance(value, _KINDS) and id(value) not in seen:
                    seen.add(id(value))
                    found.append(value)
    for view in [d for d in found if isinstance(d, FeatureView)]:
        for entity in view.entities:
            if id(entity) not in seen:
                seen.add(id(entity))
                found.append(entity)
    return Repository(root, tuple(found), tuple(f.name for f in files))


@contextlib.contextmanager
def _on_path(root: Path) -> Iterator[None]:
    """``root`` first on ``sys.path`` while importing, and its modules forgotten afterwards (a second load,
    after the files changed, reads them again)."""
    before = set(sys.modules)
    sys.path.insert(0, str(root))
    try:
        yield
    finally:
        sys.path.remove(str(root))
        for name in set(sys.modules) - before:
            module = sys.modules.get(name)
            origin = getattr(module, "__file__", None) or ""
            if origin.startswith(str(root)):
                del sys.modules[name]


def _import(file: Path) -> object:
    name = file.stem
    clash = sys.modules.get(name)
    if clash is not None and not (getattr(clash, "__file__", "") or "").startswith(str(file.parent)):
        raise InvalidInput(
            f"feature repository file {file.name}: its name shadows the module {name!r} already imported "
            f"from {getattr(clash, '__file__', 'the standard library')}; rename the file"
        )
    try:
        return importlib.import_module(name)
    except Exception as exc:
        line = next(
            (f.lineno for f in reversed(traceback.extract_tb(exc.__traceback__)) if f.filename == str(file)),
            None,
        )
        where = f"{file.name}, line {line}" if line else file.name
        raise InvalidInput(f"feature repository {where}: {type(exc).__name__}: {exc}") from exc
