"""A version number past what the registry stores is a one-line InvalidInput (exit 2), never a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import shipyard
from tests.cli.test_cli import run_cli

BIG = "9" * 30  # past int64, and past the registry's 32-bit version column


@pytest.fixture
def iris() -> None:
    from sklearn.datasets import load_iris
    from sklearn.tree import DecisionTreeClassifier

    X, y = load_iris(return_X_y=True)
    with shipyard.start_run("cli-versions"):
        info = shipyard.models.log(DecisionTreeClassifier(max_depth=2).fit(X, y), input_example=X[:2])
    shipyard.models.register(info.uri, "iris")


@pytest.mark.parametrize(
    "args",
    [
        ["models", "show", f"iris/{BIG}"],
        ["models", "show", f"models:/iris/{BIG}"],
        ["models", "stage", "iris", BIG, "Production"],
        ["models", "alias", "iris", "champion", BIG],
        ["models", "delete", f"iris/{BIG}"],
        ["models", "diff", "iris", "1", BIG],
        ["models", "export", f"iris/{BIG}", "-o", "out.tar.gz"],
        ["models", "register", f"models:/iris/{BIG}", "copy"],
        ["models", "show", "iris/" + "9" * 5000],
        ["models", "stage", "iris", "2147483648", "Staging"],
    ],
    ids=[
        "show",
        "show-uri",
        "stage",
        "alias",
        "delete",
        "diff",
        "export",
        "register",
        "show-5000",
        "stage-2^31",
    ],
)
def test_a_version_out_of_range_is_one_line_exit_2(
    capsys: pytest.CaptureFixture[str], iris: None, args: list[str]
) -> None:
    code, _, err = run_cli(capsys, *args)
    assert code == 2, err
    assert "out of range: versions are 1 to 2147483647" in err
    assert err.count("\n") == 1 and "Traceback" not in err and len(err) < 300
    assert shipyard.models.get("models:/iris/1").stage.value == "None"  # nothing changed


def test_console_script_maps_a_huge_version_to_exit_2(iris: None, tmp_path: Path) -> None:
    exe = Path(sys.executable).parent / "shipyard"
    command = [str(exe)] if exe.exists() else [sys.executable, "-m", "shipyard.cli"]
    done = subprocess.run(
        [*command, "models", "show", f"models:/iris/{BIG}"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("error: ") and done.stderr.count("\n") == 1, done.stderr
