"""Objectives for ``benchmarks/tuning.py``: importable by module name, as Shipyard's worker processes (started
with the forkserver method) unpickle trial functions by reference.

Each objective comes twice: a plain-Optuna form (``f(trial: optuna.Trial) -> float``, suggesting its own
parameters in the same order and ranges as the Shipyard spec) and a Shipyard form (``f(ctx: TrialContext)``,
reading ``ctx.params``); both call the same scoring function. Set ``OMP_NUM_THREADS`` and friends before
this module is imported (it imports NumPy) when a single-threaded trial matters.
"""

from __future__ import annotations

import functools
import os
import time
from typing import Any

import numpy as np

CV_SEED = 0  # the fixed split: StratifiedKFold(3, shuffle=True, random_state=CV_SEED)
MODEL_SEED = 0  # GradientBoostingClassifier(random_state=...): subsample < 1 draws rows


# ---------------------------------------------------------------------- (1) gradient boosting, 3-fold CV
@functools.lru_cache(maxsize=1)
def _breast_cancer() -> tuple[Any, Any, list[tuple[Any, Any]]]:
    from sklearn.datasets import load_breast_cancer
    from sklearn.model_selection import StratifiedKFold

    x, y = load_breast_cancer(return_X_y=True)
    folds = list(StratifiedKFold(n_splits=3, shuffle=True, random_state=CV_SEED).split(x, y))
    return x, y, folds


def gbc_accuracy(params: dict[str, Any]) -> float:
    """Mean 3-fold CV accuracy of GradientBoostingClassifier(**params) on load_breast_cancer."""
    from sklearn.ensemble import GradientBoostingClassifier

    x, y, folds = _breast_cancer()
    scores = []
    for train, test in folds:
        model = GradientBoostingClassifier(
            learning_rate=float(params["learning_rate"]),
            n_estimators=int(params["n_estimators"]),
            max_depth=int(params["max_depth"]),
            subsample=float(params["subsample"]),
            random_state=MODEL_SEED,
        )
        model.fit(x[train], y[train])
        scores.append(float((model.predict(x[test]) == y[test]).mean()))
    return float(np.mean(scores))


GBC_SPACE: list[dict[str, Any]] = [  # Shipyard's parameters; gbc_objective suggests the same, in order
    {"name": "learning_rate", "type": "float", "low": 0.01, "high": 0.5, "log": True},
    {"name": "n_estimators", "type": "int", "low": 20, "high": 150},
    {"name": "max_depth", "type": "int", "low": 2, "high": 5},
    {"name": "subsample", "type": "float", "low": 0.5, "high": 1.0},
]


def gbc_objective(trial: Any) -> float:
    """Plain Optuna."""
    params = {
        "learning_rate": trial.suggest_float("learning_rate", 0.01, 0.5, log=True),
        "n_estimators": trial.suggest_int("n_estimators", 20, 150),
        "max_depth": trial.suggest_int("max_depth", 2, 5),
        "subsample": trial.suggest_float("subsample", 0.5, 1.0),
    }
    return gbc_accuracy(params)


def gbc_trial(ctx: Any) -> float:
    """Shipyard."""
    return gbc_accuracy(ctx.params)


# ---------------------------------------------------------------------- (2) a trivial objective
def quadratic(x: float) -> float:
    return -((x - 2.0) ** 2)


def quadratic_objective(trial: Any) -> float:
    """Plain Optuna."""
    return quadratic(trial.suggest_float("x", -10.0, 10.0))


def quadratic_trial(ctx: Any) -> float:
    """Shipyard."""
    return quadratic(ctx.params["x"])


# ---------------------------------------------------------------------- (3) fixed CPU-bound work
def cpu_work(iterations: int) -> float:
    """A fixed amount of single-threaded CPU work (256 x 256 matrix products; BLAS limited to one thread by
    the environment), independent of any parameter. The loop writes into preallocated arrays: allocating a
    fresh 512 KiB result per step made glibc map and unmap it each time, and the page faults (~100,000 per
    call, costly in a VM) then dominated the work and scaled poorly across processes."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((256, 256)) / 16.0
    w = rng.standard_normal((256, 256)) / 16.0
    product = np.empty_like(a)
    for _ in range(iterations):
        np.matmul(a, w, out=product)
        np.tanh(product, out=a)
    return float(a[0, 0])


@functools.lru_cache(maxsize=1)
def blas_threads() -> int:
    """The most threads any BLAS/OpenMP pool in this process may use (-1 when threadpoolctl is missing)."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return -1
    return max((int(info.get("num_threads", 1)) for info in threadpool_info()), default=1)


def cpu_trial(ctx: Any) -> dict[str, float]:
    """Shipyard: ``work`` iterations of :func:`cpu_work`; the score depends on ``x`` only. Also returns when
    it started (epoch seconds), its process id and its BLAS thread count, to check the run's setup."""
    started = time.time()
    cpu_work(int(ctx.params["work"]))
    return {
        "score": quadratic(ctx.params["x"]),
        "started_at": started,
        "pid": float(os.getpid()),
        "blas_threads": float(blas_threads()),
    }


def cpu_objective(trial: Any, iterations: int) -> float:
    """Plain Optuna (bind ``iterations`` with functools.partial): the same work and score as cpu_trial."""
    x = trial.suggest_float("x", -10.0, 10.0)
    trial.suggest_categorical("work", [iterations])
    cpu_work(iterations)
    return quadratic(x)


def warm_worker(seconds: float) -> int:
    """Keeps a pool worker busy for a moment (so that a pool starts all its workers); its process id."""
    time.sleep(seconds)
    return os.getpid()
