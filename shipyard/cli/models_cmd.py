"""``shipyard models``: register, list, show, versions, alias, stage, diff, export, import, rename, delete."""

from __future__ import annotations

from pathlib import Path

import typer

from shipyard import models
from shipyard.cli.output import console, fmt_time, print_json, print_table, say_store
from shipyard.errors import InvalidInput
from shipyard.registry.loading import locate_package, read_verified_manifest
from shipyard.registry.records import ModelVersion
from shipyard.registry.uri import RegistryUri, parse_model_uri

app = typer.Typer(help="The model registry.", no_args_is_help=True)
_JSON = typer.Option(False, "--json", help="Machine-readable output.")


def _version_ref(ref: str) -> tuple[str, int]:
    """``churn/3`` or ``models:/churn/3`` → ("churn", 3); aliases resolve too (``churn@champion``)."""
    uri = ref if ref.startswith("models:/") else f"models:/{ref}"
    parsed = parse_model_uri(uri)
    if not isinstance(parsed, RegistryUri) or (
        parsed.version is None and parsed.alias is None and not parsed.latest
    ):
        raise InvalidInput(f"{ref!r} must name a version: NAME/VERSION, NAME@ALIAS or NAME/latest")
    if parsed.version is not None:
        return parsed.name, parsed.version
    return parsed.name, models.get(uri).version


def parse_tags(tags: list[str] | None) -> dict[str, str]:
    """``--tag key=value`` options as a dict (`InvalidInput` naming a malformed one)."""
    out = {}
    for item in tags or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InvalidInput(f"--tag {item!r} must look like key=value")
        out[key] = value
    return out


def _versions_table(title: str, versions: list[ModelVersion]) -> None:
    rows = [
        (
            v.version,
            v.flavor,
            v.stage.value,
            ", ".join(v.aliases),
            v.run_id or "",
            fmt_time(v.created_at),
            v.source_uri,
        )
        for v in versions
    ]
    print_table(title, ["version", "flavor", "stage", "aliases", "run", "created (UTC)", "source"], rows)


@app.command("register")
def register(
    uri: str = typer.Argument(
        ..., help="runs:/<run_id>/<path>, models:/<name>/<version> or a package folder."
    ),
    name: str = typer.Argument(..., help="Registered model name (created on first use)."),
    description: str = typer.Option(None, "--description", "-d"),
    tag: list[str] = typer.Option(None, "--tag", help="key=value (repeatable)."),
    as_json: bool = _JSON,
) -> None:
    """Register a logged model as the next version of NAME.

    Examples:

        shipyard models register runs:/3f2c9a0e5b7d4c1e9f8a6b5c4d3e2f1a/model churn

        shipyard models register models:/churn/2 churn-eu -d "churn, for the EU" --tag region=eu
    """
    version = models.register(uri, name, description=description, tags=parse_tags(tag))
    if as_json:
        print_json(version)
    else:
        console.print(f"registered [bold]{version.name}[/] version {version.version} ({version.uri})")


@app.command("list")
def list_(as_json: bool = _JSON) -> None:
    """Registered models with their latest version and aliases.

    Examples:

        shipyard models list

        shipyard models list --json
    """
    found = models.list_models()
    if as_json:
        print_json(found)
        return
    rows = [
        (
            m.name,
            m.latest_version,
            ", ".join(f"{a}->{v}" for a, v in sorted(m.aliases.items())),
            fmt_time(m.updated_at),
        )
        for m in found
    ]
    print_table("Registered models", ["name", "latest", "aliases", "updated (UTC)"], rows)
    if not found:
        say_store("no registered models")


@app.command("versions")
def versions(name: str, as_json: bool = _JSON) -> None:
    """Every version of a model.

    Examples:

        shipyard models versions churn

        shipyard models versions churn --json
    """
    found = models.list_versions(name)
    if as_json:
        print_json(found)
    else:
        _versions_table(f"Versions of {name}", found)


