"""The root command as people type it: --version, --debug anywhere, shell completion."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import shipyard


def _shipyard(*args: str) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).parent / "shipyard"
    command = [str(exe)] if exe.exists() else [sys.executable, "-m", "shipyard.cli"]
    return subprocess.run([*command, *args], capture_output=True, text=True, timeout=60)


def test_version() -> None:
    done = _shipyard("--version")
    assert done.returncode == 0 and done.stdout == f"shipyard {shipyard.__version__}\n"


def test_debug_after_the_subcommand_shows_the_traceback() -> None:
    plain = _shipyard("models", "show", "nope")
    assert plain.returncode == 3 and plain.stderr.count("\n") == 1
    for args in (("--debug", "models", "show", "nope"), ("models", "show", "nope", "--debug")):
        done = _shipyard(*args)
        assert done.returncode == 3, done.stderr
        assert "Traceback" in done.stderr and "NotFound: no registered model named 'nope'" in done.stderr


def test_shell_completion_script() -> None:
    done = _shipyard("--show-completion", "bash")
    assert done.returncode == 0 and "_shipyard_completion" in done.stdout
