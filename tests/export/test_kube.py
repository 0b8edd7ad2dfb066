"""`shipyard export kserve|k8s`: every manifest validates against Kubernetes' schemas (kubernetes-validate)
and the vendored KServe / prometheus-operator CRD schemas; formats, fallbacks, canaries and refusals."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

import shipyard
from shipyard.config import Settings
from shipyard.export.kube import describe_model, kserve_manifests
from tests.cli.test_cli import run_cli
from tests.k8s_validation import load_yaml_documents, validate_manifests


def _register(name: str, example: bool = True, settings: Settings | None = None) -> str:
    data = load_iris(as_frame=True)
    frame = data.frame.drop(columns=["target"])
    model = LogisticRegression(max_iter=500).fit(frame, data.target)
    with shipyard.start_run("export", settings=settings) as run:
        # Without an input example there is nothing to verify an ONNX copy on: the package has none.
        info = shipyard.models.log(model, "model", run=run, input_example=frame.head(5) if example else None)
    version = shipyard.models.register(info.uri, name, settings=settings)
    return f"models:/{name}/{version.version}"


@pytest.fixture
def iris() -> str:
    """``iris`` version 1 (with a verified ONNX copy), alias champion; version 2, alias challenger."""
    _register("iris")
    _register("iris")
    shipyard.models.set_alias("iris", "champion", 1)
    shipyard.models.set_alias("iris", "challenger", 2)
    return "models:/iris@champion"


def _export(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[list[dict[str, Any]], str]:
    code, out, err = run_cli(capsys, "export", *args)
    assert code == 0, err
    documents = load_yaml_documents(out)
    validate_manifests(documents)
    return documents, err


def test_kserve_custom_container_names_the_exact_version(
    iris: str, capsys: pytest.CaptureFixture[str]
) -> None:
    (isvc,), notes = _export(capsys, "kserve", iris, "--image", "reg.example:5000/ml/iris:1", "-n", "ml")
    assert (isvc["apiVersion"], isvc["kind"]) == ("serving.kserve.io/v1beta1", "InferenceService")
    meta = isvc["metadata"]
    assert meta["name"] == "iris" and meta["namespace"] == "ml"
    # The alias is resolved: the manifest serves version 1 even after champion moves.
    assert meta["annotations"]["shipyard.io/model-uri"] == "models:/iris/1"
    assert meta["annotations"]["shipyard.io/manifest-sha256"] == shipyard.models.get(iris).manifest_sha256
    assert meta["labels"]["app.kubernetes.io/version"] == "1"
    predictor = isvc["spec"]["predictor"]
    assert (predictor["minReplicas"], predictor["maxReplicas"]) == (1, 3)
    (container,) = predictor["containers"]
    assert container["image"] == "reg.example:5000/ml/iris:1"
    assert container["ports"] == [{"containerPort": 8080, "protocol": "TCP"}]
    assert container["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    assert container["resources"] == {
        "requests": {"cpu": "500m", "memory": "1Gi"},
        "limits": {"cpu": "2", "memory": "2Gi"},
    }
    assert predictor["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert {m["mountPath"] for m in container["volumeMounts"]} == {"/srv/shipyard/home", "/tmp"}
    # A local package cannot be fetched by a cluster: the fallback is said, with how to avoid it.
    assert "which a cluster cannot fetch; give --storage-uri" in notes


def test_kserve_grpc_container_and_resources(iris: str, capsys: pytest.CaptureFixture[str]) -> None:
    (isvc,), _ = _export(
        capsys, "kserve", iris, "--image", "reg.example/iris:1", "--protocol", "grpc", "--format", "custom",
        "--min-replicas", "0", "--max-replicas", "5", "--cpu", "1", "--memory", "512Mi", "--cpu-limit", "",
        "--gpus", "1", "--canary-percent", "20",
    )  # fmt: skip
    predictor = isvc["spec"]["predictor"]
    assert (predictor["minReplicas"], predictor["maxReplicas"], predictor["canaryTrafficPercent"]) == (
        0,
        5,
        20,
    )
    (container,) = predictor["containers"]
    assert container["ports"] == [{"name": "h2c", "containerPort": 8081, "protocol": "TCP"}]
    assert container["resources"] == {
        "requests": {"cpu": "1", "memory": "512Mi"},
        "limits": {"memory": "2Gi", "nvidia.com/gpu": "1"},
    }


def test_kserve_onnx_format_from_a_storage_uri(iris: str, capsys: pytest.CaptureFixture[str]) -> None:
    (isvc,), notes = _export(capsys, "kserve", iris, "--storage-uri", "s3://models/iris/1")
    model = isvc["spec"]["predictor"]["model"]
    assert model["modelFormat"] == {"name": "onnx"}
    assert (model["protocolVersion"], model["storageUri"]) == ("v2", "s3://models/iris/1")
    assert "containers" not in isvc["spec"]["predictor"]
    assert "ONNX runtime" in notes


@pytest.mark.s3
def test_kserve_onnx_format_from_a_package_on_an_object_store(
    s3_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    uri = _register("iris", settings=s3_settings)
    exported = kserve_manifests(describe_model(uri, shipyard.models.registry_client(s3_settings)))
    validate_manifests(exported.documents)
    model = exported.documents[0]["spec"]["predictor"]["model"]
    assert model["storageUri"] == shipyard.models.get(uri, settings=s3_settings).package_uri
    assert model["storageUri"].startswith("s3://")


def test_a_package_without_a_kserve_format_falls_back_to_the_custom_container(
    capsys: pytest.CaptureFixture[str],
) -> None:
    uri = _register("plain", example=False)
    args = ("kserve", uri, "--storage-uri", "s3://models/plain/1")
    code, _, err = run_cli(capsys, "export", *args)
    assert code == 2 and "needs --image" in err and "no KServe model format" in err
    (isvc,), notes = _export(capsys, *args, "--image", "reg.example/plain:1")
    assert isvc["spec"]["predictor"]["containers"][0]["image"] == "reg.example/plain:1"
    assert (
        "the sklearn flavor has no KServe model format" in notes and "served by the custom container" in notes
    )
    code, _, err = run_cli(capsys, "export", *args, "--format", "onnx")
    assert code == 2 and "--format onnx: models:/plain/1 cannot be served so" in err


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("--storage-uri", "file:///data/iris"), "--storage-uri 'file:///data/iris' is not a location"),
        (("--image", "reg.example/iris:1", "--cpu", "lots"), "--cpu 'lots' is not a Kubernetes quantity"),
        (("--image", "reg.example/iris:1", "--memory-limit", "2 GB"), "--memory-limit '2 GB'"),
        (("--image", "Reg Example/iris"), "--image 'Reg Example/iris' is not a valid image reference"),
        (("--image", "reg.example/iris:1", "--min-replicas", "4"), "--max-replicas 3 must be at least"),
        (("--image", "reg.example/iris:1", "-n", "Bad_NS"), "--namespace 'Bad_NS'"),
        (("--image", "reg.example/iris:1", "--format", "sklearn"), "--format 'sklearn' is not one of"),
        (("--image", "reg.example/iris:1", "--protocol", "http"), "--protocol 'http' is not one of"),
        (("--image", "a=reg.example/iris:1"), "LABEL=IMAGE is for a deploy.yaml"),
        (("--image", "reg.example/iris:1", "--name", "---"), "--name '---' cannot be a Kubernetes name"),
    ],
)
def test_kserve_refusals_name_the_option(
    iris: str, args: tuple[str, ...], expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_cli(capsys, "export", "kserve", iris, *args)
    assert code == 2 and expected in err and out == ""


def test_a_deploy_file_with_two_weighted_versions_becomes_a_canary(
    iris: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    deploy = tmp_path / "deploy.yaml"
    deploy.write_text(
        yaml.safe_dump(
            {
                "models": [
                    {
                        "name": "iris",
                        "versions": {
                            "champion": "models:/iris@champion",
                            "challenger": "models:/iris@challenger",
                        },
                        "traffic": {"champion": 90, "challenger": 10},
                    }
                ]
            }
        )
    )
    (isvc,), notes = _export(
        capsys, "kserve", str(deploy), "--image", "champion=reg.example/iris:1",
        "--image", "challenger=reg.example/iris:2",
    )  # fmt: skip
    predictor = isvc["spec"]["predictor"]
    assert predictor["canaryTrafficPercent"] == 10
    assert predictor["containers"][0]["image"] == "reg.example/iris:2"
    assert isvc["metadata"]["annotations"]["shipyard.io/model-uri"] == "models:/iris/2"
    assert "challenger (models:/iris@challenger) is exported as the latest revision" in notes
    assert "champion (models:/iris@champion) must be the revision the cluster serves now" in notes
    # Three versions cannot be split by one InferenceService.
    document = yaml.safe_load(deploy.read_text())
    document["models"][0]["versions"]["third"] = "models:/iris/1"
    deploy.write_text(yaml.safe_dump(document))
    code, _, err = run_cli(capsys, "export", "kserve", str(deploy), "--image", "reg.example/iris:1")
    assert code == 2 and "models.0 has 3 versions" in err


def test_k8s_deployment_service_autoscaler_and_monitor(
    iris: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "k8s" / "iris.yaml"
    code, _, err = run_cli(
        capsys, "export", "k8s", iris, "--image", "reg.example/iris:1@sha256:" + "a" * 64, "-n", "ml",
        "--min-replicas", "2", "--max-replicas", "6", "--cpu-target", "60", "-o", str(out),
    )  # fmt: skip
    assert code == 0, err
    documents = load_yaml_documents(out)
    validate_manifests(documents)
    deployment, service, autoscaler, monitor = documents
    assert [d["kind"] for d in documents] == [
        "Deployment",
        "Service",
        "HorizontalPodAutoscaler",
        "ServiceMonitor",
    ]
    assert {d["metadata"]["namespace"] for d in documents} == {"ml"}
    spec = deployment["spec"]
    assert spec["replicas"] == 2
    pod_labels = spec["template"]["metadata"]["labels"]
    assert spec["selector"]["matchLabels"].items() <= pod_labels.items()
    assert service["spec"]["selector"].items() <= pod_labels.items()
    (container,) = spec["template"]["spec"]["containers"]
    assert {p["name"]: p["containerPort"] for p in container["ports"]} == {"http": 8080, "grpc": 8081}
    assert container["readinessProbe"]["httpGet"] == {"path": "/v2/health/ready", "port": "http"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/v2/health/live", "port": "http"}
    assert spec["template"]["spec"]["securityContext"]["runAsUser"] == 10001
    assert {p["name"] for p in service["spec"]["ports"]} == {"http", "grpc"}
    target = autoscaler["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", deployment["metadata"]["name"])
    assert (autoscaler["spec"]["minReplicas"], autoscaler["spec"]["maxReplicas"]) == (2, 6)
    assert autoscaler["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"] == 60
    # Prometheus finds the Service by its labels and scrapes the server's /metrics on its http port.
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert monitor["spec"]["endpoints"] == [
        {"port": "http", "path": "/metrics", "interval": "30s", "scheme": "http"}
    ]
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": ["ml"]}
    assert "Deployment/iris, Service/iris" in err


def test_k8s_refusals(iris: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(
        capsys, "export", "k8s", iris, "--image", "reg.example/iris:1", "--cpu-target", "0"
    )
    assert code == 2 and "--cpu-target 0" in err
    code, _, err = run_cli(
        capsys, "export", "k8s", iris, "--image", "reg.example/iris:1", "--scrape-interval", "soon"
    )
    assert code == 2 and "--scrape-interval 'soon'" in err
    code, _, err = run_cli(capsys, "export", "k8s", "models:/iris@nope", "--image", "reg.example/iris:1")
    assert code == 3 and "nope" in err


def test_names_are_made_kubernetes_names(capsys: pytest.CaptureFixture[str]) -> None:
    uri = _register("Churn_Model.v2")
    (isvc,), _ = _export(capsys, "kserve", uri, "--image", "reg.example/churn:1")
    assert isvc["metadata"]["name"] == "churn-model-v2"
    assert isvc["metadata"]["annotations"]["shipyard.io/model-uri"] == "models:/Churn_Model.v2/1"
