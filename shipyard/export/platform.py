"""``shipyard export platform``: the platform server on Kubernetes, as plain manifests and a kustomization.

What it writes (``kubectl apply -k DIR``):

* ``config.yaml`` — ConfigMap ``shipyard-config``: the artifact root and its storage options (no secrets);
* ``server.yaml`` — the platform server (``shipyard server --auth``): ServiceAccount, Deployment with probes
  on ``/api/v1/health`` and a Service; the database URL and S3 credentials come from Secrets the operator
  creates (``shipyard-database`` key ``url``; ``shipyard-s3`` keys ``access-key-id``/``secret-access-key``),
  never from these files;
* ``scheduler.yaml`` — ``shipyard scheduler``, one replica (schedules are claimed in the database, so a
  second one during a rollout runs nothing twice);
* ``monitoring.yaml`` — a ServiceMonitor for every model server exported with ``shipyard export k8s`` and the
  Grafana dashboard as a ConfigMap for Grafana's dashboard sidecar;
* ``serving-template.yaml`` — a model server Deployment and Service wired to the platform, to copy per model
  (not applied: ``shipyard export k8s`` writes the same for a registered model).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from shipyard.auth.accounts import check_user_name
from shipyard.auth.records import Permission
from shipyard.errors import InvalidInput
from shipyard.export.image import check_image
from shipyard.export.kube import (
    ExportedModel,
    Resources,
    check_namespace,
    container_security,
    dump_manifests,
    k8s_manifests,
    pod_security,
    service_monitor,
    volumes,
)

SERVER_PORT = 5000
HOME = "/var/lib/shipyard"
DATABASE_SECRET = "shipyard-database"
S3_SECRET = "shipyard-s3"
ADMIN_SECRET = "shipyard-admin"
_ADMIN_MOUNT = "/var/run/secrets/shipyard-admin"
CONFIG = "shipyard-config"
RESOURCES = ("config.yaml", "server.yaml", "scheduler.yaml", "monitoring.yaml")
TEMPLATE = "serving-template.yaml"
_PART_OF = {"app.kubernetes.io/part-of": "shipyard", "app.kubernetes.io/managed-by": "shipyard"}


@dataclass(frozen=True)
class PlatformOptions:
    """What the operator chooses; everything else follows from Shipyard's defaults."""

    image: str
    namespace: str | None = None
    replicas: int = 2
    workers: int = 2
    artifact_root: str = "s3://shipyard-artifacts"
    s3_endpoint: str | None = None
    default_permission: str = "READ"
    admin_user: str = "admin"
    server_resources: Resources = field(default_factory=Resources)

    def check(self) -> None:
        check_image(self.image, "--image")
        if self.namespace is not None:
            check_namespace(self.namespace)
        if self.replicas < 1:
            raise InvalidInput(f"--replicas {self.replicas} must be at least 1")
        if self.workers < 1:
            raise InvalidInput(f"--workers {self.workers} must be at least 1")
        if "://" not in self.artifact_root:
            raise InvalidInput(
                f"--artifact-root {self.artifact_root!r} is not a URL every replica can reach "
                "(s3://bucket/…, gs://…, az://…); a pod's own disk is lost with it"
            )
        if self.s3_endpoint is not None and not self.s3_endpoint.startswith(("http://", "https://")):
            raise InvalidInput(f"--s3-endpoint {self.s3_endpoint!r} is not an http(s) URL")
        if self.default_permission not in {p.value for p in Permission}:
            raise InvalidInput(
                f"--default-permission {self.default_permission!r} is not one of "
                f"{', '.join(p.value for p in Permission)}"
            )
        self.server_resources.check()
        check_user_name(self.admin_user)


def platform_manifests(options: PlatformOptions) -> dict[str, list[dict[str, Any]]]:
    """Each file's documents, by file name (``kustomization.yaml`` included)."""
    options.check()
    storage: dict[str, Any] = {}
    if options.s3_endpoint:
        storage["client_kwargs"] = {"endpoint_url": options.s3_endpoint}
    config = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _metadata(CONFIG, "config"),
        "data": {
            "SHIPYARD_ARTIFACT_ROOT": options.artifact_root,
            "SHIPYARD_ARTIFACT_STORAGE_OPTIONS": json.dumps(storage),
            "SHIPYARD_HOME": HOME,
        },
    }
    files = {
        "config.yaml": [config],
        "server.yaml": _server(options),
        "scheduler.yaml": [_scheduler(options)],
        "monitoring.yaml": _monitoring(),
        TEMPLATE: _serving_template(),
    }
    kustomization: dict[str, Any] = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": list(RESOURCES),
    }
    if options.namespace:
        kustomization["namespace"] = options.namespace
    files["kustomization.yaml"] = [kustomization]
    return files


