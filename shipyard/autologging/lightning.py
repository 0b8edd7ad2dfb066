"""PyTorch Lightning autologging: ``Trainer.fit`` of ``lightning.pytorch`` (and of ``pytorch_lightning``).

For the duration of ``fit`` a Shipyard logger joins the trainer's loggers, so the run gets exactly what
Lightning logs, when Lightning logs it: ``save_hyperparameters()`` values (the module's and the datamodule's
``hparams``) as params, and every ``self.log(...)`` metric at Lightning's step — step-level values every
``log_every_n_steps``, epoch-level ones (``on_epoch=True``, validation) once per epoch, with Lightning's
``epoch`` metric saying which epoch a step belongs to. Also logged: ``epochs``, ``optimizer_name`` and
``learning_rate`` params, early stopping's settings (``early_stopping_*`` params, ``stopped_epoch``), the
best checkpoint of each ``ModelCheckpoint`` under ``checkpoints/`` (with ``best_model_score``),
``model_summary.txt`` (Lightning's layer table), and the trained module as the model ``model`` (the torch
flavor: TorchScript, else its state dict).

A multi-process fit is logged by rank 0 alone. A strategy that trains in processes it starts (``ddp_spawn``,
``ddp_fork``) gets no Shipyard logger (it would be pickled, or forked with this process's store
connections): its final metrics, which come back to this process, are logged at the last step.

NOTE: when the trainer had no logger, Lightning would have put checkpoints in
``<default_root_dir>/checkpoints``; a ``ModelCheckpoint`` without a ``dirpath`` is pinned there for the fit,
so adding this logger does not move the user's files.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator, Mapping
from types import ModuleType
from typing import Any

from shipyard.autologging import patching
from shipyard.autologging.options import AutologOptions
from shipyard.autologging.session import FitSession

LIBRARY = "lightning"
_MODULES = ("lightning.pytorch", "pytorch_lightning")


def autolog(**options: Any) -> None:
    """Turn PyTorch Lightning autologging on (``disable=True``: off); options as `shipyard.autolog`'s."""
    if options.pop("disable", False):
        patching.disable(LIBRARY)
        return
    patching.enable(LIBRARY, AutologOptions.of(options), _MODULES, _install)


def _install(module: ModuleType) -> None:
    trainer = module.Trainer
    patching.patch(LIBRARY, trainer, "fit", run_name=_run_name, logged=_logged_fit, skip=_other_rank)


def _other_rank(args: tuple[Any, ...]) -> bool:
    """A process of a multi-process fit other than rank 0 (launched with ``RANK``/``LOCAL_RANK`` set): rank 0
    logs the run; the others log nothing."""
    trainer = args[0]
    return bool(trainer.global_rank != 0 or _package_of(trainer).utilities.rank_zero_only.rank != 0)


def _run_name(args: tuple[Any, ...]) -> str:
    return type(args[1]).__name__ if len(args) > 1 else "lightning"


