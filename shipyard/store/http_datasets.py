"""Dataset versions on a platform server (a :class:`~shipyard.store.protocol.DatasetStore` over HTTP). The
blobs travel through the server's artifact routes; this moves the records."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from shipyard.datasets.records import DatasetFile, DatasetSummary, DatasetVersion, SnapshotKind
from shipyard.datasets.refs import check_dataset_name
from shipyard.store import wire
from shipyard.tracking.values import checked_texts

if TYPE_CHECKING:
    from shipyard.store.http import HttpClient


class HttpDatasetStore:
    """Dataset versions on a platform server."""

    def __init__(self, client: HttpClient) -> None:
        self._client = client

    def create_version(
        self,
        name: str,
        *,
        sha256: str,
        kind: SnapshotKind,
        files: Sequence[DatasetFile],
        description: str | None = None,
        tags: Mapping[str, Any] | None = None,
        force: bool = False,
    ) -> DatasetVersion:
        body = {
            "sha256": sha256,
            "kind": SnapshotKind(kind).value,
            "files": wire.to_json(list(files)),
            "description": description,
            "tags": None if tags is None else checked_texts(tags, "tag"),
            "force": force,
        }
        return wire.dataset_version(self._client.call("POST", f"{_path(name)}/versions", json=body))

    def get_version(self, name: str, version: int | None = None) -> DatasetVersion:
        number = "latest" if version is None else str(int(version))
        return wire.dataset_version(self._client.call("GET", f"{_path(name)}/versions/{number}"))

    def list_versions(self, name: str) -> list[DatasetVersion]:
        return [wire.dataset_version(v) for v in self._client.call("GET", f"{_path(name)}/versions")]

    def list_datasets(self) -> list[DatasetSummary]:
        return [wire.dataset_summary(d) for d in self._client.call("GET", "/datasets")]

    def blob_holders(self, sha256s: Sequence[str]) -> dict[str, list[str]]:
        found = self._client.call("POST", "/datasets/blob-holders", json={"sha256s": list(sha256s)})
        return {str(k): [str(n) for n in v] for k, v in found.items()}


def _path(name: str) -> str:
    # Checked here as the SQL store checks it: the same InvalidInput, and no name can change the route.
    return f"/datasets/{quote(check_dataset_name(name), safe='')}"