@app.command("show")
def show(
    ref: str = typer.Argument(..., help="NAME, NAME/VERSION or NAME@ALIAS."),
    history: bool = typer.Option(False, "--history", help="Also print the audit log."),
    as_json: bool = _JSON,
) -> None:
    """A model (its versions) or one version (lineage, tags, aliases).

    Examples:

        shipyard models show churn

        shipyard models show churn@champion --history
    """
    if "/" not in ref and "@" not in ref:
        model = models.registry_client().get_model(ref)
        found = models.list_versions(ref)
        events = models.events(ref) if history else []
        if as_json:
            print_json({"model": model, "versions": found, "events": events})
            return
        console.print(f"[bold]{model.name}[/] {model.description or ''}")
        _versions_table(f"Versions of {model.name}", found)
    else:
        name, number = _version_ref(ref)
        registry = models.registry_client()
        version = registry.get_version(name, number)
        events = [e for e in models.events(name) if e.version == number] if history else []
        # The metrics packaged with the version (its run's, at logging time): they outlive the run.
        metrics = read_verified_manifest(locate_package(version.uri, registry))[1].metrics
        if as_json:
            print_json({"version": version, "metrics": metrics, "events": events})
            return
        rows = [
            ("uri", version.uri),
            ("flavor", version.flavor),
            ("stage", version.stage.value),
            ("aliases", ", ".join(version.aliases)),
            ("run", version.run_id),
            ("pipeline run", version.pipeline_run_id),
            ("source", version.source_uri),
            ("package", version.package_uri),
            ("manifest sha256", version.manifest_sha256),
            ("created", f"{fmt_time(version.created_at)} by {version.created_by or '?'}"),
        ]
        rows += [(f"dataset {d.get('name')}", d.get("digest")) for d in version.lineage.get("datasets", [])]
        rows += [(f"metric {k}", f"{v:.6g}") for k, v in sorted(metrics.items())]
        rows += [(f"tag {k}", v) for k, v in sorted(version.tags.items())]
        print_table(f"{version.name} version {version.version}", ["field", "value"], rows)
    if events:
        print_table(
            "Audit log",
            ["when (UTC)", "who", "version", "action", "from", "to", "why"],
            [
                (fmt_time(e.created_at), e.user, e.version, e.action, e.from_value, e.to_value, e.reason)
                for e in events
            ],
        )


@app.command("alias")
def alias(
    name: str,
    alias_name: str = typer.Argument(..., metavar="ALIAS"),
    version: int = typer.Argument(None, help="Version to point at (omit with --delete)."),
    delete: bool = typer.Option(False, "--delete", help="Remove the alias."),
    reason: str = typer.Option(None, "--reason"),
) -> None:
    """Point ALIAS (champion, challenger, …) at a version — or remove it with --delete.

    Examples:

        shipyard models alias churn challenger 2

        shipyard models alias churn challenger --delete
    """
    if delete:
        models.delete_alias(name, alias_name)
        console.print(f"removed alias {alias_name} of {name}")
        return
    if version is None:
        raise InvalidInput("give the VERSION the alias should point at, or --delete")
    models.set_alias(name, alias_name, version, reason=reason)
    console.print(f"{name}@{alias_name} -> version {version}")


@app.command("stage")
def stage(
    name: str,
    version: int,
    stage_name: str = typer.Argument(..., metavar="STAGE", help="None, Staging, Production or Archived."),
    reason: str = typer.Option(None, "--reason", help="Why (kept in the audit log)."),
    archive_others: bool = typer.Option(
        False, "--archive-others", help="Archive the stage's other versions."
    ),
) -> None:
    """Move a version to a stage (audited: who, when, why).

    Examples:

        shipyard models stage churn 2 Staging --reason "shadow it first"

        shipyard models stage churn 3 Production --archive-others
    """
    moved = models.transition(name, version, stage_name, reason=reason, archive_others=archive_others)
    console.print(f"{name} version {version} is now {moved.stage.value}")


@app.command("diff")
def diff(name: str, left: int, right: int, as_json: bool = _JSON) -> None:
    """Metrics, params and signature of two versions side by side.

    Examples:

        shipyard models diff churn 1 2

        shipyard models diff churn 1 2 --json
    """
    result = models.diff(name, left, right)
    if as_json:
        print_json(result)
        return
    rows = []
    for section, items in (
        ("metrics", result.metrics),
        ("params", result.params),
        ("signature", result.signature),
    ):
        for key, a, b in items:
            mark = "[yellow]" if a != b else ""
            rows.append((f"{mark}{section}.{key}", a, b))
    print_table(f"{name}: version {left} vs {right}", ["key", f"v{left}", f"v{right}"], rows)


@app.command("export")
def export(
    ref: str = typer.Argument(..., help="NAME/VERSION or NAME@ALIAS."),
    output: Path = typer.Option(..., "--output", "-o", help="Archive to write (.tar.gz)."),
) -> None:
    """Write a version's package (with its registry facts) to a .tar.gz.

    Examples:

        shipyard models export churn/2 -o m.tar.gz

        shipyard models export churn@champion -o churn-champion.tar.gz
    """
    name, version = _version_ref(ref)
    path = models.export(name, version, output)
    console.print(f"exported {name} version {version} to {path}")


