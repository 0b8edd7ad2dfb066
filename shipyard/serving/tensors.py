"""Open Inference Protocol v2 (KServe v2 / Triton) REST tensor codec: request bodies in, response bodies out.

Pure logic, no I/O: the HTTP layer hands over the body and the ``Inference-Header-Content-Length`` header
and maps :class:`~shipyard.errors.InvalidInput` (whose message names the tensor and field) to 400.

A request is a JSON object, or, with Triton's binary tensor data extension, a JSON header of
``Inference-Header-Content-Length`` bytes followed by the binary inputs in input order, each input giving
``parameters.binary_data_size`` (see :mod:`shipyard.serving.wire_binary` for the layout). The datatypes
and their numpy dtypes live in :mod:`shipyard.serving.datatypes`, re-exported here.

Where the spec is silent or loose, this codec decides:

- JSON ``data`` is flat or nested row-major, values checked and never coerced
  (:mod:`shipyard.serving.wire_json`); ``data`` is an array also for shape ``[]`` (``[5]``, not ``5``).
- BYTES elements arrive as ``str`` from JSON and as ``bytes`` from binary data, in an object array: the
  codec does not guess an encoding, the model's signature enforcement decides.
- ``Tensor.parameters`` and ``InferRequest.parameters`` are the JSON objects as sent.
- A request needs at least one input; ``"data": null`` counts as no data. Shapes are checked, and the
  request's total element count capped (:data:`MAX_ELEMENTS`), before any data is read.
- Shared memory and classification parameters are refused (not supported here), as is BF16.
- A response's NaN/±Inf float goes out as the ``NaN``/``Infinity`` token (Python's json default), which
  tritonclient's rapidjson parser reads; strict JSON parsers will not. BYTES bytes that are not UTF-8 cannot
  travel in JSON (the spec has no base64), so encoding refuses them and suggests a binary output.
- Header lengths are byte counts; headers we write are ASCII (``\\uXXXX`` escapes), as tritonclient's are.
"""

from __future__ import annotations

import json
import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from shipyard.errors import InvalidInput
from shipyard.serving.datatypes import DATATYPES, datatype_for, datatype_of
from shipyard.serving.wire_binary import pack_bytes, pack_fixed, unpack_bytes, unpack_fixed
from shipyard.serving.wire_json import json_type, values_from_json, values_to_json

MAX_ELEMENTS = 50_000_000
"""The most tensor elements one request may hold, across its inputs; larger shapes are refused unread."""

MAX_DIMS = 32
"""The most dimensions a tensor's shape may have."""

_UNSUPPORTED_PARAMETERS = ("shared_memory_region", "classification")


@dataclass(frozen=True, eq=False)
class Tensor:
    """One decoded input tensor. Compared by identity (``data`` is an array).

    Attributes:
        name: the input's name.
        datatype: its v2 datatype (a key of :data:`DATATYPES`).
        shape: its shape.
        data: the values, reshaped to ``shape``, dtype ``DATATYPES[datatype]``; BYTES elements are ``str``
            when they came in JSON and ``bytes`` when they came binary.
        parameters: the input's ``parameters`` object as sent (may hold ``binary_data_size``).
    """

    name: str
    datatype: str
    shape: tuple[int, ...]
    data: np.ndarray
    parameters: dict[str, Any]


@dataclass(frozen=True)
class RequestedOutput:
    """An output the client asked for, and whether it wants it as binary data (else JSON)."""

    name: str
    binary: bool


@dataclass(frozen=True, eq=False)
class InferRequest:
    """A decoded v2 inference request.

    Attributes:
        id: the request id to echo, if given.
        inputs: the input tensors, in request order.
        outputs: the outputs asked for (empty: all, each as ``binary_output_default`` says).
        parameters: the request's ``parameters`` object as sent.
        binary_output_default: ``parameters.binary_data_output``: outputs not named, or named without their
            own ``binary_data``, come back binary.
    """

    id: str | None
    inputs: tuple[Tensor, ...]
    outputs: tuple[RequestedOutput, ...]
    parameters: dict[str, Any]
    binary_output_default: bool


