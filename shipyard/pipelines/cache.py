"""Step caching kept in the tracking store: a step run's cache key and recorded outputs are tags on it.

A successful step run carries ``shipyard.cache_key`` (sha256 over the component's identity, its resolved
parameter inputs and the content of its artifact inputs) and its outputs: parameter values, and artifact
outputs as ``{"path": ..., "sha256": ...}`` of the file (a local path or an object-store URI) written by the
run that produced it. Small records are a tag ``shipyard.outputs``; larger ones an artifact ``outputs.json``.
Reusing an entry checks that each artifact file still exists with the recorded hash; anything else is a miss.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from typing import Any

from shipyard.errors import ShipyardError
from shipyard.pipelines.spec import ComponentRef
from shipyard.pipelines.staging import is_remote, path_sha256, uri_sha256
from shipyard.tracking import ActiveRun, Run, RunStatus, TrackingClient

KEY_TAG = "shipyard.cache_key"
OUTPUTS_TAG = "shipyard.outputs"
OUTPUTS_FILE = "outputs.json"
CACHED_FROM_TAG = "shipyard.cached_from"
_MAX_TAG = 8000


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


def recorded_outputs(
    client: TrackingClient, run: Run, hashes: dict[str, str] | None = None
) -> dict[str, Any] | None:
    """A step run's outputs (artifact outputs as their path or URI), or None when missing or an artifact
    changed. Each artifact's content is hashed again (streamed from an object store); ``hashes``, when given,
    gets the verified sha256 of each artifact location."""
    try:
        text = run.tags.get(OUTPUTS_TAG) or client.read_artifact(run.run_id, OUTPUTS_FILE).decode("utf-8")
        record = json.loads(text)
    except (ShipyardError, OSError, ValueError):
        return None
    outputs = dict(record.get("values", {}))
    for name, entry in record.get("artifacts", {}).items():
        path = entry["path"]
        try:
            if is_remote(path):
                actual = uri_sha256(path, client.settings)
            elif os.path.exists(path):
                actual = path_sha256(path)
            else:
                return None
        except (ShipyardError, OSError):
            return None  # NOTE: a store that cannot be read now is a miss; the step runs and says why
        if actual != entry["sha256"]:
            return None
        outputs[name] = path
        if hashes is not None:
            hashes[path] = actual
    return outputs


def lookup(
    client: TrackingClient, key: str, hashes: dict[str, str] | None = None
) -> tuple[str, dict[str, Any]] | None:
    """The newest finished step run with ``key`` whose outputs are intact: (run id, outputs), else None."""
    for run in client.runs_with_tag(KEY_TAG, key, status=RunStatus.FINISHED, limit=5):
        outputs = recorded_outputs(client, run, hashes)
        if outputs is not None:
            return run.run_id, outputs
    return None
