"""MLflow model packages kept as they are, with a Shipyard ``MODEL.yaml`` beside their ``MLmodel``.

The manifest lists every file of the package with its sha256 (so the registry verifies each file as it
does for its own packages), names the flavor ``mlflow`` and records the MLflow flavors, the logged model's
params and tags. Loading is the ``mlflow`` flavor's (:mod:`shipyard.registry.flavors.mlflow`): scikit-learn
models saved with skops through the type allow-list, pickled ones only with ``trusted=True``; other MLflow
flavors through ``mlflow.pyfunc.load_model`` on the files, downloaded verified (``shipyard models download``,
or the MLflow client).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from shipyard.registry.package import FORMAT, MANIFEST, dump_yaml

FLAVOR = "mlflow"
MLMODEL = "MLmodel"
__all__ = ["FLAVOR", "MANIFEST", "MLMODEL", "manifest_for"]


def manifest_for(
    name: str,
    files: Sequence[tuple[str, str, int]],
    mlmodel: bytes | None,
    *,
    run_id: str | None,
    model_id: str | None,
    params: Mapping[str, str] | None = None,
    metrics: Mapping[str, float] | None = None,
    tags: Mapping[str, str] | None = None,
    created_at: int | None = None,
) -> bytes:
    """The ``MODEL.yaml`` of an MLflow package whose ``files`` are (path, sha256, size) relative to it."""
    info = _mlmodel_info(mlmodel)
    lineage: dict[str, Any] = {"source": "mlflow"}
    if run_id:
        lineage["run_id"] = run_id
    if model_id:
        lineage["mlflow_model_id"] = model_id
    if tags:
        lineage["mlflow_tags"] = dict(tags)
    when = datetime.fromtimestamp(created_at / 1000, tz=UTC).isoformat() if created_at else ""
    manifest = {
        "format": FORMAT,
        "name": name,
        "flavor": FLAVOR,
        "created_at": when,
        "python": str(info.get("python_version") or ""),
        "files": [{"path": p, "sha256": s, "size": n} for p, s, n in sorted(files) if p != MANIFEST],
        "loader": {
            "format": MLMODEL,
            "mlflow_flavors": sorted(info.get("flavors") or {}),
            "mlflow_version": str(info.get("mlflow_version") or ""),
        },
        "signature": None,
        "input_example": None,
        "baseline": None,
        "requirements": [],
        "metrics": dict(metrics or {}),
        "params": dict(params or {}),
        "lineage": lineage,
        "description": None,
        "limitations": "an MLflow package: load it with mlflow.pyfunc.load_model after downloading it",
    }
    return dump_yaml(manifest).encode()


def _mlmodel_info(data: bytes | None) -> dict[str, Any]:
    if not data:
        return {}
    import yaml

    try:
        loaded = yaml.load(data, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError:
        return {}
    return loaded if isinstance(loaded, dict) else {}
