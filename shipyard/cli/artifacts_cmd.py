"""``shipyard artifacts``: list and download a run's files (each download checked against its sha256)."""

from __future__ import annotations

from pathlib import Path

import typer

from shipyard.cli.output import console, print_json, print_table
from shipyard.errors import InvalidInput, NotFound
from shipyard.store.artifacts import safe_relpath
from shipyard.tracking import Run, get_client

app = typer.Typer(help="List and download the files logged to runs.", no_args_is_help=True)

_RUN = typer.Argument(..., help="Run id or name, or a runs:/RUN_ID/PATH URI.")
_PATH = typer.Argument(None, help="A file or folder inside the run's artifacts (default: all of them).")
_EXPERIMENT = typer.Option(None, "--experiment", "-e", help="Experiment name or id (to find a run by name).")


def _target(run: str, path: str | None, experiment: str | None) -> tuple[Run, str]:
    """The run and the clean artifact path that ``RUN [PATH]`` (or ``runs:/RUN_ID/PATH``) names."""
    if run.startswith("runs:/"):
        run_id, _, inside = run.removeprefix("runs:/").partition("/")
        if not run_id:
            raise InvalidInput(f"URI {run!r} names no run: use runs:/RUN_ID/PATH")
        if path is not None and inside:
            raise InvalidInput(f"give the path once: in the URI {run!r} or as PATH {path!r}, not both")
        run, path = run_id, inside or path
    clean = safe_relpath(path or "", allow_root=True)
    return get_client().find_run(run, experiment), clean


@app.command("list")
def list_(
    run: str = _RUN,
    path: str = _PATH,
    experiment: str = _EXPERIMENT,
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """List a run's artifact files with their sizes and sha256.

    Examples:

        shipyard artifacts list 3f2c9a0e5b7d4c1e9f8a6b5c4d3e2f1a

        shipyard artifacts list runs:/3f2c9a0e5b7d4c1e9f8a6b5c4d3e2f1a/model
    """
    record, prefix = _target(run, path, experiment)
    files = get_client().list_artifacts(record.run_id, prefix)
    if as_json:
        print_json(files)
        return
    if not files:
        raise NotFound(_nothing(record, prefix))
    print_table(
        f"Artifacts of {record.name} ({record.run_id})",
        ["path", "size", "sha256"],
        [(f.path, _size(f.size), f.sha256) for f in files],
    )
    console.print(f"{len(files)} file(s), {_size(sum(f.size for f in files))}", markup=False)


@app.command("download")
def download(
    run: str = _RUN,
    path: str = _PATH,
    experiment: str = _EXPERIMENT,
    output: Path = typer.Option(
        Path("."), "--output", "-o", help="Folder to download into; the artifact paths are kept below it."
    ),
    force: bool = typer.Option(False, "--force", help="Overwrite files that already exist there."),
) -> None:
    """Download a run's artifact file, or every file under a folder, verifying each sha256.

    Examples:

        shipyard artifacts download 3f2c9a0e5b7d4c1e9f8a6b5c4d3e2f1a model -o ./downloaded

        shipyard artifacts download runs:/3f2c9a0e5b7d4c1e9f8a6b5c4d3e2f1a/stdout.txt
    """
    client = get_client()
    record, prefix = _target(run, path, experiment)
    files = client.list_artifacts(record.run_id, prefix)
    if not files:
        raise NotFound(_nothing(record, prefix))
    if output.exists() and not output.is_dir():
        raise InvalidInput(f"--output {str(output)!r} is a file, not a folder")
    existing = [output / f.path for f in files if (output / f.path).exists()]
    if existing and not force:
        more = f" (and {len(existing) - 1} more)" if len(existing) > 1 else ""
        raise InvalidInput(
            f"{existing[0]} already exists{more}; pass --force to overwrite, or another --output"
        )
    target = client.download_artifacts(record.run_id, prefix, output)
    total = sum(f.size for f in files)
    console.print(f"downloaded {len(files)} file(s), {_size(total)}, to {target}", markup=False)


def _nothing(record: Run, prefix: str) -> str:
    return (
        f"run {record.name} ({record.run_id}) has {f'no artifact {prefix!r}' if prefix else 'no artifacts'}"
    )


def _size(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    value = float(n)
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        value /= 1024
        if value < 1024 or unit == "TiB":
            break
    return f"{value:.1f} {unit}"
