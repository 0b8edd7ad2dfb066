"""``shipyard audit``: a model's performance per segment and fairness between groups, against rules."""

from __future__ import annotations

from pathlib import Path

import typer

from shipyard.cli import access_cmd
from shipyard.cli.output import print_json, print_table

app = typer.Typer(
    help="The server's audit log (shipyard audit [--since/--user/--limit/--json]); and model audits: "
    "per-segment performance and fairness (shipyard audit model|schedule).",
    invoke_without_command=True,
)


@app.callback()
def log(
    ctx: typer.Context,
    since: str = typer.Option(None, "--since", help="30m, 12h, 7d or an ISO date (UTC)."),
    user: str = typer.Option(None, "--user", help="One user's writes."),
    limit: int = typer.Option(100, "--limit", min=1, max=10_000),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Without a command: the server's audit log, every write, who made it, when and from where (newest
    first). `shipyard audit model` audits a model instead."""
    if ctx.invoked_subcommand is None:
        access_cmd.audit(since=since, user=user, limit=limit, as_json=as_json)


_SEGMENTS = typer.Option(
    None, "--segments", help="Columns whose values are the groups, comma-separated (or segments: in --rules)."
)
_LABEL = typer.Option(None, "--label", help="The data's label column (or label: in --rules).")
_RULES = typer.Option(None, "--rules", help="Audit rules (YAML): thresholds per segment and on fairness.")
_POSITIVE = typer.Option(
    None, "--positive", help="The favourable outcome (default: the larger of two labels)."
)
_TASK = typer.Option(
    "auto", "--task", help="classification, regression or auto (a model with probabilities)."
)


def _split(text: str | None) -> list[str]:
    return [s.strip() for s in (text or "").split(",") if s.strip()]


@app.command("model")
def model(
    uri: str = typer.Argument(
        ..., help="The model: models:/churn/7, models:/churn@champion, runs:/… or a folder."
    ),
    data: str = typer.Option(..., "--data", help="Labelled rows: Parquet/CSV path or URL, or data:NAME@V."),
    segments: str = _SEGMENTS,
    label: str = _LABEL,
    rules: Path = _RULES,
    positive: str = _POSITIVE,
    task: str = _TASK,
    output: Path = typer.Option(None, "--output", "-o", help="Also write the HTML report here."),
    record: bool = typer.Option(True, "--record/--no-record", help="Record the audit (run, version tags)."),
    trusted: bool = typer.Option(False, "--trusted", help="Allow a pickled model to load."),
    as_json: bool = typer.Option(False, "--json", help="Print the audit as JSON."),
) -> None:
    """Audit a model on labelled data: metrics per group of each segment, and fairness gaps between groups
    (demographic parity, equalized odds, predictive parity) against the rules. Exits 1 when a check fails,
    so a CI job can use it as a gate.

    Examples:

        shipyard audit model models:/churn/7 --data eval.parquet --segments region,age_band --label churned

        shipyard audit model models:/churn@champion --data eval.parquet --rules audit.yaml -o audit.html
    """
    from shipyard.audit import audit_model

    result = audit_model(
        uri,
        data,
        segments=_split(segments) or None,
        label=label,
        rules=rules,
        positive=positive,
        task=task,
        record=record,
        trusted=trusted,
    )
    if output is not None:
        output.write_text(result.html, encoding="utf-8")
    if as_json:
        print_json(result.to_dict())
    else:
        outcome = result.outcome
        for segment in outcome.segments:
            rows = [
                (g.value, g.rows, "yes" if g.judged else "no", *_shown(g.metrics, g.rates, outcome.task))
                for g in segment.groups
            ]
            columns = ["accuracy", "selection", "TPR", "FPR", "precision"]
            if outcome.task != "classification":
                columns = ["mae", "rmse", "r2", "-", "-"]
            print_table(f"segment {segment.column}", ["group", "rows", "judged", *columns], rows)
        checks = [
            (
                c.segment,
                c.rule,
                "" if c.value is None else f"{c.value:.4g}",
                c.threshold,
                "PASS" if c.passed else "FAIL",
                c.detail,
            )
            for c in outcome.checks
        ]
        print_table(
            f"audit of {result.version_uri or uri}: {'passed' if result.passed else 'FAILED'}",
            ["where", "rule", "value", "threshold", "verdict", "detail"],
            checks,
        )
        if result.run_id:
            typer.echo(
                f"recorded as run {result.run_id}"
                + (f" on {result.version_uri}" if result.version_uri else "")
            )
    if not result.passed:
        raise typer.Exit(1)


def _shown(metrics: dict[str, float], rates: dict[str, float | None], task: str) -> list[str]:
    def fmt(value: float | None) -> str:
        return "" if value is None else f"{value:.4g}"

    if task == "classification":
        names = ("selection_rate", "true_positive_rate", "false_positive_rate", "precision")
        return [fmt(metrics.get("accuracy")), *(fmt(rates.get(n)) for n in names)]
    return [fmt(metrics.get("mae")), fmt(metrics.get("rmse")), fmt(metrics.get("r2")), "", ""]


@app.command("schedule")
def schedule(
    uri: str = typer.Argument(..., help="The model, usually by alias (models:/churn@champion)."),
    data: str = typer.Option(..., "--data", help="Labelled rows: a Parquet/CSV path or URL, or data:NAME@V."),
    cron: str = typer.Option(..., "--cron", help='When to run, e.g. "0 6 * * 1" (Mondays at 6).'),
    segments: str = _SEGMENTS,
    label: str = _LABEL,
    rules: Path = _RULES,
    positive: str = _POSITIVE,
    task: str = _TASK,
    name: str = typer.Option(None, "--name", help="Schedule name (default: audit-MODEL)."),
    timezone: str = typer.Option("UTC", "--timezone", help="IANA timezone the cron is read in."),
) -> None:
    """Audit a model on a cron schedule (run by `shipyard scheduler`); a failed audit fails its run.

    Examples:

        shipyard audit schedule models:/churn@champion --data eval.csv --rules audit.yaml --cron "0 6 * * 1"
    """
    import yaml

    from shipyard.audit import load_audit_rules
    from shipyard.audit.pipeline import auditing
    from shipyard.errors import InvalidInput
    from shipyard.pipelines import Catchup, ScheduleClient, compile_pipeline
    from shipyard.registry.uri import RegistryUri, parse_model_uri
    from shipyard.tracking import get_client

    parsed = parse_model_uri(uri)
    text = ""
    found_segments = _split(segments)
    if rules is not None:
        loaded = load_audit_rules(rules)
        text = yaml.safe_dump(loaded.model_dump(mode="json"), sort_keys=False)
        found_segments = found_segments or loaded.segments
        label = label or loaded.label
    if not found_segments:
        raise InvalidInput(
            "an audit needs at least one segment column (--segments or segments: in the rules)"
        )
    if not label:
        raise InvalidInput("an audit needs the label column (--label, or label: in the rules)")
    local = Path(data)
    if "://" not in data and not data.startswith("data:"):
        if not local.exists():
            raise InvalidInput(f"--data {data!r} does not exist")
        data = str(local.resolve())  # the scheduler runs from another folder
    model_name = parsed.name if isinstance(parsed, RegistryUri) else "model"
    created = ScheduleClient(get_client()).create(
        compile_pipeline(auditing),
        cron,
        name=name or f"audit-{model_name}",
        parameters={
            "model": uri,
            "data": data,
            "segments": ",".join(found_segments),
            "label": label,
            "rules": text,
            "positive": positive or "",
            "task": task,
        },
        timezone=timezone,
        catchup=Catchup.SKIP,
        experiment=f"audits/{model_name}",
        cache=False,
    )
    typer.echo(f"scheduled {created.name!r}: audit of {uri} on {data}, cron {created.cron!r}")
