"""``shipyard pipeline compile|run`` end to end: real specs, real worker processes, exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli.test_cli import run_cli
from tests.conftest import console


def test_compile_then_run_a_spec_with_parameters(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    spec = tmp_path / "p.yaml"
    code, out, _ = run_cli(
        capsys, "pipeline", "compile", "tests.pipelines.executor_components:realistic", "-o", str(spec)
    )
    assert (
        code == 0 and "3 steps" in out and spec.read_text().startswith("spec_version: shipyard.pipeline/v1")
    )
    code, out, _ = run_cli(capsys, "pipeline", "run", str(spec), "-p", "n=12", "--json")
    result = json.loads(out)
    assert code == 0 and result["status"] == "succeeded"
    assert result["steps"]["publish"]["outputs"]["output"] == "mean=5.5"


def test_a_spec_runs_on_ray_with_the_same_results(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, ray_cluster: object
) -> None:
    spec = tmp_path / "p.yaml"
    run_cli(capsys, "pipeline", "compile", "tests.pipelines.executor_components:realistic", "-o", str(spec))
    code, out, _ = run_cli(capsys, "pipeline", "run", str(spec), "-p", "n=12", "--executor", "ray", "--json")
    result = json.loads(out)
    assert code == 0 and result["status"] == "succeeded"
    assert result["steps"]["publish"]["outputs"]["output"] == "mean=5.5"


def test_failed_step_prints_its_traceback_and_exits_non_zero(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, "pipeline", "run", "tests.pipelines.executor_components:failing")
    assert code == 1
    assert "Traceback" in err and "ValueError: boom 1" in err
    assert err.strip().splitlines()[-1].startswith("error: pipeline run") and "boom" in err.splitlines()[-1]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["pipeline", "run", "tests.pipelines.executor_components:realistic", "-p", "nope=1"],
            "no parameter 'nope'",
        ),
        (["pipeline", "run", "tests.pipelines.executor_components:realistic", "-p", "n=ten"], "'n'"),
        (["pipeline", "run", "missing_module_xyz:pipe"], "cannot import module 'missing_module_xyz'"),
        (["pipeline", "run", "tests.pipelines.executor_components:boom"], "is not a @pipeline"),
        (["pipeline", "run", "nothing.yaml"], "does not exist"),
        (
            ["pipeline", "run", "tests.pipelines.executor_components:realistic", "--executor", "k8s"],
            "unknown executor 'k8s'; use one of: local, ray",
        ),
    ],
)
def test_bad_input_is_one_line(capsys: pytest.CaptureFixture[str], args: list[str], message: str) -> None:
    code, _, err = run_cli(capsys, *args)
    assert code == 2 and message in err and err.count("\n") == 1


def test_hand_edited_spec_with_a_bad_reference_names_the_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    spec = tmp_path / "p.yaml"
    run_cli(capsys, "pipeline", "compile", "tests.pipelines.executor_components:realistic", "-o", str(spec))
    spec.write_text(spec.read_text().replace("step: make-data", "step: make-dta", 1))
    code, _, err = run_cli(capsys, "pipeline", "run", str(spec))
    assert code == 2 and "make-dta" in err and "line" in err  # an invalid spec is bad input


def test_second_run_is_cached_and_no_cache_forces_execution(capsys: pytest.CaptureFixture[str]) -> None:
    target = "tests.pipelines.executor_components:realistic"
    assert run_cli(capsys, "pipeline", "run", target, "--json")[0] == 0
    code, out, _ = run_cli(capsys, "pipeline", "run", target, "--json")
    assert code == 0 and {s["status"] for s in json.loads(out)["steps"].values()} == {"cached"}
    code, out, _ = run_cli(capsys, "pipeline", "run", target, "--no-cache", "--json")
    assert code == 0 and {s["status"] for s in json.loads(out)["steps"].values()} == {"succeeded"}


def test_resume_of_a_successful_run_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(
        capsys, "pipeline", "run", "tests.pipelines.executor_components:realistic", "--json"
    )
    run_id = json.loads(out)["run_id"]
    code, _, err = run_cli(capsys, "pipeline", "resume", run_id)
    assert code == 2 and "nothing to resume" in err
    code, _, err = run_cli(capsys, "pipeline", "resume", "f" * 32)
    assert code == 3


MISMATCHED = """
from shipyard.pipelines import component, pipeline


@component
def count() -> int:
    return 3


@component
def shout(text: str) -> str:
    return text.upper()


@pipeline(name="mismatch")
def mismatch() -> None:
    shout(text=count().output)
"""


def test_a_type_mismatch_at_compile_is_bad_input_exit_2(tmp_path: Path) -> None:
    """The README's exit codes: 2 is invalid input, and a pipeline that does not type-check is that."""
    (tmp_path / "mismatched.py").write_text(MISMATCHED)
    done = console("pipeline", "compile", "mismatched:mismatch", "-o", "p.yaml", cwd=tmp_path)
    assert done.returncode == 2, done.stdout + done.stderr
    line = done.stderr.strip()
    assert "\n" not in line and "shout" in line and "text" in line and "int" in line and "str" in line, line
    assert not (tmp_path / "p.yaml").exists()
    # The same pipeline run directly is refused the same way, before any step starts.
    done = console("pipeline", "run", "mismatched:mismatch", cwd=tmp_path)
    assert done.returncode == 2 and "shout" in done.stderr, done.stdout + done.stderr
