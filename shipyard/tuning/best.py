"""After the search: retrain the best configuration on all the training data and register it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from shipyard.config import Settings, get_settings
from shipyard.errors import InvalidInput
from shipyard.registry.records import ModelVersion
from shipyard.tracking import ActiveRun, start_run
from shipyard.tuning.runner import PARENT_TAG, TuningResult

RETRAIN_TAG = "shipyard.tuning.retrain"


@dataclass(frozen=True)
class Retrained:
    """The retrained model, the run that trained it (nested under the tuning run) and its registered version
    (None when not registered)."""

    model: Any
    run_id: str
    version: ModelVersion | None


def retrain_best(
    result: TuningResult,
    train: Callable[[dict[str, Any], ActiveRun], Any],
    *,
    register_as: str | None = None,
    alias: str | None = "challenger",
    input_example: Any | None = None,
    baseline: Any | None = None,
    settings: Settings | None = None,
) -> Retrained:
    """Call ``train(best_params, run)`` in a run nested under the tuning run; log the model it returns as a
    package and, with ``register_as``, register it and point ``alias`` at the new version.

    The version's tags name the tuning run and the best trial, and its lineage leads to the retrain run, whose
    parent is the tuning run. ``input_example`` and ``baseline`` go to :func:`shipyard.models.log`.

    Raises:
        NotFound: the search has no complete trial.
        InvalidInput: several objectives (pick a trial from ``result.pareto`` and train it yourself), or
            ``train`` returned None.
    """
    from shipyard import models

    if len(result.metrics) > 1:
        raise InvalidInput(
            "a search with several objectives has no single best trial: choose one from result.pareto"
        )
    params = result.best_params
    best = result.best
    assert best is not None
    settings = settings or get_settings()
    tags = {PARENT_TAG: result.run_id, RETRAIN_TAG: str(best.number)}
    with start_run(
        _experiment(result, settings),
        f"{result.name}-best",
        parent=result.run_id,
        tags=tags,
        log_system_metrics=False,
        settings=settings,
    ) as run:
        run.log_params(params)
        model = train(dict(params), run)
        if model is None:
            raise InvalidInput("train(params, run) returned None; return the fitted model")
        info = models.log(model, name="model", run=run, input_example=input_example, baseline=baseline)
        version = None
        if register_as is not None:
            version = models.register(
                info.uri,
                register_as,
                tags={"tuning_run": result.run_id, "tuning_trial": str(best.number)},
                settings=settings,
            )
            if alias is not None:
                reason = f"best of tuning run {result.run_id} (trial {best.number}, {best.values})"
                models.set_alias(register_as, alias, version.version, reason=reason, settings=settings)
        return Retrained(model, run.run_id, version)


def _experiment(result: TuningResult, settings: Settings) -> str:
    from shipyard.tracking import get_client

    client = get_client(settings)
    return client.get_experiment(client.get_run(result.run_id).experiment_id).name


__all__ = ["Retrained", "retrain_best"]
