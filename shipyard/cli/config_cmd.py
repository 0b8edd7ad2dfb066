"""``shipyard config``: the effective settings and where each came from."""

from __future__ import annotations

import typer

from shipyard.cli.output import print_json, print_table
from shipyard.config import get_settings

app = typer.Typer(help="Show configuration.", no_args_is_help=True)


@app.command("show")
def show(as_json: bool = typer.Option(False, "--json", help="Machine-readable output.")) -> None:
    """Print every setting, its value and its source (default, env variable or shipyard.toml).

    Examples:

        shipyard config show

        shipyard config show --json
    """
    rows = get_settings().describe()
    if as_json:
        print_json({name: {"value": value, "source": source} for name, value, source in rows})
    else:
        print_table("Shipyard settings", ["setting", "value", "source"], rows)
