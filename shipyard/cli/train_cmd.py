"""``shipyard train``: a script as a distributed data-parallel training job (torch's elastic launcher, or
Ray Train), tracked as a run, resumable from its checkpoints.

NOTE: torch loads when the command runs, not when the CLI starts.
"""

from __future__ import annotations

from pathlib import Path

import typer

from shipyard.cli.output import console, print_json
from shipyard.errors import InvalidInput


def train(
    script: Path | None = typer.Argument(None, help="The training script (its arguments after --)."),
    args: list[str] | None = typer.Argument(None, help="Arguments for the script, after --."),
    workers: int | None = typer.Option(None, "--workers", "-n", min=1, help="Worker processes per node [1]."),
    executor: str | None = typer.Option(None, "--executor", help="local (torch's elastic launcher) or ray."),
    backend: str | None = typer.Option(None, "--backend", help="gloo (CPU) or nccl (CUDA)."),
    device: str | None = typer.Option(None, "--device", help="cpu or cuda."),
    max_restarts: int | None = typer.Option(
        None, "--max-restarts", min=0, help="Restarts of the workers after one fails [0]."
    ),
    mixed_precision: bool = typer.Option(False, "--mixed-precision", help="context().autocast() turns on."),
    log_all_ranks: bool = typer.Option(
        False, "--log-all-ranks", help="Ranks above 0 log into runs of their own."
    ),
    nnodes: int | None = typer.Option(None, "--nnodes", min=1, help="Machines in the job [1]."),
    node_rank: int | None = typer.Option(None, "--node-rank", min=0, help="This machine's index [0]."),
    master_addr: str | None = typer.Option(None, "--master-addr", help="Node 0's address (several nodes)."),
    master_port: int | None = typer.Option(None, "--master-port", help="Node 0's rendezvous port."),
    experiment: str | None = typer.Option(None, "--experiment", help="The run's experiment [training]."),
    name: str | None = typer.Option(None, "--name", help="The run's name."),
    resume: str | None = typer.Option(
        None, "--resume", help="Start a job's run again (id or name) from its latest checkpoint."
    ),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Run a training script on several worker processes as one tracked job.

    In the script, `shipyard.training.context()` gives the rank, world size and device;
    `shipyard.log_metric` logs from rank 0; `training.save_checkpoint` / `latest_checkpoint` keep state.

    Examples:

        shipyard train train.py --workers 2 -- --epochs 10

        shipyard train train.py --workers 2 --executor ray

        shipyard train --resume RUN_ID
    """
    from shipyard import training

    options = dict(
        workers=workers, executor=executor, backend=backend, device=device, max_restarts=max_restarts,
        nnodes=nnodes, node_rank=node_rank, master_addr=master_addr, master_port=master_port,
    )  # fmt: skip
    given = {key: value for key, value in options.items() if value is not None}
    if mixed_precision:
        given["mixed_precision"] = True
    if log_all_ranks:
        given["log_all_ranks"] = True
    if resume is not None:
        if script is not None:
            raise InvalidInput("--resume starts the job's recorded script again: give the script or --resume")
        if experiment is not None or name is not None:
            raise InvalidInput("--resume continues an existing run: --experiment and --name do not apply")
        result = training.resume_job(resume, **given)
    else:
        if script is None:
            raise InvalidInput("give a training script (or --resume RUN)")
        result = training.run_script(script, args or [], experiment=experiment, name=name, **given)
    if as_json:
        print_json({"run_id": result.run_id, "workers": result.workers, "seconds": round(result.seconds, 3)})
    else:
        console.print(
            f"training job finished: run {result.run_id}, {result.workers} workers, {result.seconds:.1f} s"
        )
