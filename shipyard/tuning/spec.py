"""A tuning experiment as data: objective, search space, algorithm, early stopping and budget.

Written in Python (:class:`TuningSpec`), in Shipyard's YAML, or in Katib's Experiment YAML (``apiVersion:
kubeflow.org/v1beta1``, ``kind: Experiment``; objective, algorithm, earlyStopping, parameters with
feasibleSpace, parallelTrialCount, maxTrialCount, maxFailedTrialCount). Every algorithm is Optuna's:

============================ ====================================================================
algorithm                    Optuna sampler
============================ ====================================================================
random                       RandomSampler
grid                         GridSampler (every parameter discrete; float needs ``step``)
tpe                          TPESampler
multivariate-tpe             TPESampler(multivariate=True, group=True)
cmaes                        CmaEsSampler
sobol (also qmc)             QMCSampler(qmc_type="sobol")
nsga2                        NSGAIISampler (multi-objective)
bayesianoptimization (gp)    GPSampler (needs torch)
============================ ====================================================================

Early stopping (pruning) ``median`` (Katib's ``medianstop``) is MedianPruner, ``hyperband`` is
HyperbandPruner, ``asha`` is SuccessiveHalvingPruner. ``settings`` pass to the Optuna constructor by name
(Katib's string values are read as YAML scalars: ``"10"`` is 10); a name the constructor does not take is
refused, naming the accepted ones. Katib's ``random_state`` setting is the seed; medianstop's
``min_trials_required``/``start_step`` are MedianPruner's ``n_startup_trials``/``n_warmup_steps``.
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import optuna
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from shipyard.errors import InvalidInput, field_problems
from shipyard.tuning.space import Parameter, SearchSpace

Direction = Literal["maximize", "minimize"]
ALGORITHMS = (
    "random",
    "grid",
    "tpe",
    "multivariate-tpe",
    "cmaes",
    "sobol",
    "qmc",
    "nsga2",
    "bayesianoptimization",
    "gp",
)
EARLY_STOPPING = ("none", "median", "medianstop", "hyperband", "asha")


class Objective(BaseModel):
    """What a trial is judged by: one metric and direction, or several (``metrics`` + ``directions``).

    ``goal`` (single objective): the search stops once a trial reaches it. ``additional_metrics`` are
    recorded for every trial but not optimised.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    metric: str | None = None
    direction: Direction = "maximize"
    metrics: list[str] | None = None
    directions: list[Direction] | None = None
    goal: float | None = None
    additional_metrics: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _one_form(self) -> Objective:
        if (self.metric is None) == (self.metrics is None):
            raise ValueError("give either `metric` (one objective) or `metrics` with `directions` (several)")
        if self.metrics is not None:
            if not self.metrics or self.directions is None or len(self.directions) != len(self.metrics):
                raise ValueError("`metrics` needs one entry of `directions` (maximize|minimize) per metric")
            if len(set(self.metrics)) != len(self.metrics):
                raise ValueError("`metrics` repeat a name")
            if self.goal is not None:
                raise ValueError("`goal` applies to a single objective only")
        return self

    @property
    def names(self) -> list[str]:
        return list(self.metrics) if self.metrics is not None else [str(self.metric)]

    @property
    def all_directions(self) -> list[Direction]:
        return list(self.directions) if self.directions is not None else [self.direction]

    @property
    def multi(self) -> bool:
        return self.metrics is not None and len(self.metrics) > 1


