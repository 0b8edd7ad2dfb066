"""A run's artifact files: a preview page per file (images, text, JSON, the head of a CSV or Parquet table,
HTML reports in a sandboxed frame) and the file itself.

Only files the run recorded are served (the path is looked up in its records, never joined onto a
folder). A file's own bytes are never served as a page of this site: images go out as their image type,
HTML with a sandbox policy (no script, no requests), everything else as a download.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse

from shipyard.errors import NotFound
from shipyard.server.answers import SANDBOXED_HTML_HEADERS
from shipyard.server.guard import READ, guard
from shipyard.store.artifacts import ArtifactStore
from shipyard.tracking import TrackingClient
from shipyard.tracking.records import ArtifactRecord, Run
from shipyard.ui.templating import render

router = APIRouter(include_in_schema=False)

PREVIEW_BYTES = 2 << 20  # whole-file previews (JSON, images, HTML, Parquet) up to this size
HEAD_BYTES = 64 << 10  # text and CSV show their first bytes whatever their size
TABLE_ROWS = 50
_CHUNK = 1 << 20
IMAGES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
}
TEXT = frozenset(
    {".txt", ".log", ".md", ".py", ".yaml", ".yml", ".toml", ".cfg", ".ini", ".out", ".err", ".sql"}
)
TABLES = frozenset({".csv", ".tsv"})


def _client(request: Request) -> TrackingClient:
    state = request.app.state
    return TrackingClient(state.settings, stores=state.stores)


def _file(request: Request, run_id: str, path: str) -> tuple[Run, ArtifactRecord, ArtifactStore]:
    guard(request).run(run_id, READ)
    client = _client(request)
    run = client.get_run(run_id)
    found = next((r for r in client.list_artifacts(run_id, path) if r.path == path), None)
    if found is None:
        raise NotFound(f"run {run_id} has no artifact file {path!r}")
    return run, found, ArtifactStore.configured(client.settings, run.artifact_uri)


def kind_of(path: str) -> str:
    """How a file is previewed: image, html, json, table, parquet, text or none."""
    suffix = "." + path.rsplit(".", 1)[-1].lower() if "." in path else ""
    if suffix in IMAGES:
        return "image"
    if suffix in (".html", ".htm"):
        return "html"
    if suffix == ".json":
        return "json"
    if suffix in TABLES:
        return "table"
    if suffix == ".parquet":
        return "parquet"
    if suffix in TEXT or not suffix:
        return "text"
    return "none"


def _head(store: ArtifactStore, path: str, size: int) -> bytes:
    with store.open(path) as handle:
        return handle.read(min(size, HEAD_BYTES))


def _table(data: bytes, kind: str, path: str) -> tuple[list[str], list[list[Any]]]:
    import pandas as pd

    if kind == "parquet":
        frame = pd.read_parquet(io.BytesIO(data)).head(TABLE_ROWS)
    else:
        text = data.decode("utf-8", errors="replace")
        if len(data) >= HEAD_BYTES:  # cut mid-line: keep whole lines only
            text = text[: text.rfind("\n") + 1]
        frame = pd.read_csv(io.StringIO(text), sep="\t" if path.endswith(".tsv") else ",", nrows=TABLE_ROWS)
    return [str(c) for c in frame.columns], frame.astype(object).where(frame.notna(), "").values.tolist()


@router.get("/ui/runs/{run_id}/artifact")
def artifact(run_id: str, path: str, request: Request) -> Response:
    run, record, store = _file(request, run_id, path)
    kind = kind_of(path)
    context: dict[str, Any] = {
        "run": run,
        "record": record,
        "kind": kind,
        "too_large": False,
        "problem": None,
        "cut": False,
        "text": "",
        "columns": [],
        "rows": [],
    }
    whole = record.size <= PREVIEW_BYTES
    try:
        if kind in ("text", "table"):
            data = _head(store, path, record.size)
            context["cut"] = record.size > len(data)
            if kind == "text":
                context["text"] = data.decode("utf-8", errors="replace")
            else:
                context["columns"], context["rows"] = _table(data, kind, path)
        elif kind in ("json", "parquet", "image", "html") and not whole:
            context["too_large"] = True
        elif kind == "json":
            raw = store.read_bytes(path, record.sha256)
            try:
                context["text"] = json.dumps(json.loads(raw), indent=2)[:PREVIEW_BYTES]
            except ValueError:
                context["text"] = raw.decode("utf-8", errors="replace")
        elif kind == "parquet":
            context["columns"], context["rows"] = _table(store.read_bytes(path, record.sha256), kind, path)
    except (ValueError, OSError, UnicodeDecodeError) as exc:  # a file its extension lies about
        context["problem"] = f"this file cannot be previewed as {kind}: {exc}"
    return render(request, "artifact.html", section="experiments", **context)


@router.get("/ui/runs/{run_id}/artifact/raw")
def artifact_raw(run_id: str, path: str, request: Request) -> Response:
    """The file itself: an image as its type, HTML sandboxed, anything else as a download."""
    _, record, store = _file(request, run_id, path)
    kind = kind_of(path)
    suffix = "." + path.rsplit(".", 1)[-1].lower() if "." in path else ""
    headers = {"content-length": str(record.size), "cache-control": "private, max-age=3600"}
    if kind == "image":
        media = IMAGES[suffix]
    elif kind == "html":
        media, headers = "text/html; charset=utf-8", {**headers, **SANDBOXED_HTML_HEADERS}
    else:
        media = "application/octet-stream"
        name = path.rsplit("/", 1)[-1].replace('"', "")
        headers["content-disposition"] = f'attachment; filename="{name}"'

    def chunks() -> Iterator[bytes]:
        with store.open(path) as handle:
            while block := handle.read(_CHUNK):
                yield block

    return StreamingResponse(chunks(), media_type=media, headers=headers)
