"""A training set's lineage: what it was made from (feature view versions and their source files, with
hashes), recorded in the lineage store, and the run that used it.

URIs: a feature view version is ``features:feature_view/<name>@<version>`` (``@unapplied`` when the registry
does not hold it as defined); a training set is ``features:training_set/<service>@<version>/<hash>``
(``-`` for refs without a service). A model logged in the run finds the service version in the run's
dataset inputs (:func:`service_of`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from shipyard.features.definitions import (
    DataFrameSource,
    DatasetSource,
    FeatureView,
    FileSource,
    PushSource,
    StepOutputSource,
)
from shipyard.features.records import spec_hash
from shipyard.lineage.records import ArtifactType
from shipyard.tracking.records import DatasetInput

if TYPE_CHECKING:
    from shipyard.features.store import FeatureStore, TrainingSet

TRAINING_SET = re.compile(
    r"^features:training_set/(?P<service>[A-Za-z_][A-Za-z0-9_]*|-)@(?P<version>\d+|unapplied)/"
)
_CHUNK = 1 << 20


def record_training_set(
    store: FeatureStore, found: TrainingSet, *, run: Any = None, name: str | None = None
) -> TrainingSet:
    """``found`` with its URI and service version; its lineage recorded, and logged as ``run``'s input."""
    from shipyard.lineage.client import LineageClient
    from shipyard.tracking import active_run

    registry = store.registry
    current = {(v.kind, v.name): v for v in registry.current() if not v.deleted}
    service_version = None
    label = "-@unapplied"
    if found.service is not None:
        held = current.get(("feature_service", found.service.name))
        service_version = held.version if held and held.sha256 == spec_hash(found.service.to_dict()) else None
        label = f"{found.service.name}@{service_version if service_version is not None else 'unapplied'}"
    uri = f"features:training_set/{label}/{found.sha256[:16]}"
    inputs = []
    for view in _views(store, found.features):
        held = current.get(("feature_view", view.name))
        digest = spec_hash(view.to_dict())
        version = held.version if held and held.sha256 == digest else "unapplied"
        inputs.append(
            (f"features:feature_view/{view.name}@{version}", ArtifactType.DATASET, digest, view.name)
        )
        inputs += [(source, ArtifactType.DATASET, sha, view.name) for source, sha in _source_files(view)]
    target = run or active_run()
    client = target.client if target is not None else _client(store)
    LineageClient(client).record(
        "feature_join",
        name=found.service.name if found.service else "features",
        run_id=None if target is None else target.run_id,
        inputs=inputs,
        outputs=[(uri, ArtifactType.DATASET, found.sha256, name or label)],
        properties={"features": list(found.features), "rows": found.table.num_rows},
    )
    if target is not None:
        columns = [{"name": f.name, "dtype": str(f.type)} for f in found.table.schema]
        target.log_dataset(
            DatasetInput(
                name=name or (found.service.name if found.service else "training_set"),
                digest=found.sha256,
                source=uri,
                source_type="features",
                num_rows=found.table.num_rows,
                schema={"columns": columns, "shape": [found.table.num_rows, found.table.num_columns]},
                context="training",
            ),
        )
    return dataclasses.replace(found, uri=uri, service_version=service_version)


def _client(store: FeatureStore) -> Any:
    from shipyard.config import get_settings
    from shipyard.tracking import TrackingClient

    return TrackingClient(store._settings or get_settings())


def _views(store: FeatureStore, refs: Iterable[str]) -> list[FeatureView]:
    """The stored views ``refs`` read, on-demand views' inputs included, each once."""
    out: dict[str, FeatureView] = {}
    for ref in refs:
        view = store.feature_view(ref.split(":", 1)[0])
        if isinstance(view, FeatureView):
            out.setdefault(view.name, view)
        else:
            for inner in view.input_refs:
                found = store.feature_view(inner.split(":", 1)[0])
                if isinstance(found, FeatureView):
                    out.setdefault(found.name, found)
    return list(out.values())


def _source_files(view: FeatureView) -> list[tuple[str, str]]:
    """(uri, sha256) of what the view reads: a dataset version by its snapshot hash, a step output by the
    hash its step recorded, a local file source's
    files; none for a DataFrame or a remote URL (its hash would mean reading it all over the network: the
    view version's hash stands for it)."""
    source = view.source
    if isinstance(source, DatasetSource):
        from shipyard.datasets import dataset_version

        found = dataset_version(str(source.ref))
        return [(f"data:{found.name}@{found.version}", found.sha256)]
    if isinstance(source, StepOutputSource):
        return [(source.found.uri, source.found.sha256)]  # the hash the step recorded, checked when found
    if isinstance(source, DataFrameSource) or not isinstance(source, FileSource | PushSource):
        return []
    path = source.path[len("file://") :] if source.path.startswith("file://") else source.path
    if "://" in path:
        return []
    if os.path.isdir(path):
        files = sorted(os.path.join(root, f) for root, _, names in os.walk(path) for f in names)
    else:
        import glob

        files = sorted(glob.glob(path)) if glob.has_magic(path) else [path]
    return [(f"file://{os.path.abspath(f)}", _sha256(f)) for f in files if os.path.isfile(f)]


def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def service_of(datasets: Iterable[DatasetInput | dict[str, Any]]) -> dict[str, Any] | None:
    """The feature service (name, version) a run's training set came from, if it logged one."""
    for dataset in datasets:
        source = dataset["source"] if isinstance(dataset, dict) else dataset.source
        match = TRAINING_SET.match(str(source or ""))
        if match and match["service"] != "-":
            version = match["version"]
            return {"name": match["service"], "version": int(version) if version.isdigit() else None}
    return None
