"""``shipyard data``: statistics, schema inference and validation, and drift between two datasets (dataset
versions, ``add|get|diff|list|versions|show``, are in :mod:`shipyard.cli.datasets_cmd`).

NOTE: each command imports its data modules when it runs: pyarrow, pandas and scipy would otherwise add to
the start-up of every shipyard command.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

from shipyard.cli.output import console, print_json, print_table
from shipyard.errors import InvalidInput

app = typer.Typer(help="Dataset versions, statistics, schemas and drift.", no_args_is_help=True)

_DATA = typer.Argument(..., help="A Parquet (.parquet, .pq) or CSV file.")
_JSON = typer.Option(False, "--json", help="Machine-readable output.")


def _number(value: object) -> str:
    return "" if value is None else f"{value:.6g}" if isinstance(value, float) else str(value)


@app.command("stats")
def stats(data: Path = _DATA, as_json: bool = _JSON) -> None:
    """Per-column statistics: type, count, missing, distinct, min/max/mean/std.

    Examples:

        shipyard data stats train.parquet

        shipyard data stats served.parquet --json
    """
    from shipyard.data.statistics import compute_statistics

    result = compute_statistics(data)
    if as_json:
        print_json(result.to_dict())
        return
    rows = [
        (
            c.name,
            c.type,
            c.count,
            c.missing,
            _number(c.distinct),
            _number(c.min),
            _number(c.max),
            _number(c.mean),
        )
        for c in result.columns.values()
    ]
    headers = ["column", "type", "count", "missing", "distinct", "min", "max", "mean"]
    print_table(f"{data}: {result.rows:,} rows", headers, rows)


@app.command("infer-schema")
def infer_schema(
    data: Path = _DATA,
    output: Path = typer.Option(..., "--output", "-o", help="Where to write the schema (YAML, editable)."),
) -> None:
    """Infer a schema (types, nullability, ranges, categories) from training data.

    Examples:

        shipyard data infer-schema train.parquet -o schema.yaml
    """
    from shipyard.data.schema import infer_schema as infer
    from shipyard.data.statistics import compute_statistics

    schema = infer(compute_statistics(data))
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(schema.to_yaml(), encoding="utf-8")
    console.print(f"wrote the schema of {len(schema.columns)} columns to {output}", markup=False)


@app.command("validate")
def validate(
    data: Path = _DATA,
    schema: Path = typer.Option(..., "--schema", help="A schema file from infer-schema (maybe edited)."),
    as_json: bool = _JSON,
) -> None:
    """Check data against a schema; exits non-zero when any error-severity anomaly is found.

    Examples:

        shipyard data validate new.parquet --schema schema.yaml

        shipyard data validate new.parquet --schema schema.yaml --json
    """
    from shipyard.data.schema import Schema
    from shipyard.data.schema import validate as check

    result = check(data, Schema.load(schema))
    if as_json:
        print_json(result.to_dict())
    else:
        rows = [
            (a.severity.value, a.column, a.kind.value, str(a.expected), str(a.actual))
            for a in result.anomalies
        ]
        print_table(
            f"{data}: {len(result.anomalies)} anomalies",
            ["severity", "column", "kind", "expected", "actual"],
            rows,
        )
    errors = [a for a in result.anomalies if a.severity.value == "error"]
    if errors:
        shown = ", ".join(f"{a.column} ({a.kind.value})" for a in errors[:5])
        raise InvalidInput(
            f"{data}: {len(errors)} error anomalies: {shown}{', …' if len(errors) > 5 else ''}"
        )


@app.command("drift")
def drift(
    reference: Path = typer.Argument(..., help="The reference data (e.g. training), Parquet or CSV."),
    current: Path = typer.Argument(..., help="The current data (e.g. served), Parquet or CSV."),
    json_out: Path = typer.Option(None, "--json", help="Also write the result as JSON to this file."),
    test: list[str] = typer.Option(
        None,
        "--test",
        help="column=test: ks, chisquare, z, wasserstein, jensenshannon, psi, or chisquare_evidently "
        "(Evidently's chi-squared formula, which takes the reference proportions as exact).",
    ),
    output: Path = typer.Option(None, "--output", "-o", help="Write a self-contained HTML report here."),
    kind: list[str] = typer.Option(
        None, "--kind", help="column=kind: numeric, categorical or binary, instead of the inferred kind."
    ),
) -> None:
    """Per-column drift between two datasets with Evidently's default tests, and the share that drifted.

    Examples:

        shipyard data drift train.parquet served.parquet -o report.html --json drift.json

        shipyard data drift train.parquet served.parquet --test "mean radius=psi"
    """
    from shipyard.data.drift import dataset_drift
    from shipyard.data.statistics import read_table

    reference_frame, current_frame = read_table(reference).to_pandas(), read_table(current).to_pandas()
    result = dataset_drift(
        reference_frame,
        current_frame,
        tests=_assignments(test, "--test", "test"),
        kinds=_assignments(kind, "--kind", "kind"),
    )
    rows = [
        (c.column, c.kind, c.test, *c.describe_score(), "DRIFT" if c.drift_detected else "")
        for c in result.columns
    ]
    verdict = "dataset drift" if result.dataset_drift else "no dataset drift"
    title = f"drift: {result.drift_share:.0%} of columns drifted ({verdict})"
    print_table(title, ["column", "kind", "test", "score", "drift when", "verdict"], rows)
    for side, missing in (("current", result.missing_in_current), ("reference", result.missing_in_reference)):
        if missing:
            sys.stderr.write(f"not compared, missing in {side}: {', '.join(missing)}\n")
    if json_out is not None:
        json_out.write_text(json.dumps(result.to_dict(), indent=2), encoding="utf-8")
    if output is not None:
        from shipyard.data.report import render_drift_report

        document = render_drift_report(reference_frame, current_frame, result)
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(document, encoding="utf-8")
        console.print(f"wrote the report to {output}", markup=False)


def _assignments(items: list[str] | None, option: str, what: str) -> dict[str, str]:
    """``column=value`` options as a dict (`InvalidInput` naming the option and the bad item)."""
    out = {}
    for item in items or []:
        column, sep, value = item.partition("=")
        if not sep or not column or not value:
            raise InvalidInput(f"{option} {item!r} is not column={what}")
        out[column] = value
    return out
