"""The reference data of a model: a sample of its training features.

Two places, the first found wins:

1. ``monitoring/baselines/<model>.parquet`` in the artifact store, set with :func:`save_baseline` or
   ``shipyard monitor baseline`` (to override what was registered, or for a model from elsewhere);
2. ``baseline.parquet`` inside the package of the registered version that served, written at logging time by
   ``shipyard.models.log(model, baseline=X_train)`` and verified against the package manifest's sha256.

The monitoring job compares the inputs the model has served against it.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd

from shipyard.data.sample import DEFAULT_BASELINE_ROWS, sample_baseline
from shipyard.data.schema import Schema
from shipyard.errors import InvalidInput, NotFound
from shipyard.registry.loading import locate_package, read_verified_manifest
from shipyard.registry.package import BASELINE, BASELINE_SCHEMA
from shipyard.registry.signature import Signature, SignatureKind
from shipyard.store.artifacts import ArtifactStore

if TYPE_CHECKING:
    from shipyard.registry.client import RegistryClient

BASELINE_PREFIX = "monitoring/baselines"


def check_model_name(model: str) -> str:
    """``model`` unchanged when it can name one folder or file of the artifact store.

    Raises:
        InvalidInput: an empty name, '.', '..', or one holding '/', '\\', '::' or a NUL byte.
    """
    if not isinstance(model, str) or not model.strip():
        raise InvalidInput(f"model name must be a non-empty string, got {model!r}")
    if model in (".", "..") or any(bad in model for bad in ("/", "\\", "::", "\x00")):
        raise InvalidInput(f"model name {model!r} must not be '.', '..' or hold '/', '\\', '::' or NUL")
    return model


def baseline_path(model: str) -> str:
    return f"{BASELINE_PREFIX}/{check_model_name(model)}.parquet"


def save_baseline(
    store: ArtifactStore, model: str, data: Any, *, max_rows: int = DEFAULT_BASELINE_ROWS, seed: int = 0
) -> str:
    """Store ``data`` (a uniform sample of ``max_rows`` rows when larger) as the baseline of ``model``.

    It takes precedence over the baseline packaged with a registered version (``models.log(baseline=…)``).

    Returns:
        The store-relative path written; an earlier baseline of ``model`` is replaced.

    Raises:
        InvalidInput: a bad model name, ``max_rows`` < 1, or ``data`` without rows or columns.
    """
    path = baseline_path(model)
    store.put_bytes(sample_baseline(data, max_rows=max_rows, seed=seed, what=f"baseline of {model!r}"), path)
    return path


@dataclass(frozen=True)
class Baseline:
    """A baseline, where it came from (a store path or a ``models:/`` URI), and the schema packaged with it
    (inferred from all the training data; None for a baseline set with :func:`save_baseline`)."""

    frame: pd.DataFrame
    source: str
    schema: Schema | None = None


def load_baseline(store: ArtifactStore, model: str) -> pd.DataFrame:
    """The baseline of ``model`` set with :func:`save_baseline`.

    Raises:
        NotFound: ``model`` has no baseline (the message says how to set one).
    """
    return find_baseline(store, model).frame


def find_baseline(
    store: ArtifactStore,
    model: str,
    *,
    registry: RegistryClient | None = None,
    version: str | None = None,
    registered_name: str | None = None,
) -> Baseline:
    """The baseline of ``model``: the one set with :func:`save_baseline`, else (given ``registry`` and the
    served ``version``) the one packaged with ``models:/<registered_name or model>/<version>``.

    Raises:
        NotFound: neither exists (the message says what was looked at and how to set one).
        IntegrityError: the packaged baseline does not match its manifest.
    """
    path = baseline_path(model)
    if store.exists(path):
        return Baseline(pd.read_parquet(io.BytesIO(store.read_bytes(path))), store.uri(path))
    looked = [f"no {path} in the artifact store"]
    if registry is not None and version is not None:
        uri = f"models:/{registered_name or model}/{version}"
        try:
            location = locate_package(uri, registry)
        except NotFound as exc:
            looked.append(f"{uri}: {exc}")
        else:
            _, manifest = read_verified_manifest(location)
            recorded = {f.path: f.sha256 for f in manifest.files}
            if BASELINE in recorded:
                data = location.store.read_bytes(BASELINE, expected_sha256=recorded[BASELINE])
                schema = None
                if BASELINE_SCHEMA in recorded:
                    text = location.store.read_bytes(
                        BASELINE_SCHEMA, expected_sha256=recorded[BASELINE_SCHEMA]
                    )
                    schema = Schema.from_yaml(text.decode("utf-8"), source=f"{uri}/{BASELINE_SCHEMA}")
                return Baseline(pd.read_parquet(io.BytesIO(data)), uri, schema)
            looked.append(f"{uri} was logged without a baseline")
    elif registry is not None:
        looked.append("no served version to look up in the registry")
    raise NotFound(
        f"model {model!r} has no monitoring baseline ({'; '.join(looked)}); log the model with "
        f"`shipyard.models.log(..., baseline=X_train)` or set one with "
        f"`shipyard monitor baseline {model} TRAINING_DATA.parquet`"
    )


def model_input_columns(registry: RegistryClient, name: str) -> tuple[str, ...] | None:
    """The input columns the signature of ``name``'s latest version names; None when ``name`` is not
    registered or its latest version has no column signature (nothing to go by)."""
    try:
        versions = registry.list_versions(name)
    except NotFound:
        return None
    if not versions:
        return None
    latest = max(versions, key=lambda v: v.version)
    _, manifest = read_verified_manifest(locate_package(latest.uri, registry))
    if not manifest.signature:
        return None
    signature = Signature.from_dict(manifest.signature)
    if signature.kind is not SignatureKind.DATAFRAME:
        return None
    return tuple(spec.name for spec in signature.inputs if spec.name is not None)


__all__ = [
    "BASELINE_PREFIX",
    "Baseline",
    "baseline_path",
    "check_model_name",
    "find_baseline",
    "load_baseline",
    "model_input_columns",
    "save_baseline",
]
