"""From request tensors to a model's input, and from its predictions back to output tensors. Pure logic.

A model with a dataframe signature takes one 1-D tensor per column (named after it, ``[N]`` or ``[N, 1]``), or
one ``[N, k]`` tensor whose columns are the signature's in order — what most v2 clients send. A model with a
tensor signature (or none) takes one tensor as its array. Whatever the shape, the model's signature then
checks types and names (``LoadedModel.predict``), so a bad request is refused naming the column.

A request's rows are kept as plain arrays (:class:`ModelInput`) so that a batch of requests concatenates
column by column with numpy before one DataFrame is built for the whole batch.

Outputs: ``predict`` (the labels, or values) always; ``predict_proba`` for a model that has it. A request asks
for them by name (OIP ``outputs``) or by kind (``labels`` / ``probabilities``: OIP ``parameters.output``, the
``?output=`` query of the v1 and records routes), checked by :func:`requested_outputs`. A batch computes
probabilities only when one of its requests asks for them, and labels always (the payload log keeps them).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from shipyard.errors import InvalidInput
from shipyard.registry.signature import Signature, SignatureKind

PREDICT = "predict"
PREDICT_PROBA = "predict_proba"
# What a request may ask for by kind, and the output that answers it.
OUTPUT_KINDS = {"labels": PREDICT, "probabilities": PREDICT_PROBA}


class MatrixColumns(Mapping[str, np.ndarray]):
    """An ``[N, k]`` matrix read as its ``k`` named columns, in order. What one ``[N, k]`` tensor sends a
    dataframe model: a batch of them concatenates as one block, and no column is sliced out unless asked."""

    __slots__ = ("matrix", "names")

    def __init__(self, matrix: np.ndarray, names: Sequence[str]) -> None:
        self.matrix = matrix
        self.names = tuple(names)

    def __getitem__(self, name: str) -> np.ndarray:
        try:
            return self.matrix[:, self.names.index(name)]
        except ValueError:
            raise KeyError(name) from None

    def __iter__(self) -> Iterator[str]:
        return iter(self.names)

    def __len__(self) -> int:
        return len(self.names)


@dataclass(frozen=True)
class ModelInput:
    """One request's rows: ``columns`` (name → 1-D array) for a dataframe model, else ``array``."""

    rows: int
    columns: Mapping[str, np.ndarray] | None = None
    array: np.ndarray | None = None
    outputs: tuple[str, ...] = (PREDICT,)


def input_names(signature: Signature | None) -> tuple[str, ...] | None:
    """The column names a dataframe model takes, or None for a tensor model (or no signature)."""
    if signature is None or signature.kind is not SignatureKind.DATAFRAME:
        return None
    return signature.input_names


def requested_outputs(
    model_name: str,
    available: Sequence[str] | None,
    names: Sequence[str] = (),
    kind: Any = None,
    where: str = "parameters.output",
) -> tuple[str, ...]:
    """The outputs one request asks for: by ``names`` (OIP ``outputs``), else by ``kind`` (``"labels"`` or
    ``"probabilities"``, given as ``where``), else the labels.

    Args:
        available: the model's outputs; None while it is not loaded (only the names are checked then).

    Raises:
        InvalidInput: an unknown kind or output, one the model does not have, or names and a kind that
            disagree; the message says what the model has.
    """
    have = tuple(available) if available is not None else tuple(OUTPUT_KINDS.values())
    if kind is not None:
        if not isinstance(kind, str) or kind not in OUTPUT_KINDS:
            kinds = " or ".join(repr(k) for k in OUTPUT_KINDS)
            raise InvalidInput(f"{where} must be {kinds}, got {kind!r}")
        output = OUTPUT_KINDS[kind]
        if names and tuple(names) != (output,):
            raise InvalidInput(
                f"{where} {kind!r} is output {output!r}, but outputs name {', '.join(map(repr, names))}; "
                "give one of them"
            )
        if output not in have:
            answers = ", ".join(repr(k) for k, o in OUTPUT_KINDS.items() if o in have)
            raise InvalidInput(
                f"model {model_name!r} cannot answer {where} {kind!r}: it has no {output}; "
                f"it answers: {answers}"
            )
        return (output,)
    for name in names:
        if name not in have:
            raise InvalidInput(f"model {model_name!r} has no output {name!r}; it has: {', '.join(have)}")
    return tuple(dict.fromkeys(names)) or (PREDICT,)


def model_input(
    model_name: str,
    signature: Signature | None,
    tensors: Sequence[tuple[str, np.ndarray]],
    outputs: tuple[str, ...] = (PREDICT,),
) -> ModelInput:
    """The rows of one request, given its ``(name, array)`` input tensors and the ``outputs`` it asks for
    (as :func:`requested_outputs` checked them).

    Raises:
        InvalidInput: no tensor, tensors with different row counts, or names the model does not take.
    """
    if not tensors:
        raise InvalidInput(f"model {model_name!r}: the request has no input tensors")
    names = input_names(signature)
    given = [name for name, _ in tensors]
    if names is not None and len(tensors) == 1 and given[0] not in names:
        matrix = tensors[0][1]
        if matrix.ndim == 2 and matrix.shape[1] == len(names):
            return ModelInput(matrix.shape[0], columns=MatrixColumns(matrix, names), outputs=outputs)
        raise InvalidInput(
            f"model {model_name!r}: input {given[0]!r} must be one [N, {len(names)}] tensor (the columns "
            f"{_preview(names)} in order) or one 1-D tensor per column; got shape {list(matrix.shape)}"
        )
    if names is None and len(tensors) == 1:
        array = tensors[0][1]
        return ModelInput(int(array.shape[0]) if array.ndim else 1, array=array, outputs=outputs)
    if names is not None:
        extra = [n for n in given if n not in names]
        if extra:
            raise InvalidInput(f"model {model_name!r} has no input {extra[0]!r}; it takes: {_preview(names)}")
    columns: dict[str, np.ndarray] = {}
    rows: int | None = None
    for name, array in tensors:
        if array.ndim == 2 and array.shape[1] == 1:
            array = array[:, 0]
        if array.ndim != 1:
            raise InvalidInput(
                f"input {name!r}: a column is a [N] or [N, 1] tensor, got shape {list(array.shape)}"
            )
        if rows is not None and array.shape[0] != rows:
            raise InvalidInput(f"input {name!r} has {array.shape[0]} rows but {given[0]!r} has {rows}")
        rows = array.shape[0]
        columns[name] = array
    return ModelInput(rows or 0, columns=columns, outputs=outputs)


