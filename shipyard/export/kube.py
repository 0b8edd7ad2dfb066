"""``shipyard export kserve|k8s``: a registered model as Kubernetes objects.

``kserve`` writes a KServe ``InferenceService`` (serving.kserve.io/v1beta1, Open Inference Protocol v2): the
model's verified ONNX file served by the cluster's ``onnx`` runtime when the package has one and a storage URI
the cluster can read, else the image from ``shipyard build`` as a custom container. ``k8s`` writes what a
cluster without KServe needs: a Deployment, a Service, a HorizontalPodAutoscaler and a Prometheus
ServiceMonitor. Both name the exact version exported (an alias is resolved), with its MODEL.yaml sha256.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from shipyard.errors import InvalidInput
from shipyard.export.image import GRPC_PORT, REST_PORT, USER_ID, WORKDIR, check_image
from shipyard.registry.flavors.onnx import MODEL_FILE as ONNX_FILE
from shipyard.registry.loading import locate_package, read_verified_manifest
from shipyard.registry.package import Manifest
from shipyard.serving.deployment import default_name, load_deployment

if TYPE_CHECKING:
    from shipyard.registry.client import RegistryClient

FORMATS = ("auto", "custom", "onnx")
PROTOCOLS = ("rest", "grpc")
# Where a KServe storage initializer can fetch from; a file:// package is on one machine only.
_STORAGE_SCHEMES = ("s3://", "gs://", "https://", "http://", "pvc://", "hf://", "oci://")
# Kubernetes' quantity grammar (resource.Quantity), e.g. 500m, 2, 1.5Gi, 1e3.
_QUANTITY = re.compile(r"^[+]?(\d+(\.\d*)?|\.\d+)(Ki|Mi|Gi|Ti|Pi|Ei|m|k|M|G|T|P|E|[eE][+-]?\d+)?$")
_DNS_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
# Knative names a predictor's revisions NAME-predictor-00001 (and its routes longer still): keep room.
_MAX_NAME = 45


@dataclass(frozen=True)
class Resources:
    """Requests and limits of the serving container; GPUs are ``nvidia.com/gpu`` limits."""

    cpu: str = "500m"
    memory: str = "1Gi"
    cpu_limit: str | None = "2"
    memory_limit: str | None = "2Gi"
    gpus: int = 0

    def check(self) -> None:
        for option, value in (
            ("--cpu", self.cpu),
            ("--memory", self.memory),
            ("--cpu-limit", self.cpu_limit),
            ("--memory-limit", self.memory_limit),
        ):
            if value is not None and not _QUANTITY.match(value):
                raise InvalidInput(f"{option} {value!r} is not a Kubernetes quantity (e.g. 500m, 2, 1Gi)")
        if self.gpus < 0:
            raise InvalidInput(f"--gpus {self.gpus} must be 0 or more")

    def to_dict(self) -> dict[str, Any]:
        limits: dict[str, Any] = {}
        if self.cpu_limit is not None:
            limits["cpu"] = self.cpu_limit
        if self.memory_limit is not None:
            limits["memory"] = self.memory_limit
        if self.gpus:
            limits["nvidia.com/gpu"] = str(self.gpus)
        found: dict[str, Any] = {"requests": {"cpu": self.cpu, "memory": self.memory}}
        if limits:
            found["limits"] = limits
        return found


@dataclass(frozen=True)
class ExportedModel:
    """What the manifests say about the model: the exact version, its sha256, and what its package holds."""

    name: str
    uri: str
    version: int | None
    flavor: str
    manifest_sha256: str
    package_uri: str
    has_onnx: bool


@dataclass(frozen=True)
class Exported:
    """The manifests, and what a user should know about how they were made (a fallback, a canary)."""

    documents: list[dict[str, Any]]
    notes: list[str] = field(default_factory=list)

    def to_yaml(self) -> str:
        return dump_manifests(self.documents)


class _PlainDumper(yaml.SafeDumper):
    """Writes every mapping out: a dict used in two places (a volume mount, a label set) would otherwise
    become a YAML anchor and alias, which reviewers and some tools read badly."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def dump_manifests(documents: list[dict[str, Any]]) -> str:
    """Kubernetes documents as multi-document YAML, keys in the order written, without anchors."""
    return yaml.dump_all(documents, Dumper=_PlainDumper, sort_keys=False)


def describe_model(uri: str, registry: RegistryClient, name: str | None = None) -> ExportedModel:
    """Resolve ``uri`` (an alias to its version) and read its verified manifest; nothing else is fetched."""
    location = locate_package(uri, registry)
    manifest = read_verified_manifest(location)[1]
    exact = uri
    version = location.version
    if version is not None:
        exact = f"models:/{version.name}/{version.version}"
    return ExportedModel(
        name=kube_name(name or default_name(uri), "--name"),
        uri=exact,
        version=version.version if version is not None else None,
        flavor=manifest.flavor,
        manifest_sha256=location.manifest_sha256,
        package_uri=location.package_uri,
        has_onnx=_has_onnx(manifest),
    )


