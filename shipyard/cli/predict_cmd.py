"""``shipyard predict``: batch inference over a table too big for memory, as a tracked run with lineage."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import typer

from shipyard.cli.output import console, print_json


def predict(
    model: str = typer.Argument(..., help="models:/name/3, models:/name@champion, runs:/RUN/model."),
    source: str = typer.Argument(
        ..., help="A .parquet/.csv file or a folder of them (path or fsspec URL), or data:name@3."
    ),
    output: str = typer.Option(..., "--output", "-o", help="The .parquet or .csv file to write."),
    keys: str | None = typer.Option(
        None, "--keys", help="Input columns to copy beside the predictions, a,b (default: the non-features)."
    ),
    proba: bool = typer.Option(False, "--proba", help="Also a proba_<class> column per class."),
    batch_rows: int = typer.Option(100_000, "--batch-rows", min=1, help="Rows read and scored at once."),
    workers: int = typer.Option(
        1, "--workers", "-n", min=1, help="Processes (or Ray actors) scoring at once."
    ),
    executor: str = typer.Option("local", "--executor", help="local, or ray (Ray Data on ray_address)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing output."),
    trusted: bool = typer.Option(False, "--trusted", help="Load a pickled model (runs code as it loads)."),
    prefer: str = typer.Option(
        "auto",
        "--prefer",
        help="A model with a verified ONNX copy runs it (auto, as shipyard serve does), or: native, onnx.",
    ),
    experiment: str | None = typer.Option(
        None, "--experiment", help="The run's experiment [batch-inference]."
    ),
    name: str | None = typer.Option(None, "--name", help="The run's name."),
    progress: bool | None = typer.Option(
        None, "--progress/--no-progress", help="A progress bar (default: on a terminal, never with --json)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Score every row of a table with a model: predictions with the key columns and the model version.

    Reads in batches (memory stays near --batch-rows rows a worker), checks every file's columns against the
    model's signature before scoring, and records the job as a run with lineage: input and model version in,
    output out.

    Examples:

        shipyard predict models:/churn@champion customers.parquet -o scores.parquet

        shipyard predict models:/churn/3 s3://bucket/customers/ -o scores.parquet --keys id --workers 2

        shipyard predict models:/churn/3 data:customers@4 -o scores.csv --proba --json

        shipyard predict models:/churn/3 s3://lake/customers/ -o s3://lake/scores.parquet --executor ray
    """
    from shipyard.batch import batch_predict

    chosen = None if keys is None else [k.strip() for k in keys.split(",") if k.strip()]
    show = not as_json and (console.is_terminal if progress is None else progress)
    with _bar(show) as on_progress:
        result = batch_predict(
            model,
            source,
            output,
            keys=chosen,
            probabilities=proba,
            batch_rows=batch_rows,
            workers=workers,
            executor=executor,
            overwrite=overwrite,
            trusted=trusted,
            prefer=prefer,
            experiment=experiment,
            run_name=name,
            on_progress=on_progress,
        )
    if as_json:
        print_json({**result.__dict__, "rows_per_s": result.rows_per_s})
        return
    console.print(
        f"scored {result.rows:,} rows with {result.model} into {result.output} in {result.seconds:.2f} s "
        f"({result.rows_per_s:,.0f} rows/s); run {result.run_id}",
        markup=False,
        highlight=False,
    )


@contextlib.contextmanager
def _bar(show: bool) -> Iterator[Callable[[int, int | None], None] | None]:
    if not show:
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    bars = Progress(
        TextColumn("scoring"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console
    )
    task = bars.add_task("scoring", total=None)

    def report(rows: int, total: int | None) -> None:
        bars.update(task, completed=rows, total=total)

    with bars:
        yield report
