"""A script that starts a parallel search must guard it: its workers import the script, and would search."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import shipyard
from shipyard.tuning.main_guard import _guarded
from tests.cli.test_cli import run_cli

SCRIPT = """
import shipyard


def objective(trial):
    return -(trial.params["x"] - 2.0) ** 2


SPEC = {{
    "name": "guarded",
    "objective": {{"metric": "score", "direction": "maximize"}},
    "parameters": [{{"name": "x", "type": "float", "low": 0, "high": 4}}],
    "algorithm": {{"name": "random", "seed": 0}},
    "max_trials": 4,
    "parallel_trials": 2,
}}
{call}
"""
UNGUARDED = "shipyard.tune(SPEC, objective, report=False)\n"
GUARDED = 'if __name__ == "__main__":\n    print(shipyard.tune(SPEC, objective, report=False).state)\n'


def _python(script: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run(
        [sys.executable, str(script)], cwd=script.parent, env=env, capture_output=True, text=True, timeout=240
    )


def test_an_unguarded_parallel_search_is_refused_before_any_run(tmp_path: Path) -> None:
    script = tmp_path / "search.py"
    script.write_text(SCRIPT.format(call=UNGUARDED))
    done = _python(script)
    assert done.returncode == 1
    line = script.read_text().splitlines().index(UNGUARDED.strip()) + 1
    assert f"{script}:{line} starts a parallel search from the script's top level" in done.stderr
    assert 'if __name__ == "__main__":' in done.stderr
    assert shipyard.search_runs() == []  # not one parent run, failed or otherwise


def test_a_guarded_one_runs_its_trials_in_workers(tmp_path: Path) -> None:
    script = tmp_path / "search.py"
    script.write_text(SCRIPT.format(call=GUARDED))
    done = _python(script)
    assert done.returncode == 0 and done.stdout.strip() == "completed", done.stderr
    parents = shipyard.search_runs(filter="tags.`shipyard.tuning.name` = 'guarded'")
    assert len(parents) == 1 and parents[0].status.value == "FINISHED"


@pytest.mark.parametrize(
    ("source", "line", "guarded"),
    [
        ('if __name__ == "__main__":\n    go()\n', 2, True),
        ("if '__main__' == __name__:\n    go()\n", 2, True),
        ('go()\nif __name__ == "__main__":\n    pass\n', 1, False),
        ('if __name__ != "__main__":\n    go()\n', 2, False),
    ],
)
def test_the_guard_is_read_from_the_script(tmp_path: Path, source: str, line: int, guarded: bool) -> None:
    path = tmp_path / "s.py"
    path.write_text(source)
    assert _guarded(str(path), line) is guarded


def test_show_by_name_picks_the_latest_finished_search(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        "name: picky\ntrial: tests.tuning.objectives:quadratic\n"
        "objective: {metric: score, direction: maximize}\n"
        "parameters:\n  - {name: x, type: float, low: 0, high: 4}\nalgorithm: {name: random, seed: 0}\n"
        "max_trials: 2\n"
    )
    assert run_cli(capsys, "tune", "run", str(spec), "--json")[0] == 0
    finished = shipyard.search_runs(filter="tags.`shipyard.tuning.name` = 'picky'")[0]
    # A later search by that name that did not finish (e.g. failed) is not the one shown.
    with shipyard.start_run(finished.experiment_id, tags={**finished.tags}) as failing:
        failing.set_tag("shipyard.tuning.state", "failed")
        failing.end("FAILED")
    code, out, err = run_cli(capsys, "tune", "show", "picky", "--json")
    assert code == 0, err
    assert json.loads(out)["run_id"] == finished.run_id
    others = f"others: {failing.name} (FAILED)"
    assert f"showing {finished.name}, the latest finished search of 'picky'; {others}" in err
