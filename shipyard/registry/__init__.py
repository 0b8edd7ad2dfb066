"""Model registry and secure packaging: flavors, signatures, packages, versions, aliases, stages, lineage."""

from shipyard.registry.client import RegistryClient
from shipyard.registry.loading import LoadedModel, load_model
from shipyard.registry.package import Manifest
from shipyard.registry.records import ModelEvent, ModelVersion, RegisteredModel, Stage
from shipyard.registry.registering import VersionDiff, diff_versions, export_version, import_version, register
from shipyard.registry.saving import ModelInfo, log_model, save_model
from shipyard.registry.signature import ColumnSpec, Signature, enforce, infer_signature
from shipyard.registry.uri import parse_model_uri

__all__ = [
    "ColumnSpec",
    "LoadedModel",
    "Manifest",
    "ModelEvent",
    "ModelInfo",
    "ModelVersion",
    "RegisteredModel",
    "RegistryClient",
    "Signature",
    "Stage",
    "VersionDiff",
    "diff_versions",
    "enforce",
    "export_version",
    "import_version",
    "infer_signature",
    "load_model",
    "log_model",
    "parse_model_uri",
    "register",
    "save_model",
]