class Algorithm(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = "tpe"
    seed: int | None = None
    settings: dict[str, Any] = Field(default_factory=dict)


class EarlyStopping(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = "none"
    settings: dict[str, Any] = Field(default_factory=dict)


class TuningSpec(BaseModel):
    """One tuning experiment.

    Attributes:
        max_trials: trials in all (complete, pruned and failed; those of an earlier process included).
        parallel_trials: trials running at once (worker processes, or Ray tasks with ``executor: ray``).
        max_failed_trials: the search stops, failed, once this many trials have failed (0 or 1: at the
            first); None: never for failures.
        timeout_s: no trial starts after this many seconds; those running finish.
        trial: the objective function (``module:function``) when run from the CLI.
        experiment: the tracking experiment of the parent run and its trials.
        storage: an Optuna storage URL for the study (default: a journal file under ``<home>/tuning``).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    objective: Objective
    parameters: list[Parameter]
    algorithm: Algorithm = Field(default_factory=Algorithm)
    early_stopping: EarlyStopping = Field(default_factory=EarlyStopping)
    max_trials: int = Field(20, ge=1)
    parallel_trials: int = Field(1, ge=1)
    max_failed_trials: int | None = Field(None, ge=0)
    timeout_s: float | None = Field(None, gt=0)
    trial: str | None = None
    experiment: str = "tuning"
    executor: Literal["local", "ray"] = "local"
    storage: str | None = None

    @model_validator(mode="after")
    def _known_algorithms(self) -> TuningSpec:
        if self.algorithm.name not in ALGORITHMS:
            raise ValueError(
                f"unknown algorithm {self.algorithm.name!r}; choose one of {', '.join(ALGORITHMS)}"
            )
        if self.early_stopping.name not in EARLY_STOPPING:
            raise ValueError(
                f"unknown early stopping {self.early_stopping.name!r}; "
                f"choose one of {', '.join(EARLY_STOPPING)}"
            )
        if self.objective.multi and self.early_stopping.name != "none":
            raise ValueError("early stopping works on a single objective; this spec has several metrics")
        if self.objective.multi and self.algorithm.name in ("cmaes", "gp", "bayesianoptimization"):
            raise ValueError(f"algorithm {self.algorithm.name!r} takes a single objective")
        return self

    def space(self) -> SearchSpace:
        """The checked search space (`InvalidInput` naming the bad parameter)."""
        return SearchSpace(self.parameters)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(mode="json", exclude_none=True), sort_keys=False)

    @classmethod
    def parse(cls, data: Any, source: str = "tuning spec") -> TuningSpec:
        """A spec from parsed YAML/JSON: Shipyard's form or Katib's Experiment.

        Raises:
            InvalidInput: naming each bad field (``parameters.1.low``: …) and ``source``.
        """
        if isinstance(data, Mapping) and (data.get("kind") == "Experiment" or "apiVersion" in data):
            data = from_katib(data, source)
        try:
            spec = cls.model_validate(data)
        except ValidationError as exc:
            raise InvalidInput(f"{source} is invalid: {field_problems(exc)}") from None
        spec.space()  # conditions and duplicate names are checked across parameters
        make_sampler(spec)
        make_pruner(spec)
        return spec

    @classmethod
    def load(cls, path: str | Path) -> TuningSpec:
        """A spec from a YAML file (either form)."""
        try:
            data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        except OSError as exc:
            raise InvalidInput(f"cannot read tuning spec {str(path)!r}: {exc}") from exc
        except yaml.YAMLError as exc:
            raise InvalidInput(f"tuning spec {str(path)!r} is not valid YAML: {exc}") from exc
        return cls.parse(data, source=f"tuning spec {str(path)!r}")


# -- Katib --------------------------------------------------------------------------------------------------

_KATIB_IGNORED = {"trialTemplate", "metricsCollectorSpec", "resumePolicy"}
_KATIB_TYPES = {"double": "float", "int": "int", "categorical": "categorical", "discrete": "categorical"}


def from_katib(doc: Mapping[str, Any], source: str = "Katib experiment") -> dict[str, Any]:
    """Katib's Experiment (v1beta1) as Shipyard's spec fields; Kubernetes-only fields (trialTemplate,
    metricsCollectorSpec, resumePolicy) are ignored, a Shipyard ``trial: module:function`` may sit in spec.

    Raises:
        InvalidInput: an unknown field, a parameter type or distribution Shipyard cannot run (named).
    """
    spec = doc.get("spec")
    if not isinstance(spec, Mapping):
        raise InvalidInput(f"{source}: a Katib Experiment needs a `spec` mapping")
    name = (doc.get("metadata") or {}).get("name")
    known = {
        "objective",
        "algorithm",
        "earlyStopping",
        "parameters",
        "parallelTrialCount",
        "maxTrialCount",
        "maxFailedTrialCount",
        "trial",
        "experiment",
    } | _KATIB_IGNORED
    unknown = sorted(set(spec) - known)
    if unknown:
        raise InvalidInput(f"{source}: spec field(s) {', '.join(unknown)} are not supported")
    objective = spec.get("objective") or {}
    out: dict[str, Any] = {
        "name": name or "katib-experiment",
        "objective": {
            "metric": objective.get("objectiveMetricName"),
            "direction": objective.get("type", "maximize"),
            "goal": objective.get("goal"),
            "additional_metrics": objective.get("additionalMetricNames") or [],
        },
        "parameters": [_katib_parameter(p, source) for p in spec.get("parameters") or []],
    }
    algorithm = spec.get("algorithm") or {}
    settings = _katib_settings(algorithm.get("algorithmSettings"))
    seed = settings.pop("random_state", None)
    out["algorithm"] = {"name": algorithm.get("algorithmName", "tpe"), "settings": settings, "seed": seed}
    early = spec.get("earlyStopping")
    if early:
        early_settings = _katib_settings(early.get("algorithmSettings"))
        renamed = {"min_trials_required": "n_startup_trials", "start_step": "n_warmup_steps"}
        early_settings = {renamed.get(k, k): v for k, v in early_settings.items()}
        out["early_stopping"] = {"name": early.get("algorithmName", "none"), "settings": early_settings}
    for katib_key, key in (
        ("parallelTrialCount", "parallel_trials"),
        ("maxTrialCount", "max_trials"),
        ("maxFailedTrialCount", "max_failed_trials"),
        ("trial", "trial"),
        ("experiment", "experiment"),
    ):
        if spec.get(katib_key) is not None:
            out[key] = spec[katib_key]
    return out


def _katib_settings(items: Any) -> dict[str, Any]:
    settings: dict[str, Any] = {}
    for item in items or []:
        value = item.get("value")
        settings[str(item.get("name"))] = yaml.safe_load(value) if isinstance(value, str) else value
    return settings


def _katib_parameter(item: Mapping[str, Any], source: str) -> dict[str, Any]:
    name = item.get("name")
    kind = item.get("parameterType")
    if kind not in _KATIB_TYPES:
        raise InvalidInput(
            f"{source}: parameter {name!r} has parameterType {kind!r}; "
            "use double, int, categorical or discrete"
        )
    space = item.get("feasibleSpace") or {}
    if _KATIB_TYPES[kind] == "categorical":
        choices = [
            yaml.safe_load(v) if kind == "discrete" and isinstance(v, str) else v
            for v in space.get("list") or []
        ]
        return {"name": name, "type": "categorical", "choices": choices}
    distribution = space.get("distribution", "uniform")
    if distribution not in ("uniform", "logUniform"):
        raise InvalidInput(
            f"{source}: parameter {name!r} has distribution {distribution!r}; Shipyard samples uniform or "
            "logUniform"
        )
    out: dict[str, Any] = {"name": name, "type": _KATIB_TYPES[kind], "log": distribution == "logUniform"}
    for key in ("min", "max", "step"):
        if space.get(key) is not None:
            out[{"min": "low", "max": "high", "step": "step"}[key]] = float(space[key])
    return out


# -- Optuna --------------------------------------------------------------------------------------------------


def _construct(cls: type, settings: Mapping[str, Any], what: str, **fixed: Any) -> Any:
    accepted = set(inspect.signature(cls).parameters) - set(fixed)
    unknown = sorted(set(settings) - accepted)
    if unknown:
        raise InvalidInput(
            f"{what} setting(s) {', '.join(unknown)} unknown; "
            f"{cls.__name__} takes {', '.join(sorted(accepted))}"
        )
    try:
        with warnings.catch_warnings():  # QMC, GP and group TPE are "experimental" in Optuna's terms
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return cls(**fixed, **settings)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"{what} settings {dict(settings)!r} are invalid: {exc}") from None


class _GridSampler(optuna.samplers.GridSampler):
    """Optuna's grid sampler, asked and told from outside ``study.optimize``: its ``after_trial`` would call
    ``study.stop()``, which only works inside ``optimize``; the runner stops once every point was asked."""

    def after_trial(self, *args: Any, **kwargs: Any) -> None:
        pass


def make_sampler(
    spec: TuningSpec,
    *,
    seed: int | None = None,
) -> optuna.samplers.BaseSampler:
    """The Optuna sampler of ``spec.algorithm`` (``seed`` overrides the spec's)."""
    name, settings = spec.algorithm.name, dict(spec.algorithm.settings)
    seed = spec.algorithm.seed if seed is None else seed
    what = f"algorithm {name!r}"
    samplers = optuna.samplers
    if name == "random":
        return _construct(samplers.RandomSampler, settings, what, seed=seed)
    if name == "grid":
        return _construct(_GridSampler, settings, what, search_space=spec.space().grid(), seed=seed)
    if name == "tpe":
        return _construct(samplers.TPESampler, settings, what, seed=seed)
    if name == "multivariate-tpe":
        return _construct(samplers.TPESampler, settings, what, seed=seed, multivariate=True, group=True)
    if name == "cmaes":
        return _construct(samplers.CmaEsSampler, settings, what, seed=seed)
    if name in ("sobol", "qmc"):
        settings.setdefault("qmc_type", "sobol")
        return _construct(samplers.QMCSampler, settings, what, seed=seed)
    if name == "nsga2":
        return _construct(samplers.NSGAIISampler, settings, what, seed=seed)
    try:
        import torch  # noqa: F401  (GPSampler's dependency: fail now, not at the first trial)
    except ImportError:
        raise InvalidInput(
            f"{what} (Optuna's GPSampler) needs torch: pip install 'shipyard[torch]'"
        ) from None
    return _construct(samplers.GPSampler, settings, what, seed=seed)


def make_pruner(spec: TuningSpec) -> optuna.pruners.BasePruner:
    """The Optuna pruner of ``spec.early_stopping``."""
    name, settings = spec.early_stopping.name, spec.early_stopping.settings
    what = f"early stopping {name!r}"
    if name in ("median", "medianstop"):
        return _construct(optuna.pruners.MedianPruner, settings, what)
    if name == "hyperband":
        return _construct(optuna.pruners.HyperbandPruner, settings, what)
    if name == "asha":
        return _construct(optuna.pruners.SuccessiveHalvingPruner, settings, what)
    return _construct(optuna.pruners.NopPruner, settings, what)


__all__ = [
    "ALGORITHMS",
    "EARLY_STOPPING",
    "Algorithm",
    "EarlyStopping",
    "Objective",
    "TuningSpec",
    "from_katib",
    "make_pruner",
    "make_sampler",
]
