"""Model explanations: SHAP values and permutation importance (``shipyard.explain(model, X)``), and global
importance recorded on a registered version (:func:`record_importance`).

``shap`` (the ``explain`` extra) is imported on first use, never by ``import shipyard``.
"""

import sys as _sys
import types as _types
import typing as _typing

from shipyard.explain.explainers import INSTALL_HINT, ShapExplainer, ShapUnavailable
from shipyard.explain.explaining import (
    DEFAULT_BACKGROUND_ROWS,
    explain,
    model_rows,
    native_model,
    resolve_model,
    shap_explainer,
)
from shipyard.explain.importance import (
    DEFAULT_IMPORTANCE_ROWS,
    IMPORTANCE_TAG,
    RecordedImportance,
    record_importance,
    recorded_importance,
)
from shipyard.explain.records import ExplainMethod, Explanation

__all__ = [
    "DEFAULT_BACKGROUND_ROWS",
    "DEFAULT_IMPORTANCE_ROWS",
    "IMPORTANCE_TAG",
    "INSTALL_HINT",
    "ExplainMethod",
    "Explanation",
    "RecordedImportance",
    "ShapExplainer",
    "ShapUnavailable",
    "explain",
    "model_rows",
    "native_model",
    "record_importance",
    "recorded_importance",
    "resolve_model",
    "shap_explainer",
]


class _CallableModule(_types.ModuleType):
    """NOTE: ``shipyard.explain`` names both this package and its main function. Importing the package sets
    the attribute ``shipyard.explain`` to it, so the package itself answers ``shipyard.explain(model, X)``
    while ``shipyard.explain.record_importance`` keeps working."""

    def __call__(self, *args: _typing.Any, **kwargs: _typing.Any) -> Explanation:
        return explain(*args, **kwargs)


_sys.modules[__name__].__class__ = _CallableModule
