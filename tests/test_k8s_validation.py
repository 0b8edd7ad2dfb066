"""tests/k8s_validation.py: valid manifests pass, and misspelt, mistyped or unknown ones fail."""

from __future__ import annotations

import copy
import re
import socket
from typing import Any

import jsonschema
import pytest
from kubernetes_validate.utils import latest_version

from tests.k8s_validation import (
    DEFAULT_KUBERNETES_VERSION,
    ManifestValidationError,
    load_crd_schema,
    load_yaml_documents,
    resolve_kubernetes_version,
    strict_schema,
    validate_kustomization,
    validate_manifests,
)

LABELS = {"app.kubernetes.io/name": "iris", "app.kubernetes.io/version": "3"}


def deployment() -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "iris", "namespace": "ml", "labels": LABELS},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": LABELS},
            "template": {
                "metadata": {"labels": LABELS, "annotations": {"prometheus.io/scrape": "true"}},
                "spec": {
                    "containers": [
                        {
                            "name": "server",
                            "image": "ghcr.io/example/shipyard:0.1.0",
                            "args": ["serve", "models:/iris/3", "--port", "8080"],
                            "ports": [{"name": "http", "containerPort": 8080}],
                            "env": [{"name": "SHIPYARD_WORKERS", "value": "2"}],
                            "readinessProbe": {"httpGet": {"path": "/v2/health/ready", "port": "http"}},
                            "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"cpu": 1}},
                        }
                    ]
                },
            },
        },
    }


def other_builtins() -> list[dict[str, Any]]:
    meta = {"name": "iris", "namespace": "ml", "labels": LABELS}
    return [
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": meta,
            "spec": {"selector": LABELS, "ports": [{"name": "http", "port": 80, "targetPort": "http"}]},
        },
        {
            "apiVersion": "autoscaling/v2",
            "kind": "HorizontalPodAutoscaler",
            "metadata": meta,
            "spec": {
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "iris"},
                "minReplicas": 1,
                "maxReplicas": 4,
                "metrics": [
                    {
                        "type": "Resource",
                        "resource": {
                            "name": "cpu",
                            "target": {"type": "Utilization", "averageUtilization": 70},
                        },
                    }
                ],
            },
        },
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": {"MODEL_URI": "models:/iris/3"}},
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": meta,
            "type": "Opaque",
            "stringData": {"token": "x"},
        },
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta},
    ]


def isvc_container() -> dict[str, Any]:
    """An InferenceService whose predictor is a custom container."""
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": "iris-custom", "namespace": "ml", "labels": LABELS},
        "spec": {
            "predictor": {
                "containers": [
                    {
                        "name": "kserve-container",
                        "image": "ghcr.io/example/shipyard:0.1.0",
                        "args": ["serve", "models:/iris/3", "--port", "8080"],
                        "ports": [{"containerPort": 8080, "protocol": "TCP"}],
                    }
                ]
            }
        },
    }


def isvc_onnx() -> dict[str, Any]:
    """An InferenceService that serves the model's ONNX copy with a runtime, over the v2 protocol."""
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": "iris", "namespace": "ml"},
        "spec": {
            "predictor": {
                "minReplicas": 1,
                "maxReplicas": 3,
                "model": {
                    "modelFormat": {"name": "onnx"},
                    "storageUri": "s3://models/iris/3/model.onnx",
                    "protocolVersion": "v2",
                    "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"memory": "2Gi"}},
                },
            }
        },
    }


def service_monitor() -> dict[str, Any]:
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": {"name": "iris", "namespace": "ml", "labels": {"release": "prometheus"}},
        "spec": {
            "selector": {"matchLabels": LABELS},
            "namespaceSelector": {"matchNames": ["ml"]},
            "endpoints": [{"port": "http", "path": "/metrics", "interval": "30s", "scheme": "http"}],
        },
    }


KUSTOMIZATION = {
    "apiVersion": "kustomize.config.k8s.io/v1beta1",
    "kind": "Kustomization",
    "namespace": "ml",
    "resources": ["deployment.yaml", "service.yaml", "inferenceservice.yaml"],
}


def problems(documents: list[dict[str, Any]], **kwargs: Any) -> list[str]:
    with pytest.raises(ManifestValidationError) as caught:
        validate_manifests(documents, **kwargs)
    return caught.value.problems


def test_a_valid_bundle_passes() -> None:
    validate_manifests(
        [deployment(), *other_builtins(), isvc_container(), isvc_onnx(), service_monitor(), KUSTOMIZATION]
    )


