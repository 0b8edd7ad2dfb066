"""``shipyard experiments``: list, create, delete and restore experiments."""

from __future__ import annotations

import typer

from shipyard.cli.output import console, fmt_time, print_json, print_table
from shipyard.tracking import get_client

app = typer.Typer(help="Manage experiments.", no_args_is_help=True)


@app.command("list")
def list_(
    include_deleted: bool = typer.Option(False, "--all", help="Include deleted experiments."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """List experiments.

    Examples:

        shipyard experiments list

        shipyard experiments list --all --json
    """
    found = get_client().list_experiments(include_deleted=include_deleted)
    if as_json:
        print_json(found)
        return
    rows = [
        (e.name, e.experiment_id, e.lifecycle_stage.value, fmt_time(e.created_at), e.artifact_location)
        for e in found
    ]
    print_table("Experiments", ["name", "id", "stage", "created (UTC)", "artifacts"], rows)


@app.command("create")
def create(
    name: str,
    description: str = typer.Option(None, "--description", "-d"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Create an experiment.

    Examples:

        shipyard experiments create churn -d "customer churn models"
    """
    experiment = get_client().create_experiment(name, description=description)
    if as_json:
        print_json(experiment)
    else:
        console.print(f"created experiment [bold]{experiment.name}[/] ({experiment.experiment_id})")


@app.command("delete")
def delete(
    name_or_id: str,
    force: bool = typer.Option(
        False, "--force", help="Delete it even if its runs back registered model versions."
    ),
) -> None:
    """Soft-delete an experiment and its runs (`shipyard gc` purges them); refused while its runs back
    registered model versions, unless --force.

    Examples:

        shipyard experiments delete churn

        shipyard experiments delete churn --force
    """
    from shipyard.tracking.backing import describe_all

    client = get_client()
    backed = client.versions_backed_by_experiment(name_or_id) if force else []
    experiment = client.delete_experiment(name_or_id, force=force)
    if backed:
        console.print(
            f"warning: its runs back {describe_all(backed)}: they keep their packages, but lose their runs",
            markup=False,
        )
    console.print(
        f"deleted experiment {experiment.name} ({experiment.experiment_id}); `shipyard gc` purges it"
    )


@app.command("restore")
def restore(name_or_id: str) -> None:
    """Undo a delete that has not been garbage-collected.

    Examples:

        shipyard experiments restore churn
    """
    experiment = get_client().restore_experiment(name_or_id)
    console.print(f"restored experiment {experiment.name}")


@app.command("rename")
def rename(name_or_id: str, new_name: str) -> None:
    """Rename an experiment; its id, runs and grants stay with it.

    Examples:

        shipyard experiments rename churn churn-2026
    """
    experiment = get_client().rename_experiment(name_or_id, new_name)
    console.print(f"renamed experiment {experiment.experiment_id} to {experiment.name}")
