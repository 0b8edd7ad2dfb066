"""The models a server holds: each loads in the background, then is ready, or failed with its error.

A model that fails to load leaves the server up: that model answers not-ready, with the error on its
ready endpoint and in the log, and every other model serves as usual.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import numpy as np
import pandas as pd

from shipyard.errors import InvalidInput, ModelNotReady, NotFound, PredictionFailed
from shipyard.registry.loading import LoadedModel
from shipyard.registry.signature import Signature, SignatureKind
from shipyard.registry.uri import RegistryUri, parse_model_uri
from shipyard.serving.batching import BatchPolicy
from shipyard.serving.inference import (
    PREDICT,
    PREDICT_PROBA,
    ModelInput,
    as_array,
    combine,
    split,
    unacceptable_value,
)
from shipyard.serving.routing import Deployment
from shipyard.serving.tensors import datatype_for, datatype_of
from shipyard.serving.transformers import Transformers

log = logging.getLogger("shipyard.serving")

Loader = Callable[..., LoadedModel]  # loader(uri, **options)


class ModelState(StrEnum):
    """Where a served model is in its life."""

    LOADING = "loading"
    READY = "ready"
    FAILED = "failed"


@dataclass(frozen=True)
class ModelConfig:
    """One model to serve, in one version (``uri``) or several (``versions``) with traffic between them.

    Attributes:
        name: the name clients use (``/v2/models/{name}``).
        uri: what to load: ``models:/churn@champion``, ``models:/churn/3``, ``runs:/…/model`` or a folder.
        versions: instead of ``uri``, several by label (``{"champion": "models:/churn@champion", …}``).
        traffic: label → weight (a canary: ``{"champion": 90, "challenger": 10}``); default: all to the first.
        shadow: a label whose version also gets a copy of every request (answer discarded, both logged).
        version: with ``uri``, the version clients see; default the registry version it resolves to.
        batching: how requests to each version are batched.
        options: passed to the model's loader (e.g. ``device="cuda"`` for torch and ONNX models).
        feature_service: requests send entity keys (and request data); the server looks up this feature
            service's features online and gives the model those (the deployment names the repository).
        preprocess: a model URI whose ``predict`` turns request rows into the model's input rows, in the
            same batch (:mod:`shipyard.serving.transformers`).
        postprocess: a model URI whose ``predict`` turns the model's outputs into the answer's ``predict``.
    """

    name: str
    uri: str | None = None
    version: str | None = None
    batching: BatchPolicy = field(default_factory=BatchPolicy)
    options: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    traffic: dict[str, float] = field(default_factory=dict)
    shadow: str | None = None
    feature_service: str | None = None
    preprocess: str | None = None
    postprocess: str | None = None

    def targets(self) -> list[tuple[str, str]]:
        """``(label, uri)`` of each version to load.

        Raises:
            InvalidInput: neither or both of ``uri`` and ``versions``.
        """
        if bool(self.uri) == bool(self.versions):
            raise InvalidInput(f"model {self.name!r}: give either uri or versions")
        if self.uri:
            return [(self.version or default_label(self.uri), self.uri)]
        return list(self.versions.items())


def default_label(uri: str) -> str:
    """A version's label from its URI: the alias (``@champion``), the version (``/3``), else ``default``."""
    try:
        parsed = parse_model_uri(uri)
    except InvalidInput:
        return "default"  # loading it will say what is wrong with it
    if not isinstance(parsed, RegistryUri):
        return "default"
    if parsed.alias is not None:
        return parsed.alias
    return uri.strip().rsplit("/", 1)[1]  # the version, "latest" or the stage, as written


@dataclass(frozen=True)
class TensorInfo:
    """A tensor in model metadata: ``shape`` uses -1 for a dimension of any length; ``parameters`` (the
    classes of ``predict_proba``'s columns) go into the metadata when set."""

    name: str
    datatype: str
    shape: tuple[int, ...]
    parameters: dict[str, Any] | None = None


class Outputs(dict[str, np.ndarray]):
    """One request's outputs; ``transformed`` holds its rows as a pre-processor gave them to the model (for
    the payload log; the encoders see only the dict)."""

    transformed: pd.DataFrame | None = None


