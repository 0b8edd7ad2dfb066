"""From request tensors to a model's input: one [N, k] tensor kept as a block through the batch."""

from __future__ import annotations

import multiprocessing
import re

import numpy as np
import pytest

from shipyard.errors import InvalidInput
from shipyard.registry.signature import ColumnSpec, Signature
from shipyard.serving.app import new_request_id
from shipyard.serving.inference import MatrixColumns, combine, model_input

SIG = Signature((ColumnSpec("a", "float64"), ColumnSpec("b", "float64"), ColumnSpec("c", "float64")))


def _columns(**values: float) -> list[tuple[str, np.ndarray]]:
    return [(name, np.array([value])) for name, value in values.items()]


def test_one_matrix_tensor_reads_as_the_signature_columns_in_order() -> None:
    matrix = np.arange(6.0).reshape(2, 3)
    item = model_input("m", SIG, [("input-0", matrix)])
    assert item.rows == 2 and isinstance(item.columns, MatrixColumns)
    assert list(item.columns) == ["a", "b", "c"] and len(item.columns) == 3
    assert {k: v.tolist() for k, v in item.columns.items()} == {"a": [0, 3], "b": [1, 4], "c": [2, 5]}
    with pytest.raises(KeyError):
        item.columns["d"]


def test_a_batch_of_matrices_is_one_matrix_and_a_mixed_batch_is_columns() -> None:
    first = model_input("m", SIG, [("input-0", np.arange(6.0).reshape(2, 3))])
    second = model_input("m", SIG, [("input-0", np.arange(6.0, 9.0).reshape(1, 3))])
    data, wanted = combine([first, second])
    assert isinstance(data, np.ndarray) and data.tolist() == [[0, 1, 2], [3, 4, 5], [6, 7, 8]]
    assert wanted == ("predict",)
    by_column = model_input("m", SIG, _columns(a=9.0, b=10.0, c=11.0))
    mixed, _ = combine([first, by_column])
    assert {k: v.tolist() for k, v in mixed.items()} == {"a": [0, 3, 9], "b": [1, 4, 10], "c": [2, 5, 11]}
    reordered = model_input("m", SIG, _columns(b=1.0, a=1.0, c=1.0))
    with pytest.raises(InvalidInput, match="requests of one batch name different columns"):
        combine([first, reordered])


def _child_id(queue: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    queue.put(new_request_id())


def test_request_ids_are_unique_hex_and_a_forked_child_draws_its_own_prefix() -> None:
    ids = [new_request_id() for _ in range(10_000)]
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_child_id, args=(queue,))
    child.start()
    theirs = queue.get(timeout=30)
    child.join(30)
    assert re.fullmatch(r"[0-9a-f]{32}", theirs) and theirs[:16] != ids[0][:16]