@pytest.mark.parametrize("version", ["1.30", "v1.30.4", latest_version()])
def test_a_deployment_validates_against_each_kubernetes_version(version: str) -> None:
    validate_manifests([deployment()], kubernetes_version=version)


def test_a_misspelt_deployment_field_fails_naming_the_object_and_path() -> None:
    doc = deployment()
    doc["spec"]["replica"] = doc["spec"].pop("replicas")
    (problem,) = problems([doc])
    assert problem.startswith("Deployment/iris (document #0, apps/v1): spec: ")
    assert "'replica' was unexpected" in problem


def test_a_mistyped_nested_deployment_field_fails_with_its_path() -> None:
    doc = deployment()
    doc["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] = "8080"
    (problem,) = problems([doc])
    assert (
        "spec.template.spec.containers[0].ports[0].containerPort: '8080' is not of type 'integer'" in problem
    )


def test_what_only_the_api_server_checks_fails_too() -> None:
    doc = deployment()
    doc["metadata"]["name"] = "Iris_Model"
    doc["metadata"]["labels"] = {"app.kubernetes.io/version": "3.0 final"}
    doc["spec"]["selector"] = {"matchLabels": {"app": "other"}}
    container = doc["spec"]["template"]["spec"]["containers"][0]
    container["resources"]["limits"]["memory"] = "2 GB"
    del container["image"]
    found = "\n".join(problems([doc]))
    assert "metadata.name: 'Iris_Model' is not a valid dns1123-subdomain name" in found
    assert "metadata.labels.app.kubernetes.io/version: label value '3.0 final' is not valid" in found
    assert "spec.selector.matchLabels: does not match spec.template.metadata.labels" in found
    assert (
        "spec.template.spec.containers[0].resources.limits.memory: '2 GB' is not a resource quantity" in found
    )
    assert "spec.template.spec.containers[0].image: required" in found


def test_a_service_name_must_be_a_dns1035_label() -> None:
    service = other_builtins()[0]
    service["metadata"]["name"] = "3-iris"
    (problem,) = problems([service])
    assert "metadata.name: '3-iris' is not a valid dns1035 name" in problem


@pytest.mark.parametrize("make", [isvc_container, isvc_onnx], ids=["container", "onnx"])
def test_valid_inference_services_pass(make: Any) -> None:
    validate_manifests([make()])


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (
            lambda m: m.__setitem__("storageURI", m.pop("storageUri")),
            "spec.predictor.model: Additional properties are not allowed ('storageURI' was unexpected)",
        ),
        (
            lambda m: m.__setitem__("protocolVersion", 2),
            "spec.predictor.model.protocolVersion: 2 is not of type 'string'",
        ),
        (
            lambda m: m.__setitem__("modelFormat", {"nmae": "onnx"}),
            "spec.predictor.model.modelFormat: 'name' is a required property",
        ),
        (
            lambda m: m["resources"]["limits"].__setitem__("memory", "2 GB"),
            "spec.predictor.model.resources.limits.memory: '2 GB' does not match",
        ),
    ],
    ids=["typo", "wrong-type", "missing-required", "bad-quantity"],
)
def test_an_invalid_inference_service_model_fails(edit: Any, expected: str) -> None:
    doc = isvc_onnx()
    edit(doc["spec"]["predictor"]["model"])
    found = "\n".join(problems([doc]))
    assert f"InferenceService/iris (document #0, serving.kserve.io/v1beta1): {expected}" in found


def test_an_inference_service_typo_fails_at_every_level() -> None:
    doc = isvc_container()
    doc["spec"]["predictor"]["containers"][0]["imagePullPolicy "] = "Always"
    doc["spec"]["predictor"]["minReplica"] = 1
    doc["spec"]["transfomer"] = {}
    doc["metadata"]["label"] = {"a": "b"}
    doc["stauts"] = {}
    found = problems([doc])
    assert len(found) == 5, found
    for unexpected in ("'imagePullPolicy '", "'minReplica'", "'transfomer'", "'label'", "'stauts'"):
        assert any(f"({unexpected} was unexpected)" in p for p in found), unexpected


def test_the_api_servers_formats_are_checked_in_crds() -> None:
    doc = isvc_onnx()
    doc["spec"]["predictor"]["minReplicas"] = 2**31
    (problem,) = problems([doc])
    assert "spec.predictor.minReplicas: 2147483648 is not a 'int32'" in problem


def test_an_inference_service_name_follows_kserves_rule() -> None:
    doc = isvc_onnx()
    doc["metadata"]["name"] = "1-iris"  # a DNS-1123 name, but KServe's webhook wants a letter first
    (problem,) = problems([doc])
    assert "metadata.name: '1-iris' is not a valid dns1035 name" in problem


