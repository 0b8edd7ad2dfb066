"""Storage: the protocol the rest of Shipyard talks to (:mod:`shipyard.store.protocol`), its SQL
implementation (:mod:`shipyard.store.sql`: SQLAlchemy + Alembic) and the artifact store (fsspec)."""

from __future__ import annotations

import typing as _typing

from shipyard.store.artifacts import ArtifactStore, FileInfo, safe_relpath
from shipyard.store.db import HEAD_REVISION, MetadataStore, open_store

if _typing.TYPE_CHECKING:
    from shipyard.config import Settings
    from shipyard.store.protocol import MetadataStores, ServerStores

__all__ = [
    "HEAD_REVISION",
    "ArtifactStore",
    "FileInfo",
    "MetadataStore",
    "open_server_stores",
    "open_store",
    "open_stores",
    "safe_relpath",
]


def open_stores(settings: Settings) -> MetadataStores:
    """The metadata stores ``settings`` name: the platform server at ``tracking_uri`` (team mode), else the
    SQL database at ``db_url``."""
    if settings.tracking_uri:
        from shipyard.store.http import HttpStores

        return HttpStores(settings.tracking_uri, settings, token=settings.tracking_token)  # type: ignore[return-value]
    from shipyard.store.sql import SqlStores

    return SqlStores.open(settings)


def open_server_stores(settings: Settings) -> ServerStores:
    """The stores a platform server keeps its records in: the SQL database at ``db_url`` (never another
    server, whatever ``tracking_uri`` says)."""
    from shipyard.store.sql import SqlStores

    return SqlStores.open(settings)