def combine(inputs: Sequence[ModelInput]) -> tuple[Any, tuple[str, ...]]:
    """One model input for a batch of requests (a dict of column arrays, which a signature check turns into
    a DataFrame most cheaply; one ``[N, k]`` matrix of the signature's columns in order, when every request
    sent one; or one array), and the outputs any of them wants.

    Raises:
        InvalidInput: requests of one batch disagree on their columns.
    """
    wanted = tuple(dict.fromkeys(o for i in inputs for o in i.outputs))
    first = inputs[0]
    if first.columns is None:
        arrays = [i.array for i in inputs]
        if any(a is None for a in arrays):
            raise InvalidInput("requests of one batch mix column inputs and array inputs")
        data = arrays[0] if len(arrays) == 1 else np.concatenate(arrays)  # type: ignore[arg-type]
        return data, wanted
    names = list(first.columns)
    if any(i.columns is None or list(i.columns) != names for i in inputs):
        raise InvalidInput("requests of one batch name different columns")
    blocks = [i.columns.matrix for i in inputs if isinstance(i.columns, MatrixColumns)]
    if len(blocks) == len(inputs):
        # Every request sent the columns in the signature's order as one matrix: so goes the batch, which
        # the signature check takes as a whole (a dict of columns is checked, and copied, column by column).
        return (blocks[0] if len(blocks) == 1 else np.concatenate(blocks)), wanted
    if len(inputs) == 1:
        return dict(first.columns), wanted
    return {n: np.concatenate([i.columns[n] for i in inputs]) for n in names}, wanted  # type: ignore[index]


def split(outputs: dict[str, np.ndarray], inputs: Sequence[ModelInput]) -> list[dict[str, np.ndarray]]:
    """Cut a batch's outputs back into one dict per request, by each request's row count: the outputs it
    asked for, and ``predict`` whenever the batch computed it."""
    total = sum(i.rows for i in inputs)
    for name, values in outputs.items():
        if len(values) != total:
            raise RuntimeError(f"the model returned {len(values)} rows of {name!r} for {total} input rows")
    results: list[dict[str, np.ndarray]] = []
    start = 0
    for item in inputs:
        end = start + item.rows
        result = {name: outputs[name][start:end] for name in item.outputs}
        if PREDICT not in result and PREDICT in outputs:
            result[PREDICT] = outputs[PREDICT][start:end]
        results.append(result)
        start = end
    return results


def unacceptable_value(item: ModelInput, signature: Signature | None) -> str | None:
    """Where a request holds a value outside what the model declares it takes, for a model that raised on
    it: NaN or null in a column its signature does not mark nullable, or ±Infinity anywhere (a signature
    cannot allow it). None when there is none, so the failure is the model's own.

    Only called once a model has raised (never on the hot path): a model that takes NaN (a gradient-boosted
    tree, a forest in scikit-learn >= 1.4) keeps getting it.
    """
    nullable = {spec.name for spec in signature.inputs if spec.nullable} if signature is not None else set()
    if item.columns is not None:
        arrays = [(f"column {name!r}", array, name in nullable) for name, array in item.columns.items()]
    else:
        arrays = [("input", np.asarray(item.array), False)]
    for where, array, allows_missing in arrays:
        missing, infinite = _non_finite(array)
        bad = infinite if allows_missing else missing | infinite
        if bad.any():
            position = tuple(int(i) for i in np.argwhere(bad)[0])
            value = array[position]
            shown = "null" if value is None else "NaN" if value != value else "Infinity"
            shown = f"-{shown}" if shown == "Infinity" and value < 0 else shown
            at = f"row {position[0]}" if len(position) == 1 else f"element {list(position)}"
            return f"{where} holds {shown} at {at}"
    return None


def _non_finite(array: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Masks of missing (NaN, None) and infinite values; all False for arrays that cannot hold them."""
    if array.dtype.kind in "fc":
        return np.isnan(array), np.isinf(array)
    if array.dtype == object:
        missing = np.frompyfunc(lambda v: v is None or (isinstance(v, float) and v != v), 1, 1)
        infinite = np.frompyfunc(lambda v: isinstance(v, float) and v in (np.inf, -np.inf), 1, 1)
        return missing(array).astype(bool), infinite(array).astype(bool)
    none = np.zeros(array.shape, dtype=bool)
    return none, none


def as_array(values: Any) -> np.ndarray:
    """A prediction as a numpy array (pandas objects and lists included)."""
    if isinstance(values, pd.DataFrame | pd.Series):
        return values.to_numpy()
    return np.asarray(values)


def _preview(names: Sequence[str], limit: int = 6) -> str:
    shown = ", ".join(repr(n) for n in names[:limit])
    return shown + (f", … ({len(names)} in all)" if len(names) > limit else "")