def write_platform(options: PlatformOptions, output: Path, force: bool = False) -> list[Path]:
    """Write the files into ``output`` (refusing to overwrite them without ``force``); the paths written."""
    files = platform_manifests(options)
    existing = [name for name in files if (output / name).exists()]
    if existing and not force:
        raise InvalidInput(
            f"--output {output} already has {existing[0]}; give --force to replace the platform files"
        )
    output.mkdir(parents=True, exist_ok=True)
    written = []
    for name, documents in files.items():
        header = _HEADERS.get(name, "").format(admin=options.admin_user)
        (output / name).write_text(header + dump_manifests(documents), encoding="utf-8")
        written.append(output / name)
    return written


def _metadata(name: str, component: str) -> dict[str, Any]:
    return {
        "name": name,
        "labels": {"app.kubernetes.io/name": name, "app.kubernetes.io/component": component, **_PART_OF},
    }


def _env(*, s3: bool = True) -> list[dict[str, Any]]:
    env: list[dict[str, Any]] = [
        {"name": "SHIPYARD_DB_URL", "valueFrom": {"secretKeyRef": {"name": DATABASE_SECRET, "key": "url"}}},
    ]
    if s3:
        # Optional: an artifact root on GCS or Azure takes its credentials from the pod's identity instead.
        for variable, key in (
            ("AWS_ACCESS_KEY_ID", "access-key-id"),
            ("AWS_SECRET_ACCESS_KEY", "secret-access-key"),
        ):
            env.append(
                {
                    "name": variable,
                    "valueFrom": {"secretKeyRef": {"name": S3_SECRET, "key": key, "optional": True}},
                }
            )
    return env


def _pod(name: str, component: str, containers: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "metadata": {"labels": _metadata(name, component)["labels"]},
        "spec": {
            "serviceAccountName": "shipyard",
            "automountServiceAccountToken": False,
            "securityContext": pod_security(),
            "containers": containers,
            "volumes": volumes(),
        },
    }


def _admin_init(options: PlatformOptions) -> dict[str, Any]:
    """`--auth` refuses to start without an admin: each replica makes sure the first one exists (a no-op
    once it does, and safe when two replicas start at once)."""
    return {
        "name": "create-admin",
        "image": options.image,
        "command": [
            "shipyard",
            "users",
            "create",
            options.admin_user,
            "--role",
            "admin",
            "--password-file",
            f"{_ADMIN_MOUNT}/password",
            "--exists-ok",
        ],
        "envFrom": [{"configMapRef": {"name": CONFIG}}],
        "env": _env(s3=False),
        "resources": Resources(cpu="100m", memory="256Mi", cpu_limit="1", memory_limit="512Mi").to_dict(),
        "securityContext": container_security(),
        "volumeMounts": [*_MOUNTS, {"name": "admin", "mountPath": _ADMIN_MOUNT, "readOnly": True}],
    }


_MOUNTS = [{"name": "home", "mountPath": HOME}, {"name": "tmp", "mountPath": "/tmp"}]


def _server(options: PlatformOptions) -> list[dict[str, Any]]:
    name = "shipyard-server"
    selector = {"app.kubernetes.io/name": name, "app.kubernetes.io/component": "server"}
    container = {
        "name": "server",
        "image": options.image,
        "command": [
            "shipyard",
            "server",
            "--auth",
            "--host",
            "0.0.0.0",
            "--port",
            str(SERVER_PORT),
            "--workers",
            str(options.workers),
            "--no-scheduler",
            "--default-permission",
            options.default_permission,
        ],
        "ports": [{"name": "http", "containerPort": SERVER_PORT, "protocol": "TCP"}],
        "envFrom": [{"configMapRef": {"name": CONFIG}}],
        "env": _env(),
        "readinessProbe": {"httpGet": {"path": "/api/v1/health", "port": "http"}, "periodSeconds": 5},
        "livenessProbe": {
            "httpGet": {"path": "/api/v1/health", "port": "http"},
            "periodSeconds": 10,
            "failureThreshold": 6,
        },
        "resources": options.server_resources.to_dict(),
        "securityContext": container_security(),
        "volumeMounts": _MOUNTS,
    }
    account = {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": _metadata("shipyard", "platform"),
        "automountServiceAccountToken": False,
    }
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _metadata(name, "server"),
        "spec": {
            "replicas": options.replicas,
            "selector": {"matchLabels": selector},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
            "template": _server_pod(name, options, container),
        },
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(name, "server"),
        "spec": {
            "type": "ClusterIP",
            "selector": selector,
            "ports": [{"name": "http", "port": SERVER_PORT, "targetPort": "http", "protocol": "TCP"}],
        },
    }
    return [account, deployment, service]