@app.command("import")
def import_(
    archive: Path = typer.Argument(..., help="A .tar.gz written by `shipyard models export`."),
    name: str = typer.Option(None, "--name", help="Register under this name (default: the exported one)."),
) -> None:
    """Register an exported archive as a new version (every file's hash is checked).

    Examples:

        shipyard models import m.tar.gz

        shipyard models import m.tar.gz --name churn-copy
    """
    version = models.import_archive(archive, name=name)
    console.print(f"imported as {version.name} version {version.version}")


@app.command("rename")
def rename(name: str, new_name: str) -> None:
    """Rename a model: versions, aliases, tags, audit log, lineage and grants follow it. References to
    ``models:/OLD…`` (deployments, code) keep the old name and must be changed.

    Examples:

        shipyard models rename churn churn-classifier
    """
    model = models.registry_client().rename_model(name, new_name)
    console.print(f"renamed model {name} to {model.name}")


@app.command("delete")
def delete(
    ref: str = typer.Argument(..., help="NAME (every version) or NAME/VERSION."),
    force: bool = typer.Option(False, "--force", help="Also delete aliases that point at it."),
) -> None:
    """Delete a version, or a whole model; refused while an alias points at it unless --force.

    Examples:

        shipyard models delete churn-copy/1

        shipyard models delete churn-copy --force
    """
    client = models.registry_client()
    if "/" in ref or "@" in ref:
        name, version = _version_ref(ref)
        client.delete_version(name, version, force=force)
        console.print(f"deleted {name} version {version}")
    else:
        client.delete_model(ref, force=force)
        console.print(f"deleted model {ref}")


@app.command("gate")
def gate(
    ref: str = typer.Argument(..., help="The candidate: NAME/VERSION, NAME@ALIAS or models:/NAME/VERSION."),
    rules: Path = typer.Option(..., "--rules", help="The gate rules (YAML)."),
    against: str = typer.Option(
        None,
        "--against",
        help="The version to compare with: an alias (champion), a number or a URI.",
        show_default=False,
    ),
    record: bool = typer.Option(True, "--record/--no-record", help="Record the outcome on the version."),
    as_json: bool = _JSON,
) -> None:
    """Check a candidate version against gate rules (metrics and deltas vs --against on an evaluation
    dataset, signature, package size, p99 latency, drift, tags, model card); exit 1 when a rule fails.

    Examples:

        shipyard models gate churn/7 --against champion --rules gates.yaml

        shipyard models gate models:/churn/7 --rules gates.yaml --json --no-record
    """
    from shipyard.registry.gates import evaluate_gate, record_gate

    name, version = _version_ref(ref)
    registry = models.registry_client()
    report = evaluate_gate(f"models:/{name}/{version}", rules, registry, against=against)
    if record:
        record_gate(registry, report)
    if as_json:
        print_json({"candidate": report.candidate, "champion": report.champion, "passed": report.passed,
                    "summary": report.summary, "results": report.results})  # fmt: skip
    else:
        rows = [
            (
                r.rule,
                "SKIP" if r.skipped else "PASS" if r.passed else "FAIL",
                r.candidate,
                r.champion,
                r.threshold,
                r.detail,
            )
            for r in report.results
        ]
        title = f"Gate: {report.candidate}" + (f" vs {report.champion}" if report.champion else "")
        print_table(title, ["rule", "result", "candidate", "champion", "threshold", "detail"], rows)
    if not report.passed:
        typer.echo(f"error: {report.summary}", err=True)
        raise typer.Exit(1)
    if not as_json:
        console.print(report.summary, markup=False)


@app.command("require-gate")
def require_gate(
    name: str = typer.Argument(..., help="The registered model."),
    targets: list[str] = typer.Option(
        [], "--for", help="A stage (Production) or an alias (@champion) that needs a passed gate; repeat."
    ),
) -> None:
    """Require a passed `shipyard models gate` before a version enters these stages or aliases (no --for:
    none needed any more).

    Examples:

        shipyard models require-gate churn --for Production --for @champion

        shipyard models require-gate churn
    """
    from shipyard.registry.gates import set_gate_requirement

    set_gate_requirement(models.registry_client(), name, targets)
    what = ", ".join(targets) if targets else "nothing"
    console.print(f"model {name}: a passed gate is required for {what}", markup=False)
