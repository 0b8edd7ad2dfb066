"""Shipyard: the whole ML lifecycle in one package, embedded by default.

>>> import shipyard
>>> with shipyard.start_run(experiment="churn") as run:
...     run.log_param("model", "rf")
...     run.log_metric("acc", 0.93)
"""

import typing as _typing

from shipyard.config import Settings, get_settings
from shipyard.errors import (
    AlreadyExists,
    ArtifactStoreError,
    Conflict,
    DataValidationError,
    FilterSyntaxError,
    Forbidden,
    IntegrityError,
    InvalidInput,
    ModelNotReady,
    ModelValidationFailed,
    NotFound,
    Overloaded,
    PipelineDefinitionError,
    PipelineError,
    PredictionFailed,
    RunNotActive,
    SchemaError,
    ServingError,
    ShipyardError,
    StoreError,
    TrainingFailed,
    Unauthorized,
    UntrustedArtifact,
    WorkerError,
)
from shipyard.tracking import (
    ActiveRun,
    DatasetInput,
    Experiment,
    Metric,
    Run,
    RunList,
    RunStatus,
    TrackingClient,
    active_run,
    end_run,
    flush,
    get_client,
    get_run,
    log_artifact,
    log_artifacts,
    log_dict,
    log_figure,
    log_input,
    log_metric,
    log_metrics,
    log_param,
    log_params,
    log_text,
    metric_history,
    search_runs,
    set_experiment,
    set_tag,
    set_tags,
    start_run,
)

__version__ = "0.1.0"

__all__ = [
    "ActiveRun",
    "AlreadyExists",
    "ArtifactStoreError",
    "Conflict",
    "DataValidationError",
    "DatasetInput",
    "Experiment",
    "FilterSyntaxError",
    "Forbidden",
    "IntegrityError",
    "InvalidInput",
    "Metric",
    "ModelNotReady",
    "ModelValidationFailed",
    "NotFound",
    "Overloaded",
    "PipelineDefinitionError",
    "PipelineError",
    "PredictionFailed",
    "Run",
    "RunList",
    "RunNotActive",
    "RunStatus",
    "SchemaError",
    "ServingError",
    "Settings",
    "ShipyardError",
    "StoreError",
    "TrackingClient",
    "TrainingFailed",
    "Unauthorized",
    "UntrustedArtifact",
    "WorkerError",
    "__version__",
    "active_run",
    "audit_model",
    "autolog",
    "end_run",
    "evaluate",
    "explain",
    "flush",
    "get_client",
    "get_run",
    "get_settings",
    "load_ipython_extension",
    "log_artifact",
    "log_artifacts",
    "log_dict",
    "log_figure",
    "log_input",
    "log_metric",
    "log_metrics",
    "log_param",
    "log_params",
    "log_text",
    "metric_history",
    "models",
    "search_runs",
    "set_experiment",
    "set_tag",
    "set_tags",
    "start_run",
    "training",
    "tune",
]


if _typing.TYPE_CHECKING:
    from shipyard import explain, models, training
    from shipyard.audit import audit_model
    from shipyard.autologging import autolog
    from shipyard.evaluation import evaluate
    from shipyard.tuning import tune


def load_ipython_extension(ipython: _typing.Any) -> None:
    """``%load_ext shipyard`` in Jupyter/IPython: the ``%%shipyard_run`` cell magic (see
    :mod:`shipyard.notebooks.jupyter`)."""
    from shipyard.notebooks.jupyter import load_ipython_extension as load

    load(ipython)


def __getattr__(name: str) -> _typing.Any:
    # `shipyard.models` pulls in pandas and the flavors' helpers: load it on first use so that
    # `import shipyard` stays fast for tracking-only scripts.
    import importlib

    if name == "models":
        return importlib.import_module("shipyard.models")
    if name == "audit_model":  # pandas and scikit-learn's metrics load on first use
        return importlib.import_module("shipyard.audit").audit_model
    if name == "autolog":  # patches libraries only when they are imported, but loads the registry
        return importlib.import_module("shipyard.autologging").autolog
    if name == "evaluate":  # pandas, scikit-learn's metrics and matplotlib load on first use
        return importlib.import_module("shipyard.evaluation").evaluate
    if name == "explain":  # the package is callable: shipyard.explain(model, X); shap loads on first use
        return importlib.import_module("shipyard.explain")
    if name == "tune":  # Optuna loads on first use too
        return importlib.import_module("shipyard.tuning").tune
    if name == "training":  # torch loads when a job runs, not on import
        return importlib.import_module("shipyard.training")
    raise AttributeError(f"module 'shipyard' has no attribute {name!r}")
