"""The v2 REST tensor codec: round trips, the official tritonclient as the other end, properties, refusals."""

from __future__ import annotations

import json
import math
import re
import struct
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from shipyard.errors import InvalidInput
from shipyard.registry.signature import DTYPES as SIGNATURE_DTYPES
from shipyard.serving.tensors import (
    DATATYPES,
    MAX_DIMS,
    MAX_ELEMENTS,
    InferRequest,
    RequestedOutput,
    datatype_for,
    datatype_of,
    decode_infer_request,
    encode_error,
    encode_infer_response,
    model_metadata,
)

try:
    import tritonclient.http as httpclient
    from tritonclient.utils import np_to_triton_dtype
except ImportError:  # pragma: no cover - tritonclient[http] is a dev dependency
    httpclient = None

needs_tritonclient = pytest.mark.skipif(
    httpclient is None, reason="tritonclient[http] is not installed: pip install 'tritonclient[http]'"
)
FIXED = [name for name in DATATYPES if name != "BYTES"]


def sample(datatype: str) -> np.ndarray:
    """A 2x3 array of ``datatype`` holding its extremes."""
    dtype = DATATYPES[datatype]
    if datatype == "BOOL":
        return np.array([[True, False, True], [False, False, True]])
    if datatype == "BYTES":
        return np.array([["a", "", "é日本"], ["x\x00y", "zz", " "]], dtype=object)
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        return np.array([[info.min, info.max, 0], [1, info.max - 1, 7]], dtype=dtype)
    info = np.finfo(dtype)
    return np.array([[info.min, info.max, info.tiny], [-0.0, 1.5, -2.25]], dtype=dtype)


def json_body(*inputs: dict[str, Any], **fields: Any) -> bytes:
    return json.dumps({"inputs": list(inputs), **fields}).encode()


def tensor(
    name: str = "x", datatype: str = "FP32", shape: Any = (2,), data: Any = (1.0, 2.0), **more: Any
) -> dict:
    spec = {"name": name, "datatype": datatype, "shape": list(shape) if isinstance(shape, tuple) else shape}
    if data is not None:
        spec["data"] = list(data) if isinstance(data, tuple) else data
    return {**spec, **more}


def binary_body(specs: list[tuple[str, str, tuple[int, ...], bytes]], **fields: Any) -> tuple[bytes, int]:
    inputs = [
        {"name": n, "datatype": d, "shape": list(s), "parameters": {"binary_data_size": len(raw)}}
        for n, d, s, raw in specs
    ]
    header = json.dumps({"inputs": inputs, **fields}).encode()
    return header + b"".join(raw for *_, raw in specs), len(header)


def length_prefixed(items: list[bytes]) -> bytes:
    return b"".join(struct.pack("<I", len(item)) + item for item in items)


def utf8(array: np.ndarray) -> np.ndarray:
    """A BYTES array of str as the bytes a binary transfer gives back."""
    flat = np.empty(array.size, dtype=object)
    flat[:] = [item.encode() for item in array.ravel()]
    return flat.reshape(array.shape)


def raises(match: str) -> Any:
    return pytest.raises(InvalidInput, match=match)


def assert_same(actual: np.ndarray, expected: np.ndarray) -> None:
    assert actual.shape == expected.shape
    if expected.dtype == object:
        assert actual.tolist() == expected.tolist()
    else:
        assert actual.dtype == expected.dtype
        np.testing.assert_array_equal(actual, expected)


# -- datatypes --------------------------------------------------------------------------------------------


def test_datatypes_cover_the_v2_numeric_and_bytes_types() -> None:
    assert list(DATATYPES) == [
        *("BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64"),
        *("FP16", "FP32", "FP64", "BYTES"),
    ]
    assert DATATYPES["BYTES"] == np.dtype(object)


@pytest.mark.parametrize("datatype", FIXED)
def test_datatype_of_inverts_datatypes(datatype: str) -> None:
    assert datatype_of(np.zeros(2, DATATYPES[datatype])) == datatype
    assert datatype_of(np.zeros(2, DATATYPES[datatype].newbyteorder(">"))) == datatype


