"""Reading back what autologging logged, through the real store."""

from __future__ import annotations

import shipyard
from shipyard import Settings


def only_run(settings: Settings) -> shipyard.Run:
    """The one run in the store (the test fails when there are more or none)."""
    runs = list(shipyard.get_client(settings).search_runs())
    assert len(runs) == 1, [r.name for r in runs]
    return runs[0]


def artifact_paths(settings: Settings, run_id: str) -> set[str]:
    return {a.path for a in shipyard.get_client(settings).list_artifacts(run_id)}


def history(settings: Settings, run_id: str, key: str) -> list[tuple[int, float]]:
    shipyard.flush()
    return [(m.step, m.value) for m in shipyard.get_client(settings).metric_history(run_id, key)]
