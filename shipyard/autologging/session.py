"""One autologged training call: the run it logs into, and logging that can never break training.

A `FitSession` is open while a patched ``fit``/``train`` runs. It starts and ends its own run when no run is
active (named after the estimator), logs into the active run otherwise, and logs nothing when the options
say ``exclusive`` and a run is active. Training calls made inside it (a Pipeline's steps, a search's refits)
see it as the current session and are not logged again.

Everything a session logs goes through :meth:`FitSession.safely`: an error there becomes one warning per
library and kind of failure, and training goes on.

NOTE: the current session is a context variable. Fits that joblib runs in worker processes (``n_jobs > 1``
with its default backend) are not logged, as the libraries are not patched there; with joblib's threading
backend each such fit, not seeing the session, would log a run of its own.
"""

from __future__ import annotations

import contextvars
import logging
import uuid
import warnings
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from shipyard.autologging.options import INPUT_EXAMPLE_ROWS, AutologOptions
from shipyard.registry.client import RegistryClient
from shipyard.registry.registering import register
from shipyard.registry.saving import log_model
from shipyard.registry.signature import infer_signature
from shipyard.tracking.fluent import active_run, start_run
from shipyard.tracking.records import RunStatus
from shipyard.tracking.run import ActiveRun
from shipyard.tracking.values import MAX_TEXT_VALUE

log = logging.getLogger(__name__)
T = TypeVar("T")

AUTOLOG_TAG = "shipyard.autolog"
"""Tag on every run autologging logged into: the library that logged it (``sklearn``, ``xgboost``…)."""


class AutologWarning(UserWarning):
    """Autologging could not log something; training was not affected."""


_current: contextvars.ContextVar[FitSession | None] = contextvars.ContextVar("shipyard_autolog", default=None)
_warned: set[tuple[str, str]] = set()


def current_session() -> FitSession | None:
    """The session of the autologged call this code runs inside, if any."""
    return _current.get()


def forget_warnings(library: str) -> None:
    """Let ``library``'s failures warn again (each ``autolog()`` call starts afresh)."""
    for key in [key for key in _warned if key[0] == library]:
        _warned.discard(key)


def warn_once(library: str, what: str, exc: BaseException, *, silent: bool) -> None:
    """Warn that ``library``'s autologging failed at ``what`` — once per library and ``what``."""
    message = f"shipyard autolog ({library}) could not {what}: {type(exc).__name__}: {exc}"
    key = (library, what)
    if silent or key in _warned:
        log.debug(message)
        return
    _warned.add(key)
    warnings.warn(message + " (training goes on; this warning is shown once)", AutologWarning, stacklevel=4)


class FitSession:
    """The run one autologged call logs into. ``run`` is None when it logs nothing (``exclusive``).

    Not thread-safe: one session belongs to the thread that runs the training call.
    """

    def __init__(self, library: str, options: AutologOptions, run: ActiveRun | None, owns_run: bool) -> None:
        self.library = library
        self.options = options
        self.run = run
        self.owns_run = owns_run
        self.state: dict[str, Any] = {}  # what the outer call and the calls it joins share (a booster…)
        self._token: contextvars.Token[FitSession | None] | None = None

    @classmethod
    def open(cls, library: str, options: AutologOptions, run_name: str) -> FitSession:
        """Pick the run: the active one, a new one named ``<run_name>-<8 hex>``, or none (``exclusive``)."""
        run = active_run()
        owns = False
        if run is not None and options.exclusive:
            run = None
        elif run is None:
            # Run names are unique per experiment: the suffix lets the same estimator fit many times.
            run = start_run(name=f"{run_name}-{uuid.uuid4().hex[:8]}", settings=options.settings)
            owns = True
        session = cls(library, options, run, owns)
        if run is not None:
            session.safely("tag the run", run.set_tags, {AUTOLOG_TAG: library, **options.extra_tags})
        return session

    def __enter__(self) -> FitSession:
        self._token = _current.set(self)
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._token is not None:
            _current.reset(self._token)
            self._token = None

    @property
    def logging(self) -> bool:
        return self.run is not None

    def end(self, status: RunStatus) -> None:
        """End the run this session started (FAILED when training raised); a run it joined stays open."""
        if self.run is not None and self.owns_run:
            self.safely("end the run", self.run.end, status)

    def safely(self, what: str, action: Callable[..., T], *args: Any, **kwargs: Any) -> T | None:
        """``action(*args, **kwargs)``, or None with a warning (once) when it raises."""
        try:
            return action(*args, **kwargs)
        except Exception as exc:
            warn_once(self.library, what, exc, silent=self.options.silent)
            return None

    # ------------------------------------------------------------------ what integrations log
    def log_params(self, params: Mapping[str, Any]) -> None:
        if self.run is not None and params:
            self.safely("log params", self.run.log_params, {k: param_text(v) for k, v in params.items()})

    def log_metrics(self, metrics: Mapping[str, float], step: int = 0) -> None:
        if self.run is not None and metrics:
            self.safely("log metrics", self.run.log_metrics, metrics, step)

    def log_dataset(self, data: Any, context: str) -> None:
        if self.run is not None and self.options.log_datasets and data is not None:
            self.safely(f"log the {context} dataset", self.run.log_input, data, context=context)

    def log_model(self, model: Any, *, name: str = "model", example_source: Any = None) -> None:
        """Log ``model`` with ``shipyard.models.log``: an input example of the first rows of
        ``example_source`` and a signature inferred from it, as the options ask; registered as the next
        version of ``registered_model_name`` when the options name one."""
        if self.run is None or not self.options.log_models:
            return
        self.safely(
            f"log the model {name!r}", _log_model, self.run, model, name, example_source, self.options
        )


def param_text(value: Any) -> str:
    """A param value as text a store keeps (a long nested estimator's repr is cut, as MLflow cuts it)."""
    text = value if isinstance(value, str) else repr(value) if not _is_scalar(value) else str(value)
    return text if len(text) <= MAX_TEXT_VALUE else text[: MAX_TEXT_VALUE - 3] + "..."


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, bool | int | float | str)


def input_example(data: Any) -> Any:
    """The first rows of a DataFrame or array; None for anything else (a DMatrix, a sparse matrix…)."""
    module = type(data).__module__.split(".")[0]
    if module == "pandas" and hasattr(data, "iloc"):
        return data.iloc[:INPUT_EXAMPLE_ROWS]
    if module == "numpy" and getattr(data, "ndim", 0) >= 1:
        return data[:INPUT_EXAMPLE_ROWS]
    if isinstance(data, list) and data:
        import numpy as np

        return np.asarray(data[:INPUT_EXAMPLE_ROWS])
    return None


def _log_model(run: ActiveRun, model: Any, name: str, source: Any, options: AutologOptions) -> None:
    example = input_example(source) if source is not None else None
    signature: Any = None
    if example is not None and options.log_model_signatures:
        predict = getattr(model, "predict", None)
        output = predict(example) if callable(predict) else None
        signature = infer_signature(example, output)
    info = log_model(
        run,
        model,
        name=name,
        signature=signature,
        input_example=example if options.log_input_examples else None,
    )
    if options.registered_model_name and name == "model":  # a search's best_estimator is not registered
        register(info.uri, options.registered_model_name, RegistryClient(run.client))
