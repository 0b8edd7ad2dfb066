"""`MlflowSource`: what the importer reads from an MLflow store, and :func:`open_source` for a tracking URI.

Artifacts are read from where MLflow put them: a local path or ``file://`` URI, or ``mlflow-artifacts:/…``
(a tracking server's proxied artifacts) under the folder that server stores them in (its
``--artifacts-destination``), when the caller names it.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote, urlparse

from shipyard.errors import InvalidInput
from shipyard.importers.mlflow.records import (
    MlflowExperiment,
    MlflowLoggedModel,
    MlflowRegisteredModel,
    MlflowRun,
    MlflowRunData,
)

_SQL_SCHEMES = ("sqlite", "postgresql", "postgres", "mysql", "mssql")


class MlflowSource(Protocol):
    """One MLflow store, read only. Experiments first: ``runs`` takes ids ``experiments`` returned."""

    uri: str
    kind: str

    def experiments(self) -> list[MlflowExperiment]: ...
    def runs(self, experiment_id: str) -> list[MlflowRun]: ...
    def run_data(self, runs: Sequence[MlflowRun]) -> dict[str, MlflowRunData]: ...
    def logged_models(self) -> list[MlflowLoggedModel]: ...
    def registered_models(self) -> list[MlflowRegisteredModel]: ...
    def fetch_artifacts(
        self, uri: str, artifacts_destination: str | None
    ) -> contextlib.AbstractContextManager[Path | None]: ...
    def close(self) -> None: ...


# A local folder holding the files under an MLflow artifact URI while the context lasts (None: unreachable).
FetchArtifacts = Callable[[str], contextlib.AbstractContextManager[Path | None]]


def open_source(uri: str) -> MlflowSource:
    """The MLflow store a tracking URI names: a SQL database, an ``mlruns`` folder (path or ``file://``).

    Raises:
        InvalidInput: the URI names no store of a kind this importer reads (the message says which it reads).
    """
    scheme = urlparse(uri).scheme.split("+")[0].lower()
    if scheme in _SQL_SCHEMES:
        from shipyard.importers.mlflow.sql_source import SqlSource

        return SqlSource(uri)
    if scheme in ("", "file"):
        from shipyard.importers.mlflow.file_source import FileSource

        return FileSource(uri)
    if scheme in ("http", "https"):
        from shipyard.importers.mlflow.rest_source import RestSource

        return RestSource(uri)
    raise InvalidInput(
        f"cannot import from {uri!r}: give an MLflow tracking URI (sqlite:///mlflow.db, postgresql://…, "
        "mysql://…) or an mlruns folder"
    )


@contextlib.contextmanager
def on_disk(uri: str, artifacts_destination: str | None) -> Iterator[Path | None]:
    """:meth:`MlflowSource.fetch_artifacts` for files on this machine's disk."""
    yield local_folder(uri, artifacts_destination) if uri else None


def local_folder(uri: str, artifacts_destination: str | None) -> Path | None:
    """The local folder an MLflow artifact URI names, or None when it is not on this machine's disk."""
    parsed = urlparse(uri)
    if parsed.scheme == "mlflow-artifacts":
        if artifacts_destination is None:
            return None
        return Path(artifacts_destination) / unquote(parsed.path).lstrip("/")
    if parsed.scheme == "file":
        return Path(unquote(parsed.path))
    if parsed.scheme == "" and uri:
        return Path(os.path.expanduser(uri))
    return None


def local_files(folder: Path | None) -> list[tuple[str, Path]]:
    """(relative path, file) of every file under ``folder``; none when it does not exist (a run that logged
    no artifacts has no folder). Links are not followed out of the folder."""
    if folder is None or not folder.is_dir():
        return []
    out = []
    for path in sorted(folder.rglob("*")):
        if path.is_file() and not path.is_symlink():
            out.append((path.relative_to(folder).as_posix(), path))
    return out
