"""Every command's --help ends with examples a user can type, and each example parses.

An example with an option that does not exist, or the wrong number of arguments, fails here naming the
example: the help never shows a command line that click would refuse.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterator
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from shipyard.cli.app import app


def _leaves(command: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[str, Any]]:
    """(full command path, click command) for every command that is not a group."""
    subcommands = getattr(command, "commands", None)
    if subcommands is None:
        yield " ".join(path), command
        return
    for name, sub in sorted(subcommands.items()):
        yield from _leaves(sub, (*path, name))


_ROOT = typer.main.get_command(app)
_COMMANDS = dict(_leaves(_ROOT))


def _examples(help_text: str) -> list[str]:
    """The non-blank lines after the help's "Examples:" line, stripped."""
    lines = help_text.partition("\f")[0].splitlines()
    starts = [i for i, line in enumerate(lines) if line.strip() == "Examples:"]
    if not starts:
        return []
    return [line.strip() for line in lines[starts[-1] + 1 :] if line.strip()]


def test_the_tree_is_walked() -> None:
    assert {"models list", "data drift", "serve", "scheduler", "tune run"} <= set(_COMMANDS)


@pytest.mark.parametrize("path", sorted(_COMMANDS))
def test_help_ends_with_examples_that_parse(path: str) -> None:
    command = _COMMANDS[path]
    examples = _examples(command.help or "")
    prefix = f"shipyard {path}"
    assert examples, f"`shipyard {path} --help` has no Examples section"
    assert all(e == prefix or e.startswith(prefix + " ") for e in examples), (
        f"`shipyard {path} --help`: every line of its Examples section should start with {prefix!r}: "
        f"{examples}"
    )
    for example in examples:
        words = shlex.split(example)
        args = words[len(prefix.split()) :]
        try:
            with command.make_context(path.split()[-1], args, resilient_parsing=False):
                pass
        except Exception as exc:  # click's UsageError, BadParameter, …: the example would not run
            pytest.fail(f"the example {example!r} in `shipyard {path} --help` does not parse: {exc}")


def test_root_help() -> None:
    result = CliRunner().invoke(app, ["--help"], prog_name="shipyard")
    assert result.exit_code == 0, result.output
    assert "models" in result.output and "Usage" in result.output
