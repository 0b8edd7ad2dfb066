"""The root command as people type it: --version, --debug anywhere, shell completion."""

from __future__ import annotations

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
    done = console("--show-completion", "bash")
    assert done.returncode == 0 and "_shipyard_completion" in done.stdout
