"""The JSON records releases keep in the artifact store (A/B tests, canaries), one document a file."""

from __future__ import annotations

import json
from typing import Any

from shipyard.store.artifacts import ArtifactStore


def documents(store: ArtifactStore, folder: str) -> list[dict[str, Any]]:
    """Every ``*.json`` document directly in ``folder`` (none when it does not exist), in name order."""
    if not store.exists(folder):
        return []
    paths = sorted(f.path for f in store.list(folder) if f.path.endswith(".json"))
    return [json.loads(store.read_bytes(path)) for path in paths]


def write(store: ArtifactStore, path: str, document: dict[str, Any]) -> None:
    """Write ``document`` at ``path`` (replacing it)."""
    store.put_bytes(json.dumps(document, indent=1).encode(), path)
