"""Build a small MLflow store with the real ``mlflow`` package (run by the MLflow venv's interpreter).

Usage: python make_mlflow_store.py TRACKING_URI ARTIFACT_ROOT
Writes every kind of record the importer copies: experiments with tags (one deleted), nested runs, stepped
metrics (NaN included), params, tags, a dataset input, artifacts, a FAILED run, a deleted run and an sklearn
model logged and registered with an alias, a stage and tags.
"""

import sys
import warnings

import mlflow
import pandas as pd
from mlflow import MlflowClient
from sklearn.linear_model import LogisticRegression

warnings.filterwarnings("ignore")
uri, artifact_root = sys.argv[1], sys.argv[2]
mlflow.set_tracking_uri(uri)
mlflow.set_registry_uri(uri)
client = MlflowClient()

exp_id = client.create_experiment("iris", artifact_location=f"{artifact_root}/iris", tags={"team": "ml"})
mlflow.set_experiment(experiment_id=exp_id)
frame = pd.DataFrame({"a": [1.0, 2.0, 3.0, 4.0], "b": [0.0, 1.0, 0.0, 1.0]})
with mlflow.start_run(run_name="parent", description="the parent run") as parent:
    mlflow.log_params({"lr": "0.1", "depth": "3"})
    mlflow.set_tags({"team": "ml", "stage": "dev"})
    for step in range(5):
        mlflow.log_metric("loss", 1.0 / (step + 1), step=step, timestamp=1_700_000_000_000 + step)
    mlflow.log_metric("odd", float("nan"), step=0)
    mlflow.log_input(mlflow.data.from_pandas(frame, source="s3://bucket/iris.csv", name="iris"), "training")
    mlflow.log_text("hello", "notes/hello.txt")
    mlflow.log_dict({"k": [1, 2]}, "config.json")
    model = LogisticRegression().fit(frame[["a"]], frame["b"])
    mlflow.sklearn.log_model(
        model, name="model", registered_model_name="iris-clf", input_example=frame[["a"]]
    )
    for i in range(2):
        with mlflow.start_run(run_name=f"child-{i}", nested=True):
            mlflow.log_param("i", str(i))
            mlflow.log_metrics({"acc": 0.5 + i / 10, "f1": 0.4}, step=i)
with mlflow.start_run(run_name="broken") as broken:
    mlflow.log_metric("loss", 9.0)
    mlflow.log_metric("trailing ", 1.0)  # a key MLflow takes and Shipyard refuses (the space at its end)
mlflow.MlflowClient().set_terminated(broken.info.run_id, "FAILED")
with mlflow.start_run(run_name="gone") as gone:
    mlflow.log_param("x", "1")
client.delete_run(gone.info.run_id)
old = client.create_experiment("old", artifact_location=f"{artifact_root}/old")
client.create_run(old, run_name="in-old")
client.delete_experiment(old)

client.set_registered_model_tag("iris-clf", "owner", "alice")
client.update_registered_model("iris-clf", description="classifies iris")
client.set_registered_model_alias("iris-clf", "champion", "1")
client.set_model_version_tag("iris-clf", "1", "validated", "yes")
client.transition_model_version_stage("iris-clf", "1", "Staging")
client.update_model_version("iris-clf", "1", description="first")
print(parent.info.run_id)