class ServedModel:
    """One model version in a server. ``predict_batch`` is thread-safe as far as the model's predict is."""

    def __init__(self, config: ModelConfig, label: str, uri: str) -> None:
        self.config = config
        self.name = config.name
        self.label = label
        self.uri = uri
        self.version = config.version or label
        # Where the loaded version came from: models:/churn/3 once a registry URI has resolved.
        self.source_uri = uri
        self.state = ModelState.LOADING
        self.error: str | None = None
        self.model: LoadedModel | None = None
        self.transformers = Transformers()
        self.load_seconds: float | None = None
        self.inputs: list[TensorInfo] = []
        self.outputs: list[TensorInfo] = []

    @property
    def is_ready(self) -> bool:
        return self.state is ModelState.READY

    @property
    def signature(self) -> Signature | None:
        """What requests are checked against: the pre-processor's signature when there is one."""
        if self.transformers.pre is not None:
            return self.transformers.pre.signature
        return self.model.signature if self.model is not None else None

    @property
    def output_names(self) -> tuple[str, ...]:
        """The outputs a request may ask for (``predict``, and ``predict_proba`` when the model has it)."""
        return tuple(info.name for info in self.outputs)

    @property
    def platform(self) -> str:
        return f"shipyard_{self.model.flavor}" if self.model is not None else "shipyard"

    def load(self, loader: Loader) -> None:
        """Load the model and warm it up on its input example; on failure record the error, never raise."""
        started = time.perf_counter()
        try:
            model = loader(self.uri, **self.config.options) if self.config.options else loader(self.uri)
            if model.version is not None:
                self.source_uri = model.version.uri
                if self.config.version is None:
                    self.version = str(model.version.version)
            self.transformers = Transformers.load(
                loader, self.config.preprocess, self.config.postprocess, self.config.options
            )
            self.model = model
            self.inputs = _input_infos(self.signature)
            self.outputs = self._warm_up(model)
        except Exception as exc:
            self.state, self.error = ModelState.FAILED, f"{type(exc).__name__}: {exc}"
            log.error("model %s (%s) failed to load: %s", self.name, self.uri, self.error)
            return
        self.load_seconds = time.perf_counter() - started
        self.state = ModelState.READY
        log.info("model %s version %s ready in %.2fs", self.name, self.version, self.load_seconds)

    def require_ready(self) -> LoadedModel:
        """The loaded model; `ModelNotReady` saying it is loading or why it failed."""
        if self.state is ModelState.READY and self.model is not None:
            return self.model
        if self.state is ModelState.FAILED:
            raise ModelNotReady(f"model {self.name!r} version {self.version} failed to load: {self.error}")
        raise ModelNotReady(f"model {self.name!r} version {self.version} is still loading")

    def predict_batch(self, inputs: Sequence[ModelInput]) -> list[dict[str, np.ndarray] | Exception]:
        """Predict a batch of requests at once; a request that is bad on its own fails alone."""
        try:
            return self._answers(inputs)
        except Exception:
            if len(inputs) == 1:
                return [self._explain(inputs[0])]
        # NOTE: the merged batch failed; run each request alone so one bad request fails only itself.
        return [self._predict_one(i) for i in inputs]

    def _predict_one(self, item: ModelInput) -> dict[str, np.ndarray] | Exception:
        try:
            return self._answers([item])[0]
        except Exception:
            return self._explain(item)

    def _answers(self, inputs: Sequence[ModelInput]) -> list[dict[str, np.ndarray]]:
        outputs, transformed = self._run(inputs)
        answers = split(outputs, inputs)
        if transformed is None:
            return answers
        # Each request's slice of the transformed batch (a view, turned into JSON only if it is logged).
        results: list[dict[str, np.ndarray]] = []
        start = 0
        for item, answer in zip(inputs, answers, strict=True):
            result = Outputs(answer)
            result.transformed = transformed.iloc[start : start + item.rows]
            start += item.rows
            results.append(result)
        return results

    def _explain(self, item: ModelInput) -> Exception:
        try:
            self._predict([item])
        except InvalidInput as exc:
            return exc
        except Exception as exc:
            raised = f"model {self.name!r} version {self.version} raised {type(exc).__name__}: {exc}"
            # A value the model's signature does not allow is the client's error (400), not the model's.
            problem = unacceptable_value(item, self.signature)
            if problem is not None:
                return InvalidInput(f"{problem}, which this model cannot take ({raised})")
            return PredictionFailed(raised)
        return PredictionFailed(f"model {self.name!r} version {self.version} returned unusable output")

    def _predict(self, inputs: Sequence[ModelInput]) -> dict[str, np.ndarray]:
        return self._run(inputs)[0]

    def _run(self, inputs: Sequence[ModelInput]) -> tuple[dict[str, np.ndarray], pd.DataFrame | None]:
        """The batch's outputs, and its rows as the pre-processor made them (None without one)."""
        model = self.require_ready()
        data, wanted = combine(inputs)
        return self._chain(model, data, wanted)

    def model_rows(self, data: Any) -> Any:
        """Request rows as the model takes them: through the pre-processor when there is one."""
        if isinstance(data, dict) and self.signature is None:
            data = pd.DataFrame(data)  # no signature to build the frame: the flavor gets one as is
        if self.transformers.pre is not None:
            return self.transformers.preprocess(data)
        return data

    def _chain(
        self, model: LoadedModel, data: Any, wanted: Sequence[str]
    ) -> tuple[dict[str, np.ndarray], pd.DataFrame | None]:
        steps = self.transformers
        data = self.model_rows(data)
        transformed = data if steps.pre is not None else None
        try:
            outputs = {PREDICT: as_array(model.predict(data))}
        except InvalidInput as exc:
            if steps.pre is None:
                raise
            # The rows came from the pre-processor: what the model refuses is the deployment's error.
            raise PredictionFailed(
                f"model {self.name!r} version {self.version} cannot take the output of preprocess "
                f"{steps.pre_uri!r}: {exc}"
            ) from exc
        # Requests were checked against output_names, so a batch asks for probabilities only when it can.
        if PREDICT_PROBA in wanted or (steps.post is not None and steps.wants_probabilities):
            outputs[PREDICT_PROBA] = as_array(model.predict_proba(data))
        if steps.post is not None:
            outputs[PREDICT] = steps.postprocess(outputs, model.classes)
        return outputs, transformed

    def _warm_up(self, model: LoadedModel) -> list[TensorInfo]:
        """Run the input example once (first requests then pay no lazy init) and read the outputs' types;
        ``predict_proba`` is an output when the model has it (its columns' classes as parameters)."""
        steps = self.transformers
        example = (steps.pre if steps.pre is not None else model).input_example()
        if example is None:
            infos = [TensorInfo(PREDICT, "FP64", (-1,))]
        else:
            # Through the whole chain: a pre-processor the model cannot follow fails here, not on a request.
            predicted = self._chain(model, example, ())[0][PREDICT]
            infos = [TensorInfo(PREDICT, datatype_of(predicted), (-1, *predicted.shape[1:]))]
        if steps.pre is not None:
            example = None if example is None else steps.preprocess(example)
        if not callable(getattr(model.raw, "predict_proba", None)):
            return infos
        classes = getattr(model, "classes", None)
        parameters = {"classes": classes} if classes is not None else None
        columns = len(classes) if classes is not None else -1
        if example is None:
            infos.append(TensorInfo(PREDICT_PROBA, "FP64", (-1, columns), parameters))
            return infos
        try:
            proba = as_array(model.predict_proba(example))
        except Exception as exc:  # the labels still serve; probabilities are offered only when they work
            log.warning("model %s: predict_proba failed on its input example: %s", self.name, exc)
            return infos
        infos.append(TensorInfo(PREDICT_PROBA, datatype_of(proba), (-1, *proba.shape[1:]), parameters))
        return infos