def decode_infer_request(body: bytes, header_length: int | None = None) -> InferRequest:
    """Decodes a v2 inference request body.

    Args:
        body: the HTTP request body.
        header_length: the ``Inference-Header-Content-Length`` header, when given: the JSON header is that
            many bytes and the binary input data follows it.

    Raises:
        InvalidInput: anything malformed, with the tensor and field named.
    """
    view = memoryview(body)
    if header_length is not None and not 0 <= header_length <= len(view):
        raise InvalidInput(
            f"Inference-Header-Content-Length {header_length} is outside the body's {len(view)} bytes"
        )
    cut = len(view) if header_length is None else header_length
    doc = _parse_json(bytes(view[:cut]), hint=header_length is None)
    if not isinstance(doc, dict):
        raise InvalidInput(f"request body must be a JSON object, not {json_type(doc)}")
    request_id = doc.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise InvalidInput(f"request id must be a string, not {json_type(request_id)}")
    parameters = parameters_object(doc.get("parameters"), "request parameters")
    default = parameters.get("binary_data_output", False)
    if not isinstance(default, bool):
        raise InvalidInput(f"request parameters.binary_data_output must be true or false, not {default!r}")
    raw_inputs = doc.get("inputs")
    if not isinstance(raw_inputs, list) or not raw_inputs:
        raise InvalidInput("request inputs must be a non-empty array of tensors")

    headers = input_headers(raw_inputs)  # every shape checked (and the element cap) before any data is read
    outputs = requested_output_tensors(doc.get("outputs"), default)
    binary, offset, inputs = view[cut:], 0, []
    for raw, (name, datatype, shape, params) in zip(raw_inputs, headers, strict=True):
        where, count = f"input {name!r}", math.prod(shape)
        if "binary_data_size" not in params:
            data = values_from_json(raw.get("data"), datatype, shape, where)
        else:
            if raw.get("data") is not None:
                raise InvalidInput(f"{where}: has both data and parameters.binary_data_size; send one")
            if header_length is None:
                raise InvalidInput(
                    f"{where}: parameters.binary_data_size needs the Inference-Header-Content-Length header"
                )
            chunk = _binary_chunk(params["binary_data_size"], binary[offset:], where)
            offset += len(chunk)
            if datatype == "BYTES":
                data = unpack_bytes(chunk, count, where)
            else:
                data = unpack_fixed(chunk, DATATYPES[datatype], count, where)
        inputs.append(Tensor(name, datatype, shape, data.reshape(shape), params))
    if offset != len(binary):
        raise InvalidInput(f"request body has {len(binary) - offset} bytes after the last binary input")
    return InferRequest(request_id, tuple(inputs), outputs, parameters, default)


def encode_infer_response(
    model_name: str,
    model_version: str | None,
    request_id: str | None,
    outputs: Sequence[tuple[str, np.ndarray]],
    binary: Collection[str] = (),
) -> tuple[bytes, int | None]:
    """Encodes a v2 inference response.

    Args:
        model_name: echoed as ``model_name``.
        model_version: echoed as ``model_version`` unless None.
        request_id: echoed as ``id`` unless None.
        outputs: ``(name, array)`` pairs, in response order.
        binary: names of outputs to send as binary data after the JSON header; the rest go as JSON ``data``.

    Returns:
        The body and the ``Inference-Header-Content-Length`` to send with it: None when no output is binary.

    Raises:
        InvalidInput: a duplicate output name, a ``binary`` name not among the outputs, a dtype the protocol
            cannot carry, a BYTES element that is neither str nor bytes, or non-UTF-8 bytes bound for JSON.
    """
    names = [name for name, _ in outputs]
    for name in binary:
        if name not in names:
            raise InvalidInput(f"binary output {name!r} is not among the outputs: {', '.join(names)}")
    entries: list[dict[str, Any]] = []
    chunks: list[bytes] = []
    for name, value in outputs:
        where, array = f"output {name!r}", np.asarray(value)
        if any(entry["name"] == name for entry in entries):
            raise InvalidInput(f"{where} appears twice in the response")
        try:
            datatype = datatype_of(array)
        except InvalidInput as exc:
            raise InvalidInput(f"{where}: {exc}") from None
        entry: dict[str, Any] = {"name": name, "datatype": datatype, "shape": list(array.shape)}
        flat = array.ravel()
        if name in binary:
            raw = pack_bytes(flat, where) if datatype == "BYTES" else pack_fixed(flat, DATATYPES[datatype])
            entry["parameters"] = {"binary_data_size": len(raw)}
            chunks.append(raw)
        else:
            entry["data"] = values_to_json(flat, datatype, where)
        entries.append(entry)
    doc: dict[str, Any] = {"model_name": model_name}
    if model_version is not None:
        doc["model_version"] = model_version
    if request_id is not None:
        doc["id"] = request_id
    doc["outputs"] = entries
    header = json.dumps(doc, separators=(",", ":")).encode("ascii")
    if not binary:
        return header, None
    return header + b"".join(chunks), len(header)


