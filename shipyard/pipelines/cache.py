"""Step caching kept in the tracking store: a step run's cache key and recorded outputs are tags on it.

A successful step run carries ``shipyard.cache_key`` (sha256 over the component's identity, its resolved
parameter inputs and the content of its artifact inputs) and its outputs: parameter values, and artifact
outputs as ``{"path": ..., "sha256": ...}`` of the file written by the run that produced it. Small records
are a tag ``shipyard.outputs``; larger ones an artifact ``outputs.json``. Reusing an entry checks that each
artifact file still exists with the recorded hash; anything else is a miss.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from typing import Any

from shipyard.errors import ShipyardError
from shipyard.pipelines.spec import ComponentRef
from shipyard.tracking import ActiveRun, Run, RunStatus, TrackingClient

KEY_TAG = "shipyard.cache_key"
OUTPUTS_TAG = "shipyard.outputs"
OUTPUTS_FILE = "outputs.json"
CACHED_FROM_TAG = "shipyard.cached_from"
_MAX_TAG = 8000


def path_sha256(path: str) -> str:
    """sha256 of a file's content, or of a folder's relative file names and contents (sorted)."""
    digest = hashlib.sha256()
    if os.path.isdir(path):
        for folder, dirs, files in os.walk(path):
            dirs.sort()
            for name in sorted(files):
                full = os.path.join(folder, name)
                digest.update(os.path.relpath(full, path).encode("utf-8") + b"\0")
                digest.update(path_sha256(full).encode("ascii"))
        return digest.hexdigest()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=repr)


def cache_key(component: ComponentRef, parameters: Mapping[str, Any], input_hashes: Mapping[str, str]) -> str:
    """The key of one step execution; ``input_hashes`` maps each artifact input to its content's sha256."""
    payload = {
        "component": [component.module, component.function, component.source_sha256, component.version],
        "parameters": parameters,
        "artifacts": dict(input_hashes),
    }
    return hashlib.sha256(_canonical(payload).encode("utf-8")).hexdigest()


def output_tags(
    run: ActiveRun,
    key: str | None,
    values: Mapping[str, Any],
    artifacts: Mapping[str, str],
    hashes: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The tags that record a successful step run's cache key and outputs, for the caller to set with its
    own (``artifacts``: name → local path; ``hashes``: their sha256 when the caller already has them).
    Outputs too big for a tag go to an artifact of ``run`` instead."""
    known = hashes or {}
    record = {
        "values": dict(values),
        "artifacts": {n: {"path": p, "sha256": known.get(n) or path_sha256(p)} for n, p in artifacts.items()},
    }
    text = _canonical(record)
    tags = {KEY_TAG: key} if key else {}
    if len(text) <= _MAX_TAG:
        tags[OUTPUTS_TAG] = text
    else:
        run.log_text(text, OUTPUTS_FILE)
    return tags


def recorded_outputs(client: TrackingClient, run: Run) -> dict[str, Any] | None:
    """A step run's outputs (artifact outputs as their path), or None when missing or an artifact changed."""
    try:
        text = run.tags.get(OUTPUTS_TAG) or client.read_artifact(run.run_id, OUTPUTS_FILE).decode("utf-8")
        record = json.loads(text)
    except (ShipyardError, OSError, ValueError):
        return None
    outputs = dict(record.get("values", {}))
    for name, entry in record.get("artifacts", {}).items():
        path = entry["path"]
        try:
            if not os.path.exists(path) or path_sha256(path) != entry["sha256"]:
                return None
        except OSError:
            return None
        outputs[name] = path
    return outputs


def lookup(client: TrackingClient, key: str) -> tuple[str, dict[str, Any]] | None:
    """The newest finished step run with ``key`` whose outputs are intact: (run id, outputs), else None."""
    for run in client.runs_with_tag(KEY_TAG, key, status=RunStatus.FINISHED, limit=5):
        outputs = recorded_outputs(client, run)
        if outputs is not None:
            return run.run_id, outputs
    return None
