"""``shipyard.explain(model, X)``: find the model, its native object and its background rows, then explain.

The background (what SHAP values are relative to) is ``background=`` when given, else the training features
packaged with the model (``shipyard.models.log(..., baseline=X_train)``), sampled to ``max_background``
rows with a fixed seed so the same call gives the same values.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from shipyard.config import Settings
from shipyard.data.sample import as_frame
from shipyard.errors import InvalidInput
from shipyard.explain.explainers import ShapExplainer, ShapUnavailable, permutation
from shipyard.explain.records import ExplainMethod, Explanation
from shipyard.registry.fluent import registry_client
from shipyard.registry.loading import LoadedModel, load_model
from shipyard.registry.signature import SignatureKind, enforce

DEFAULT_BACKGROUND_ROWS = 100
_SEED = 0


def explain(
    model: str | LoadedModel,
    X: Any,
    *,
    method: str | ExplainMethod = "auto",
    background: Any | None = None,
    targets: Any | None = None,
    max_background: int = DEFAULT_BACKGROUND_ROWS,
    settings: Settings | None = None,
) -> Explanation:
    """Explain ``model``'s outputs on the rows ``X``.

    Args:
        model: a ``models:/`` or ``runs:/`` URI (loaded without ``trusted``), or a loaded model.
        X: the rows: a DataFrame (or what the model's signature takes), or a Parquet/CSV path.
        method: ``shap`` (per-row values: tree and linear models), ``permutation`` (global importance, any
            model, needs ``targets``) or ``auto`` (SHAP when it applies, else permutation given targets).
        background: rows the SHAP values are relative to; default the model's packaged baseline.
        targets: the true labels of ``X``'s rows, or the name of the column of ``X`` holding them.
        max_background: background rows kept (a seeded sample); SHAP's cost grows with them.

    Raises:
        InvalidInput: no background (neither ``background`` nor a packaged baseline), ``X`` missing a column
            of the model's signature (named), a model SHAP cannot explain for ``method="shap"`` (its type
            named), or permutation without ``targets``.
    """
    chosen = ExplainMethod.parse(method)
    loaded = resolve_model(model, settings)
    if isinstance(targets, str) and isinstance(X, pd.DataFrame) and targets in X.columns:
        targets = X[targets].to_numpy()
    rows = model_rows(loaded, X, "X")
    if chosen is not ExplainMethod.PERMUTATION:
        try:
            explainer = shap_explainer(loaded, background=background, max_background=max_background)
        except ShapUnavailable:
            if chosen is ExplainMethod.SHAP or targets is None:
                raise
        else:
            return explainer.explain(rows)
    if targets is None:
        raise InvalidInput(
            f"permutation importance of {loaded.uri} needs targets: the true labels of X's rows "
            "(targets=y, or the name of X's label column)"
        )
    truth = np.asarray(targets)
    if truth.ndim != 1 or len(truth) != len(rows):
        raise InvalidInput(
            f"targets must be one label per row of X ({len(rows)}), got shape {list(truth.shape)}"
        )
    tensor = loaded.signature is not None and loaded.signature.kind is SignatureKind.TENSOR
    classifier = loaded.classes is not None or callable(getattr(loaded.raw, "predict_proba", None))

    def predict(data: pd.DataFrame) -> Any:
        return loaded.predict(data.to_numpy() if tensor else data)

    return permutation(predict, rows, truth, classifier=classifier)


def shap_explainer(
    model: LoadedModel, *, background: Any | None = None, max_background: int = DEFAULT_BACKGROUND_ROWS
) -> ShapExplainer:
    """A SHAP explainer for ``model`` against ``background`` (default: its packaged baseline), built once
    and reusable on any rows (:meth:`ShapExplainer.explain` takes :func:`model_rows`' frames).

    Raises:
        ShapUnavailable: (an `InvalidInput`) no background, no native model object, or a model type SHAP
            cannot explain; each named with the way out.
        InvalidInput: ``max_background`` < 1, or the background lacks a column the model takes.
    """
    if max_background < 1:
        raise InvalidInput(f"max_background must be >= 1, got {max_background}")
    estimator = native_model(model)
    if background is None:
        background = model.baseline()
        what = f"the baseline packaged with {model.uri}"
        if background is None:
            raise ShapUnavailable(
                f"model {model.uri} has no baseline to explain against: pass background= (rows like its "
                "training features), or log the model with baseline= (shipyard.models.log(model, "
                "baseline=X_train)) and register that version"
            )
    else:
        what = "background"
    rows = model_rows(model, background, what)
    if len(rows) > max_background:
        rows = rows.sample(n=max_background, random_state=_SEED)
    return ShapExplainer(estimator, rows, classes=model.classes)


def resolve_model(model: str | LoadedModel, settings: Settings | None = None) -> LoadedModel:
    """``model`` loaded from its URI, or as given."""
    if isinstance(model, LoadedModel):
        return model
    if isinstance(model, str):
        return load_model(model, registry_client(settings))
    raise InvalidInput(f"model must be a models:/ or runs:/ URI or a LoadedModel, not {type(model).__name__}")


def native_model(model: LoadedModel) -> Any:
    """The object SHAP reads trees or coefficients from: the scikit-learn estimator, the XGBoost model, the
    LightGBM booster.

    Raises:
        ShapUnavailable: the model runs as an ONNX graph, or its flavor holds no such object.
    """
    raw = model.raw
    if getattr(raw, "runtime", None) == "onnx":
        raise ShapUnavailable(
            f"{model.uri} was loaded as its ONNX copy, which SHAP cannot look inside; load it with "
            "prefer='native' (shipyard.models.load(uri, prefer='native'))"
        )
    for attribute in ("estimator", "model", "booster"):
        found = getattr(raw, attribute, None)
        if found is not None:
            return found
    raise ShapUnavailable(
        f"SHAP cannot explain {model.uri}: a {model.flavor} model ({type(raw).__name__}) exposes no tree or "
        "linear model; pass targets= and method='permutation'"
    )


def model_rows(model: LoadedModel, data: Any, what: str) -> pd.DataFrame:
    """``data`` as the frame the model's signature describes (its columns, in order, types checked), with
    ``x0, x1, …`` as names for a model without column names.

    Raises:
        InvalidInput: a missing column (named, with ``what``), no rows, or data that is not a table.
    """
    if isinstance(data, str | Path):
        data = as_frame(data, what)
    if model.signature is not None:
        try:
            data = enforce(model.signature, data)
        except InvalidInput as exc:
            raise InvalidInput(f"{what}: {exc}") from exc
    if isinstance(data, pd.DataFrame):
        frame = data
    else:
        array = np.asarray(data)
        if array.ndim != 2:
            raise InvalidInput(f"{what} must be a table (rows by features), got shape {list(array.shape)}")
        frame = pd.DataFrame(array, columns=[f"x{i}" for i in range(array.shape[1])])
    if frame.empty:
        raise InvalidInput(f"{what} has no rows or no columns")
    return frame.reset_index(drop=True)
