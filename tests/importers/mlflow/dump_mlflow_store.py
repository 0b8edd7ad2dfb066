"""Print, as JSON, everything an MLflow store holds as the real ``mlflow`` client reads it back.

Usage: python dump_mlflow_store.py TRACKING_URI
The importer's tests compare Shipyard's copy against this, value by value.
"""

import hashlib
import json
import math
import os
import sys
import tempfile
import warnings

import mlflow
from mlflow import MlflowClient
from mlflow.entities import ViewType

warnings.filterwarnings("ignore")
uri = sys.argv[1]
mlflow.set_tracking_uri(uri)
mlflow.set_registry_uri(uri)
client = MlflowClient()


def number(value):
    return "NaN" if isinstance(value, float) and math.isnan(value) else value


def files(folder):
    out = {}
    for top, _, names in os.walk(folder):
        for name in names:
            path = os.path.join(top, name)
            with open(path, "rb") as fh:
                out[os.path.relpath(path, folder).replace(os.sep, "/")] = hashlib.sha256(
                    fh.read()
                ).hexdigest()
    return out


def logged_files(uri):
    with tempfile.TemporaryDirectory() as tmp:
        return files(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=tmp))


out = {"experiments": [], "runs": [], "logged_models": [], "models": []}
experiments = client.search_experiments(view_type=ViewType.ALL)
for e in experiments:
    out["experiments"].append(
        {
            "name": e.name,
            "lifecycle_stage": e.lifecycle_stage,
            "creation_time": e.creation_time,
            "tags": e.tags,
        }
    )
    for run in client.search_runs([e.experiment_id], run_view_type=ViewType.ALL, max_results=10000):
        info, data = run.info, run.data
        history = {
            key: sorted(
                [m.step, m.timestamp, number(m.value)] for m in client.get_metric_history(info.run_id, key)
            )
            for key in data.metrics
        }
        with tempfile.TemporaryDirectory() as tmp:
            if client.list_artifacts(info.run_id):
                local = mlflow.artifacts.download_artifacts(run_id=info.run_id, dst_path=tmp)
                artifacts = files(local)
            else:
                artifacts = {}
        out["runs"].append(
            {
                "run_id": info.run_id,
                "experiment": e.name,
                "name": info.run_name,
                "status": info.status,
                "start_time": info.start_time,
                "end_time": info.end_time,
                "lifecycle_stage": info.lifecycle_stage,
                "user_id": info.user_id,
                "params": data.params,
                "tags": data.tags,
                "metrics": {k: number(v) for k, v in data.metrics.items()},
                "history": history,
                "datasets": [
                    {
                        "name": d.dataset.name,
                        "digest": d.dataset.digest,
                        "source_type": d.dataset.source_type,
                        "source": d.dataset.source,
                        "schema": json.loads(d.dataset.schema) if d.dataset.schema else None,
                        "context": {t.key: t.value for t in d.tags}.get("mlflow.data.context"),
                    }
                    for d in (run.inputs.dataset_inputs if run.inputs else [])
                ],
                "artifacts": artifacts,
            }
        )
    for model in client.search_logged_models(experiment_ids=[e.experiment_id]):
        out["logged_models"].append(
            {
                "model_id": model.model_id,
                "name": model.name,
                "source_run_id": model.source_run_id,
                "params": model.params,
                "tags": model.tags,
                "files": logged_files(model.artifact_location),
            }
        )
for rm in client.search_registered_models():
    versions = []
    for found in client.search_model_versions(f"name = '{rm.name}'"):
        v = client.get_model_version(rm.name, found.version)  # search leaves aliases out
        versions.append(
            {
                "version": int(v.version),
                "stage": v.current_stage,
                "description": v.description,
                "source": v.source,
                "run_id": v.run_id,
                "tags": v.tags,
                "creation_timestamp": v.creation_timestamp,
                "aliases": list(v.aliases),
            }
        )
    out["models"].append(
        {
            "name": rm.name,
            "description": rm.description,
            "tags": rm.tags,
            "aliases": {a: int(v) for a, v in rm.aliases.items()},
            "creation_timestamp": rm.creation_timestamp,
            "versions": sorted(versions, key=lambda v: v["version"]),
        }
    )
print(json.dumps(out))
