"""``shipyard models explain``: importance as a table, JSON with each row's values, --record on a version."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import typer
from sklearn.ensemble import RandomForestRegressor
from typer.testing import CliRunner

import shipyard
from shipyard.cli.explain_cmd import explain
from shipyard.errors import InvalidInput
from shipyard.explain import IMPORTANCE_TAG

pytest.importorskip("shap", reason="shap is the explain extra (pip install 'shipyard[explain]')")

# The command as `shipyard models explain` registers it, apart from the rest of the CLI.
app = typer.Typer()
app.command("explain")(explain)
app.command("unused")(lambda: None)  # two commands: typer then keeps the subcommand's name


@pytest.fixture
def registered(frame: pd.DataFrame, amount: np.ndarray, tmp_path: Path) -> Path:
    """``amounts`` version 1 (with its baseline) in the test's store, and rows to explain in a file."""
    forest = RandomForestRegressor(n_estimators=10, max_depth=5, random_state=0).fit(frame, amount)
    with shipyard.start_run("cli") as run:
        info = shipyard.models.log(forest, name="model", run=run, input_example=frame.head(3), baseline=frame)
    shipyard.models.register(info.uri, "amounts")
    path = tmp_path / "rows.parquet"
    frame.iloc[:30].assign(amount=amount[:30]).to_parquet(path, index=False)
    return path


def test_a_table_of_importance_and_json_with_values(registered: Path) -> None:
    result = CliRunner().invoke(app, ["explain", "amounts/1", "--data", str(registered)])
    assert result.exit_code == 0, result.output
    assert result.output.index("signal") < result.output.index("noise_a")
    result = CliRunner().invoke(app, ["explain", "amounts/1", "--data", str(registered), "--json"])
    document = json.loads(result.output)
    assert document["model"] == "models:/amounts/1" and len(document["values"]) == 30
    result = CliRunner().invoke(
        app,
        ["explain", "amounts/1", "--data", str(registered), "--method", "permutation", "--targets", "amount"],
    )
    assert result.exit_code == 0, result.output
    assert "r2 drop" in result.output


def test_record_stores_importance_on_the_version(registered: Path) -> None:
    result = CliRunner().invoke(app, ["explain", "amounts/1", "--record", "--json"])
    assert result.exit_code == 0, result.output
    assert next(iter(json.loads(result.output)["importance"])) == "signal"
    assert IMPORTANCE_TAG in shipyard.models.get("models:/amounts/1").tags


def test_bad_options_are_named(registered: Path) -> None:
    result = CliRunner().invoke(app, ["explain", "amounts/1"])
    assert isinstance(result.exception, InvalidInput) and "--data" in str(result.exception)
    result = CliRunner().invoke(app, ["explain", "amounts/1", "--data", str(registered), "--targets", "nope"])
    assert isinstance(result.exception, InvalidInput) and "'nope'" in str(result.exception)


def test_the_help_examples_parse() -> None:
    command = typer.main.get_command(app).commands["explain"]  # type: ignore[attr-defined]
    help_text = command.help.partition("\f")[0]
    examples = [line.strip() for line in help_text.split("Examples:")[1].splitlines() if line.strip()]
    assert len(examples) == 4
    for example in examples:
        words = shlex.split(example)
        assert words[:3] == ["shipyard", "models", "explain"]
        with command.make_context("explain", words[3:], resilient_parsing=False):
            pass
