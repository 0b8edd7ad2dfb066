"""Pre- and post-processing around a served model (KServe's transformer), run in the model's own batch.

A deployment names each step by a model URI::

    models:
      - name: churn
        uri: models:/churn@champion
        preprocess: models:/churn-prep@champion    # predict(frame) -> the model's input frame, row for row
        postprocess: models:/churn-labels/1        # predict(frame of the model's outputs) -> the answer

A step is a package like any model, fetched and verified the same way: usually a ``pyfunc`` (a code reference
to a class with ``predict`` and a JSON config, :mod:`shipyard.registry.flavors.pyfunc`), so no code travels
in it. Its own signature, when it was logged with an input example, checks what it is given:

* **pre-processing** takes the request: clients send what *its* signature names (the model's metadata shows
  those inputs), and it returns one row per row it got; the model's signature then checks its output. Both
  the raw and the transformed rows go into the payload log (``inputs`` and ``transformed``), and monitoring
  compares the transformed ones, which are what the model was trained on.
* **post-processing** takes a frame of the model's outputs: ``predict`` (``predict_0``, ``predict_1``, ... for
  a 2-D output) and, when its signature names them, the model's probabilities as ``predict_proba_<class>``.
  What it returns, one value (or row) per row, is the ``predict`` output clients get; ``predict_proba``, when
  asked for, stays the model's.

A step that raises fails its requests with 500 naming the step; a request its signature refuses gets 400
naming the field. At load the input example runs through the whole chain, so a pre-processor whose output the
model cannot take fails the load, not the first request.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from shipyard.errors import InvalidInput, PredictionFailed
from shipyard.registry.loading import LoadedModel
from shipyard.serving.inference import PREDICT, PREDICT_PROBA, as_array

PROBA_PREFIX = f"{PREDICT_PROBA}_"


@dataclass(frozen=True)
class Transformers:
    """The loaded steps around one served version; either may be None."""

    pre: LoadedModel | None = None
    post: LoadedModel | None = None
    pre_uri: str | None = None
    post_uri: str | None = None
    # Whether the post-processor's signature names a ``predict_proba_<class>`` column: read once, at load.
    wants_probabilities: bool = False

    @classmethod
    def load(
        cls,
        loader: Callable[..., LoadedModel],
        preprocess: str | None,
        postprocess: str | None,
        options: Mapping[str, Any],
    ) -> Transformers:
        """Load the named steps with ``loader``; only ``trusted`` of the model's options applies to them.

        Raises:
            InvalidInput: a step failed to load (the message names the step and its URI).
        """
        kwargs = {"trusted": True} if options.get("trusted") else {}
        loaded: dict[str, LoadedModel | None] = {}
        for step, uri in (("preprocess", preprocess), ("postprocess", postprocess)):
            if uri is None:
                loaded[step] = None
                continue
            try:
                loaded[step] = loader(uri, **kwargs)
            except Exception as exc:
                raise InvalidInput(f"{step} {uri!r} failed to load: {type(exc).__name__}: {exc}") from exc
        post = loaded["postprocess"]
        signature = post.signature if post is not None else None
        names = signature.input_names if signature is not None and signature.input_names else ()
        wants = any(str(n).startswith(PROBA_PREFIX) for n in names)
        return cls(loaded["preprocess"], post, preprocess, postprocess, wants)

    def preprocess(self, data: Any) -> pd.DataFrame:
        """The model's input for a batch of request rows.

        Raises:
            InvalidInput: the pre-processor's signature refuses the rows (names the field).
            PredictionFailed: it raised, or returned something other than one row per row.
        """
        assert self.pre is not None
        rows = _rows(data)
        try:
            out = self.pre.predict(data)
        except InvalidInput:
            raise
        except Exception as exc:
            raise PredictionFailed(f"preprocess {self.pre_uri!r} raised {type(exc).__name__}: {exc}") from exc
        if isinstance(out, Mapping) and not isinstance(out, pd.DataFrame):
            try:
                out = pd.DataFrame(dict(out))
            except ValueError as exc:
                raise PredictionFailed(
                    f"preprocess {self.pre_uri!r} returned unequal columns: {exc}"
                ) from exc
        if not isinstance(out, pd.DataFrame):
            raise PredictionFailed(
                f"preprocess {self.pre_uri!r} returned {type(out).__name__}; it must return a DataFrame "
                "(or a dict of columns) of the model's inputs"
            )
        if len(out) != rows:
            raise PredictionFailed(f"preprocess {self.pre_uri!r} returned {len(out)} rows for {rows}")
        return out.reset_index(drop=True)

    def postprocess(self, outputs: Mapping[str, np.ndarray], classes: Any) -> np.ndarray:
        """The answer's ``predict`` from the model's outputs (a batch).

        Raises:
            PredictionFailed: the post-processor raised, was refused its input, or returned another row count.
        """
        assert self.post is not None
        frame = output_frame(outputs, classes)
        try:
            out = as_array(self.post.predict(frame))
        except InvalidInput as exc:  # its input is the model's output: a deployment error, not the client's
            raise PredictionFailed(
                f"postprocess {self.post_uri!r} cannot take the model's outputs: {exc}"
            ) from exc
        except Exception as exc:
            raise PredictionFailed(
                f"postprocess {self.post_uri!r} raised {type(exc).__name__}: {exc}"
            ) from exc
        if out.ndim == 0 or len(out) != len(frame):
            got = "a scalar" if out.ndim == 0 else f"{len(out)} rows"
            raise PredictionFailed(f"postprocess {self.post_uri!r} returned {got} for {len(frame)}")
        return out


def output_frame(outputs: Mapping[str, np.ndarray], classes: Any) -> pd.DataFrame:
    """The model's outputs as the post-processor's input frame (see the module doc for its columns)."""
    columns: dict[str, np.ndarray] = {}
    predicted = outputs[PREDICT]
    if predicted.ndim == 1:
        columns[PREDICT] = predicted
    else:
        flat = predicted.reshape(len(predicted), -1)
        columns.update({f"{PREDICT}_{i}": flat[:, i] for i in range(flat.shape[1])})
    proba = outputs.get(PREDICT_PROBA)
    if proba is not None:
        names = list(classes) if classes is not None and len(classes) == proba.shape[1] else None
        for i in range(proba.shape[1]):
            columns[f"{PROBA_PREFIX}{names[i] if names is not None else i}"] = proba[:, i]
    return pd.DataFrame(columns)


def _rows(data: Any) -> int:
    if isinstance(data, Mapping):
        first = next(iter(data.values()), None)
        return 0 if first is None else len(first)
    return len(data)
