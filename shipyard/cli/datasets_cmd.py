"""``shipyard data add|get|diff|list|show|versions``: dataset versions, DVC's job.

NOTE: ``diff`` imports DuckDB only when a table changed; the others import no data library.
"""

from __future__ import annotations

from pathlib import Path

import typer

from shipyard.cli.models_cmd import parse_tags
from shipyard.cli.output import console, fmt_time, print_json, print_table, say_store, to_jsonable
from shipyard.datasets import DatasetClient, DatasetDiff, DatasetVersion

_JSON = typer.Option(False, "--json", help="Machine-readable output.")
_REF = typer.Argument(..., help="NAME@VERSION, NAME@latest or NAME (the newest version).")


def _say(text: str) -> None:
    console.print(text, markup=False, highlight=False)


def _files(n: int) -> str:
    return f"{n} file{'' if n == 1 else 's'}"


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return str(n)


def add(
    path: Path = typer.Argument(..., help="The file or folder to snapshot."),
    name: str = typer.Option(
        ..., "--name", "-n", help="The dataset's name (letters, digits, '.', '_', '-')."
    ),
    description: str = typer.Option(None, "--description", "-d", help="What this version is."),
    tag: list[str] = typer.Option(None, "--tag", help="key=value (repeatable)."),
    force: bool = typer.Option(
        False, "--force", help="Make a new version even if a version has this content."
    ),
    as_json: bool = _JSON,
) -> None:
    """Snapshot a file or folder as the next version of a dataset; unchanged files are stored once.

    Examples:

        shipyard data add data/customers --name customers

        shipyard data add train.parquet --name train --description "March export" --tag source=crm

        shipyard data add data/customers --name customers --force --json
    """
    version = DatasetClient().add(path, name, description=description, tags=parse_tags(tag), force=force)
    if as_json:
        print_json(version)
    elif version.created:
        what = f"{_files(version.num_files)}, {_size(version.size)}, sha256:{version.sha256[:12]}"
        _say(f"{version.ref}  ({what})")
    else:
        _say(
            f"{version.ref}  (unchanged: {version.ref} already has this content; --force makes a new version)"
        )


def get(
    ref: str = _REF,
    output: Path = typer.Option(..., "--output", "-o", help="The folder to restore the files into."),
    force: bool = typer.Option(False, "--force", help="Overwrite files there that differ."),
    as_json: bool = _JSON,
) -> None:
    """Restore a version's files, each checked against its sha256 as it is copied.

    Examples:

        shipyard data get customers@3 -o restored

        shipyard data get customers -o restored --force
    """
    done = DatasetClient().get(ref, output, force=force)
    if as_json:
        print_json(
            {"ref": done.version.ref, "path": done.path, "written": done.written, "unchanged": done.unchanged}
        )
        return
    kept = f", {len(done.unchanged)} already there" if done.unchanged else ""
    _say(f"restored {done.version.ref} to {done.path} ({_files(len(done.written))} written{kept})")


def diff(
    a: str = typer.Argument(..., help="The older version (NAME@VERSION)."),
    b: str = typer.Argument(..., help="The newer version (NAME@VERSION, or NAME: the newest)."),
    key: list[str] = typer.Option(None, "--key", "-k", help="A column identifying a row (repeatable)."),
    as_json: bool = _JSON,
) -> None:
    """Files added, removed and changed; for changed tables (Parquet, CSV), columns and rows.

    Without --key rows are compared whole (counts); with it, by key: added, removed and changed rows.

    Examples:

        shipyard data diff customers@2 customers@3

        shipyard data diff customers@2 customers@3 --key id

        shipyard data diff customers@1 customers --key id --json
    """
    result = DatasetClient().diff(a, b, key=key or None)
    if as_json:
        print_json(result)
        return
    _print_diff(result)


def _print_diff(result: DatasetDiff) -> None:
    if result.identical:
        _say(f"{result.a} and {result.b} hold the same files")
        return
    rows = [(p, "added") for p in result.added] + [(p, "removed") for p in result.removed]
    rows += [(p, "changed") for p in result.changed]
    print_table(
        f"{result.a} → {result.b} ({_files(result.unchanged)} unchanged)", ["file", "change"], sorted(rows)
    )
    for t in result.tables:
        for c in t.columns:
            _say(
                f"{t.path}: column {c.name!r} {c.change}"
                + (f" ({c.before} → {c.after})" if c.before and c.after else "")
            )
        how = f"by key ({', '.join(t.key)})" if t.key else "whole rows"
        changed = "" if t.changed is None else f", {t.changed} changed"
        counts = f"{t.added} added, {t.removed} removed{changed}"
        _say(f"{t.path}: {t.rows_before} → {t.rows_after} rows; {how}: {counts}")
        for kind, keys in (t.examples or {}).items():
            _say(f"  {kind}: {', '.join(map(str, keys))}{' …' if len(keys) == 5 else ''}")


def list_datasets(as_json: bool = _JSON) -> None:
    """Every dataset: its newest version, size and when it was added.

    Examples:

        shipyard data list

        shipyard data list --json
    """
    found = DatasetClient().list()
    if as_json:
        print_json(found)
        return
    if not found:
        say_store("no datasets")
        return
    rows = [(d.name, d.latest_version, d.versions, _size(d.size), fmt_time(d.updated_at)) for d in found]
    print_table(None, ["name", "latest", "versions", "size", "added (UTC)"], rows)


def versions(name: str = typer.Argument(..., help="The dataset's name."), as_json: bool = _JSON) -> None:
    """Every version of a dataset, oldest first.

    Examples:

        shipyard data versions customers

        shipyard data versions customers --json
    """
    found = DatasetClient().versions(name)
    if as_json:
        print_json(found)
        return
    rows = [
        (
            v.version,
            v.num_files,
            _size(v.size),
            v.sha256[:12],
            v.created_by,
            fmt_time(v.created_at),
            v.description,
        )
        for v in found
    ]
    print_table(name, ["version", "files", "size", "sha256", "by", "added (UTC)", "description"], rows)


def show(ref: str = _REF, as_json: bool = _JSON) -> None:
    """A version: its files and their hashes, who added it and when, and the runs that used it.

    Examples:

        shipyard data show customers@3

        shipyard data show customers --json
    """
    client = DatasetClient()
    version = client.version(ref)
    runs = client.runs_using(version)
    if as_json:
        print_json({**_version_json(version), "runs": [{"run_id": r.run_id, "name": r.name} for r in runs]})
        return
    _say(f"{version.uri}  sha256:{version.sha256}")
    _say(f"{version.kind.value}, {_files(version.num_files)}, {_size(version.size)}")
    _say(f"added {fmt_time(version.created_at)} UTC by {version.created_by or 'unknown'}")
    if version.description:
        _say(version.description)
    for key, value in sorted(version.tags.items()):
        _say(f"tag {key}={value}")
    print_table(None, ["file", "size", "sha256"], [(f.path, f.size, f.sha256) for f in version.files])
    if runs:
        print_table(
            "used by", ["run", "name", "experiment"], [(r.run_id, r.name, r.experiment_id) for r in runs]
        )
    else:
        _say("no run has logged it as an input yet")


def _version_json(version: DatasetVersion) -> dict[str, object]:
    data: dict[str, object] = to_jsonable(version)
    data.pop("created", None)
    return {**data, "uri": version.uri}