def encode_error(message: str) -> bytes:
    """The v2 error body, ``{"error": message}``."""
    return json.dumps({"error": message}).encode("ascii")


def model_metadata(
    name: str,
    versions: Sequence[str],
    platform: str,
    inputs: Sequence[tuple[str, str, tuple[int | None, ...]]],
    outputs: Sequence[tuple[str, str, tuple[int | None, ...]]],
) -> dict[str, Any]:
    """The v2 model metadata object.

    Args:
        name: the model's name.
        versions: its available versions.
        platform: e.g. ``"shipyard_sklearn"``.
        inputs: ``(name, dtype, shape)`` per input; ``dtype`` is a v2 datatype or a signature dtype name,
            and a variable dimension is ``-1`` (or None).
        outputs: the same for outputs.
    """

    def tensor(spec: tuple[str, str, tuple[int | None, ...]]) -> dict[str, Any]:
        tensor_name, dtype, shape = spec
        dims = [-1 if dim is None else dim for dim in shape]
        if any(type(dim) is not int or dim < -1 for dim in dims):
            raise InvalidInput(f"tensor {tensor_name!r}: shape {list(shape)} must hold ints >= -1")
        datatype = dtype if dtype in DATATYPES else datatype_for(dtype)
        return {"name": tensor_name, "datatype": datatype, "shape": dims}

    return {
        "name": name,
        "versions": list(versions),
        "platform": platform,
        "inputs": [tensor(spec) for spec in inputs],
        "outputs": [tensor(spec) for spec in outputs],
    }


# -- request pieces ---------------------------------------------------------------------------------------


def parse_json_body(body: bytes, *, hint: str = "") -> Any:
    """A request body as JSON; `InvalidInput` saying why not (bad UTF-8, bad syntax, nested too deeply),
    followed by ``hint``. Every JSON body the server reads goes through here."""
    try:
        return json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        detail = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        raise InvalidInput(f"request body is not valid JSON: {detail}{hint}") from None


def _parse_json(header: bytes, *, hint: bool) -> Any:
    extra = " (binary tensor data needs the Inference-Header-Content-Length header)" if hint else ""
    return parse_json_body(header, hint=extra)