def _logged_fit(
    session: FitSession, fit: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    trainer = args[0]
    module = args[1] if len(args) > 1 else kwargs.get("model")
    package = _package_of(trainer)
    if not session.logging:
        return fit(*args, **kwargs)
    if _trains_in_workers(trainer):
        # NOTE: the trainer is pickled into the workers (or they fork with this process's store
        # connections): no logger of ours goes with it. The final metrics come back to this process.
        result = fit(*args, **kwargs)
        session.log_params(dict(_flatten(getattr(module, "hparams", None) or {})))
        final = session.safely("read the final metrics", _scalars, trainer.callback_metrics) or {}
        session.log_metrics(final, step=int(trainer.global_step))
    else:
        result = _fit_with_logger(session, package, fit, args, kwargs)
    session.log_params(session.safely("read the trainer's settings", _trainer_params, trainer) or {})
    session.safely("log early stopping", _log_early_stopping, session, package, trainer)
    session.safely("log the best checkpoint", _log_checkpoints, session, trainer)
    session.safely("log the model summary", _log_summary, session, package, module)
    session.log_model(module)
    return result


def _fit_with_logger(
    session: FitSession,
    package: ModuleType,
    fit: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> Any:
    trainer = args[0]
    logger = _logger(package, session)
    loggers = list(trainer.loggers)
    pinned = session.safely("keep the checkpoint folder", _pin_checkpoint_dirs, trainer, loggers) or []
    try:
        trainer.loggers = [*loggers, logger]
        return fit(*args, **kwargs)
    finally:
        trainer.loggers = loggers
        for callback in pinned:
            callback.dirpath = None


def _trains_in_workers(trainer: Any) -> bool:
    """Whether the strategy trains in processes it starts (``ddp_spawn``, ``ddp_fork``…), not this one."""
    launcher = getattr(trainer.strategy, "launcher", None)
    return any(cls.__name__ == "_MultiProcessingLauncher" for cls in type(launcher).__mro__)


def _scalars(metrics: Mapping[str, Any]) -> dict[str, float]:
    return {key: float(value) for key, value in metrics.items() if getattr(value, "numel", lambda: 1)() == 1}


def _package_of(trainer: Any) -> ModuleType:
    """``lightning.pytorch`` or ``pytorch_lightning``: the package whose Trainer this is (imported)."""
    return sys.modules[type(trainer).__module__.split(".trainer")[0]]


def _pin_checkpoint_dirs(trainer: Any, loggers: list[Any]) -> list[Any]:
    if loggers:
        return []
    pinned = []
    for callback in trainer.checkpoint_callbacks:
        if callback.dirpath is None:
            callback.dirpath = os.path.join(trainer.default_root_dir, "checkpoints")
            pinned.append(callback)
    return pinned


def _logger(package: ModuleType, session: FitSession) -> Any:
    base = package.loggers.Logger

    class ShipyardLogger(base):  # type: ignore[misc,valid-type]
        """Lightning's logger interface onto the session's run."""

        @property
        def name(self) -> str:
            return "shipyard"

        @property
        def version(self) -> str:
            return session.run.run_id if session.run is not None else ""

        def log_hyperparams(self, params: Any, *args: Any, **kwargs: Any) -> None:
            values = vars(params) if not isinstance(params, Mapping) else params
            session.log_params(dict(_flatten(values)))

        def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
            values = {key: float(value) for key, value in metrics.items()}
            session.log_metrics(values, step=int(step or 0))

    return ShipyardLogger()


def _flatten(values: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Nested hparams as ``outer/inner`` keys, as Lightning's own loggers flatten them."""
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            yield from _flatten(value, f"{name}/")
        else:
            yield name, value


def _trainer_params(trainer: Any) -> dict[str, Any]:
    params: dict[str, Any] = {"epochs": trainer.max_epochs}
    if trainer.optimizers:
        optimizer = trainer.optimizers[0]
        params["optimizer_name"] = type(optimizer).__name__
        if optimizer.param_groups and "lr" in optimizer.param_groups[0]:
            params["learning_rate"] = optimizer.param_groups[0]["lr"]
    return params


def _log_early_stopping(session: FitSession, package: ModuleType, trainer: Any) -> None:
    for callback in trainer.callbacks:
        if isinstance(callback, package.callbacks.EarlyStopping):
            session.log_params(
                {
                    "early_stopping_monitor": callback.monitor,
                    "early_stopping_mode": callback.mode,
                    "early_stopping_patience": callback.patience,
                    "early_stopping_min_delta": abs(float(callback.min_delta)),
                }
            )
            session.log_metrics({"stopped_epoch": float(callback.stopped_epoch)})
            return


def _log_summary(session: FitSession, package: ModuleType, module: Any) -> None:
    if session.run is not None:
        summary = package.utilities.model_summary.ModelSummary(module, max_depth=-1)
        session.run.log_text(str(summary), "model_summary.txt")


def _log_checkpoints(session: FitSession, trainer: Any) -> None:
    if session.run is None:
        return
    for callback in trainer.checkpoint_callbacks:
        path = getattr(callback, "best_model_path", "")
        if path and os.path.isfile(path):
            session.run.log_artifact(path, "checkpoints")
            score = getattr(callback, "best_model_score", None)
            if score is not None:
                session.log_metrics({"best_model_score": float(score)})