@pytest.mark.parametrize("array", [np.array(["a"]), np.array([b"a"]), np.array([b"a", "b"], dtype=object)])
def test_str_bytes_and_object_arrays_are_bytes(array: np.ndarray) -> None:
    assert datatype_of(array) == "BYTES"


@pytest.mark.parametrize("dtype", ["complex64", "datetime64[ns]", "timedelta64[s]"])
def test_datatype_of_refuses_dtypes_the_protocol_cannot_carry_naming_them(dtype: str) -> None:
    with raises(f"dtype {re.escape(dtype)} has no v2 datatype"):
        datatype_of(np.zeros(1, dtype))


def test_datatype_for_maps_every_signature_dtype() -> None:
    mapped = {name: datatype_for(name) for name in SIGNATURE_DTYPES}
    assert mapped["float32"] == "FP32" and mapped["uint16"] == "UINT16" and mapped["bool"] == "BOOL"
    assert mapped["string"] == mapped["object"] == mapped["datetime64[ns]"] == "BYTES"
    assert set(mapped.values()) <= set(DATATYPES)
    with raises("signature dtype 'complex' has no v2 datatype; known: int8"):
        datatype_for("complex")


# -- requests: JSON and binary round trips ----------------------------------------------------------------


@pytest.mark.parametrize("nested", [False, True], ids=["flat", "nested"])
@pytest.mark.parametrize("datatype", list(DATATYPES))
def test_every_datatype_round_trips_through_json(datatype: str, nested: bool) -> None:
    array = sample(datatype)
    data = array.tolist() if nested else array.ravel().tolist()
    request = decode_infer_request(json_body(tensor("x", datatype, array.shape, data)))
    (decoded,) = request.inputs
    assert (decoded.name, decoded.datatype, decoded.shape) == ("x", datatype, (2, 3))
    assert_same(decoded.data, array)
    if datatype == "BYTES":
        assert all(type(v) is str for v in decoded.data.ravel())  # JSON strings stay str


@pytest.mark.parametrize("datatype", list(DATATYPES))
def test_every_datatype_round_trips_through_binary(datatype: str) -> None:
    array = sample(datatype)
    if datatype == "BYTES":
        array = np.array([[b"a", b"", b"\xff\x00"], [b"\xc3\xa9", b"zz", b" " * 300]], dtype=object)
        raw = length_prefixed(list(array.ravel()))
    else:
        raw = array.astype(array.dtype.newbyteorder("<")).tobytes()
    body, length = binary_body([("x", datatype, array.shape, raw)])
    (decoded,) = decode_infer_request(body, length).inputs
    assert_same(decoded.data, array)
    assert decoded.data.flags.writeable and decoded.parameters == {"binary_data_size": len(raw)}


def test_json_and_binary_inputs_mix_and_binary_follows_input_order() -> None:
    body, length = binary_body(
        [
            ("a", "INT32", (2,), np.array([1, 2], "<i4").tobytes()),
            ("b", "FP64", (1,), np.float64(3).tobytes()),
        ]
    )
    header = json.loads(body[:length])
    header["inputs"].insert(1, tensor("j", "BOOL", (1,), [True]))
    header_bytes = json.dumps(header).encode()
    request = decode_infer_request(header_bytes + body[length:], len(header_bytes))
    assert [t.name for t in request.inputs] == ["a", "j", "b"]
    assert request.inputs[0].data.tolist() == [1, 2] and request.inputs[2].data.tolist() == [3.0]


def test_request_fields_and_requested_outputs() -> None:
    body = json_body(
        tensor(),
        id="req-7",
        parameters={"binary_data_output": True, "priority": 2},
        outputs=[{"name": "p"}, {"name": "q", "parameters": {"binary_data": False}}],
    )
    request = decode_infer_request(body)
    assert isinstance(request, InferRequest) and request.id == "req-7"
    assert request.parameters == {"binary_data_output": True, "priority": 2} and request.binary_output_default
    assert request.outputs == (RequestedOutput("p", True), RequestedOutput("q", False))
    plain = decode_infer_request(json_body(tensor()))
    assert (plain.id, plain.outputs, plain.parameters, plain.binary_output_default) == (None, (), {}, False)


