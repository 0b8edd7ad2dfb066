"""Validate Kubernetes manifests (what `shipyard export` writes) against real schemas, offline.

* Built-in kinds: `kubernetes_validate.validate(doc, version, strict=True)`, i.e. the Kubernetes OpenAPI
  schemas the kubernetes-validate wheel bundles, in their "strict" form (`additionalProperties: false`
  everywhere, so a misspelt field fails). It never touches the network: the schemas are package data read
  with importlib.resources, and the `referencing` registry it builds has no retriever.
* `serving.kserve.io/v1beta1` InferenceService and `monitoring.coreos.com/v1` ServiceMonitor: the CRDs'
  OpenAPI v3 schemas vendored under tests/data/crds (README there), made strict the way the API server's
  strict field validation (`kubectl apply --validate=strict`) treats a structural schema: unknown fields are
  errors except under `x-kubernetes-preserve-unknown-fields`. Their `metadata` is checked against the
  Kubernetes ObjectMeta schema, as the API server does.
* What the schemas leave to the API server's validation code, for every object: metadata.name/namespace
  formats, label keys and values, resource quantities, and a workload's selector matching its pod
  template's labels.

Not checked: CEL rules (`x-kubernetes-validations`), list uniqueness (`x-kubernetes-list-type`), defaults,
and references between objects.
"""

from __future__ import annotations

import copy
import functools
import json
import os
import re
from collections.abc import Iterable, Iterator
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Any

import jsonschema
import kubernetes_validate
import yaml
from kubernetes_validate.utils import all_versions, schema_contents
from packaging.version import Version
from referencing import Registry, Resource

CRD_DIR = Path(__file__).parent / "data" / "crds"

# The oldest release the exported manifests are meant to apply to (kubernetes-validate ships 1.25 to its own
# version's schemas; a later patch release resolves to its minor's schemas).
DEFAULT_KUBERNETES_VERSION = "1.30.0"

KUSTOMIZE_API_VERSION = "kustomize.config.k8s.io/v1beta1"

# (apiVersion, kind) -> vendored schema file, and the name rule its controller enforces.
_CRDS: dict[tuple[str, str], tuple[str, str]] = {
    # KServe's webhook: ^[a-z]([-a-z0-9]*[a-z0-9])?$ (IsvcNameFmt), i.e. a DNS-1035 label.
    ("serving.kserve.io/v1beta1", "InferenceService"): ("kserve-inferenceservice-v1beta1.json", "dns1035"),
    ("monitoring.coreos.com/v1", "ServiceMonitor"): (
        "prometheus-servicemonitor-v1.json",
        "dns1123-subdomain",
    ),
}

# The API server's name rule per built-in kind (k8s.io/kubernetes pkg/apis/*/validation); the rest are
# DNS-1123 subdomains.
_NAME_RULES = {"Service": "dns1035", "Namespace": "dns1123-label"}

