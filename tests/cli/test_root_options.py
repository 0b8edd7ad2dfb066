"""The root command as people type it: --version, --debug anywhere, shell completion."""

from __future__ import annotations

import os

import shipyard
from tests.conftest import console


def test_version() -> None:
    done = console("--version")
    assert done.returncode == 0 and done.stdout == f"shipyard {shipyard.__version__}\n"


def test_debug_after_the_subcommand_shows_the_traceback() -> None:
    plain = console("models", "show", "nope")
    assert plain.returncode == 3 and plain.stderr.count("\n") == 1
    for args in (("--debug", "models", "show", "nope"), ("models", "show", "nope", "--debug")):
        done = console(*args)
        assert done.returncode == 3, done.stderr
        assert "Traceback" in done.stderr and "NotFound: no registered model named 'nope'" in done.stderr


def test_shell_completion_script() -> None:
    # Typer detects the user's shell from the parent processes, which a test runner started in the background
    # does not have; this typer switch makes the shell an explicit value instead.
    env = {**os.environ, "_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION": "1"}
    done = console("--show-completion", "bash", env=env)
    assert done.returncode == 0 and "_shipyard_completion" in done.stdout