def test_scalar_and_empty_shapes() -> None:
    scalar, empty, empty_nested = decode_infer_request(
        json_body(
            tensor("s", "INT64", (), [5]),
            tensor("e", "FP32", (0, 3), []),
            tensor("n", "BYTES", (2, 0), [[], []]),
        )
    ).inputs
    assert scalar.data.shape == () and scalar.data.item() == 5
    assert empty.data.shape == (0, 3) and empty_nested.data.shape == (2, 0)


def test_header_length_counts_bytes_of_a_utf8_header() -> None:
    header = '{"inputs":[{"name":"é","datatype":"UINT8","shape":[2],"parameters":{"binary_data_size":2}}]}'
    encoded = header.encode()
    (decoded,) = decode_infer_request(encoded + b"\x01\x02", len(encoded)).inputs
    assert decoded.name == "é" and decoded.data.tolist() == [1, 2]


def test_json_nan_and_infinity_tokens_are_read_for_floats() -> None:
    body = b'{"inputs":[{"name":"x","datatype":"FP32","shape":[3],"data":[NaN,Infinity,-Infinity]}]}'
    data = decode_infer_request(body).inputs[0].data
    assert np.isnan(data[0]) and data[1] == np.inf and data[2] == -np.inf


# -- responses --------------------------------------------------------------------------------------------


def test_json_response_layout() -> None:
    body, length = encode_infer_response(
        "m", "3", "req-1", [("y", np.array([[1, 2]], np.int16)), ("s", np.array(["é", b"b"], dtype=object))]
    )
    assert length is None and body.isascii()
    assert json.loads(body) == {
        "model_name": "m",
        "model_version": "3",
        "id": "req-1",
        "outputs": [
            {"name": "y", "datatype": "INT16", "shape": [1, 2], "data": [1, 2]},
            {"name": "s", "datatype": "BYTES", "shape": [2], "data": ["é", "b"]},
        ],
    }
    bare = json.loads(encode_infer_response("m", None, None, [("y", np.float32(1.5))])[0])
    assert bare == {
        "model_name": "m",
        "outputs": [{"name": "y", "datatype": "FP32", "shape": [], "data": [1.5]}],
    }


def test_binary_response_layout_is_little_endian_after_the_header() -> None:
    outputs = [
        ("a", np.array([1, 2], ">i4")),
        ("j", np.array([True])),
        ("s", np.array([b"\xff", "é"], object)),
    ]
    body, length = encode_infer_response("m", None, None, outputs, binary={"a", "s"})
    assert length is not None
    header = json.loads(body[:length])
    assert [o.get("parameters") for o in header["outputs"]] == [
        {"binary_data_size": 8},
        None,
        {"binary_data_size": 4 + 1 + 4 + 2},
    ]
    assert header["outputs"][1]["data"] == [True]
    assert body[length:] == np.array([1, 2], "<i4").tobytes() + length_prefixed([b"\xff", "é".encode()])


def test_json_floats_keep_nan_and_infinity_as_tokens() -> None:
    body, _ = encode_infer_response("m", None, None, [("y", np.array([np.nan, np.inf, -np.inf]))])
    assert b"[NaN,Infinity,-Infinity]" in body


def test_encode_error() -> None:
    assert json.loads(encode_error("model 'm' has no input 'z'")) == {"error": "model 'm' has no input 'z'"}


def test_model_metadata() -> None:
    meta = model_metadata(
        "iris",
        ["1", "2"],
        "shipyard_sklearn",
        [("x", "float32", (-1, 4)), ("s", "BYTES", (None,))],
        [("y", "int64", (-1,))],
    )
    assert meta == {
        "name": "iris",
        "versions": ["1", "2"],
        "platform": "shipyard_sklearn",
        "inputs": [
            {"name": "x", "datatype": "FP32", "shape": [-1, 4]},
            {"name": "s", "datatype": "BYTES", "shape": [-1]},
        ],
        "outputs": [{"name": "y", "datatype": "INT64", "shape": [-1]}],
    }
    with raises("tensor 'x': shape \\[-2\\] must hold ints >= -1"):
        model_metadata("m", ["1"], "p", [("x", "FP32", (-2,))], [])


