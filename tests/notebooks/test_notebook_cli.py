"""`shipyard notebook to-pipeline` and `run`: a tagged notebook becomes a lint-clean module whose pipeline
runs on the local executor, hands DataFrames, arrays, estimators and plain values between steps, logs the
metrics cell, and is cached on the next run; bad input is one error naming what is wrong."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from shipyard.cli import notebook_cmd
from shipyard.cli.app import exit_code_for
from shipyard.config import get_settings
from shipyard.errors import InvalidInput
from shipyard.tracking import get_client
from tests.notebooks.builders import code, markdown, write_notebook

ROOT = Path(__file__).resolve().parents[2]


def _churn(path: Path) -> Path:
    return write_notebook(
        path,
        markdown("# Churn"),
        code("import numpy as np\nimport pandas as pd", "imports"),
        code("from sklearn.linear_model import LogisticRegression"),
        code("def noisy(n, seed):\n    return np.random.default_rng(seed).normal(size=n)", "functions"),
        code("rows = 40\nseed = 3\nC = 1.0\nlabel = 'y'", "parameters"),
        code("%matplotlib inline\nframe = pd.DataFrame({'x': noisy(rows, seed)})", "step:load"),
        code("frame[label] = (frame.x > 0).astype(int)\nsizes = [len(frame)]\nweights = np.ones(rows)"),
        code("frame.describe()", "skip"),
        code(
            "model = LogisticRegression(C=C).fit(frame[['x']], frame[label], sample_weight=weights)",
            "step:train",
        ),
        code(
            "acc = float(model.score(frame[['x']], frame[label]))\nn = sizes[0]\nnote = '''kept\n  as is'''",
            "step:evaluate",
        ),
        code("print(acc)\nn", "metrics"),
    )


@pytest.mark.slow(seconds=6)
def test_a_notebook_runs_as_a_cached_pipeline_and_its_module_is_lint_clean(tmp_path: Path) -> None:
    notebook = _churn(tmp_path / "churn.ipynb")
    written = CliRunner().invoke(notebook_cmd.app, ["to-pipeline", str(notebook), "-o", "churn_pipeline.py"])
    assert written.exit_code == 0, written.output
    assert "3 step(s) (load, train, evaluate)" in written.output
    assert "shipyard pipeline run churn_pipeline.py:churn_pipeline" in written.output
    module = (tmp_path / "churn_pipeline.py").read_text()
    compile(module, "churn_pipeline.py", "exec")
    assert "    note = '''kept\n  as is'''" in module  # a multi-line string is not re-indented
    assert "# %matplotlib inline  (IPython magic, left out)" in module and "describe" not in module
    lint = subprocess.run(
        [
            sys.executable,
            "-m",
            "ruff",
            "check",
            "--no-cache",
            "--config",
            str(ROOT / "pyproject.toml"),
            "churn_pipeline.py",
        ],
        capture_output=True,
        text=True,
    )
    if "No module named ruff" in lint.stderr:
        pytest.skip("ruff is not installed: the module was only compiled")
    assert lint.returncode == 0, lint.stdout + lint.stderr

    first = CliRunner().invoke(notebook_cmd.app, ["run", str(notebook), "-p", "rows=30", "--json"])
    assert first.exit_code == 0, first.output
    result = json.loads(first.output)
    assert result["status"] == "succeeded"
    assert list(result["steps"]) == ["load", "train", "evaluate", "pipeline-metrics"]
    client = get_client(get_settings())
    metrics_run = client.get_run(result["steps"]["pipeline-metrics"]["run_id"])
    assert metrics_run.metrics["n"] == 30.0 and 0.5 < metrics_run.metrics["acc"] <= 1.0
    assert metrics_run.parent_run_id == result["run_id"]
    formats = {
        name: json.loads((Path(path) / "shipyard-value.json").read_text())["format"]
        for step in ("load", "train")
        for name, path in result["steps"][step]["outputs"].items()
    }
    assert formats == {
        "frame_out": "parquet",
        "sizes_out": "json",
        "weights_out": "npy",
        "model_out": "skops",
    }
    assert client.get_run(result["run_id"]).params["rows"] == "30"

    again = CliRunner().invoke(notebook_cmd.app, ["run", str(notebook), "-p", "rows=30", "--json"])
    assert again.exit_code == 0, again.output
    assert {s["status"] for s in json.loads(again.output)["steps"].values()} == {"cached"}


def test_an_unknown_parameter_is_named_before_any_step_runs(tmp_path: Path) -> None:
    notebook = write_notebook(
        tmp_path / "tiny.ipynb", code("lr = 0.1", "parameters"), code("x = lr * 2", "step:only")
    )
    result = CliRunner().invoke(notebook_cmd.app, ["run", str(notebook), "-p", "rate=0.2"])
    assert isinstance(result.exception, InvalidInput)
    assert str(result.exception) == "pipeline 'tiny' has no parameter 'rate'; valid parameters: lr"
    assert exit_code_for(result.exception) == 2


def test_a_file_that_is_not_a_notebook_is_one_error(tmp_path: Path) -> None:
    (tmp_path / "train.py").write_text("print('hi')\n")
    result = CliRunner().invoke(notebook_cmd.app, ["to-pipeline", "train.py", "-o", "out.py"])
    assert isinstance(result.exception, InvalidInput)
    assert "'train.py' is not a Jupyter notebook" in str(result.exception)
    assert not (tmp_path / "out.py").exists()


def test_a_step_reading_an_undefined_variable_is_one_error(tmp_path: Path) -> None:
    notebook = write_notebook(
        tmp_path / "gap.ipynb", code("x = 1", "step:first"), markdown("-"), code("y = x + z", "step:second")
    )
    result = CliRunner().invoke(notebook_cmd.app, ["to-pipeline", str(notebook), "-o", "gap.py"])
    assert isinstance(result.exception, InvalidInput) and exit_code_for(result.exception) == 2
    assert str(result.exception).startswith("step 'second' reads variable 'z' (cell 2, line 1)")
