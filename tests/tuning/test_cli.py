"""``shipyard tune run|show|resume`` on real stores."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli.test_cli import run_cli

SPEC = """
name: curve
trial: tests.tuning.objectives:learning_curve
objective: {metric: score, direction: maximize}
early_stopping: {name: median, settings: {n_startup_trials: 3}}
parameters:
  - {name: x, type: float, low: 0, high: 10}
algorithm: {name: tpe, seed: 0}
max_trials: 9
"""


@pytest.fixture
def spec_file(tmp_path: Path) -> Path:
    path = tmp_path / "spec.yaml"
    path.write_text(SPEC)
    return path


def test_run_shows_progress_and_the_best_then_show_lists_the_trials(
    capsys: pytest.CaptureFixture[str], spec_file: Path
) -> None:
    code, out, err = run_cli(capsys, "tune", "run", str(spec_file))
    assert code == 0, err
    assert "9/9" in out and "best so far" in out and "best: trial" in out and "completed: 9 trials" in out
    code, out, err = run_cli(capsys, "tune", "show", "curve", "--json")
    assert code == 0, err
    shown = json.loads(out)
    assert [t["number"] for t in shown["trials"]] == list(range(9)) and len(shown["best"]) == 1
    code, out, _ = run_cli(capsys, "tune", "show", shown["run_id"])
    assert code == 0 and "COMPLETE" in out and f"best: trial {shown['best'][0]['number']}" in out
    code, _, err = run_cli(capsys, "tune", "resume", shown["run_id"])
    assert code == 2 and "already finished" in err


def test_overrides_and_json_output(capsys: pytest.CaptureFixture[str], spec_file: Path) -> None:
    code, out, err = run_cli(capsys, "tune", "run", str(spec_file), "--max-trials", "4", "--json")
    assert code == 0, err
    summary = json.loads(out)
    assert summary["trials"] == 4 and summary["state"] == "completed" and summary["best"]["params"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["tune", "run", "missing.yaml"], "cannot read tuning spec 'missing.yaml'"),
        (["tune", "run", "SPEC", "--trial", "tests.tuning.objectives:nope"], "has no function 'nope'"),
        (["tune", "run", "SPEC", "--trial", "no_such_module:f"], "cannot import 'no_such_module'"),
        (["tune", "run", "SPEC", "--executor", "spark"], "executor"),
        (["tune", "show", "nothing-here"], "no tuning run has the id or name 'nothing-here'"),
    ],
)
def test_bad_input_is_one_line_and_non_zero(
    capsys: pytest.CaptureFixture[str], spec_file: Path, args: list[str], message: str
) -> None:
    code, _, err = run_cli(capsys, *[str(spec_file) if a == "SPEC" else a for a in args])
    assert code in (2, 3) and message in err and err.count("\n") == 1, err