_DNS1123_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_NAME_PATTERNS = {
    "dns1123-label": (re.compile(rf"{_DNS1123_LABEL}"), 63),
    "dns1123-subdomain": (re.compile(rf"{_DNS1123_LABEL}(\.{_DNS1123_LABEL})*"), 253),
    "dns1035": (re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?"), 63),
}
_QUALIFIED_NAME = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
# resource.Quantity's text form (the pattern the CRDs carry for int-or-string quantities).
_QUANTITY = re.compile(
    r"(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?"
)
_WORKLOADS = {("apps/v1", k) for k in ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet")}

# kustomize's types.Kustomization fields (api/types/kustomization.go); kustomize decodes with
# DisallowUnknownFields, so anything else is an error there too.
_KUSTOMIZATION_FIELDS = frozenset(
    [
        "apiVersion",
        "kind",
        "metadata",
        "openapi",
        "namePrefix",
        "nameSuffix",
        "namespace",
        "commonLabels",
        "labels",
        "commonAnnotations",
        "patchesStrategicMerge",
        "patchesJson6902",
        "patches",
        "images",
        "imageTags",
        "replacements",
        "replicas",
        "vars",
        "sortOptions",
        "resources",
        "components",
        "crds",
        "bases",
        "configMapGenerator",
        "secretGenerator",
        "helmGlobals",
        "helmCharts",
        "helmChartInflationGenerator",
        "generatorOptions",
        "configurations",
        "generators",
        "transformers",
        "validators",
        "inventory",
        "buildMetadata",
    ]
)


class ManifestValidationError(AssertionError):
    """One or more manifests are invalid; the message lists each problem as `Kind/name: path: message`."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__(
            f"{len(problems)} problem(s) in the manifests:\n" + "\n".join(f"  - {p}" for p in problems)
        )


def load_yaml_documents(path_or_text: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The YAML documents in a file (a Path, or a one-line str naming an existing file) or in YAML text,
    without the empty ones (`---` separators with nothing between them)."""
    if isinstance(path_or_text, os.PathLike) or _is_file(path_or_text):
        text = Path(path_or_text).read_text(encoding="utf-8")
    else:
        text = path_or_text
    documents = [doc for doc in yaml.safe_load_all(text) if doc is not None]
    for i, doc in enumerate(documents):
        if not isinstance(doc, dict):
            raise ManifestValidationError([f"document #{i}: a {type(doc).__name__}, not a mapping"])
    return documents


def validate_manifests(
    documents: Iterable[dict[str, Any]], kubernetes_version: str = DEFAULT_KUBERNETES_VERSION
) -> None:
    """Validate each Kubernetes object; raise ManifestValidationError listing every problem found.

    A Kustomization among them is checked with validate_kustomization; any apiVersion/kind that is neither a
    built-in of `kubernetes_version` nor a vendored CRD is an error.
    """
    version = resolve_kubernetes_version(kubernetes_version)
    problems: list[str] = []
    seen: dict[tuple[str, str, str, str], int] = {}
    for i, doc in enumerate(documents):
        where = _describe(doc, i)
        if not isinstance(doc, dict):
            problems.append(f"{where}: not a mapping")
            continue
        api_version, kind = doc.get("apiVersion"), doc.get("kind")
        if not isinstance(api_version, str) or not isinstance(kind, str) or not api_version or not kind:
            problems.append(f"{where}: apiVersion and kind must be non-empty strings")
            continue
        if kind == "Kustomization" or api_version.startswith("kustomize.config.k8s.io/"):
            problems += [f"{where}: {p}" for p in _kustomization_problems(doc, None)]
            continue
        if (api_version, kind) in _CRDS:
            schema_file, name_rule = _CRDS[api_version, kind]
            found = _schema_problems(_crd_validator(schema_file), doc)
            if isinstance(doc.get("metadata"), dict):
                found += _schema_problems(_object_meta_validator(version), doc["metadata"], ("metadata",))
            problems += [f"{where}: {p}" for p in found]
        else:
            name_rule = _NAME_RULES.get(kind, "dns1123-subdomain")
            try:
                kubernetes_validate.validate(doc, version, strict=True)
            except kubernetes_validate.SchemaNotFoundError:
                problems.append(
                    f"{where}: unknown apiVersion/kind {api_version}/{kind} for Kubernetes {version}"
                )
                continue
            except kubernetes_validate.ValidationError as e:
                problems.append(f"{where}: {_path(e.absolute_path)}: {e.message}")
        # The CRDs carry the quantity pattern themselves; the built-in schemas accept any string.
        semantic = _semantic_problems(doc, name_rule, quantities=(api_version, kind) not in _CRDS)
        problems += [f"{where}: {p}" for p in semantic]
        metadata = doc.get("metadata") if isinstance(doc.get("metadata"), dict) else {}
        key = (
            api_version.split("/")[0] if "/" in api_version else "",
            kind,
            str(metadata.get("namespace", "")),
            str(metadata.get("name", "")),
        )
        if key in seen:
            problems.append(f"{where}: the same object as document #{seen[key]}")
        seen.setdefault(key, i)
    if problems:
        raise ManifestValidationError(problems)


def validate_kustomization(doc: dict[str, Any], base_dir: str | os.PathLike[str] | None = None) -> None:
    """Check a kustomization.yaml: kustomize's apiVersion/kind, no unknown fields, and `resources` a list of
    distinct relative paths inside the directory (files that exist, when `base_dir` is given)."""
    problems = _kustomization_problems(doc, None if base_dir is None else Path(base_dir))
    if problems:
        raise ManifestValidationError([f"Kustomization: {p}" for p in problems])


def resolve_kubernetes_version(requested: str) -> str:
    """The bundled schema version for `requested` ("1.30", "v1.30.2"): its minor's (kubernetes-validate
    resolves it by comparing "major.minor" strings, and fails obscurely below its oldest)."""
    want = Version(requested.removeprefix("v"))
    shipped = sorted(Version(v) for v in all_versions())
    candidates = [v for v in shipped if (v.major, v.minor) == (want.major, want.minor)]
    if not candidates:
        raise ValueError(
            f"kubernetes-validate {kubernetes_validate.__version__} has no schemas for Kubernetes "
            f"{requested} (it has {shipped[0]} to {shipped[-1]})"
        )
    return str(candidates[-1])


def strict_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """A copy of a CRD structural schema that rejects unknown fields as strict field validation does.

    CRD schemas never say `additionalProperties: false` (the API server prunes, or with strict validation
    rejects, whatever a structural schema doesn't name), so every object schema with `properties` and neither
    `additionalProperties` nor `x-kubernetes-preserve-unknown-fields` gets `additionalProperties: false`.
    `nullable: true` becomes a "null" type; `x-kubernetes-embedded-resource` objects also accept apiVersion,
    kind and metadata. allOf/anyOf/oneOf/not are value validations in a structural schema (their `properties`
    repeat the outer ones), so they are left as they are.
    """
    node = copy.copy(schema)
    if node.get("nullable") and isinstance(node.get("type"), str):
        node["type"] = [node["type"], "null"]
    if node.get("x-kubernetes-embedded-resource"):
        node["properties"] = {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            **node.get("properties", {}),
        }
    if isinstance(node.get("properties"), dict):
        node["properties"] = {name: strict_schema(sub) for name, sub in node["properties"].items()}
        if "additionalProperties" not in node and not node.get("x-kubernetes-preserve-unknown-fields"):
            node["additionalProperties"] = False
    for key in ("items", "additionalProperties"):
        if isinstance(node.get(key), dict):
            node[key] = strict_schema(node[key])
    return node


@functools.cache
def load_crd_schema(filename: str) -> dict[str, Any]:
    """A vendored `{"source": ..., "schema": ...}` file from tests/data/crds."""
    return json.loads((CRD_DIR / filename).read_text(encoding="utf-8"))


# OpenAPI 3.0 schema objects follow JSON Schema draft Wright-00 (draft 5), whose keywords the Draft 4
# validator implements (boolean exclusiveMinimum/exclusiveMaximum among them). The formats the API server
# checks in these schemas: int32/int64 ranges and RFC 3339 date-times.
_FORMATS = jsonschema.FormatChecker(formats=())


@_FORMATS.checks("int32")
def _is_int32(value: object) -> bool:
    return not isinstance(value, int) or isinstance(value, bool) or -(2**31) <= value < 2**31


@_FORMATS.checks("int64")
def _is_int64(value: object) -> bool:
    return not isinstance(value, int) or isinstance(value, bool) or -(2**63) <= value < 2**63


@_FORMATS.checks("date-time", raises=ValueError)
def _is_date_time(value: object) -> bool:
    return not isinstance(value, str) or (
        "T" in value.upper() and datetime.fromisoformat(value).tzinfo is not None
    )


@functools.cache
def _crd_validator(filename: str) -> jsonschema.protocols.Validator:
    schema = strict_schema(load_crd_schema(filename)["schema"])
    return jsonschema.Draft4Validator(schema, format_checker=_FORMATS)


@functools.cache
def _object_meta_validator(version: str) -> jsonschema.protocols.Validator:
    strict_dir = f"kubernetes-json-schema/v{version}-local-strict"
    definitions = schema_contents(f"{strict_dir}/_definitions.json", version)
    registry = Resource.from_contents(definitions) @ Registry()
    ref = definitions["$id"] + "#/$defs/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
    return jsonschema.Draft202012Validator({"$ref": ref}, registry=registry)


def _schema_problems(
    validator: jsonschema.protocols.Validator, instance: Any, prefix: tuple[str, ...] = ()
) -> list[str]:
    errors = sorted(validator.iter_errors(instance), key=lambda e: [str(p) for p in e.absolute_path])
    return [f"{_path((*prefix, *e.absolute_path))}: {e.message}" for e in errors]


def _semantic_problems(doc: dict[str, Any], name_rule: str, quantities: bool) -> list[str]:
    """What the API server's validation code checks and the schemas don't."""
    problems = []
    metadata = doc.get("metadata") if isinstance(doc.get("metadata"), dict) else {}
    name = metadata.get("name")
    if not isinstance(name, str) or not _is_name(name, name_rule):
        problems.append(f"metadata.name: {name!r} is not a valid {name_rule} name")
    if "namespace" in metadata and not _is_name(str(metadata["namespace"]), "dns1123-label"):
        problems.append(f"metadata.namespace: {metadata['namespace']!r} is not a valid dns1123-label name")
    label_maps = list(_label_maps(doc, ()))
    if doc.get("kind") == "Service" and isinstance((doc.get("spec") or {}).get("selector"), dict):
        label_maps.append((("spec", "selector"), doc["spec"]["selector"]))
    for path, labels in label_maps:
        for key, value in labels.items():
            if not _is_qualified_name(str(key)):
                problems.append(f"{_path(path)}: label key {key!r} is not a qualified name")
            if path[-1] != "annotations" and not _is_label_value(value):
                problems.append(
                    f"{_path((*path, key))}: label value {value!r} is not valid (at most 63 characters, "
                    "alphanumeric at both ends, '-', '_' or '.' between)"
                )
    for path, value in _quantities(doc, ()) if quantities else ():
        if not (isinstance(value, int | float) and not isinstance(value, bool)) and not (
            isinstance(value, str) and _QUANTITY.fullmatch(value)
        ):
            problems.append(f"{_path(path)}: {value!r} is not a resource quantity")
    if (doc.get("apiVersion"), doc.get("kind")) in _WORKLOADS and isinstance(doc.get("spec"), dict):
        spec = doc["spec"]
        selector = spec.get("selector") or {}
        match_labels = selector.get("matchLabels") or {}
        template_labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
        if not isinstance(match_labels, dict) or not isinstance(template_labels, dict):
            return problems  # the schema check reported it
        if not match_labels and not selector.get("matchExpressions"):
            problems.append("spec.selector: empty (it would select every pod)")
        if any(template_labels.get(k) != v for k, v in match_labels.items()):
            problems.append("spec.selector.matchLabels: does not match spec.template.metadata.labels")
        pod = (spec.get("template") or {}).get("spec") or {}
        for i, container in enumerate(pod.get("containers") or []):
            if isinstance(container, dict) and not container.get("image"):
                problems.append(f"spec.template.spec.containers[{i}].image: required")
    return problems


def _label_maps(node: Any, path: tuple[str | int, ...]) -> Iterator[tuple[tuple[str | int, ...], dict]]:
    """(path, mapping) for every metadata.labels, metadata.annotations and matchLabels in `node`."""
    if isinstance(node, dict):
        for key, value in node.items():
            here = (*path, key)
            if isinstance(value, dict) and (
                (path and path[-1] == "metadata" and key in ("labels", "annotations")) or key == "matchLabels"
            ):
                yield here, value
            else:
                yield from _label_maps(value, here)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _label_maps(value, (*path, i))


def _quantities(node: Any, path: tuple[str | int, ...]) -> Iterator[tuple[tuple[str | int, ...], Any]]:
    """(path, value) for every resources.limits/requests entry in `node`."""
    if isinstance(node, dict):
        for key, value in node.items():
            here = (*path, key)
            if path and path[-1] == "resources" and key in ("limits", "requests") and isinstance(value, dict):
                yield from (((*here, k), v) for k, v in value.items())
            else:
                yield from _quantities(value, here)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _quantities(value, (*path, i))


def _kustomization_problems(doc: Any, base_dir: Path | None) -> list[str]:
    if not isinstance(doc, dict):
        return ["not a mapping"]
    problems = []
    if doc.get("apiVersion") != KUSTOMIZE_API_VERSION:
        problems.append(f"apiVersion: {doc.get('apiVersion')!r}, not {KUSTOMIZE_API_VERSION!r}")
    if doc.get("kind") != "Kustomization":
        problems.append(f"kind: {doc.get('kind')!r}, not 'Kustomization'")
    problems += [f"{key}: unknown field" for key in sorted(set(doc) - _KUSTOMIZATION_FIELDS, key=str)]
    if "namespace" in doc and not _is_name(str(doc["namespace"]), "dns1123-label"):
        problems.append(f"namespace: {doc['namespace']!r} is not a valid dns1123-label name")
    resources = doc.get("resources")
    if not isinstance(resources, list) or not resources:
        return [*problems, "resources: must be a non-empty list of file names"]
    for i, resource in enumerate(resources):
        if not isinstance(resource, str) or not resource:
            problems.append(f"resources[{i}]: {resource!r} is not a file name")
            continue
        parts = PurePosixPath(resource).parts
        if resource.startswith("/") or "://" in resource or "\\" in resource or ".." in parts:
            problems.append(f"resources[{i}]: {resource!r} is not a relative path inside the directory")
        elif base_dir is not None and not (base_dir / resource).is_file():
            problems.append(f"resources[{i}]: {resource!r} does not exist in {base_dir}")
        if resources.index(resource) != i:
            problems.append(f"resources[{i}]: {resource!r} is listed twice")
    return problems


def _is_file(text: str) -> bool:
    try:
        return "\n" not in text and Path(text).is_file()
    except OSError:  # ENAMETOOLONG: YAML text, then
        return False


def _is_name(name: str, rule: str) -> bool:
    pattern, max_length = _NAME_PATTERNS[rule]
    return len(name) <= max_length and pattern.fullmatch(name) is not None


def _is_label_value(value: object) -> bool:
    return isinstance(value, str) and (
        value == "" or (len(value) <= 63 and bool(_QUALIFIED_NAME.fullmatch(value)))
    )


def _is_qualified_name(key: str) -> bool:
    prefix, _, name = key.rpartition("/")
    if "/" in key and not (prefix and _is_name(prefix, "dns1123-subdomain")):
        return False
    return len(name) <= 63 and _QUALIFIED_NAME.fullmatch(name) is not None


def _describe(doc: Any, index: int) -> str:
    if not isinstance(doc, dict):
        return f"document #{index}"
    metadata = doc.get("metadata") if isinstance(doc.get("metadata"), dict) else {}
    kind, name, api_version = doc.get("kind", "?"), metadata.get("name", "?"), doc.get("apiVersion", "?")
    return f"{kind}/{name} (document #{index}, {api_version})"


def _path(parts: Iterable[str | int]) -> str:
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else f".{part}" if text else str(part)
    return text or "(root)"