def parameters_object(value: Any, where: str) -> dict[str, Any]:
    """``value`` as a parameters object ({} when None); refuses parameters this server does not support
    (shared memory, classification), named with ``where``."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidInput(f"{where} must be a JSON object, not {json_type(value)}")
    for key in _UNSUPPORTED_PARAMETERS:
        if key in value:
            raise InvalidInput(f"{where}: {key} is not supported by this server")
    return value


class _Header(NamedTuple):
    name: str
    datatype: str
    shape: tuple[int, ...]
    parameters: dict[str, Any]


def input_headers(raw_inputs: list[Any]) -> list[_Header]:
    """Each input's name, datatype, shape and parameters, checked (unique names, known datatypes, shapes of
    non-negative ints, the request's element cap) before any data is read.

    Raises:
        InvalidInput: naming the input and the field.
    """
    headers: list[_Header] = []
    seen: dict[str, int] = {}  # name -> its index
    total = 0
    for index, raw in enumerate(raw_inputs):
        header = _input_header(raw, index, seen)
        seen[header.name] = index
        total += math.prod(header.shape)
        if total > MAX_ELEMENTS:
            where = f"input {header.name!r}: shape {list(header.shape)}"
            raise InvalidInput(f"{where} takes the request past {MAX_ELEMENTS} elements")
        headers.append(header)
    return headers


def _input_header(raw: Any, index: int, seen: dict[str, int]) -> _Header:
    if not isinstance(raw, dict):
        raise InvalidInput(f"inputs[{index}] must be a JSON object, not {json_type(raw)}")
    name = raw.get("name")
    if not isinstance(name, str) or not name:
        raise InvalidInput(f"inputs[{index}]: name must be a non-empty string, not {name!r}")
    where = f"input {name!r}"
    if name in seen:
        raise InvalidInput(f"{where}: name also used by inputs[{seen[name]}]; input names must be unique")
    datatype = raw.get("datatype")
    if not isinstance(datatype, str) or datatype not in DATATYPES:
        hint = (
            " (datatypes are upper case)"
            if isinstance(datatype, str) and datatype.upper() in DATATYPES
            else ""
        )
        raise InvalidInput(f"{where}: unknown datatype {datatype!r}{hint}; use one of {', '.join(DATATYPES)}")
    shape = raw.get("shape")
    if not isinstance(shape, list) or any(type(dim) is not int or dim < 0 for dim in shape):
        raise InvalidInput(f"{where}: shape must be an array of non-negative integers, not {shape!r}")
    if len(shape) > MAX_DIMS:
        raise InvalidInput(f"{where}: shape has {len(shape)} dimensions; at most {MAX_DIMS}")
    return _Header(
        name, datatype, tuple(shape), parameters_object(raw.get("parameters"), f"{where} parameters")
    )


def _binary_chunk(size: Any, rest: memoryview, where: str) -> memoryview:
    if type(size) is not int or size < 0:
        raise InvalidInput(f"{where}: binary_data_size must be a non-negative integer, not {size!r}")
    if size > len(rest):
        raise InvalidInput(
            f"{where}: binary_data_size {size} runs past the end of the body ({len(rest)} binary bytes left)"
        )
    return rest[:size]


def requested_output_tensors(raw: Any, default: bool) -> tuple[RequestedOutput, ...]:
    """The outputs a request names (``[{"name": …, "parameters": {…}}, …]``; None: none named), each once,
    and whether each wants binary data (``parameters.binary_data``, else ``default``)."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise InvalidInput(f"request outputs must be an array, not {json_type(raw)}")
    outputs: list[RequestedOutput] = []
    for index, item in enumerate(raw):
        name = item.get("name") if isinstance(item, dict) else None
        if not isinstance(name, str) or not name:
            raise InvalidInput(f"outputs[{index}] must be an object with a non-empty string name")
        if any(output.name == name for output in outputs):
            raise InvalidInput(f"output {name!r} is requested twice")
        binary = parameters_object(item.get("parameters"), f"output {name!r} parameters").get(
            "binary_data", default
        )
        if not isinstance(binary, bool):
            raise InvalidInput(
                f"output {name!r}: parameters.binary_data must be true or false, not {binary!r}"
            )
        outputs.append(RequestedOutput(name, binary))
    return tuple(outputs)


__all__ = [
    "DATATYPES",
    "MAX_DIMS",
    "MAX_ELEMENTS",
    "InferRequest",
    "RequestedOutput",
    "Tensor",
    "datatype_for",
    "datatype_of",
    "decode_infer_request",
    "encode_error",
    "encode_infer_response",
    "input_headers",
    "model_metadata",
    "parameters_object",
    "parse_json_body",
    "requested_output_tensors",
]
