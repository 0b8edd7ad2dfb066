"""Explanations of served models: ``POST /v1/models/{name}:explain`` and ``POST /v2/models/{name}/explain``.

Both take the body their predict route takes (``{"instances": [...]}``, an OIP v2 inference request) and
answer SHAP values of those rows (:func:`shipyard.explain.explain`'s ``Explanation``): v1 as
``{"explanations": [per row], ...}``, v2 as the explanation's JSON with the model's name and version.

A version's explainer is built on its first explain request, from the baseline packaged with it (a version
logged without one answers 400 saying how to log one), with the model's native object: a scikit-learn
model served as its ONNX copy is loaded again natively for it. Explaining runs on a thread of its own, so it
never holds a predict thread; at most :data:`MAX_PENDING` requests wait for it (503 with ``Retry-After``
beyond), each of at most :data:`MAX_ROWS` rows (400 beyond).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pandas as pd

from shipyard.errors import InvalidInput, Overloaded
from shipyard.explain import Explanation, ShapExplainer, ShapUnavailable, model_rows, shap_explainer
from shipyard.serving.inference import ModelInput, combine
from shipyard.serving.repository import Loader, ServedModel

log = logging.getLogger("shipyard.serving")

MAX_ROWS = 100  # SHAP on a 100-tree forest: about 0.6 s for 100 rows (more are for the library or CLI)
MAX_PENDING = 8


class ServedExplainers:
    """The explainers of a server's model versions, built lazily; see the module doc.

    Args:
        loader: the repository's loader, for a version that must be loaded again natively.
    """

    def __init__(self, loader: Loader, *, max_rows: int = MAX_ROWS, max_pending: int = MAX_PENDING) -> None:
        self.loader = loader
        self.max_rows = max_rows
        self.max_pending = max_pending
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="explain")
        # Touched only on the explain thread, so without a lock.
        self._built: dict[tuple[str, str], ShapExplainer] = {}
        self._refused: dict[tuple[str, str], ShapUnavailable] = {}
        self._pending = 0  # touched only on the event loop

    async def explain(self, served: ServedModel, item: ModelInput) -> Explanation:
        """SHAP values of one request's rows.

        Raises:
            InvalidInput: too many rows, no baseline, a model SHAP cannot explain, rows it cannot take.
            Overloaded: :attr:`max_pending` explanations are already waiting.
            ModelNotReady: the version has not loaded.
        """
        served.require_ready()
        if item.rows > self.max_rows:
            raise InvalidInput(f"an explain request takes at most {self.max_rows} rows, got {item.rows}")
        if self._pending >= self.max_pending:
            raise Overloaded(f"{self._pending} explanations are waiting; retry later", retry_after_s=1.0)
        self._pending += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(
                self._executor, self._explain, served, item
            )
        finally:
            self._pending -= 1

    def close(self) -> None:
        """Stop the explain thread (what waits is dropped: the server is stopping)."""
        self._executor.shutdown(wait=False, cancel_futures=True)

    def _explain(self, served: ServedModel, item: ModelInput) -> Explanation:
        explainer = self._explainer(served)
        data, _ = combine([item])
        if isinstance(data, Mapping) and served.signature is None:
            data = pd.DataFrame(dict(data))
        # With a pre-processor, what is explained is the model on the rows it made (the model's features).
        data = served.model_rows(data)
        return explainer.explain(model_rows(served.require_ready(), data, "the request"))

    def _explainer(self, served: ServedModel) -> ShapExplainer:
        key = (served.name, served.label)
        built = self._built.get(key)
        if built is not None:
            return built
        refused = self._refused.get(key)
        if refused is not None:
            raise refused
        model = served.require_ready()
        if not model.manifest.has_baseline:
            # Not remembered: nothing else can change, but the check is one attribute read.
            raise InvalidInput(
                f"model {served.name!r} version {served.version} cannot be explained: it was logged without "
                "a baseline to explain against; log it with shipyard.models.log(model, baseline=X_train), "
                "register and serve that version"
            )
        if getattr(model.raw, "runtime", None) == "onnx":
            model = self.loader(served.source_uri, **{**served.config.options, "prefer": "native"})
        try:
            built = shap_explainer(model)
        except ShapUnavailable as exc:
            self._refused[key] = exc
            raise
        log.info("model %s version %s: explainer %s built", served.name, served.version, built.name)
        self._built[key] = built
        return built


def v1_explanations(explanation: Explanation) -> dict[str, Any]:
    """A KServe v1 answer: ``explanations`` (each row's values, as ``predictions`` are) and what they mean."""
    document = explanation.to_dict()
    rows = document.pop("values")
    return {"explanations": rows, **document}


def v2_explanation(served: ServedModel, request_id: str | None, explanation: Explanation) -> dict[str, Any]:
    """An OIP v2-style answer: the model's name and version, the request's id, and the explanation."""
    answer: dict[str, Any] = {"model_name": served.name, "model_version": served.version}
    if request_id:
        answer["id"] = request_id
    return {**answer, **explanation.to_dict()}


def header_length(value: str | None) -> int | None:
    """``Inference-Header-Content-Length`` (a binary-tensor body's JSON part), checked."""
    try:
        return int(value) if value is not None else None
    except ValueError:
        raise InvalidInput(f"header Inference-Header-Content-Length is not a number: {value!r}") from None
