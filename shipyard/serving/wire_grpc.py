"""Open Inference Protocol v2 over gRPC: ``ModelInferRequest`` in, ``ModelInferResponse`` out. Pure logic.

A request carries each input's elements either in its typed ``contents`` (the repeated field of its
datatype: ``fp32_contents`` for FP32, ``int_contents`` for INT8/16/32, …) or, for all inputs at once, in
``raw_input_contents`` (one entry per input, the layout of Triton's binary extension,
:mod:`shipyard.serving.wire_binary`), which is what tritonclient sends. Both decode to the same
:class:`~shipyard.serving.tensors.InferRequest` the REST codec makes, so everything after decoding — the
model's signature, batching, routing, payload logs — is shared with REST.

Checks, in the REST codec's words where they apply: names, datatypes and shapes (and the element cap) before
any data is read; a typed field that holds a count other than the shape's, or values out of the datatype's
range (300 for INT8), or the wrong field for the datatype; raw contents whose count differs from the
inputs', or whose size differs from the shape's; raw and typed contents mixed. FP16 travels only raw, as
the protocol says.

The answer comes back the way the question came: raw outputs for a raw request, typed ``contents`` else.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from shipyard.errors import InvalidInput
from shipyard.serving import grpc_messages as messages
from shipyard.serving.datatypes import DATATYPES, datatype_of
from shipyard.serving.tensors import (
    InferRequest,
    Tensor,
    input_headers,
    parameters_object,
    requested_output_tensors,
)
from shipyard.serving.wire_binary import pack_bytes, pack_fixed, unpack_bytes, unpack_fixed

# Each datatype's field in InferTensorContents (FP16 has none: raw only).
CONTENTS_FIELD = {
    "BOOL": "bool_contents",
    "INT8": "int_contents",
    "INT16": "int_contents",
    "INT32": "int_contents",
    "INT64": "int64_contents",
    "UINT8": "uint_contents",
    "UINT16": "uint_contents",
    "UINT32": "uint_contents",
    "UINT64": "uint64_contents",
    "FP32": "fp32_contents",
    "FP64": "fp64_contents",
    "BYTES": "bytes_contents",
}

# The numpy dtype each typed field holds its elements at.
_FIELD_DTYPES = {
    "bool_contents": np.dtype(np.bool_),
    "int_contents": np.dtype(np.int32),
    "int64_contents": np.dtype(np.int64),
    "uint_contents": np.dtype(np.uint32),
    "uint64_contents": np.dtype(np.uint64),
    "fp32_contents": np.dtype(np.float32),
    "fp64_contents": np.dtype(np.float64),
}


def parameters_dict(parameters: Any) -> dict[str, Any]:
    """A protobuf ``map<string, InferParameter>`` as a plain dict of bool/int/str/float values."""
    out: dict[str, Any] = {}
    for key, value in parameters.items():
        choice = value.WhichOneof("parameter_choice")
        out[key] = getattr(value, choice) if choice is not None else None
    return out


def decode_model_infer(request: Any) -> InferRequest:
    """A ``ModelInferRequest`` as the :class:`InferRequest` the REST codec would make of the same tensors.

    Raises:
        InvalidInput: anything malformed, naming the input and the field.
    """
    if not request.inputs:
        raise InvalidInput("request inputs must hold at least one tensor")
    headers = input_headers(  # every shape checked (and the element cap) before any data is read
        [
            {
                "name": tensor.name,
                "datatype": tensor.datatype,
                "shape": list(tensor.shape),
                "parameters": parameters_dict(tensor.parameters),
            }
            for tensor in request.inputs
        ]
    )
    parameters = parameters_object(parameters_dict(request.parameters), "request parameters")
    outputs = requested_output_tensors(
        [{"name": o.name, "parameters": parameters_dict(o.parameters)} for o in request.outputs] or None,
        True,
    )
    raw = request.raw_input_contents
    if raw and len(raw) != len(headers):
        raise InvalidInput(
            f"raw_input_contents has {len(raw)} entries for {len(headers)} inputs; give one per input, in "
            "the order of inputs"
        )
    inputs: list[Tensor] = []
    for index, (tensor, (name, datatype, shape, params)) in enumerate(
        zip(request.inputs, headers, strict=True)
    ):
        where, count = f"input {name!r}", math.prod(shape)
        typed = tensor.HasField("contents")
        if raw:
            if typed:
                raise InvalidInput(
                    f"{where}: has contents, but the request uses raw_input_contents; send one"
                )
            data = _raw(memoryview(raw[index]), datatype, count, f"{where} (raw_input_contents[{index}])")
        elif not typed:
            raise InvalidInput(f"{where}: has no data: give its contents or raw_input_contents")
        else:
            data = _typed(tensor.contents, datatype, count, where)
        inputs.append(Tensor(name, datatype, shape, data.reshape(shape), params))
    request_id = request.id or None
    return InferRequest(request_id, tuple(inputs), outputs, parameters, bool(raw))


def encode_model_infer(
    model_name: str,
    model_version: str,
    request_id: str | None,
    outputs: Sequence[tuple[str, np.ndarray]],
    raw: bool,
) -> Any:
    """A ``ModelInferResponse`` holding ``outputs`` (in order): in ``raw_output_contents`` when ``raw``,
    else in each output's typed ``contents``.

    Raises:
        InvalidInput: a dtype the protocol cannot carry, or FP16 asked for as typed contents.
    """
    response = messages.ModelInferResponse(model_name=model_name, model_version=model_version)
    if request_id:
        response.id = request_id
    for name, value in outputs:
        where, array = f"output {name!r}", np.asarray(value)
        try:
            datatype = datatype_of(array)
        except InvalidInput as exc:
            raise InvalidInput(f"{where}: {exc}") from None
        entry = response.outputs.add(name=name, datatype=datatype, shape=array.shape)
        flat = array.ravel()
        if raw:
            packed = pack_bytes(flat, where) if datatype == "BYTES" else pack_fixed(flat, DATATYPES[datatype])
            response.raw_output_contents.append(packed)
            continue
        field = CONTENTS_FIELD.get(datatype)
        if field is None:
            raise InvalidInput(f"{where}: {datatype} travels only as raw contents; send the request raw")
        if datatype == "BYTES":
            items = [v.encode("utf-8") if isinstance(v, str) else v for v in flat.tolist()]
            if not all(isinstance(v, bytes) for v in items):
                raise InvalidInput(f"{where}: BYTES elements must be str or bytes")
            getattr(entry.contents, field).extend(items)
        else:
            getattr(entry.contents, field).extend(flat.tolist())
    return response


def _raw(buffer: memoryview, datatype: str, count: int, where: str) -> np.ndarray:
    if datatype == "BYTES":
        return unpack_bytes(buffer, count, where)
    dtype = DATATYPES[datatype]
    if len(buffer) != count * dtype.itemsize:
        raise InvalidInput(
            f"{where}: {len(buffer)} bytes, but its shape holds {count} {datatype} elements of "
            f"{dtype.itemsize} bytes ({count * dtype.itemsize} bytes)"
        )
    return unpack_fixed(buffer, dtype, count, where)


def _typed(contents: Any, datatype: str, count: int, where: str) -> np.ndarray:
    field = CONTENTS_FIELD.get(datatype)
    if field is None:
        raise InvalidInput(f"{where}: {datatype} travels only in raw_input_contents")
    given = [f.name for f, _ in contents.ListFields() if f.name != field]
    if given:
        raise InvalidInput(f"{where}: a {datatype} tensor's elements go in contents.{field}, not {given[0]}")
    values = getattr(contents, field)
    if len(values) != count:
        raise InvalidInput(
            f"{where}: contents.{field} holds {len(values)} elements, but its shape holds {count}"
        )
    dtype = DATATYPES[datatype]
    if datatype == "BYTES":
        out = np.empty(count, dtype=object)
        out[:] = list(values)
        return out
    # Read at the field's own width (a float64 detour would round UINT64s past 2**53), then narrow.
    wide = np.array(values, dtype=_FIELD_DTYPES[field])
    if wide.dtype != dtype and wide.size:
        limits = np.iinfo(dtype)
        low, high = int(wide.min()), int(wide.max())
        if low < limits.min or high > limits.max:
            raise InvalidInput(f"{where}: {low if low < limits.min else high} is out of range for {datatype}")
    return wide.astype(dtype)