def _input_infos(signature: Signature | None) -> list[TensorInfo]:
    if signature is None:
        return [TensorInfo("input-0", "FP64", (-1, -1))]
    if signature.kind is SignatureKind.TENSOR:
        spec = signature.inputs[0]
        return [TensorInfo("input-0", datatype_for(spec.dtype), tuple(spec.shape or (-1,)))]
    return [TensorInfo(str(spec.name), datatype_for(spec.dtype), (-1,)) for spec in signature.inputs]


class ModelRepository:
    """The served models by name, each a :class:`Deployment` of one or more versions. Loading happens in
    background threads (:meth:`load_all`)."""

    def __init__(self, configs: Sequence[ModelConfig], loader: Loader) -> None:
        names = [c.name for c in configs]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise InvalidInput(f"model name {duplicates[0]!r} is configured twice")
        self.loader = loader
        self.deployments: dict[str, Deployment] = {}
        for config in configs:
            versions = [ServedModel(config, label, uri) for label, uri in config.targets()]
            self.deployments[config.name] = Deployment(config.name, versions, config.traffic, config.shadow)
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._pending = 0

    @property
    def models(self) -> list[ServedModel]:
        """Every served version of every model."""
        return [m for d in self.deployments.values() for m in d.versions.values()]

    def load_all(self) -> None:
        """Start loading every version, each in its own thread; returns at once."""
        self._pending = len(self.models)
        for model in self.models:
            name = f"load-{model.name}-{model.label}"
            thread = threading.Thread(target=self._load, args=(model,), name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def _load(self, model: ServedModel) -> None:
        model.load(self.loader)
        with self._lock:
            self._pending -= 1
            if self._pending:
                return
        # NOTE: everything alive now (modules, the loaded models) lives as long as the server: freeze it out
        # of the collector's reach. Full collections over it paused the server 100-130 ms about once a
        # second under load, which was most of its p99.
        gc.collect()
        gc.freeze()

    def wait_loaded(self, timeout_s: float | None = None) -> None:
        """Block until every version has loaded or failed."""
        for thread in self._threads:
            thread.join(timeout_s)

    @property
    def ready(self) -> bool:
        """Whether every version of every model is ready."""
        return all(m.state is ModelState.READY for m in self.models)

    def deployment(self, name: str) -> Deployment:
        """The model ``name``; `NotFound` naming it and the served ones."""
        found = self.deployments.get(name)
        if found is None:
            known = ", ".join(sorted(self.deployments)) or "none"
            raise NotFound(f"no model named {name!r} is served here; served: {known}")
        return found

    def get(self, name: str, version: str | None = None) -> ServedModel:
        """The version ``version`` (a label or a version number) of ``name``, else the one traffic picks.

        Raises:
            NotFound: no such model or version (both named).
            ModelNotReady: no version of it that takes traffic is ready.
        """
        deployment = self.deployment(name)
        return deployment.find(version) if version is not None else deployment.route()