def kube_name(name: str, option: str) -> str:
    """``name`` as a Kubernetes object name (DNS-1035 label: lower case, digits and '-', from a letter)."""
    candidate = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")
    if candidate and not candidate[0].isalpha():
        candidate = f"m-{candidate}"
    candidate = candidate[:_MAX_NAME].rstrip("-")
    if not _DNS_LABEL.match(candidate):
        raise InvalidInput(f"{option} {name!r} cannot be a Kubernetes name (letters, digits and '-')")
    return candidate


def kserve_manifests(
    model: ExportedModel,
    *,
    image: str | None = None,
    model_format: str = "auto",
    storage_uri: str | None = None,
    protocol: str = "rest",
    namespace: str | None = None,
    min_replicas: int = 1,
    max_replicas: int = 3,
    canary_percent: int | None = None,
    resources: Resources | None = None,
) -> Exported:
    """A KServe ``InferenceService`` for ``model``.

    ``model_format="auto"`` serves the package's verified ``model.onnx`` with the cluster's ONNX runtime when
    there is a storage URI the cluster can read (``storage_uri``, or the package's own location on an object
    store); otherwise, and for ``"custom"``, the ``image`` from ``shipyard build`` runs as the predictor.

    Raises:
        InvalidInput: a missing or malformed option (named), a format the package cannot be served with
            (why named), or a storage URI a cluster cannot fetch from.
    """
    resources = resources or Resources()
    resources.check()
    _check_choice(model_format, FORMATS, "--format")
    _check_choice(protocol, PROTOCOLS, "--protocol")
    _check_replicas(min_replicas, max_replicas, minimum=0)
    if canary_percent is not None and not 0 <= canary_percent <= 100:
        raise InvalidInput(f"--canary-percent {canary_percent} must be between 0 and 100")
    if storage_uri is not None and not storage_uri.startswith(_STORAGE_SCHEMES):
        raise InvalidInput(
            f"--storage-uri {storage_uri!r} is not a location a KServe storage initializer fetches from "
            f"({', '.join(_STORAGE_SCHEMES)})"
        )
    notes = []
    chosen, why = _choose_format(model, model_format, storage_uri)
    predictor: dict[str, Any] = {"minReplicas": min_replicas, "maxReplicas": max_replicas}
    if canary_percent is not None:
        predictor["canaryTrafficPercent"] = canary_percent
    if chosen == "onnx":
        predictor["model"] = {
            "modelFormat": {"name": "onnx"},
            "protocolVersion": "v2",
            "storageUri": storage_uri or model.package_uri,
            "resources": resources.to_dict(),
        }
        notes.append(
            f"{model.uri} is served by the cluster's ONNX runtime from {predictor['model']['storageUri']} "
            f"({ONNX_FILE}): requests send the ONNX graph's own inputs, not the signature's columns"
        )
    else:
        if why:
            notes.append(f"{model.uri}: {why}; it is served by the custom container {image or '(no image)'}")
        if image is None:
            raise InvalidInput(
                f"{model.uri} needs --image (the image `shipyard build` made for it): "
                f"{why or 'the custom format runs an image'}"
            )
        check_image(image, "--image")
        port = (
            {"name": "h2c", "containerPort": GRPC_PORT, "protocol": "TCP"}
            if protocol == "grpc"
            else {"containerPort": REST_PORT, "protocol": "TCP"}
        )
        container: dict[str, Any] = {
            "name": "kserve-container",
            "image": image,
            "ports": [port],
            "resources": resources.to_dict(),
            "securityContext": container_security(),
            "volumeMounts": _MOUNTS,
        }
        if protocol == "rest":
            container["readinessProbe"] = {"httpGet": {"path": "/v2/health/ready", "port": REST_PORT}}
        predictor["containers"] = [container]
        predictor["securityContext"] = pod_security()
        predictor["volumes"] = volumes()
    metadata = _metadata(model, namespace, component="predictor")
    metadata["annotations"]["serving.kserve.io/deploymentMode"] = "Serverless"
    document = {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": metadata,
        "spec": {"predictor": predictor},
    }
    return Exported([document], notes)