# -- tritonclient as the other end -----------------------------------------------------------------------


def triton_body(arrays: dict[str, np.ndarray], binary: bool, **kwargs: Any) -> tuple[bytes, int | None]:
    inputs = []
    for name, array in arrays.items():
        infer_input = httpclient.InferInput(name, list(array.shape), np_to_triton_dtype(array.dtype))
        inputs.append(infer_input.set_data_from_numpy(array, binary_data=binary))
    return httpclient.InferenceServerClient.generate_request_body(inputs, **kwargs)


def triton_parse(body: bytes, length: int | None) -> Any:
    return httpclient.InferenceServerClient.parse_response_body(body, header_length=length)


@needs_tritonclient
@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
@pytest.mark.parametrize("datatype", list(DATATYPES))
def test_decodes_what_tritonclient_sends(datatype: str, binary: bool) -> None:
    array = sample(datatype)
    body, length = triton_body({"x": array}, binary)
    assert (length is not None) == binary
    (decoded,) = decode_infer_request(body, length).inputs
    if datatype == "BYTES" and binary:
        array = utf8(array)
    assert_same(decoded.data, array)


@needs_tritonclient
def test_tritonclient_defaults_binary_inputs_and_asks_binary_outputs() -> None:
    infer_input = httpclient.InferInput("x", [1], "FP32").set_data_from_numpy(np.ones(1, np.float32))
    body, length = httpclient.InferenceServerClient.generate_request_body([infer_input], request_id="r")
    request = decode_infer_request(body, length)
    assert (
        length is not None and request.id == "r" and request.binary_output_default and request.outputs == ()
    )
    outputs = [httpclient.InferRequestedOutput("a"), httpclient.InferRequestedOutput("b", binary_data=False)]
    body, length = httpclient.InferenceServerClient.generate_request_body([infer_input], outputs=outputs)
    request = decode_infer_request(body, length)
    assert not request.binary_output_default
    assert request.outputs == (RequestedOutput("a", True), RequestedOutput("b", False))


@needs_tritonclient
@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_tritonclient_reads_every_datatype_we_send(binary: bool) -> None:
    outputs = [(name, sample(name)) for name in DATATYPES]
    outputs.append(("raw", np.array([b"\xff\xfe", b""], dtype=object)))
    names = {name for name, _ in outputs} if binary else {"raw"}
    body, length = encode_infer_response("m", "1", "req", outputs, binary=names)
    result = triton_parse(body, length)
    assert result.get_response()["id"] == "req"
    for name, array in outputs:
        got = result.as_numpy(name)
        if name == "BYTES" and binary:  # tritonclient hands binary BYTES back as bytes, JSON ones as str
            array = utf8(array)
        assert_same(got, array)


@needs_tritonclient
def test_tritonclient_reads_nan_and_infinity_tokens() -> None:
    array = np.array([np.nan, np.inf, -np.inf, 1.0], np.float16)
    got = triton_parse(*encode_infer_response("m", None, None, [("y", array)])).as_numpy("y")
    assert_same(got, array)


# -- properties -------------------------------------------------------------------------------------------

TEXT = st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=8)
PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def arrays(draw: st.DrawFn) -> np.ndarray:
    datatype = draw(st.sampled_from(list(DATATYPES)))
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4))
    if datatype != "BYTES":
        return draw(hnp.arrays(DATATYPES[datatype], shape))
    out = np.empty(math.prod(shape), dtype=object)
    out[:] = draw(st.lists(TEXT, min_size=out.size, max_size=out.size))
    return out.reshape(shape)


@PROPERTY
@given(array=arrays(), nested=st.booleans())
def test_json_requests_round_trip(array: np.ndarray, nested: bool) -> None:
    data = array.tolist() if nested and array.ndim else array.ravel().tolist()
    body = json.dumps({"inputs": [tensor("x", datatype_of(array), array.shape, data)]}).encode()
    assert_same(decode_infer_request(body).inputs[0].data, array)