def _server_pod(name: str, options: PlatformOptions, container: dict[str, Any]) -> dict[str, Any]:
    pod = _pod(name, "server", [container])
    pod["spec"]["initContainers"] = [_admin_init(options)]
    pod["spec"]["volumes"].append(
        # Owned by root and the pod's fsGroup: group-readable is what lets the non-root user read it.
        {"name": "admin", "secret": {"secretName": ADMIN_SECRET, "defaultMode": 0o440}}
    )
    return pod


def _scheduler(options: PlatformOptions) -> dict[str, Any]:
    name = "shipyard-scheduler"
    container = {
        "name": "scheduler",
        "image": options.image,
        "command": ["shipyard", "scheduler"],
        "envFrom": [{"configMapRef": {"name": CONFIG}}],
        "env": _env(),
        "resources": Resources(cpu="250m", memory="512Mi", cpu_limit="2", memory_limit="2Gi").to_dict(),
        "securityContext": container_security(),
        "volumeMounts": _MOUNTS,
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _metadata(name, "scheduler"),
        "spec": {
            "replicas": 1,
            # The old pod stops before the new one starts; the database claim makes an overlap harmless.
            "strategy": {"type": "Recreate"},
            "selector": {
                "matchLabels": {"app.kubernetes.io/name": name, "app.kubernetes.io/component": "scheduler"}
            },
            "template": _pod(name, "scheduler", [container]),
        },
    }


def _monitoring() -> list[dict[str, Any]]:
    # Every Service `shipyard export k8s` writes carries these labels.
    selector = {"app.kubernetes.io/part-of": "shipyard", "app.kubernetes.io/component": "predictor"}
    monitor = service_monitor("shipyard-serving", None, selector, _metadata("shipyard-serving", "monitoring"))
    monitor["spec"]["namespaceSelector"] = {"any": True}
    dashboard = (
        resources.files("shipyard.monitoring")
        .joinpath("grafana", "shipyard.json")
        .read_text(encoding="utf-8")
    )
    metadata = _metadata("shipyard-grafana-dashboard", "monitoring")
    metadata["labels"]["grafana_dashboard"] = "1"  # the label Grafana's dashboard sidecar looks for
    configmap = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata,
        "data": {"shipyard.json": dashboard},
    }
    return [monitor, configmap]


def _serving_template() -> list[dict[str, Any]]:
    """What `shipyard export k8s` writes for a model (its Deployment and Service; the platform's monitor
    scrapes it), with the environment that registers the server with the platform."""
    model = ExportedModel(
        name="churn",
        uri="models:/churn@champion",
        version=None,
        flavor="sklearn",
        manifest_sha256="set-by-shipyard-export-k8s",
        package_uri="",
        has_onnx=False,
    )
    deployment, service = k8s_manifests(model, image="registry.example/churn:1").documents[:2]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    container["env"] = [
        # The model server registers itself with the platform and reports its traffic there.
        {"name": "SHIPYARD_PLATFORM_URL", "value": f"http://shipyard-server:{SERVER_PORT}"},
        {
            "name": "SHIPYARD_TRACKING_TOKEN",
            "valueFrom": {"secretKeyRef": {"name": "shipyard-serving-token", "key": "token"}},
        },
    ]
    return [deployment, service]


_HEADERS = {
    "server.yaml": (
        f"# Before applying: kubectl create secret generic {DATABASE_SECRET} --from-literal=url=postgresql+psycopg://…\n"
        f"# and, for an s3:// artifact root: kubectl create secret generic {S3_SECRET} "
        "--from-literal=access-key-id=… --from-literal=secret-access-key=…\n"
        "# The first admin's password (the init container creates {admin} once):\n"
        f"#   kubectl create secret generic {ADMIN_SECRET} --from-file=password=./admin-password\n"
    ),
    TEMPLATE: (
        "# A model server wired to the platform: copy it per model (image, name), or generate one with\n"
        "# `shipyard export k8s models:/NAME@ALIAS --image IMAGE`. Not in kustomization.yaml's resources.\n"
    ),
}