def k8s_manifests(
    model: ExportedModel,
    *,
    image: str,
    namespace: str | None = None,
    min_replicas: int = 1,
    max_replicas: int = 3,
    cpu_target: int = 70,
    resources: Resources | None = None,
    scrape_interval: str = "30s",
) -> Exported:
    """Deployment, Service, HorizontalPodAutoscaler and ServiceMonitor serving ``model`` from ``image``.

    The pod runs as the image's non-root user with a read-only root file system; the server's home and its
    temporary copies of the package are ``emptyDir`` volumes.
    """
    resources = resources or Resources()
    resources.check()
    check_image(image, "--image")
    _check_replicas(min_replicas, max_replicas, minimum=1)
    if not 1 <= cpu_target <= 100:
        raise InvalidInput(f"--cpu-target {cpu_target} must be a percentage between 1 and 100")
    if not re.match(r"^\d+(ms|s|m|h)$", scrape_interval):
        raise InvalidInput(f"--scrape-interval {scrape_interval!r} is not a duration like 30s or 1m")
    selector = {"app.kubernetes.io/name": model.name, "app.kubernetes.io/instance": model.name}
    metadata = _metadata(model, namespace, component="predictor")
    pod_metadata = {"labels": dict(metadata["labels"]), "annotations": dict(metadata["annotations"])}
    container = {
        "name": "server",
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "ports": [
            {"name": "http", "containerPort": REST_PORT, "protocol": "TCP"},
            {"name": "grpc", "containerPort": GRPC_PORT, "protocol": "TCP"},
        ],
        "readinessProbe": {
            "httpGet": {"path": "/v2/health/ready", "port": "http"},
            "periodSeconds": 5,
            "failureThreshold": 3,
        },
        "livenessProbe": {
            "httpGet": {"path": "/v2/health/live", "port": "http"},
            "periodSeconds": 10,
            "failureThreshold": 6,
        },
        "startupProbe": {
            "httpGet": {"path": "/v2/health/live", "port": "http"},
            "periodSeconds": 5,
            "failureThreshold": 60,
        },
        "resources": resources.to_dict(),
        "securityContext": container_security(),
        "volumeMounts": _MOUNTS,
    }
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata,
        "spec": {
            "replicas": min_replicas,
            "selector": {"matchLabels": selector},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
            "template": {
                "metadata": pod_metadata,
                "spec": {
                    "securityContext": pod_security(),
                    "terminationGracePeriodSeconds": 30,
                    "containers": [container],
                    "volumes": volumes(),
                },
            },
        },
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(model, namespace, component="predictor"),
        "spec": {
            "type": "ClusterIP",
            "selector": selector,
            "ports": [
                {"name": "http", "port": REST_PORT, "targetPort": "http", "protocol": "TCP"},
                {
                    "name": "grpc",
                    "port": GRPC_PORT,
                    "targetPort": "grpc",
                    "protocol": "TCP",
                    "appProtocol": "kubernetes.io/h2c",
                },
            ],
        },
    }
    autoscaler = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": _metadata(model, namespace, component="predictor"),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": model.name},
            "minReplicas": min_replicas,
            "maxReplicas": max_replicas,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {"type": "Utilization", "averageUtilization": cpu_target},
                    },
                }
            ],
        },
    }
    monitor = service_monitor(
        model.name, namespace, selector, _metadata(model, namespace, component="predictor"), scrape_interval
    )
    return Exported([deployment, service, autoscaler, monitor])


def service_monitor(
    name: str,
    namespace: str | None,
    selector: Mapping[str, str],
    metadata: dict[str, Any],
    interval: str = "30s",
    port: str = "http",
) -> dict[str, Any]:
    """A prometheus-operator ServiceMonitor scraping ``/metrics`` on the Services ``selector`` picks."""
    spec: dict[str, Any] = {
        "selector": {"matchLabels": dict(selector)},
        "endpoints": [{"port": port, "path": "/metrics", "interval": interval, "scheme": "http"}],
    }
    if namespace:
        spec["namespaceSelector"] = {"matchNames": [namespace]}
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": metadata,
        "spec": spec,
    }


def kserve_from_deployment(
    path: Path,
    registry: RegistryClient,
    *,
    images: Mapping[str, str],
    **options: Any,
) -> Exported:
    """One InferenceService per model of a ``deploy.yaml``; a model with two versions becomes a canary.

    KServe splits traffic between an InferenceService's previous revision and its latest one: the version
    with the smaller weight is exported as the latest revision, with ``canaryTrafficPercent`` its share of the
    weights; the other must be what the cluster serves now (the note says which). ``images`` maps a version
    label (or the model's name) to its image.
    """
    deployment = load_deployment(path)
    documents: list[dict[str, Any]] = []
    notes: list[str] = []
    for index, spec in enumerate(deployment.models):
        where = f"{path}: models.{index}"
        if spec.uri is not None:
            label, uri, canary = None, spec.uri, None
        else:
            labels = list(spec.versions)
            if len(labels) > 2:
                raise InvalidInput(
                    f"{where} has {len(labels)} versions; a KServe InferenceService splits traffic between "
                    "two revisions (its previous one and its latest)"
                )
            weights = {label: float(spec.traffic.get(label, 0)) for label in labels}
            total = sum(weights.values())
            if len(labels) == 1 or total <= 0:
                label = labels[0]
                canary = None
            else:
                label = min(labels, key=lambda lab: weights[lab])
                stable = next(lab for lab in labels if lab != label)
                canary = round(100 * weights[label] / total)
                notes.append(
                    f"{where}: {label} ({spec.versions[label]}) is exported as the latest revision with "
                    f"canaryTrafficPercent {canary}; {stable} ({spec.versions[stable]}) must be the revision "
                    "the cluster serves now"
                )
            uri = spec.versions[label]
        model = describe_model(uri, registry, spec.name)
        image = images.get(label or "") or images.get(model.name) or images.get("")
        exported = kserve_manifests(model, image=image, canary_percent=canary, **options)
        documents.extend(exported.documents)
        notes.extend(exported.notes)
    return Exported(documents, notes)


