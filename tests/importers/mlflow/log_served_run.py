"""Log a run through a running ``mlflow server`` (argv[1]) that proxies artifacts: its files and its model's
get ``mlflow-artifacts:/`` URIs, which only that server can hand out. Then print the store as
``dump_mlflow_store.py`` does (its last line of output)."""

import runpy
import sys
import warnings
from pathlib import Path

import mlflow
import pandas as pd
from sklearn.linear_model import LinearRegression

warnings.filterwarnings("ignore")
mlflow.set_tracking_uri(sys.argv[1])
mlflow.set_experiment("served")
frame = pd.DataFrame({"x": [0.0, 1.0, 2.0], "y": [1.0, 3.0, 5.0]})
with mlflow.start_run(run_name="through-the-server"):
    mlflow.log_param("fit_intercept", "true")
    mlflow.log_metrics({"mse": 0.5}, step=3)
    mlflow.log_text("proxied", "deep/folder/note.txt")
    model = LinearRegression().fit(frame[["x"]], frame["y"])
    mlflow.sklearn.log_model(model, name="regressor")

# Then the whole store as the client reads it back (one interpreter start: importing mlflow takes seconds).
sys.argv = [sys.argv[0], sys.argv[1]]
runpy.run_path(str(Path(__file__).with_name("dump_mlflow_store.py")), run_name="__main__")