@needs_tritonclient
@PROPERTY
@given(array=arrays(), binary=st.booleans())
def test_tritonclient_requests_round_trip(array: np.ndarray, binary: bool) -> None:
    (decoded,) = decode_infer_request(*triton_body({"x": array}, binary)).inputs
    if array.dtype == object and binary:
        array = utf8(array)
    if binary and array.dtype != object:
        assert decoded.data.tobytes() == array.tobytes()  # bit-exact, NaN payloads included
    assert_same(decoded.data, array)


@needs_tritonclient
@PROPERTY
@given(
    outputs=st.lists(arrays(), min_size=1, max_size=3), binary=st.lists(st.booleans(), min_size=3, max_size=3)
)
def test_tritonclient_reads_our_responses(outputs: list[np.ndarray], binary: list[bool]) -> None:
    named = [(f"o{i}", array) for i, array in enumerate(outputs)]
    wanted = {name for (name, _), flag in zip(named, binary, strict=False) if flag}
    result = triton_parse(*encode_infer_response("m", None, None, named, binary=wanted))
    for name, array in named:
        if array.dtype == object and name in wanted:
            array = utf8(array)
        assert_same(result.as_numpy(name), array)


# -- refusals: each names the tensor and the field ---------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"inputs": [', r"request body is not valid JSON: Expecting value"),
        (b"\xff\xfe", r"request body is not valid JSON: .*utf-8"),
        (b"[1]", r"request body must be a JSON object, not an array"),
        (json_body(tensor(), id=5), r"request id must be a string, not a number"),
        (json_body(tensor(), parameters=[]), r"request parameters must be a JSON object, not an array"),
        (
            json_body(tensor(), parameters={"binary_data_output": 1}),
            r"binary_data_output must be true or false",
        ),
        (b'{"id": "r"}', r"request inputs must be a non-empty array"),
        (json_body(), r"request inputs must be a non-empty array"),
        (json_body("x"), r"inputs\[0\] must be a JSON object, not a string"),
        (json_body(tensor(name="")), r"inputs\[0\]: name must be a non-empty string, not ''"),
        (
            json_body({"datatype": "FP32", "shape": [1], "data": [1]}),
            r"inputs\[0\]: name must be a non-empty",
        ),
        (json_body(tensor(), tensor()), r"input 'x': name also used by inputs\[0\]"),
        (json_body(tensor(datatype="FP8")), r"input 'x': unknown datatype 'FP8'; use one of BOOL, UINT8, "),
        (
            json_body(tensor(datatype="fp32")),
            r"input 'x': unknown datatype 'fp32' \(datatypes are upper case\)",
        ),
        (json_body(tensor(datatype=["FP32"])), r"input 'x': unknown datatype \['FP32'\]"),
        (json_body(tensor(shape=[2, -1])), r"input 'x': shape must be an array of non-negative integers"),
        (json_body(tensor(shape=[True, 2])), r"input 'x': shape must be an array of non-negative integers"),
        (json_body(tensor(shape=[2.0])), r"input 'x': shape must be an array of non-negative integers"),
        (json_body(tensor(shape="2")), r"input 'x': shape must be an array of non-negative integers"),
        (json_body(tensor(shape=[1] * (MAX_DIMS + 1))), rf"input 'x': shape has {MAX_DIMS + 1} dimensions"),
        (
            json_body(tensor(shape=[10**6, 10**6])),
            rf"input 'x': shape \[1000000, 1000000\] .* {MAX_ELEMENTS}",
        ),
        (json_body(tensor(data=None)), r"input 'x': has no data"),
        (json_body(tensor(data={"a": 1})), r"input 'x': data must be an array, not an object"),
        (
            json_body(tensor(shape=[2, 3], data=[1.0] * 5)),
            r"input 'x': shape \[2, 3\] holds 6 elements but data has 5",
        ),
        (json_body(tensor(shape=[2, 3], data=[[1, 2], [3, 4], [5, 6]])), r"data has 3 items, expected 2"),
        (
            json_body(tensor(shape=[2, 2], data=[[1, 2], [3]])),
            r"input 'x': .* data\[1\] has 1 items, expected 2",
        ),
        (json_body(tensor(shape=[2, 1], data=[[1], 2])), r"input 'x': .* data\[1\] has a scalar, expected 1"),
        (json_body(tensor(shape=[1, 1], data=[[[1]]])), r"input 'x': data\[0\]\[0\] nests deeper than shape"),
        (json_body(tensor(shape=[], data=[[1.0]])), r"input 'x': data nests deeper than shape \[\]"),
        (json_body(tensor(datatype="BOOL", data=[True, 1])), r"input 'x': element 1 is 1, not true or false"),
        (json_body(tensor(datatype="INT32", data=[1, 1.5])), r"input 'x': element 1 is 1.5, not an integer"),
        (
            json_body(tensor(datatype="INT32", data=[1, True])),
            r"input 'x': element 1 is true, not an integer",
        ),
        (
            json_body(tensor(datatype="UINT8", data=[300, 1])),
            r"input 'x': element 0 is 300, not in UINT8's range",
        ),
        (
            json_body(tensor(datatype="INT8", data=[1, -129])),
            r"element 1 is -129, not in INT8's range \[-128, 127\]",
        ),
        (
            json_body(tensor(datatype="UINT64", data=[2**64, 1])),
            r"element 0 is 18446744073709551616, not in UINT64",
        ),
        (json_body(tensor(datatype="FP32", data=[1, "2"])), r"input 'x': element 1 is \"2\", not a number"),
        (json_body(tensor(datatype="FP32", data=[1, None])), r"input 'x': element 1 is null, not a number"),
        (
            json_body(tensor(datatype="FP16", data=[1, 70000])),
            r"input 'x': element 1 is 70000, which overflows FP16",
        ),
        (
            json_body(tensor(datatype="FP32", data=[1e39, 1])),
            r"input 'x': element 0 is 1e\+39, which overflows FP32",
        ),
        (
            json_body(tensor(datatype="FP64", data=[1, 10**400])),
            r"input 'x': element 1 is 1000.*, not in FP64's range",
        ),
        (json_body(tensor(datatype="BYTES", data=["a", 5])), r"input 'x': element 1 is 5, not a string"),
        (
            json_body(tensor(parameters={"shared_memory_region": "r"})),
            r"input 'x' parameters: shared_memory_region",
        ),
        (json_body(tensor(), outputs={"name": "y"}), r"request outputs must be an array, not an object"),
        (
            json_body(tensor(), outputs=[{"name": 3}]),
            r"outputs\[0\] must be an object with a non-empty string",
        ),
        (json_body(tensor(), outputs=[{"name": "y"}, {"name": "y"}]), r"output 'y' is requested twice"),
        (
            json_body(tensor(), outputs=[{"name": "y", "parameters": {"binary_data": "yes"}}]),
            r"output 'y': parameters.binary_data must be true or false, not 'yes'",
        ),
        (
            json_body(tensor(), outputs=[{"name": "y", "parameters": {"classification": 3}}]),
            r"output 'y' parameters: classification is not supported",
        ),
    ],
)
def test_bad_json_requests_are_refused_naming_the_field(body: bytes, message: str) -> None:
    with raises(message):
        decode_infer_request(body)