def _choose_format(model: ExportedModel, wanted: str, storage_uri: str | None) -> tuple[str, str | None]:
    """The format to export, and why the custom container serves it when that was not asked for."""
    if wanted == "custom":
        return "custom", None
    why = None
    if not model.has_onnx:
        why = (
            f"the {model.flavor} flavor has no KServe model format a Shipyard package can give "
            f"(KServe's runtimes unpickle sklearn/xgboost files; only a verified {ONNX_FILE} is served "
            "natively)"
        )
    elif storage_uri is None and not model.package_uri.startswith(_STORAGE_SCHEMES):
        why = (
            f"its package is at {model.package_uri}, which a cluster cannot fetch; give --storage-uri where "
            "the package was copied (s3://…, gs://…, pvc://…) to serve its ONNX file natively"
        )
    if why is None:
        return "onnx", None
    if wanted == "onnx":
        raise InvalidInput(f"--format onnx: {model.uri} cannot be served so: {why}")
    return "custom", why


def _has_onnx(manifest: Manifest) -> bool:
    listed = {f.path for f in manifest.files}
    if manifest.flavor == "onnx":
        return ONNX_FILE in listed
    facts = manifest.loader.get("onnx")
    return isinstance(facts, Mapping) and facts.get("available") is True and ONNX_FILE in listed


def _metadata(model: ExportedModel, namespace: str | None, component: str) -> dict[str, Any]:
    labels = {
        "app.kubernetes.io/name": model.name,
        "app.kubernetes.io/instance": model.name,
        "app.kubernetes.io/component": component,
        "app.kubernetes.io/part-of": "shipyard",
        "app.kubernetes.io/managed-by": "shipyard",
    }
    if model.version is not None:
        labels["app.kubernetes.io/version"] = str(model.version)
    found: dict[str, Any] = {
        "name": model.name,
        "labels": labels,
        "annotations": {
            "shipyard.io/model-uri": model.uri,
            "shipyard.io/manifest-sha256": model.manifest_sha256,
            "shipyard.io/flavor": model.flavor,
        },
    }
    if namespace is not None:
        found["namespace"] = check_namespace(namespace)
    return found


def check_namespace(namespace: str) -> str:
    if len(namespace) > 63 or not re.match(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", namespace):
        raise InvalidInput(f"--namespace {namespace!r} is not a Kubernetes namespace name (DNS-1123 label)")
    return namespace


# The root file system is read-only: the server's home (its store) and the package's temporary copy are not.
_MOUNTS = [{"name": "home", "mountPath": f"{WORKDIR}/home"}, {"name": "tmp", "mountPath": "/tmp"}]


def volumes() -> list[dict[str, Any]]:
    """The pod's writable places under a read-only root file system: the server's home and /tmp."""
    return [{"name": "home", "emptyDir": {}}, {"name": "tmp", "emptyDir": {}}]


def pod_security() -> dict[str, Any]:
    """The pod runs as the image's non-root user, with the runtime's default seccomp profile."""
    return {
        "runAsNonRoot": True,
        "runAsUser": USER_ID,
        "runAsGroup": USER_ID,
        "fsGroup": USER_ID,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def container_security() -> dict[str, Any]:
    """No privilege escalation, no capabilities, a read-only root file system."""
    return {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }


def _check_choice(value: str, choices: tuple[str, ...], option: str) -> None:
    if value not in choices:
        raise InvalidInput(f"{option} {value!r} is not one of: {', '.join(choices)}")


def _check_replicas(low: int, high: int, minimum: int) -> None:
    if low < minimum:
        raise InvalidInput(f"--min-replicas {low} must be at least {minimum}")
    if high < max(low, 1):
        raise InvalidInput(f"--max-replicas {high} must be at least --min-replicas ({low}) and 1")
