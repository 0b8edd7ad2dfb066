"""``shipyard lineage URI``: the chain from an artifact or model back to its source datasets."""

from __future__ import annotations

import typer

from shipyard import models
from shipyard.cli.output import console, print_json
from shipyard.lineage import LineageClient, render
from shipyard.registry.uri import RegistryUri, parse_model_uri
from shipyard.tracking import get_client


def lineage(
    uri: str = typer.Argument(
        ..., help="An artifact or model URI: models:/name/3, runs:/<run_id>/model, a file."
    ),
    as_json: bool = typer.Option(False, "--json", help="The graph as JSON (artifacts, executions, edges)."),
) -> None:
    """Print what URI was derived from, back to the datasets it started from.

    Examples:

        shipyard lineage models:/churn/3

        shipyard lineage models:/breast-cancer/1 --json
    """
    if uri.startswith("models:/"):
        parsed = parse_model_uri(uri)
        if isinstance(parsed, RegistryUri):
            # A version that does not exist is "no such version", not "no lineage recorded".
            models.registry_client().resolve(parsed)
    graph = LineageClient(get_client()).upstream(uri)
    if as_json:
        print_json(
            {
                "root": graph.root,
                "artifacts": list(graph.artifacts.values()),
                "executions": list(graph.executions.values()),
                "edges": list(graph.edges),
                "sources": graph.sources(),
            }
        )
    else:
        console.print(render(graph), markup=False, highlight=False)
