"""``shipyard.evaluate``: a model's quality on labelled data, per segment and against a baseline model,
checked against validation thresholds and logged to a tracked run (what ``mlflow.evaluate`` users expect).

Everything is checked before anything is logged: a bad argument leaves no run behind. A model that misses
its thresholds is still logged in full (the run tagged ``shipyard.evaluation.validation=failed``) before
`ModelValidationFailed` is raised.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from shipyard.config import Settings
from shipyard.data.model_metrics import (
    check_class_targets,
    check_numeric_targets,
    classifier_metrics,
    confusion,
    regressor_metrics,
)
from shipyard.data.thresholds import MetricThreshold, check_thresholds, parse_thresholds
from shipyard.errors import InvalidInput, ModelValidationFailed, ShipyardError
from shipyard.evaluation import figures
from shipyard.evaluation.records import (
    MODEL_TYPES,
    EvaluationInput,
    EvaluationResult,
    Evaluator,
    ModelEvaluation,
    ModelType,
)
from shipyard.registry.flavors.base import Predictor
from shipyard.registry.fluent import registry_client
from shipyard.registry.loading import LoadedModel, load_model
from shipyard.tracking.fluent import active_run, get_client, start_run
from shipyard.tracking.naming import check_key
from shipyard.tracking.run import ActiveRun

DEFAULT_EXPERIMENT = "evaluation"
BUILTIN_EVALUATORS = ("default",)
ARTIFACTS = "evaluation"  # the run's artifact folder for the figures and JSON
TAG_PREFIX = "shipyard.evaluation."
# A segment value in a metric key: letters, digits, "_", "-", "." and spaces ("/" and ":" separate parts).
_UNSAFE = re.compile(r"[^\w\-. ]+")


@dataclass(frozen=True)
class _Model:
    """A model to evaluate, however it was given, with the names the run records for it."""

    uri: str
    version: str | None
    predictor: Any

    @property
    def classes(self) -> list[Any] | None:
        if isinstance(self.predictor, LoadedModel):
            return self.predictor.classes
        classes = getattr(self.predictor, "classes_", None)
        return list(classes) if classes is not None else None


@dataclass(frozen=True)
class _Job:
    """The rows to evaluate on and how."""

    frame: pd.DataFrame
    features: pd.DataFrame
    truth: np.ndarray
    kind: ModelType
    segments: list[str]
    default: bool
    custom: list[Evaluator]


@dataclass(frozen=True)
class _Scored:
    predictions: np.ndarray
    probabilities: np.ndarray | None
    classes: list[Any] | None


def evaluate(
    model_uri: str | LoadedModel | Predictor,
    data: pd.DataFrame | str | os.PathLike[str],
    *,
    targets: str,
    model_type: ModelType | str = "classifier",
    evaluators: Sequence[str | Evaluator] | None = None,
    segments: Sequence[str] | None = None,
    baseline_model: str | LoadedModel | Predictor | None = None,
    validation_thresholds: Mapping[str, MetricThreshold | Mapping[str, Any]] | None = None,
    run_id: str | None = None,
    experiment: str | None = None,
    settings: Settings | None = None,
    trusted: bool = False,
) -> EvaluationResult:
    """Evaluate a model on labelled data and log the metrics, figures and JSON reports to a run.

    Args:
        model_uri: ``models:/churn/3``, ``models:/churn@champion``, ``runs:/<id>/model``, a package folder,
            a loaded model, or any object with ``predict`` (and ``predict_proba``/``classes_``).
        data: a DataFrame, a Parquet/CSV path or URL, or a dataset version ``data:NAME@V``.
        targets: the label column; every other column goes to the model (its signature picks its own).
        model_type: "classifier" or "regressor".
        evaluators: "default" (the built-in metrics and figures) and callables taking an
            `EvaluationInput` and returning ``{name: value}``, run overall and per segment (default:
            ["default"]).
        segments: columns whose every value gets its own metrics, logged as ``segment/region:north/f1``.
        baseline_model: another model evaluated the same way; the result holds the differences.
        validation_thresholds: ``{"accuracy": {"min": 0.8, "min_delta": -0.01}}``: bounds on a metric and
            on its change from the baseline (`MetricThreshold`; MLflow's field names are read too).
        run_id: log into this run (resumed, then ended). Default: the active run, else a new run in
            ``experiment`` (default "evaluation").
        settings: the store (default: from the environment).
        trusted: let a pickled model load (see ``shipyard.models.load``).

    Raises:
        InvalidInput: a missing targets or segment column (the columns present listed), no rows, an unknown
            model type or evaluator, continuous targets for a classifier, a threshold on a metric that was
            not computed. ModelValidationFailed: a threshold missed; its ``result`` is the evaluation,
            already logged.
    """
    kind = _model_type(model_type)
    default, custom = _evaluators(evaluators)
    thresholds = parse_thresholds(validation_thresholds) if validation_thresholds is not None else {}
    comparing = [name for name, t in thresholds.items() if t.compares]
    if comparing and baseline_model is None:
        raise InvalidInput(
            f"validation_thresholds for {', '.join(comparing)} compare with a baseline: pass baseline_model="
        )
    columns = [segments] if isinstance(segments, str) else list(segments or [])
    frame, source = read_data(data, settings)
    _check_columns(frame, targets, columns, source)
    registry = registry_client(settings)
    candidate = _model(model_uri, registry, trusted)
    baseline = _model(baseline_model, registry, trusted) if baseline_model is not None else None

    features, truth = frame.drop(columns=[targets]), frame[targets].to_numpy()
    job = _Job(frame, features, truth, kind, columns, default, custom)
    notes: list[str] = []
    scored = {"candidate": _score(candidate, job, targets)}
    measured = {"candidate": _measure(candidate, scored["candidate"], job, notes)}
    if baseline is not None:
        scored["baseline"] = _score(baseline, job, targets)
        # The baseline's notes would echo the candidate's (the same rows undefine the same metrics).
        measured["baseline"] = _measure(baseline, scored["baseline"], job, [])
    mine, theirs = measured["candidate"], measured.get("baseline")
    _check_threshold_names(thresholds, mine.metrics, theirs.metrics if theirs is not None else None)
    validation = tuple(check_thresholds(thresholds, mine.metrics, theirs.metrics if theirs else None))
    differences = (
        {k: v - theirs.metrics[k] for k, v in mine.metrics.items() if k in theirs.metrics} if theirs else {}
    )
    if default and not figures.available():
        notes.append(f"figures skipped: matplotlib is not installed ({figures.INSTALL_HINT})")

    run, owned = _target_run(run_id, experiment, settings)
    with run if owned else contextlib.nullcontext(run):
        result = _log(
            run,
            EvaluationResult(
                run.run_id, kind, targets, mine, theirs, differences, validation, notes=tuple(notes)
            ),
            frame=frame,
            data=data,
            source=source,
            scored=scored,
            job=job,
        )
    if not result.passed:
        against = f" (baseline {theirs.model_version or theirs.model_uri})" if theirs is not None else ""
        raise ModelValidationFailed(
            f"model validation failed for {mine.model_version or mine.model_uri}{against}: "
            f"{'; '.join(r.describe() for r in result.failures)} (logged to run {result.run_id})",
            result=result,
        )
    return result


def read_data(
    data: pd.DataFrame | str | os.PathLike[str], settings: Settings | None = None
) -> tuple[pd.DataFrame, str]:
    """The evaluation rows, and a name for where they came from.

    Raises:
        InvalidInput: an unreadable file or URL, a dataset version holding other than one table (named).
        NotFound: no such dataset version.
    """
    from shipyard.data.statistics import read_table

    if isinstance(data, pd.DataFrame):
        return data, "DataFrame"
    if not isinstance(data, str | os.PathLike):
        raise InvalidInput(
            f"data must be a DataFrame, a Parquet/CSV path or URL, or data:NAME@V, not {type(data).__name__}"
        )
    text = os.fspath(data)
    if text.startswith("data:"):
        from shipyard.datasets import DatasetClient

        path = DatasetClient(get_client(settings)).local_path(text)
        if path.is_dir():
            tables = sorted(p for p in path.rglob("*") if p.suffix.lower() in (".parquet", ".pq", ".csv"))
            if len(tables) != 1:
                raise InvalidInput(f"data: {text} holds {len(tables)} tables; name a version with one")
            path = tables[0]
        return read_table(path).to_pandas(), text
    if "://" in text and not text.startswith("file://"):
        reader = pd.read_csv if text.lower().endswith(".csv") else pd.read_parquet
        try:
            return reader(text), text
        except (OSError, ValueError, ImportError) as exc:
            raise InvalidInput(f"data: cannot read {text}: {exc}") from exc
    return read_table(Path(text.removeprefix("file://"))).to_pandas(), text


# ---------------------------------------------------------------------- checks


def _model_type(model_type: str) -> ModelType:
    if model_type not in MODEL_TYPES:
        raise InvalidInput(f"model_type {model_type!r} is unknown; use one of: {', '.join(MODEL_TYPES)}")
    return model_type  # type: ignore[return-value]


def _evaluators(evaluators: Sequence[str | Evaluator] | None) -> tuple[bool, list[Evaluator]]:
    """Whether the built-in evaluator runs, and the custom ones."""
    if evaluators is None:
        return True, []
    if isinstance(evaluators, str) or callable(evaluators):
        evaluators = [evaluators]
    unknown = [e for e in evaluators if isinstance(e, str) and e not in BUILTIN_EVALUATORS]
    if unknown:
        raise InvalidInput(
            f"unknown evaluator(s): {', '.join(map(repr, unknown))}; built in: "
            f"{', '.join(BUILTIN_EVALUATORS)}, or pass a function (EvaluationInput) -> dict of metrics"
        )
    wrong = [e for e in evaluators if not isinstance(e, str) and not callable(e)]
    if wrong:
        raise InvalidInput(f"an evaluator is a name or a function, not {type(wrong[0]).__name__}")
    return "default" in evaluators, [e for e in evaluators if not isinstance(e, str)]


def _check_columns(frame: pd.DataFrame, targets: str, segments: list[str], source: str) -> None:
    present = ", ".join(map(str, frame.columns[:30])) + (", ..." if len(frame.columns) > 30 else "")
    if targets not in frame.columns:
        raise InvalidInput(f"targets column {targets!r} is not in the data ({source}); columns: {present}")
    missing = [c for c in segments if c not in frame.columns]
    if missing:
        raise InvalidInput(
            f"segment column(s) {', '.join(map(repr, missing))} not in the data ({source}); "
            f"columns: {present}"
        )
    if targets in segments:
        raise InvalidInput(f"segments: {targets!r} is the targets column")
    if frame.empty:
        raise InvalidInput(f"the data ({source}) has no rows")


def _check_threshold_names(
    thresholds: Mapping[str, MetricThreshold],
    metrics: Mapping[str, float],
    baseline: Mapping[str, float] | None,
) -> None:
    unknown = [name for name in thresholds if name not in metrics]
    if unknown:
        raise InvalidInput(
            f"validation_thresholds name metric(s) not computed: {', '.join(map(repr, unknown))}; computed: "
            f"{', '.join(sorted(metrics))}"
        )
    lacking = [n for n, t in thresholds.items() if t.compares and baseline is not None and n not in baseline]
    if lacking:
        raise InvalidInput(
            f"validation_thresholds compare {', '.join(map(repr, lacking))} with the baseline, which has no "
            f"such metric (its metrics: {', '.join(sorted(baseline or {}))})"
        )


# ---------------------------------------------------------------------- measuring


def _model(model: str | LoadedModel | Predictor, registry: Any, trusted: bool) -> _Model:
    if isinstance(model, str):
        model = load_model(model, registry, trusted=trusted)
    if isinstance(model, LoadedModel):
        version = model.version
        exact = f"models:/{version.name}/{version.version}" if version is not None else model.uri
        return _Model(model.uri, exact, model)
    if not callable(getattr(model, "predict", None)):
        raise InvalidInput(
            "model_uri must be a model URI, a loaded model or an object with predict, not "
            f"{type(model).__name__}"
        )
    return _Model(f"object:{type(model).__name__}", None, model)


def _score(model: _Model, job: _Job, targets: str) -> _Scored:
    predictions = np.asarray(model.predictor.predict(job.features))
    if predictions.ndim > 1 and predictions.shape[1] == 1:
        predictions = predictions[:, 0]
    if predictions.shape[:1] != job.truth.shape[:1]:
        raise InvalidInput(
            f"{model.uri} gave {predictions.shape[0]} predictions for {job.truth.shape[0]} rows"
        )
    if job.kind == "regressor":
        check_numeric_targets(job.truth, predictions, targets)
        return _Scored(predictions, None, None)
    check_class_targets(job.truth, predictions, targets)
    probabilities = None
    method = getattr(model.predictor, "predict_proba", None)
    if method is not None:
        try:
            probabilities = np.asarray(method(job.features), dtype=float)
        except (ShipyardError, AttributeError, NotImplementedError):
            probabilities = None  # a flavor without probabilities: the metrics that need them are left out
    return _Scored(predictions, probabilities, model.classes)


def _measure(model: _Model, scored: _Scored, job: _Job, notes: list[str]) -> ModelEvaluation:
    """Overall and per segment metrics; a note for each one that is undefined somewhere."""

    def on(rows: np.ndarray | None, where: str) -> dict[str, float]:
        def pick(values: Any) -> Any:
            if rows is None or values is None:
                return values
            return values.iloc[rows] if isinstance(values, pd.DataFrame) else values[rows]

        given = EvaluationInput(
            pick(job.frame),
            pick(job.features),
            pick(job.truth),
            pick(scored.predictions),
            pick(scored.probabilities),
            scored.classes,
            job.kind,
        )
        metrics, found = _metrics(given, job.default, job.custom)
        notes.extend(f"{where}{note}" for note in found)
        return metrics

    overall = on(None, "")
    by_segment: dict[str, dict[str, dict[str, float]]] = {}
    for column in job.segments:
        values = job.frame[column].to_numpy()
        by_segment[column] = {}
        for value in _segment_values(job.frame[column]):
            rows = np.flatnonzero(pd.isna(values) if value is None else values == value)
            label = _segment_label(value)
            by_segment[column][label] = on(rows, f"segment {column}={label}: ")
    return ModelEvaluation(model.uri, model.version, overall, by_segment)


def _segment_values(column: pd.Series) -> list[Any]:
    values: list[Any] = sorted(column.dropna().unique().tolist(), key=lambda v: (str(type(v)), v))
    return [*values, None] if column.isna().any() else values


def _segment_label(value: Any) -> str:
    return "null" if value is None else str(value)


def _metrics(
    given: EvaluationInput, default: bool, custom: list[Evaluator]
) -> tuple[dict[str, float], list[str]]:
    metrics: dict[str, float] = {}
    notes: list[str] = []
    if default and given.model_type == "classifier":
        metrics, notes = classifier_metrics(
            given.targets, given.predictions, given.probabilities, given.classes
        )
    elif default:
        metrics, notes = regressor_metrics(given.targets, given.predictions)
    for evaluator in custom:
        name = getattr(evaluator, "__name__", type(evaluator).__name__)
        found = evaluator(given)
        if not isinstance(found, Mapping):
            raise InvalidInput(f"evaluator {name} returned {type(found).__name__}, not a dict of metrics")
        for key, value in found.items():
            check_key(key, f"evaluator {name}'s metric")
            if key in metrics:
                raise InvalidInput(f"evaluator {name}'s metric {key!r} is already computed; rename it")
            try:
                metrics[key] = float(value)
            except (TypeError, ValueError) as exc:
                raise InvalidInput(f"evaluator {name}'s metric {key!r} is {value!r}, not a number") from exc
    return metrics, notes


# ---------------------------------------------------------------------- logging


def _target_run(
    run_id: str | None, experiment: str | None, settings: Settings | None
) -> tuple[ActiveRun, bool]:
    """The run to log into, and whether this evaluation owns it (and so ends it)."""
    if run_id is not None:
        return start_run(run_id=run_id, settings=settings), True
    current = active_run()
    if current is not None:
        return current, False
    return start_run(experiment or DEFAULT_EXPERIMENT, settings=settings), True


def _log(
    run: ActiveRun,
    result: EvaluationResult,
    *,
    frame: pd.DataFrame,
    data: Any,
    source: str,
    scored: dict[str, _Scored],
    job: _Job,
) -> EvaluationResult:
    mine, theirs = result.candidate, result.baseline
    # Namespaced: the active run may be a training run with a "model_type" param of its own.
    params = {
        "evaluation.model_type": result.model_type,
        "evaluation.targets": result.targets,
        "evaluation.model_uri": mine.model_uri,
    }
    tags = {f"{TAG_PREFIX}model_uri": mine.model_uri}
    if mine.model_version is not None:
        tags[f"{TAG_PREFIX}model_version"] = mine.model_version
    if theirs is not None:
        params["evaluation.baseline_model_uri"] = theirs.model_uri
        tags[f"{TAG_PREFIX}baseline_version"] = theirs.model_version or theirs.model_uri
    if result.validation:
        tags[f"{TAG_PREFIX}validation"] = "passed" if result.passed else "failed"
    run.log_params(params)
    run.set_tags(tags)
    run.log_metrics(metric_keys(mine, theirs))
    if source.startswith("data:"):
        run.log_input(source, context="evaluation")  # by its snapshot, and into lineage
    else:
        name = Path(source).name if isinstance(data, str | os.PathLike) else None
        run.log_input(frame, name=name, context="evaluation")
    artifacts: list[str] = []
    if job.default:
        for role, evaluation in (("", mine), ("baseline/", theirs)):
            if evaluation is None:
                continue
            got = scored["baseline" if role else "candidate"]
            folder = f"{ARTIFACTS}/{role}"
            if result.model_type == "classifier":
                matrix = confusion(job.truth, got.predictions, got.classes)
                artifacts.append(run.log_dict(matrix, f"{folder}confusion_matrix.json").path)
            if figures.available():
                drawn = (
                    figures.classifier_figures(job.truth, got.predictions, got.probabilities, got.classes)
                    if result.model_type == "classifier"
                    else figures.regressor_figures(job.truth, got.predictions)
                )
                artifacts.extend(
                    run.log_figure(figure, f"{folder}{file}").path for file, figure in drawn.items()
                )
    artifacts.append(f"{ARTIFACTS}/metrics.json")
    final = dataclasses.replace(result, artifacts=tuple(artifacts))
    run.log_dict(final.to_dict(), f"{ARTIFACTS}/metrics.json")
    return final


def metric_keys(candidate: ModelEvaluation, baseline: ModelEvaluation | None = None) -> dict[str, float]:
    """The run's metrics: the candidate's as named, ``segment/<column>:<value>/<metric>`` per segment (the
    value with characters a metric key does not allow replaced by "_"), ``baseline/<metric>`` for the
    baseline's overall ones. Non-finite values are left out (they are in metrics.json)."""
    keys = dict(candidate.metrics)
    for column, values in candidate.segments.items():
        for value, metrics in values.items():
            prefix = f"segment/{_key_part(column)}:{_key_part(value)}"
            keys.update({f"{prefix}/{name}": v for name, v in metrics.items()})
    if baseline is not None:
        keys.update({f"baseline/{name}": v for name, v in baseline.metrics.items()})
    return {k: v for k, v in keys.items() if math.isfinite(v)}


def _key_part(text: str) -> str:
    return _UNSAFE.sub("_", str(text)).strip()[:60] or "_"