def test_binary_data_without_the_header_length_is_refused() -> None:
    body, _ = binary_body([("x", "UINT8", (1,), b"\x01")])
    with raises(r"request body is not valid JSON: .*needs the Inference-Header-Content-Length header"):
        decode_infer_request(body)
    header = json.dumps({"inputs": [tensor(data=None, parameters={"binary_data_size": 0}, shape=[0])]})
    with raises(r"input 'x': parameters.binary_data_size needs the Inference-Header-Content-Length header"):
        decode_infer_request(header.encode())


FP32_6 = np.arange(6, dtype="<f4").tobytes()
PREFIX_1 = struct.pack("<I", 1)


@pytest.mark.parametrize(
    ("datatype", "shape", "raw", "extra", "message"),
    [
        ("FP32", (2, 3), FP32_6[:20], b"", r"input 'x': binary_data_size 20 does not match its shape"),
        ("FP32", (2, 3), FP32_6, b"\x00", r"request body has 1 bytes after the last binary input"),
        ("BOOL", (2,), b"\x01\x02", b"", r"input 'x': BOOL element 1 is byte 2; BOOL bytes must be 0 or 1"),
        ("BYTES", (2,), PREFIX_1 + b"a", b"", r"input 'x': binary_data_size 5 is too small for 2 BYTES"),
        (
            "BYTES",
            (2,),
            PREFIX_1 + b"a\0\0\0",
            b"",
            r"input 'x': .* ends inside the length prefix of element 1",
        ),
        ("BYTES", (1,), b"\x09\0\0\0abc", b"", r"input 'x': BYTES element 0 declares 9 bytes but only 3"),
        ("BYTES", (1,), PREFIX_1 + b"ab", b"", r"input 'x': binary BYTES data has 1 bytes left over"),
    ],
)
def test_bad_binary_requests_are_refused_naming_the_tensor(
    datatype: str, shape: tuple[int, ...], raw: bytes, extra: bytes, message: str
) -> None:
    body, length = binary_body([("x", datatype, shape, raw)])
    with raises(message):
        decode_infer_request(body + extra, length)


