"""`shipyard export platform`: manifests that validate, a kustomization that lists them, and (PostgreSQL +
moto's S3) the server and scheduler containers' own commands and environment running the real thing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from shipyard.export.platform import PlatformOptions, platform_manifests
from tests.cli.test_cli import run_cli
from tests.conftest import PostgresCluster, S3Server, server_process
from tests.k8s_validation import load_yaml_documents, validate_kustomization, validate_manifests

IMAGE = "registry.example/shipyard:0.1.0"


def _write(tmp_path: Path, capsys: pytest.CaptureFixture[str], *args: str) -> Path:
    out = tmp_path / "k8s"
    code, _, err = run_cli(capsys, "export", "platform", "-o", str(out), "--image", IMAGE, *args)
    assert code == 0, err
    return out


def _documents(out: Path) -> dict[str, list[dict[str, Any]]]:
    return {path.name: load_yaml_documents(path) for path in sorted(out.glob("*.yaml"))}


def test_every_file_validates_and_the_kustomization_applies_all_but_the_template(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = _write(tmp_path, capsys, "-n", "ml", "--replicas", "3", "--s3-endpoint", "http://minio.ml:9000")
    files = _documents(out)
    (kustomization,) = files.pop("kustomization.yaml")
    validate_kustomization(kustomization, out)
    assert kustomization["namespace"] == "ml"
    assert sorted(kustomization["resources"]) == sorted(n for n in files if n != "serving-template.yaml")
    for documents in files.values():
        validate_manifests(documents)
    for path in out.glob("*.yaml"):  # every mapping written out: no YAML anchors or aliases
        assert "&id" not in path.read_text() and "*id" not in path.read_text(), path.name
    kinds = sorted(f"{d['kind']}/{d['metadata']['name']}" for docs in files.values() for d in docs)
    assert kinds == [
        "ConfigMap/shipyard-config", "ConfigMap/shipyard-grafana-dashboard", "Deployment/churn",
        "Deployment/shipyard-scheduler", "Deployment/shipyard-server", "Service/churn",
        "Service/shipyard-server", "ServiceAccount/shipyard", "ServiceMonitor/shipyard-serving",
    ]  # fmt: skip
    server = next(d for d in files["server.yaml"] if d["kind"] == "Deployment")
    assert server["spec"]["replicas"] == 3
    (container,) = server["spec"]["template"]["spec"]["containers"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/api/v1/health"
    assert "--auth" in container["command"] and "--no-scheduler" in container["command"]
    (init,) = server["spec"]["template"]["spec"]["initContainers"]
    assert init["command"][:3] == ["shipyard", "users", "create"] and "--exists-ok" in init["command"]
    volumes = {v["name"]: v for v in server["spec"]["template"]["spec"]["volumes"]}
    assert volumes["admin"]["secret"] == {"secretName": "shipyard-admin", "defaultMode": 0o440}
    (scheduler,) = files["scheduler.yaml"]
    assert scheduler["spec"]["replicas"] == 1 and scheduler["spec"]["strategy"] == {"type": "Recreate"}
    # Secrets are referenced, never written: no Secret object, no credential value in any file.
    assert "Secret" not in kinds
    refs = {e["valueFrom"]["secretKeyRef"]["name"] for e in container["env"] if "valueFrom" in e}
    assert refs == {"shipyard-database", "shipyard-s3"}
    (config,) = files["config.yaml"]
    assert json.loads(config["data"]["SHIPYARD_ARTIFACT_STORAGE_OPTIONS"]) == {
        "client_kwargs": {"endpoint_url": "http://minio.ml:9000"}
    }
    # The dashboard is the packaged one, labelled for Grafana's sidecar; the monitor finds every model server.
    monitor, dashboard = files["monitoring.yaml"]
    packaged = Path(__file__).parents[2] / "shipyard" / "monitoring" / "grafana" / "shipyard.json"
    assert dashboard["data"]["shipyard.json"] == packaged.read_text()
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert monitor["spec"]["selector"]["matchLabels"] == {
        "app.kubernetes.io/part-of": "shipyard",
        "app.kubernetes.io/component": "predictor",
    }
    assert monitor["spec"]["namespaceSelector"] == {"any": True}


def test_what_export_k8s_writes_is_what_the_serving_monitor_selects(tmp_path: Path) -> None:
    from shipyard.export.kube import ExportedModel, k8s_manifests

    model = ExportedModel("churn", "models:/churn/1", 1, "sklearn", "0" * 64, "file:///x", False)
    service = k8s_manifests(model, image="registry.example/churn:1").documents[1]
    (monitor,) = [
        d
        for d in platform_manifests(PlatformOptions(IMAGE))["monitoring.yaml"]
        if d["kind"] == "ServiceMonitor"
    ]
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("--artifact-root", "/data/artifacts"), "--artifact-root '/data/artifacts' is not a URL"),
        (("--s3-endpoint", "minio:9000"), "--s3-endpoint 'minio:9000' is not an http(s) URL"),
        (("--default-permission", "ALL"), "--default-permission 'ALL'"),
        (("-n", "ML"), "--namespace 'ML'"),
    ],
)
def test_refusals_name_the_option(
    args: tuple[str, ...], expected: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_cli(capsys, "export", "platform", "-o", str(tmp_path / "k8s"), "--image", IMAGE, *args)
    assert code == 2 and expected in err
    assert not (tmp_path / "k8s").exists()


def test_existing_files_need_force(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = _write(tmp_path, capsys)
    code, _, err = run_cli(
        capsys, "export", "platform", "-o", str(out), "--image", "registry.example/other:2"
    )
    assert code == 2 and "give --force" in err
    assert IMAGE in (out / "server.yaml").read_text()
    code, _, err = run_cli(capsys, "export", "platform", "-o", str(out), "--image", "Bad Image")
    assert code == 2 and "--image 'Bad Image'" in err
    _write(tmp_path, capsys, "--force")


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.s3
def test_the_containers_commands_and_environment_run_the_platform(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], postgres: PostgresCluster, s3_server: S3Server
) -> None:
    out = _write(tmp_path, capsys, "--artifact-root", s3_server.root(), "--s3-endpoint", s3_server.endpoint)
    files = _documents(out)
    (config,) = files["config.yaml"]
    secrets = {
        "shipyard-database": {"url": postgres.create_database()},
        "shipyard-s3": {"access-key-id": "x", "secret-access-key": "x"},
    }

    def environment(container: dict[str, Any]) -> dict[str, str]:
        """The container's environment as the kubelet would set it (ConfigMap, then Secret references)."""
        env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path)}
        env.update(config["data"])
        env["SHIPYARD_HOME"] = str(tmp_path / "home")  # the emptyDir at /var/lib/shipyard
        for entry in container.get("env", []):
            ref = entry["valueFrom"]["secretKeyRef"]
            env[entry["name"]] = secrets[ref["name"]][ref["key"]]
        return env

    server = next(d for d in files["server.yaml"] if d["kind"] == "Deployment")
    # The init container makes the first admin from the mounted Secret; on every later start it does nothing.
    (init,) = server["spec"]["template"]["spec"]["initContainers"]
    mount = next(m["mountPath"] for m in init["volumeMounts"] if m["name"] == "admin")
    (tmp_path / "admin").mkdir()
    (tmp_path / "admin" / "password").write_text("s3cret-admin-pw\n")
    command = [c.replace(mount, str(tmp_path / "admin")) for c in init["command"]]
    exe = Path(sys.executable).parent / command[0]
    for expected in ("created user admin (admin)", "user admin exists (left as it is)"):
        done = subprocess.run(
            [str(exe), *command[1:]], env=environment(init), capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr
        assert expected in done.stdout
    (container,) = server["spec"]["template"]["spec"]["containers"]
    command = container["command"]
    assert command[:2] == ["shipyard", "server"]
    args = command[2:]
    args[args.index("--host") + 1] = "127.0.0.1"  # loopback here; 0.0.0.0 in the pod
    del args[args.index("--port") : args.index("--port") + 2]
    with server_process(args, environment(container)) as (url, _):
        assert httpx.get(f"{url}/api/v1/health").json()["status"] == "ok"
        # --auth: nothing but health answers without a token; the admin signs in with the Secret's password.
        assert httpx.get(f"{url}/api/v1/experiments").status_code == 401
        assert httpx.get(f"{url}/api/v1/experiments", auth=("admin", "s3cret-admin-pw")).status_code == 200
    (scheduler,) = files["scheduler.yaml"]
    (container,) = scheduler["spec"]["template"]["spec"]["containers"]
    exe = Path(sys.executable).parent / container["command"][0]
    done = subprocess.run(
        [str(exe), *container["command"][1:], "--once"],
        env=environment(container), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "no schedule is due" in done.stdout
