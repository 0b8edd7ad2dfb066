"""The official ``mlflow`` client (3.x, in .venv-mlflow) runs unchanged scripts against a real ``shipyard
server`` process: what it logs lands in Shipyard's records, what it reads back is what it wrote, and its
errors carry MLflow's codes."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from shipyard.tracking.client import TrackingClient
from tests.conftest import free_port, make_settings, server_process
from tests.serving.test_serve_cli import wait_ready


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """A ``shipyard server`` keeping its files (``--artifacts``), its home, for the module's scripts."""
    home = tmp_path_factory.mktemp("mlflow-server") / "home"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("SHIPYARD_")},
        "SHIPYARD_HOME": str(home),
        "SHIPYARD_CEILING_DIRECTORIES": str(home.parent.parent),
    }
    args = ["--artifacts", str(home.parent / "files"), "--log-level", "warning"]
    with server_process(args, env) as (url, _):
        yield url, home


def mlflow_script(python: str, url: str, code: str, tmp_path: Path, env: dict[str, str] | None = None) -> Any:
    """Run ``code`` with the MLflow client pointed at ``url`` (and ``env``); it prints one JSON document,
    returned."""
    script = tmp_path / "script.py"
    script.write_text(textwrap.dedent(code))
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),
        "MLFLOW_TRACKING_URI": url,
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",  # a wrong 5xx fails the test at once, not after minutes
        "GIT_PYTHON_REFRESH": "quiet",
        **(env or {}),
    }
    done = subprocess.run(
        [python, str(script)], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def shipyard_client(home: Path) -> TrackingClient:
    return TrackingClient(make_settings(home))


def test_a_typical_script_logs_into_shipyard_and_reads_back_what_it_wrote(
    server: tuple[str, Path], mlflow_python: str, tmp_path: Path
) -> None:
    url, home = server
    out = mlflow_script(
        mlflow_python,
        url,
        """
        import json
        import mlflow
        import pandas as pd
        from mlflow import MlflowClient

        mlflow.set_experiment("typical")
        with mlflow.start_run(run_name="parent") as parent:
            mlflow.log_param("lr", 0.1)
            mlflow.log_params({"depth": 3, "optimizer": "adam"})
            for step in range(5):
                mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
            mlflow.log_metrics({"acc": 0.9, "f1": 0.75})
            mlflow.set_tag("team", "growth")
            mlflow.set_tags({"stage": "dev"})
            mlflow.log_dict({"a": 1}, "config/params.json")
            mlflow.log_text("hello", "notes.txt")
            frame = pd.DataFrame({"x": [1, 2, 3], "y": [0, 1, 0]})
            data = mlflow.data.from_pandas(frame, name="train-data", source="s3://bucket/train.csv")
            mlflow.log_input(data, context="training")
            with mlflow.start_run(run_name="child", nested=True) as child:
                mlflow.log_metric("child_metric", 2.5)
        client = MlflowClient()
        run = client.get_run(parent.info.run_id)
        found = mlflow.search_runs(
            experiment_names=["typical"],
            filter_string="params.lr = '0.1' and metrics.acc > 0.5",
            output_format="list",
        )
        children = mlflow.search_runs(
            experiment_names=["typical"],
            filter_string=f"tags.mlflow.parentRunId = '{parent.info.run_id}'",
            output_format="list",
        )
        local = mlflow.artifacts.download_artifacts(
            run_id=parent.info.run_id, artifact_path="config/params.json"
        )
        print(json.dumps({
            "parent": parent.info.run_id,
            "child": child.info.run_id,
            "experiment_id": run.info.experiment_id,
            "status": run.info.status,
            "run_name": run.info.run_name,
            "params": run.data.params,
            "metrics": run.data.metrics,
            "steps": {m.key: m.step for m in run.data._metric_objs},
            "searched_steps": {m.key: m.step for m in found[0].data._metric_objs},
            "stamped": all(m.timestamp >= run.info.start_time for m in run.data._metric_objs),
            "tags": {k: v for k, v in run.data.tags.items() if not k.startswith("mlflow.source")},
            "history": [(m.step, m.value) for m in client.get_metric_history(parent.info.run_id, "loss")],
            "found": [r.info.run_id for r in found],
            "children": [r.info.run_id for r in children],
            "artifacts": sorted(f.path for f in client.list_artifacts(parent.info.run_id)),
            "config": [f.path for f in client.list_artifacts(parent.info.run_id, "config")],
            "downloaded": open(local).read(),
            "datasets": [
                (d.dataset.name, d.dataset.source_type, [t.value for t in d.tags])
                for d in run.inputs.dataset_inputs
            ],
            "artifact_uri": run.info.artifact_uri,
        }))
        """,
        tmp_path,
    )
    assert out["status"] == "FINISHED" and out["run_name"] == "parent"
    assert out["params"] == {"lr": "0.1", "depth": "3", "optimizer": "adam"}
    assert out["metrics"] == {"loss": 0.2, "acc": 0.9, "f1": 0.75}
    assert out["steps"] == out["searched_steps"] == {"loss": 4, "acc": 0, "f1": 0} and out["stamped"]
    assert out["tags"]["team"] == "growth" and out["tags"]["stage"] == "dev"
    assert out["tags"]["mlflow.runName"] == "parent"
    assert out["history"] == [[s, 1.0 / (s + 1)] for s in range(5)]
    assert out["found"] == [out["parent"]]
    assert out["children"] == [out["child"]]
    assert out["artifacts"] == ["config", "notes.txt"]
    assert out["config"] == ["config/params.json"]
    assert json.loads(out["downloaded"]) == {"a": 1}
    assert out["datasets"] == [["train-data", "s3", ["training"]]]
    assert out["artifact_uri"].startswith("mlflow-artifacts:/")

    # The same records, read through Shipyard: an ordinary Shipyard run.
    shipyard = shipyard_client(home)
    run = shipyard.get_run(out["parent"])
    assert run.experiment_id == out["experiment_id"]
    assert shipyard.get_experiment(run.experiment_id).name == "typical"
    assert run.status.value == "FINISHED" and run.name == "parent" and not run.lost
    assert run.params == {"lr": "0.1", "depth": "3", "optimizer": "adam"}
    assert [(m.step, m.value) for m in shipyard.metric_history(run.run_id, "loss")] == [
        (s, 1.0 / (s + 1)) for s in range(5)
    ]
    assert shipyard.get_run(out["child"]).parent_run_id == run.run_id
    assert {a.path for a in shipyard.list_artifacts(run.run_id)} == {"config/params.json", "notes.txt"}
    (dataset,) = shipyard.dataset_inputs(run.run_id)
    assert (dataset.name, dataset.source, dataset.num_rows, dataset.context) == (
        "train-data",
        "s3://bucket/train.csv",
        3,
        "training",
    )


def test_search_pages_through_every_run_once(
    server: tuple[str, Path], mlflow_python: str, tmp_path: Path
) -> None:
    url, _ = server
    out = mlflow_script(
        mlflow_python,
        url,
        """
        import json
        import mlflow
        from mlflow import MlflowClient

        experiment = mlflow.set_experiment("paging")
        made = []
        for i in range(23):
            with mlflow.start_run(run_name=f"r{i}") as run:
                mlflow.log_metric("score", i)
                made.append(run.info.run_id)
        client = MlflowClient()
        seen, token, pages = [], None, 0
        while True:
            page = client.search_runs(
                [experiment.experiment_id], max_results=10, page_token=token, order_by=["metrics.score DESC"]
            )
            seen += [r.data.metrics["score"] for r in page]
            pages += 1
            token = page.token
            if not token:
                break
        frame = mlflow.search_runs([experiment.experiment_id], filter_string="metrics.score >= 20")
        print(json.dumps({"made": len(made), "seen": seen, "pages": pages, "top": len(frame)}))
        """,
        tmp_path,
    )
    assert out["seen"] == [float(i) for i in range(22, -1, -1)]
    assert (out["pages"], out["top"]) == (3, 3)


def test_errors_carry_mlflow_codes_and_never_a_retried_status(
    server: tuple[str, Path], mlflow_python: str, tmp_path: Path
) -> None:
    url, _ = server
    out = mlflow_script(
        mlflow_python,
        url,
        """
        import json
        import mlflow
        from mlflow import MlflowClient
        from mlflow.exceptions import MlflowException

        client = MlflowClient()
        codes = {}

        def code(name, call):
            try:
                call()
            except MlflowException as exc:
                codes[name] = [exc.error_code, str(exc)]

        code("unknown_run", lambda: client.get_run("0" * 32))
        code("unknown_experiment", lambda: client.get_experiment("424242"))
        code("unknown_model", lambda: client.get_registered_model("nope"))
        code("unknown_version", lambda: client.get_model_version("nope", "1"))
        mlflow.set_experiment("errors")
        with mlflow.start_run() as run:
            mlflow.log_param("lr", 0.1)
            mlflow.log_param("lr", 0.1)  # the same value again: fine
            code("changed_param", lambda: mlflow.log_param("lr", 0.2))
            code("bad_metric", lambda: client.log_batch(run.info.run_id, metrics=[
                mlflow.entities.Metric("../escape", 1.0, 0, 0)]))
        code("bad_filter", lambda: mlflow.search_runs(filter_string="params.lr === 1", output_format="list"))
        code("duplicate_experiment", lambda: client.create_experiment("errors"))
        print(json.dumps({"codes": codes, "by_name": client.get_experiment_by_name("nope") is None}))
        """,
        tmp_path,
    )
    codes = out["codes"]
    assert codes["unknown_run"][0] == "RESOURCE_DOES_NOT_EXIST"
    assert codes["unknown_experiment"][0] == "RESOURCE_DOES_NOT_EXIST"
    assert codes["unknown_model"][0] == codes["unknown_version"][0] == "RESOURCE_DOES_NOT_EXIST"
    assert codes["changed_param"][0] == "INVALID_PARAMETER_VALUE" and "'lr'" in codes["changed_param"][1]
    assert codes["bad_metric"][0] == "INVALID_PARAMETER_VALUE" and "../escape" in codes["bad_metric"][1]
    assert codes["bad_filter"][0] == "INVALID_PARAMETER_VALUE"
    assert codes["duplicate_experiment"][0] == "RESOURCE_ALREADY_EXISTS"
    assert out["by_name"] is True  # RESOURCE_DOES_NOT_EXIST is how the client learns "no such experiment"

    unknown = httpx.post(f"{url}/api/2.0/mlflow/no/such/endpoint", json={})
    assert unknown.status_code == 404 and unknown.json()["error_code"] == "ENDPOINT_NOT_FOUND"
    escape = httpx.put(f"{url}/api/2.0/mlflow-artifacts/artifacts/0/%2e%2e/%2e%2e/evil.txt", content=b"x")
    assert escape.status_code == 400 and escape.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert "evil.txt" not in {p.name for p in Path(server[1]).parent.rglob("*")}
    json_type = {"content-type": "application/json"}
    not_json = httpx.post(f"{url}/api/2.0/mlflow/runs/create", content=b"{nope", headers=json_type)
    assert not_json.status_code == 400 and not_json.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    for path in ("runs/log-metric", "runs/create"):  # the fast lane's route and a framework one
        deep = httpx.post(f"{url}/api/2.0/mlflow/{path}", content=b"[" * 100_000, headers=json_type)
        assert deep.status_code == 400 and deep.json()["error_code"] == "INVALID_PARAMETER_VALUE", deep.text


def test_signed_in_clients_use_their_token_or_password_with_their_permissions(
    tmp_path: Path, mlflow_python: str
) -> None:
    from shipyard.auth.accounts import Accounts
    from shipyard.store import open_server_stores
    from tests.conftest import platform_server, sign_up

    server = make_settings(tmp_path / "server")
    password = "alice's long password"
    tokens = sign_up(
        Accounts(open_server_stores(server).auth), [("alice", "editor", password), ("bob", "viewer", None)]
    )
    code = """
        import json
        import mlflow
        from mlflow.exceptions import MlflowException

        out = {}
        try:
            mlflow.set_experiment("team")
            with mlflow.start_run() as run:
                mlflow.log_metric("loss", 0.5)
            out["run"] = run.info.run_id
        except MlflowException as exc:
            out["error"] = [exc.error_code, str(exc)]
        try:
            out["seen"] = len(mlflow.search_runs(search_all_experiments=True, output_format="list"))
        except MlflowException as exc:
            out["seen"] = exc.error_code
        print(json.dumps(out))
    """
    with platform_server(server, require_auth=True) as url:
        # alice signs in with her password (basic auth), bob with his token (bearer), nobody without.
        basic = {"MLFLOW_TRACKING_USERNAME": "alice", "MLFLOW_TRACKING_PASSWORD": password}
        alice = mlflow_script(mlflow_python, url, code, tmp_path, basic)
        assert "run" in alice and alice["seen"] == 1, alice
        bob = mlflow_script(mlflow_python, url, code, tmp_path, {"MLFLOW_TRACKING_TOKEN": tokens["bob"]})
        assert bob["error"][0] == "PERMISSION_DENIED" and "user 'bob' has READ" in bob["error"][1], bob
        assert bob["seen"] == 1  # a viewer reads alice's run
        nobody = mlflow_script(mlflow_python, url, code, tmp_path)
        assert nobody["error"][0] == "UNAUTHENTICATED" and nobody["seen"] == "UNAUTHENTICATED"
    stored = TrackingClient(server).get_run(alice["run"])
    assert stored.user == "alice" and stored.metrics == {"loss": 0.5}


def test_a_logged_and_registered_model_loads_by_alias_and_by_run(
    server: tuple[str, Path], mlflow_python: str, tmp_path: Path
) -> None:
    url, _ = server
    out = mlflow_script(
        mlflow_python,
        url,
        """
        import json
        import mlflow
        import numpy as np
        import pandas as pd
        from mlflow import MlflowClient
        from sklearn.linear_model import LogisticRegression

        mlflow.set_experiment("models")
        X = np.array([[0.0], [1.0], [2.0], [3.0]])
        y = np.array([0, 0, 1, 1])
        with mlflow.start_run() as run:
            model = LogisticRegression().fit(X, y)
            mlflow.log_metric("acc", 1.0)
            frame = pd.DataFrame({"x": X[:, 0], "y": y})
            mlflow.log_input(mlflow.data.from_pandas(frame, name="churn-train", source="s3://b/train.csv"))
            info = mlflow.sklearn.log_model(
                model, name="model", registered_model_name="churn-mlflow", input_example=X[:2]
            )
        client = MlflowClient()
        client.set_registered_model_alias("churn-mlflow", "champion", info.registered_model_version)
        by_alias = mlflow.pyfunc.load_model("models:/churn-mlflow@champion")
        by_run = mlflow.pyfunc.load_model(f"runs:/{run.info.run_id}/model")
        with mlflow.start_run():
            info2 = mlflow.sklearn.log_model(model, name="model", registered_model_name="churn-mlflow")
        client.transition_model_version_stage("churn-mlflow", info2.registered_model_version, "Staging")
        with mlflow.start_run():  # version 3: pickled, which Shipyard loads only when trusted
            mlflow.sklearn.log_model(
                model, name="model", registered_model_name="churn-mlflow", serialization_format="cloudpickle"
            )
        versions = client.search_model_versions("name = 'churn-mlflow'")
        print(json.dumps({
            "run": run.info.run_id,
            "model_id": info.model_id,
            "version": info.registered_model_version,
            "alias": by_alias.predict(X).tolist(),
            "by_run": by_run.predict(X).tolist(),
            "versions": sorted((v.version, v.current_stage) for v in versions),
            "champion": client.get_model_version_by_alias("churn-mlflow", "champion").version,
            "outputs": [o.model_id for o in client.get_run(run.info.run_id).outputs.model_outputs],
        }))
        """,
        tmp_path,
    )
    assert out["alias"] == out["by_run"] == [0, 0, 1, 1]
    assert out["version"] == "1" and out["champion"] == "1" and out["outputs"] == [out["model_id"]]
    assert out["versions"] == [["1", "None"], ["2", "Staging"], ["3", "None"]]

    # In Shipyard's registry: a version whose package is the MLflow package, verified by its MODEL.yaml;
    # Shipyard loads MLflow's skops-saved sklearn model itself, and a pickled one only when trusted.
    import shipyard
    from shipyard.errors import UntrustedArtifact
    from shipyard.registry.client import RegistryClient

    team = make_settings(tmp_path / "client", tracking_uri=url)
    version = RegistryClient(TrackingClient(team)).get_version("churn-mlflow", 1)
    assert (version.flavor, version.run_id, version.aliases) == ("mlflow", out["run"], ("champion",))
    assert version.lineage["mlflow_model_id"] == out["model_id"]
    from shipyard.lineage import LineageClient

    graph = LineageClient(TrackingClient(team)).upstream("models:/churn-mlflow/1")
    assert [a.uri for a in graph.sources()] == ["s3://b/train.csv"]  # model -> logged model -> its data
    loaded = shipyard.models.load("models:/churn-mlflow@champion", settings=team)
    assert loaded.predict([[0.0], [1.0], [2.0], [3.0]]).tolist() == [0, 0, 1, 1]
    with pytest.raises(UntrustedArtifact, match="saved with cloudpickle, and unpickling runs arbitrary code"):
        shipyard.models.load("models:/churn-mlflow/3", settings=team)
    trusted = shipyard.models.load("models:/churn-mlflow/3", settings=team, trusted=True)
    assert trusted.predict([[3.0]]).tolist() == [1]


def test_renames_descriptions_and_tag_deletes_reach_shipyard_records(
    server: tuple[str, Path], mlflow_python: str, tmp_path: Path
) -> None:
    url, home = server
    out = mlflow_script(
        mlflow_python,
        url,
        """
        import json
        import mlflow
        from mlflow import MlflowClient
        from mlflow.exceptions import RestException
        from sklearn.linear_model import LogisticRegression

        client = MlflowClient()
        experiment_id = client.create_experiment("to-rename")
        client.rename_experiment(experiment_id, "renamed")
        taken = client.get_experiment(client.create_experiment("taken")).name
        model = client.create_registered_model("reg-old", tags={"team": "growth", "tier": "1"})
        with mlflow.start_run(experiment_id=experiment_id) as run:
            mlflow.sklearn.log_model(LogisticRegression().fit([[0.0], [1.0]], [0, 1]), name="model")
        version = mlflow.register_model(f"runs:/{run.info.run_id}/model", "reg-old")
        client.set_model_version_tag("reg-old", version.version, "validated", "yes")
        client.set_model_version_tag("reg-old", version.version, "owner", "ana")
        client.set_registered_model_alias("reg-old", "champion", version.version)
        client.rename_registered_model("reg-old", "reg-new")
        updated = client.update_registered_model("reg-new", description="churn classifier")
        version_updated = client.update_model_version("reg-new", version.version, description="first cut")
        client.delete_registered_model_tag("reg-new", "team")
        client.delete_registered_model_tag("reg-new", "never-set")  # as MLflow's server: not an error
        client.delete_model_version_tag("reg-new", version.version, "validated")
        errors = {}
        for label, call in {
            "old_model": lambda: client.get_registered_model("reg-old"),
            "rename_taken": lambda: client.rename_experiment(experiment_id, taken),
            "rename_missing": lambda: client.rename_registered_model("nope", "x"),
            "version_missing": lambda: client.update_model_version("reg-new", "9", description="x"),
        }.items():
            try:
                call()
                errors[label] = None
            except RestException as exc:
                errors[label] = exc.error_code
        again = client.get_registered_model("reg-new")
        print(json.dumps({
            "experiment": client.get_experiment(experiment_id).name,
            "by_name": client.get_experiment_by_name("renamed").experiment_id == experiment_id,
            "renamed": again.name,
            "description": updated.description,
            "version_description": version_updated.description,
            "tags": again.tags,
            "aliases": again.aliases,
            "version_tags": client.get_model_version("reg-new", version.version).tags,
            "errors": errors,
            "run": run.info.run_id,
        }))
        """,
        tmp_path,
    )
    assert out["experiment"] == "renamed" and out["by_name"] and out["renamed"] == "reg-new"
    assert (out["description"], out["version_description"]) == ("churn classifier", "first cut")
    assert out["tags"] == {"tier": "1"} and out["version_tags"] == {"owner": "ana"}
    assert out["aliases"] == {"champion": "1"}
    assert out["errors"] == {
        "old_model": "RESOURCE_DOES_NOT_EXIST",
        "rename_taken": "RESOURCE_ALREADY_EXISTS",
        "rename_missing": "RESOURCE_DOES_NOT_EXIST",
        "version_missing": "RESOURCE_DOES_NOT_EXIST",
    }
    # Shipyard's own records show the same thing.
    from shipyard.registry.client import RegistryClient

    client = shipyard_client(home)
    assert client.get_run(out["run"]).experiment_id == client.get_experiment("renamed").experiment_id
    stored = RegistryClient(client).get_version("reg-new", 1)
    assert (stored.description, stored.tags, stored.aliases) == ("first cut", {"owner": "ana"}, ("champion",))
    assert [e.action for e in RegistryClient(client).events("reg-new")][-1] == "rename_model"


@contextlib.contextmanager
def shipyard_serve(
    *args: str, tracking_uri: str, tmp_path: Path
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """``shipyard serve ARGS`` on a free port, a client of the platform server at ``tracking_uri`` (where
    MLflow's client logged the packages); yields its URL and process, and stops it (SIGTERM, exit 0) after."""
    port = free_port()
    home = tmp_path / f"serve-{port}" / "home"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("SHIPYARD_")},
        "SHIPYARD_HOME": str(home),
        "SHIPYARD_CEILING_DIRECTORIES": str(home.parent.parent),
        "SHIPYARD_TRACKING_URI": tracking_uri,
    }
    command = [sys.executable, "-m", "shipyard.cli", "serve", *args, "--port", str(port), "--heartbeat", "0"]
    proc = subprocess.Popen(command, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        yield f"http://127.0.0.1:{port}", proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            assert proc.wait(timeout=30) == 0
        finally:
            proc.kill()


def v2_infer(url: str, model: str, rows: list[list[float]]) -> dict[str, Any]:
    """Labels and probabilities for ``rows`` over OIP v2, as one ``[N, 4]`` FP64 tensor."""
    body = {
        "inputs": [{"name": "input-0", "datatype": "FP64", "shape": [len(rows), 4], "data": rows}],
        "outputs": [{"name": "predict"}, {"name": "predict_proba"}],
    }
    answer = httpx.post(f"{url}/v2/models/{model}/infer", json=body, timeout=30)
    assert answer.status_code == 200, answer.text
    return {o["name"]: np.reshape(o["data"], o["shape"]).tolist() for o in answer.json()["outputs"]}


@pytest.mark.slow
def test_a_pickled_mlflow_model_serves_only_when_trusted_and_a_skops_one_without(
    server: tuple[str, Path], mlflow_python: str, tmp_path: Path
) -> None:
    url, _ = server
    out = mlflow_script(
        mlflow_python,
        url,
        """
        import json
        import mlflow
        from sklearn.datasets import load_iris
        from sklearn.linear_model import LogisticRegression

        X, y = load_iris(return_X_y=True, as_frame=True)
        model = LogisticRegression(max_iter=1000).fit(X, y)
        rows = X.iloc[::10]
        mlflow.set_experiment("iris")
        with mlflow.start_run():  # version 1: pickled, as MLflow's client on Databricks does by default
            pickled = mlflow.sklearn.log_model(
                model, name="model", registered_model_name="iris-clf", input_example=X.head(5),
                serialization_format="cloudpickle",
            )
        with mlflow.start_run():  # version 2: the client's default elsewhere
            default = mlflow.sklearn.log_model(
                model, name="model", registered_model_name="iris-clf", input_example=X.head(5)
            )
        print(json.dumps({
            "versions": [pickled.registered_model_version, default.registered_model_version],
            "flavors": [info.flavors["sklearn"] for info in (pickled, default)],
            "rows": rows.to_numpy().tolist(),
            "labels": model.predict(rows).tolist(),
            "proba": model.predict_proba(rows).tolist(),
        }))
        """,
        tmp_path,
    )
    assert out["versions"] == ["1", "2"]
    # What log_model wrote in each MLmodel: a cloudpickle, then (MLflow 3's default off Databricks) skops.
    (pickle_facts, skops_facts) = out["flavors"]
    assert (pickle_facts["serialization_format"], pickle_facts["pickled_model"]) == (
        "cloudpickle",
        "model.pkl",
    )
    assert (skops_facts["serialization_format"], skops_facts["pickled_model"]) == ("skops", "model.skops")
    assert sorted(set(out["labels"])) == [0, 1, 2]

    def answers_like_sklearn(served: str, name: str) -> None:
        got = v2_infer(served, name, out["rows"])
        assert got["predict"] == out["labels"]
        np.testing.assert_allclose(got["predict_proba"], out["proba"], rtol=1e-12)

    # Without trust the pickle is not loaded: the server stays up, the model never ready, and every answer
    # about it (and the one log line) names the file and its format, says why, and how to trust it.
    with shipyard_serve("models:/iris-clf/1", tracking_uri=url, tmp_path=tmp_path) as (served, proc):
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else "server exited"
            with contextlib.suppress(httpx.TransportError):
                ready = httpx.get(f"{served}/v2/models/iris-clf/ready", timeout=1)
                if "still loading" not in ready.text:
                    break
            assert time.monotonic() < deadline, "the model neither loaded nor failed to"
            time.sleep(0.1)
        assert ready.status_code == 503, ready.text  # not loaded: it would run code from the file
        refusal = ready.json()["error"]
        assert (
            "failed to load: UntrustedArtifact: model.pkl is an MLflow model saved with cloudpickle"
            in refusal
        )
        assert "unpickling runs arbitrary code from the file" in refusal
        assert "shipyard serve --trusted, or trusted: true in deploy.yaml" in refusal
        assert httpx.get(f"{served}/v2/health/ready").status_code == 503
        infer = httpx.post(f"{served}/v2/models/iris-clf/infer", json={"inputs": []})
        assert infer.status_code == 503 and "unpickling runs arbitrary code" in infer.json()["error"]
    logged = (proc.stderr.read() if proc.stderr else b"").decode()
    (line,) = [line for line in logged.splitlines() if "UntrustedArtifact" in line]
    assert "failed to load" in line and "model.pkl" in line and "--trusted" in line

    # Trusted on the command line, the same version serves sklearn's own answers over OIP v2.
    with shipyard_serve("models:/iris-clf/1", "--trusted", tracking_uri=url, tmp_path=tmp_path) as (
        served,
        proc,
    ):
        wait_ready(served, proc)
        answers_like_sklearn(served, "iris-clf")

    # In a deploy.yaml: the pickle trusted by its own key, the skops version without any trust.
    deploy = tmp_path / "deploy.yaml"
    deploy.write_text(
        "models:\n"
        "  - {name: iris-pickle, uri: 'models:/iris-clf/1', trusted: true}\n"
        "  - {name: iris-skops, uri: 'models:/iris-clf/2'}\n"
    )
    with shipyard_serve(str(deploy), tracking_uri=url, tmp_path=tmp_path) as (served, proc):
        wait_ready(served, proc)
        answers_like_sklearn(served, "iris-pickle")
        answers_like_sklearn(served, "iris-skops")
