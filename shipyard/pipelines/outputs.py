"""Find what a pipeline step wrote: the artifact output of a step in a pipeline's newest good run.

A feature view can read a step's ``Dataset`` output (:class:`~shipyard.features.StepOutputSource`): the
step's output in the pipeline run the caller is part of (a later step of the same run reads what this run
made), else in the newest succeeded run of the pipeline, else in the run named. The output is checked
against the sha256 recorded when it was written, and that hash is what lineage records.
"""

from __future__ import annotations

from dataclasses import dataclass

from shipyard.errors import InvalidInput, NotFound
from shipyard.pipelines import cache, staging
from shipyard.tracking import TrackingClient
from shipyard.tracking.filter_parser import format_value as filter_value
from shipyard.tracking.records import PIPELINE_RUN_TAG, Run

PIPELINE_TAG = "shipyard.pipeline"
STEP_TAG = "shipyard.step"
# Pipeline runs looked at, newest first, for one whose step output is intact.
MAX_RUNS_SEARCHED = 20


@dataclass(frozen=True)
class StepOutput:
    """One artifact output of one step run.

    Attributes:
        location: its local path, or URI on an object store, as the step's readers get it.
        sha256: its content hash (a folder's: of its files' names and hashes), verified when found.
    """

    pipeline: str
    step: str
    output: str
    pipeline_run_id: str
    step_run_id: str
    location: str
    sha256: str

    @property
    def uri(self) -> str:
        """The artifact's URI as lineage records it (``file://…`` for a local path)."""
        return staging.artifact_uri(self.location)


def step_output(
    client: TrackingClient,
    pipeline: str,
    step: str,
    output: str,
    *,
    run_id: str | None = None,
    current_run_id: str | None = None,
) -> StepOutput:
    """``output`` of ``step`` in pipeline ``pipeline``: from ``run_id`` when given, else from
    ``current_run_id`` (the pipeline run the caller is a step of) when that step finished there, else from
    the newest succeeded run of the pipeline (of the last :data:`MAX_RUNS_SEARCHED`) where it is intact.

    Raises:
        NotFound: no such run, no finished ``step`` in it (or in any recent succeeded run), no output of that
            name (the step's outputs named), or an output whose files changed since they were written.
        InvalidInput: ``output`` is a value (a number, a string), not an artifact.
    """
    where = f"pipeline {pipeline!r} step {step!r} output {output!r}"
    if run_id is not None:
        run = client.get_run(run_id)
        if run.tags.get(PIPELINE_TAG) != pipeline:
            raise NotFound(f"{where}: run {run_id} is not a run of pipeline {pipeline!r}")
        found = _in_run(client, run.run_id, where, step, output)
        if found is None:
            raise NotFound(f"{where}: run {run_id} has no finished step {step!r}")
        return StepOutput(pipeline, step, output, run.run_id, *found)
    if current_run_id is not None:
        current = client.get_run(current_run_id)
        if current.tags.get(PIPELINE_TAG) == pipeline:
            try:
                found = _in_run(client, current.run_id, where, step, output)
            except _Changed:
                found = None
            if found is not None:
                return StepOutput(pipeline, step, output, current.run_id, *found)
    runs = client.search_runs(
        None,
        f"tags.`{PIPELINE_TAG}` = {filter_value(pipeline)} and attributes.status = 'FINISHED'",
        order_by=["attributes.start_time desc"],
        max_results=MAX_RUNS_SEARCHED,
    )
    for run in runs:
        try:
            found = _in_run(client, run.run_id, where, step, output)
        except _Changed:
            continue  # an older run's intact output is still what that run made
        if found is not None:
            return StepOutput(pipeline, step, output, run.run_id, *found)
    raise NotFound(
        f"{where}: no succeeded run of pipeline {pipeline!r} "
        + (f"among its last {MAX_RUNS_SEARCHED} " if len(runs) else "")
        + f"has step {step!r} with its output intact; run the pipeline first"
    )


class _Changed(NotFound):
    """A step's outputs are no longer what it wrote (a file changed or is gone)."""


def _in_run(
    client: TrackingClient, pipeline_run_id: str, where: str, step: str, output: str
) -> tuple[str, str, str] | None:
    """(step run id, location, sha256) of the output in one pipeline run; None when the step did not finish
    there.

    Raises:
        _Changed: its outputs changed since the step wrote them.
    """
    runs = client.search_runs(
        None,
        f"attributes.parent_run_id = {filter_value(pipeline_run_id)} "
        f"and tags.`{STEP_TAG}` = {filter_value(step)} and attributes.status = 'FINISHED'",
        max_results=1,
    )
    if not len(runs):
        return None
    run: Run = runs[0]
    hashes: dict[str, str] = {}
    outputs = cache.recorded_outputs(client, run, hashes)
    if outputs is None:
        raise _Changed(
            f"{where}: in run {pipeline_run_id} the step's outputs changed or are gone since it wrote them "
            "(their sha256 no longer matches)"
        )
    if output not in outputs:
        raise NotFound(f"{where}: step {step!r} has no output {output!r}; its outputs: {', '.join(outputs)}")
    location = outputs[output]
    if location not in hashes:
        raise InvalidInput(
            f"{where} is a value ({type(location).__name__}), not an artifact a feature view can read"
        )
    return run.run_id, location, hashes[location]


def current_pipeline_run_id() -> str | None:
    """The pipeline run of the step this code runs in, if it runs in one."""
    from shipyard.tracking import fluent

    run = fluent.active_run()
    return None if run is None else run.record.tags.get(PIPELINE_RUN_TAG)


__all__ = ["StepOutput", "current_pipeline_run_id", "step_output"]
