"""Materialization as a pipeline, so the pipeline scheduler runs it: ``shipyard features schedule`` or

    shipyard pipeline schedule shipyard.features.pipeline:materialization --cron "0 * * * *" \\
        -p repo=/srv/features

Each run loads every online view of the repository from where its last load ended up to now (each batch
validated as ``on_anomaly`` says), records a tracked run with the rows loaded, and fails the step — so the
schedule shows it — when a batch is refused.
"""

from __future__ import annotations

from datetime import UTC, datetime

from shipyard.pipelines.dsl import component, pipeline
from shipyard.tracking.fluent import active_run


@component(cache=False)  # the same parameters mean a new interval every time
def materialize_views(repo: str, views: str = "", on_anomaly: str = "warn") -> int:
    """Load the repository's online views (``views``: comma-separated names, empty for all) up to now;
    returns the entities written."""
    from shipyard.features import FeatureStore

    store = FeatureStore.from_repository(repo)
    chosen = [v.strip() for v in views.split(",") if v.strip()] or None
    done = store.materialize_incremental(datetime.now(UTC), chosen, on_anomaly=on_anomaly)
    step = active_run()
    if step is not None:
        for m in done:
            step.log_metrics(
                {f"{m.view}/rows": float(m.rows), f"{m.view}/anomalies": float(len(m.anomalies))}
            )
    return sum(m.rows for m in done)


@pipeline(cache=False)
def materialization(repo: str, views: str = "", on_anomaly: str = "warn") -> None:
    """Keep a feature repository's online store current."""
    materialize_views(repo=repo, views=views, on_anomaly=on_anomaly)
