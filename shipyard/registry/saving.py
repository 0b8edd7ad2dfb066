"""Saving models: a flavor writes the files; the package adds manifest, card, signature and lineage."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shipyard.errors import InvalidInput
from shipyard.lineage import ArtifactType, LineageClient
from shipyard.registry import package
from shipyard.registry.flavors.catalog import flavor_for, get_flavor
from shipyard.registry.package import Manifest
from shipyard.registry.signature import Signature, infer_signature
from shipyard.store.artifacts import safe_relpath
from shipyard.tracking.records import PIPELINE_RUN_TAG

if TYPE_CHECKING:
    from shipyard.tracking.run import ActiveRun


@dataclass(frozen=True)
class ModelInfo:
    """Where a logged model lives and what its manifest says."""

    uri: str
    run_id: str | None
    artifact_path: str
    manifest: Manifest


def save_model(
    model: Any,
    directory: str | Path,
    *,
    flavor: str | None = None,
    signature: Signature | Mapping[str, Any] | str | None = "infer",
    input_example: Any | None = None,
    requirements: Sequence[str] | str = "infer",
    metrics: Mapping[str, float] | None = None,
    params: Mapping[str, str] | None = None,
    lineage: Mapping[str, Any] | None = None,
    description: str | None = None,
    limitations: str | None = None,
    name: str = "model",
    baseline: Any | None = None,
    baseline_rows: int = 100_000,
) -> Manifest:
    """Write ``model`` as a package into ``directory`` (created; must be empty if it exists).

    ``baseline``: training features (DataFrame, pyarrow Table or Parquet/CSV path); a sample of at most
    ``baseline_rows`` rows and the schema inferred from all of them are packaged, and monitoring compares
    what the registered version serves with them (drift and skew).
    """
    target = Path(directory)
    baseline_bytes = baseline_schema = None
    if baseline is not None:
        # Imported here: shipyard.data brings scipy, which saving a model otherwise never needs.
        from shipyard.data.sample import as_frame, sample_baseline
        from shipyard.data.schema import infer_schema
        from shipyard.data.statistics import compute_statistics

        frame = as_frame(baseline, "the model's baseline")
        baseline_bytes = sample_baseline(frame, max_rows=baseline_rows, what="the model's baseline")
        # The schema of all the training data (not only the sample): what served inputs are checked against.
        baseline_schema = infer_schema(compute_statistics(frame)).to_yaml()
    if target.exists() and any(target.iterdir()):
        raise InvalidInput(f"model package folder {str(target)!r} is not empty")
    target.mkdir(parents=True, exist_ok=True)
    chosen = get_flavor(flavor) if flavor is not None else flavor_for(model)
    output = _predict_example(model, input_example)
    saved = chosen.save(model, target, input_example=input_example)
    return package.write_package(
        target,
        name=name,
        flavor=chosen.name,
        files=list(saved.files),
        loader=dict(saved.loader),
        signature=_resolve_signature(signature, input_example, output),
        input_example=input_example,
        requirements=_resolve_requirements(requirements, saved.requirements),
        metrics=metrics or {},
        params=params or {},
        lineage=lineage or {},
        description=description,
        limitations=limitations,
        baseline=baseline_bytes,
        baseline_schema=baseline_schema,
    )


def log_model(run: ActiveRun, model: Any, *, name: str = "model", **options: Any) -> ModelInfo:
    """Save ``model`` into the run's artifacts under ``name``, with the run's metrics, params and lineage."""
    artifact_path = safe_relpath(name)
    info = run.info  # flushes buffered metrics first, so the manifest has the latest values
    client = run.client
    datasets = [
        {"name": d.name, "digest": d.digest, "source": d.source, "num_rows": d.num_rows, "context": d.context}
        for d in client.dataset_inputs(run.run_id)
    ]
    lineage = {
        "run_id": run.run_id,
        "experiment_id": run.experiment_id,
        "datasets": datasets,
        "pipeline_run_id": info.tags.get(PIPELINE_RUN_TAG),
    }
    # The feature service (and its applied version) the run's training set came from: serving looks the
    # same features up for the model. An explicit feature_service="name" names one without a version.
    explicit = options.pop("feature_service", None)
    service = {"name": str(explicit), "version": None} if explicit else _feature_service(datasets)
    if service is not None:
        lineage["feature_service"] = service
    with tempfile.TemporaryDirectory(prefix="shipyard-model-") as tmp:
        folder = Path(tmp) / "package"
        manifest = save_model(
            model,
            folder,
            metrics={k: v for k, v in info.metrics.items() if not k.startswith("system/")},
            params=info.params,
            lineage=lineage,
            name=artifact_path,
            **options,
        )
        manifest_sha = package.sha256_file(folder / package.MANIFEST)
        run.log_artifacts(folder, artifact_path=artifact_path)
    uri = f"runs:/{run.run_id}/{artifact_path}"
    LineageClient(client).record(
        "training",
        name=info.name,
        run_id=run.run_id,
        pipeline_run_id=lineage["pipeline_run_id"],
        inputs=[(dataset_uri(d), ArtifactType.DATASET, d["digest"], d["name"]) for d in datasets],
        outputs=[(uri, ArtifactType.MODEL, manifest_sha, artifact_path)],
    )
    return ModelInfo(uri, run.run_id, artifact_path, manifest)


def _feature_service(datasets: list[dict[str, Any]]) -> dict[str, Any] | None:
    if not any(str(d.get("source") or "").startswith("features:training_set/") for d in datasets):
        return None  # no training set: the feature store (pandas, DuckDB) is not imported
    from shipyard.features.lineage import service_of

    return service_of(datasets)


def dataset_uri(dataset: Mapping[str, Any]) -> str:
    """A dataset's lineage URI: its file when it came from one, else ``dataset:<name>``."""
    source = str(dataset.get("source") or "")
    if source.startswith("/"):
        return "file://" + source  # as pipeline steps name their files, so the two lineages join
    return source if source and not source.startswith("<") else f"dataset:{dataset['name']}"


def _predict_example(model: Any, input_example: Any) -> Any:
    """The model's output on its own input example; a model that rejects its example is a user error."""
    predict = getattr(model, "predict", None)
    if input_example is None or not callable(predict):
        return None
    try:
        return predict(input_example)
    except Exception as exc:
        raise InvalidInput(
            f"the model cannot predict on its input_example: {type(exc).__name__}: {exc}"
        ) from exc


def _resolve_signature(
    signature: Signature | Mapping[str, Any] | str | None, input_example: Any, output: Any
) -> dict[str, Any] | None:
    if signature is None:
        return None
    if isinstance(signature, Signature):
        return signature.to_dict()
    if isinstance(signature, Mapping):
        return Signature.from_dict(signature).to_dict()
    if signature != "infer":
        raise InvalidInput(f"signature must be 'infer', a Signature, a dict or None, got {signature!r}")
    if input_example is None:
        return None
    return infer_signature(input_example, output).to_dict()


def _resolve_requirements(requirements: Sequence[str] | str, flavor_requirements: Sequence[str]) -> list[str]:
    if isinstance(requirements, str):
        if requirements != "infer":
            raise InvalidInput(
                f"requirements must be 'infer' or a list of pip requirements, got {requirements!r}"
            )
        pinned = list(flavor_requirements)
        with contextlib.suppress(metadata.PackageNotFoundError):
            pinned.append(f"shipyard=={metadata.version('shipyard')}")
        return sorted(set(pinned))
    return [str(r) for r in requirements]
