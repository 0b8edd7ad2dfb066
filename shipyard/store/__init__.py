"""Foundation storage: the metadata database (SQLAlchemy + Alembic) and the artifact store (fsspec)."""

from shipyard.store.artifacts import ArtifactStore, FileInfo, safe_relpath
from shipyard.store.db import HEAD_REVISION, MetadataStore, open_store

__all__ = ["HEAD_REVISION", "ArtifactStore", "FileInfo", "MetadataStore", "open_store", "safe_relpath"]