def test_binary_sizes_past_the_body_or_malformed_are_refused() -> None:
    body, length = binary_body([("x", "FP32", (2, 2), np.zeros(4, "<f4").tobytes())])
    with raises(r"input 'x': binary_data_size 16 runs past the end of the body \(12 binary bytes left\)"):
        decode_infer_request(body[:-4], length)
    for size, shown in ((-1, "-1"), (1.5, "1.5"), ("8", "'8'")):
        header = json.dumps({"inputs": [tensor(data=None, parameters={"binary_data_size": size})]}).encode()
        with raises(rf"input 'x': binary_data_size must be a non-negative integer, not {shown}"):
            decode_infer_request(header + b"\x00" * 8, len(header))
    both = json.dumps({"inputs": [tensor(parameters={"binary_data_size": 8})]}).encode()
    with raises(r"input 'x': has both data and parameters.binary_data_size"):
        decode_infer_request(both + b"\x00" * 8, len(both))


@pytest.mark.parametrize("length", [-1, 10_000])
def test_header_length_outside_the_body_is_refused(length: int) -> None:
    with raises(rf"Inference-Header-Content-Length {length} is outside the body's \d+ bytes"):
        decode_infer_request(json_body(tensor()), length)


def test_element_cap_counts_across_inputs() -> None:
    half = MAX_ELEMENTS // 2 + 1
    specs = [
        tensor(n, "UINT8", (half,), data=None, parameters={"binary_data_size": half}) for n in ("a", "b")
    ]
    header = json.dumps({"inputs": specs}).encode()
    with raises(rf"input 'b': shape \[{half}\] takes the request past {MAX_ELEMENTS} elements"):
        decode_infer_request(header, len(header))  # refused before any byte is read


@pytest.mark.parametrize(
    ("outputs", "binary", "message"),
    [
        ([("y", np.zeros(2, np.complex64))], (), r"output 'y': dtype complex64 has no v2 datatype"),
        (
            [("y", np.array([b"\xff"], dtype=object))],
            (),
            r"output 'y': BYTES element 0 is not valid UTF-8.*binary",
        ),
        (
            [("y", np.array(["a", 3], dtype=object))],
            (),
            r"output 'y': BYTES element 1 is int, not str or bytes",
        ),
        (
            [("y", np.array([None], dtype=object))],
            {"y"},
            r"output 'y': BYTES element 0 is NoneType, not str or",
        ),
        ([("y", np.zeros(1)), ("y", np.zeros(1))], (), r"output 'y' appears twice in the response"),
        ([("y", np.zeros(1))], {"z"}, r"binary output 'z' is not among the outputs: y"),
    ],
)
def test_bad_outputs_are_refused_naming_the_output(outputs: list, binary: Any, message: str) -> None:
    with raises(message):
        encode_infer_response("m", None, None, outputs, binary=binary)