def test_a_valid_service_monitor_passes() -> None:
    validate_manifests([service_monitor()])


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (
            lambda s: s.__setitem__("endpoints", {"port": "http"}),
            "spec.endpoints: {'port': 'http'} is not of type",
        ),
        (
            lambda s: s["endpoints"][0].__setitem__("port", 8080),
            "spec.endpoints[0].port: 8080 is not of type",
        ),
        (lambda s: s["endpoints"][0].__setitem__("interval", "30 seconds"), "spec.endpoints[0].interval: "),
        (
            lambda s: s["endpoints"][0].__setitem__("scheme", "tcp"),
            "spec.endpoints[0].scheme: 'tcp' is not one of",
        ),
        (lambda s: s.__setitem__("endpoint", s.pop("endpoints")), "('endpoint' was unexpected)"),
    ],
    ids=["list-as-dict", "int-port", "bad-duration", "bad-enum", "typo"],
)
def test_an_invalid_service_monitor_fails(edit: Any, expected: str) -> None:
    doc = service_monitor()
    edit(doc["spec"])
    found = "\n".join(problems([doc]))
    assert "ServiceMonitor/iris (document #0, monitoring.coreos.com/v1): " in found
    assert expected in found


@pytest.mark.parametrize(
    ("api_version", "kind"),
    [
        ("example.com/v1", "Widget"),
        ("apps/v1", "Deploymnt"),
        ("apps/v1beta1", "Deployment"),  # removed in 1.16
        ("serving.kserve.io/v1alpha1", "InferenceService"),
        ("monitoring.coreos.com/v1", "PodMonitor"),
        ("v1", "List"),
    ],
)
def test_an_unknown_api_version_or_kind_fails(api_version: str, kind: str) -> None:
    (problem,) = problems([{"apiVersion": api_version, "kind": kind, "metadata": {"name": "x"}}])
    assert f"unknown apiVersion/kind {api_version}/{kind} for Kubernetes 1.30.0" in problem


def test_a_group_lookalike_is_not_the_built_in_group() -> None:
    # kubernetes-validate finds the schema by the group's first label, so apps.example.com/v1 reaches
    # apps/v1's schema; its apiVersion enum still rejects it.
    doc = deployment()
    doc["apiVersion"] = "apps.example.com/v1"
    (problem,) = problems([doc])
    assert "apiVersion: 'apps.example.com/v1' is not one of ['apps/v1']" in problem


def test_missing_api_version_or_name_and_duplicates_fail() -> None:
    no_api_version = {"kind": "ConfigMap", "metadata": {"name": "x"}}
    no_name = {"apiVersion": "v1", "kind": "ConfigMap", "data": {}}
    found = problems([no_api_version, no_name, deployment(), deployment()])
    assert found[0] == "ConfigMap/x (document #0, ?): apiVersion and kind must be non-empty strings"
    assert (
        found[1] == "ConfigMap/? (document #1, v1): metadata.name: None is not a valid dns1123-subdomain name"
    )
    assert found[2] == "Deployment/iris (document #3, apps/v1): the same object as document #2"


def test_every_problem_is_reported_at_once() -> None:
    bad_isvc, bad_monitor = isvc_onnx(), service_monitor()
    bad_isvc["spec"]["predictor"]["minReplicas"] = "1"
    bad_monitor["spec"]["endpoints"] = "http"
    with pytest.raises(
        AssertionError, match=r"^2 problem\(s\) in the manifests:\n  - InferenceService/iris "
    ):
        validate_manifests([deployment(), bad_isvc, bad_monitor])


def test_kubernetes_versions_outside_the_bundled_ones_are_refused() -> None:
    assert resolve_kubernetes_version(DEFAULT_KUBERNETES_VERSION) == "1.30.0"
    assert resolve_kubernetes_version("v1.30.7") == "1.30.0"
    for version in ("1.24", "1.9", "2.0"):
        with pytest.raises(ValueError, match="has no schemas for Kubernetes"):
            validate_manifests([deployment()], kubernetes_version=version)


def test_validation_never_uses_the_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("network access")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    # 1.29 and 1.31: versions no other test has loaded, so their schemas are read here.
    for version in ("1.29", "1.31"):
        validate_manifests([deployment(), *other_builtins(), isvc_onnx(), service_monitor()], version)


def test_a_kustomization_passes_and_its_resources_are_checked(tmp_path: Any) -> None:
    validate_kustomization(KUSTOMIZATION)
    for name in KUSTOMIZATION["resources"]:
        (tmp_path / name).write_text("{}\n")
    validate_kustomization(KUSTOMIZATION, base_dir=tmp_path)
    (tmp_path / "service.yaml").unlink()
    with pytest.raises(ManifestValidationError, match=r"resources\[1\]: 'service.yaml' does not exist"):
        validate_kustomization(KUSTOMIZATION, base_dir=tmp_path)


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        ({"apiVersion": "kustomize.config.k8s.io/v1"}, "apiVersion: 'kustomize.config.k8s.io/v1', not"),
        ({"kind": "Kustomisation"}, "kind: 'Kustomisation', not 'Kustomization'"),
        ({"resource": ["a.yaml"]}, "resource: unknown field"),
        ({"resources": []}, "resources: must be a non-empty list of file names"),
        ({"resources": ["/abs/a.yaml"]}, "resources[0]: '/abs/a.yaml' is not a relative path"),
        ({"resources": ["../a.yaml"]}, "resources[0]: '../a.yaml' is not a relative path"),
        ({"resources": ["https://example.com/a.yaml"]}, "is not a relative path"),
        ({"resources": ["a.yaml", "a.yaml"]}, "resources[1]: 'a.yaml' is listed twice"),
        ({"resources": [3]}, "resources[0]: 3 is not a file name"),
        ({"namespace": "ML"}, "namespace: 'ML' is not a valid dns1123-label name"),
    ],
)
def test_an_invalid_kustomization_fails(edit: dict[str, Any], expected: str) -> None:
    with pytest.raises(ManifestValidationError) as caught:
        validate_kustomization({**KUSTOMIZATION, **edit})
    assert any(expected in p for p in caught.value.problems), caught.value.problems
    # The same check runs on a Kustomization among the manifests.
    assert any(expected in p for p in problems([{**KUSTOMIZATION, **edit}]))


def test_load_yaml_documents_reads_text_and_files(tmp_path: Any) -> None:
    text = "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\n---\n# nothing\n---\nkind: B\n"
    assert [d["kind"] for d in load_yaml_documents(text)] == ["ConfigMap", "B"]
    path = tmp_path / "all.yaml"
    path.write_text(text)
    assert load_yaml_documents(path) == load_yaml_documents(str(path)) == load_yaml_documents(text)
    with pytest.raises(ManifestValidationError, match="document #0: a list, not a mapping"):
        load_yaml_documents("- a\n- b\n")


def test_strict_schema_closes_objects_but_not_open_ones() -> None:
    schema = {
        "type": "object",
        "properties": {
            "spec": {"type": "object", "properties": {"a": {"type": "string", "nullable": True}}},
            "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": True, "properties": {}},
            "map": {"type": "object", "additionalProperties": {"type": "object", "properties": {}}},
            "list": {"type": "array", "items": {"type": "object", "properties": {"b": {"type": "integer"}}}},
            "port": {"x-kubernetes-int-or-string": True, "anyOf": [{"type": "integer"}, {"type": "string"}]},
        },
    }
    strict = strict_schema(schema)
    assert "additionalProperties" not in schema  # the input is left alone
    validator = jsonschema.Draft4Validator(strict)
    assert validator.is_valid({"spec": {"a": None}, "extra": {"x": 1}, "map": {"k": {}}, "port": "http"})
    for bad in ({"spek": {}}, {"spec": {"b": 1}}, {"map": {"k": {"x": 1}}}, {"list": [{"c": 1}]}):
        assert not validator.is_valid(bad), bad


@pytest.mark.parametrize(
    "filename", ["kserve-inferenceservice-v1beta1.json", "prometheus-servicemonitor-v1.json"]
)
def test_the_vendored_schemas_are_usable_and_say_where_they_came_from(filename: str) -> None:
    vendored = load_crd_schema(filename)
    assert set(vendored) == {"source", "schema"}
    assert re.fullmatch(r"[0-9a-f]{40}", vendored["source"]["commit"])
    assert {"repo", "tag", "path", "group", "kind", "version"} <= set(vendored["source"])
    jsonschema.Draft4Validator.check_schema(vendored["schema"])
    # The patterns are Go (RE2) regular expressions: each must mean the same to Python's re.
    patterns: list[str] = []

    def collect(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("pattern"), str):
                patterns.append(node["pattern"])
            for key, value in node.items():
                collect(value if key != "properties" else list(value.values()))
        elif isinstance(node, list):
            for value in node:
                collect(value)

    collect(vendored["schema"])
    for pattern in patterns:
        re.compile(pattern)


def test_a_copy_of_a_valid_document_is_unchanged_by_validation() -> None:
    docs = [deployment(), isvc_onnx(), service_monitor()]
    before = copy.deepcopy(docs)
    validate_manifests(docs)
    assert docs == before
