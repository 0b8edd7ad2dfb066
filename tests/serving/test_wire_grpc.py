"""The OIP v2 gRPC codec and messages: round trips of every datatype, refusals naming the input, the compiled
descriptors matching the .proto, and the messages matching Triton's own, field for field."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from shipyard.errors import InvalidInput
from shipyard.serving import grpc_messages as messages
from shipyard.serving.datatypes import DATATYPES
from shipyard.serving.wire_grpc import CONTENTS_FIELD, decode_model_infer, encode_model_infer

PROTO = Path(__file__).resolve().parents[2] / "shipyard" / "serving" / "proto"
FIXED = [name for name in DATATYPES if name != "BYTES"]


def _arrays(datatype: str) -> st.SearchStrategy[np.ndarray]:
    shapes = hnp.array_shapes(min_dims=1, max_dims=3, min_side=0, max_side=4)
    if datatype == "BYTES":
        return hnp.arrays(object, shapes, elements=st.binary(max_size=8))
    dtype = DATATYPES[datatype]
    elements = None
    if dtype.kind == "f":
        elements = st.floats(width=dtype.itemsize * 8, allow_nan=False)
    return hnp.arrays(dtype, shapes, elements=elements)


def _request(array: np.ndarray, datatype: str, raw: bool) -> Any:
    request = messages.ModelInferRequest(model_name="m")
    tensor = request.inputs.add(name="x", datatype=datatype, shape=array.shape)
    if raw:
        encoded = encode_model_infer("m", "1", None, [("x", array)], raw=True)
        request.raw_input_contents.append(encoded.raw_output_contents[0])
    else:
        flat = array.ravel().tolist()
        getattr(tensor.contents, CONTENTS_FIELD[datatype]).extend(flat)
    return messages.ModelInferRequest.FromString(request.SerializeToString())


@pytest.mark.parametrize(
    ("datatype", "raw"),
    [(d, True) for d in DATATYPES] + [(d, False) for d in DATATYPES if d != "FP16"],  # FP16: raw only
)
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_every_datatype_round_trips(datatype: str, raw: bool, data: st.DataObject) -> None:
    array = data.draw(_arrays(datatype))
    decoded = decode_model_infer(_request(array, datatype, raw))
    (tensor,) = decoded.inputs
    assert tensor.shape == array.shape and tensor.data.dtype == DATATYPES[datatype]
    assert decoded.binary_output_default is raw
    if datatype == "BYTES":
        assert tensor.data.tolist() == array.tolist()
    else:
        np.testing.assert_array_equal(tensor.data, array)
    # And back out the same way.
    response = encode_model_infer("m", "1", None, [("y", tensor.data)], raw=raw)
    assert list(response.outputs[0].shape) == list(array.shape)


@pytest.mark.parametrize(
    ("build", "words"),
    [
        (
            lambda r: r.inputs.add(name="x", datatype="INT8", shape=[2]).contents.int_contents.extend(
                [1, 300]
            ),
            "input 'x': 300 is out of range for INT8",
        ),
        (
            lambda r: r.inputs.add(name="x", datatype="UINT8", shape=[1]).contents.uint_contents.append(256),
            "256 is out of range for UINT8",
        ),
        (
            lambda r: r.inputs.add(name="x", datatype="FP32", shape=[3]).contents.fp32_contents.extend([1.0]),
            "input 'x': contents.fp32_contents holds 1 elements, but its shape holds 3",
        ),
        (
            lambda r: r.inputs.add(name="x", datatype="FP32", shape=[1]).contents.fp64_contents.append(1.0),
            "go in contents.fp32_contents, not fp64_contents",
        ),
        (
            lambda r: r.inputs.add(name="x", datatype="FP16", shape=[1]).contents.fp32_contents.append(1.0),
            "FP16 travels only in raw_input_contents",
        ),
        (lambda r: r.inputs.add(name="x", datatype="FP32", shape=[1]), "input 'x': has no data"),
        (
            lambda r: r.inputs.add(name="x", datatype="FP32", shape=[-1]).contents.fp32_contents.append(1.0),
            "shape must be an array of non-negative integers",
        ),
        (
            lambda r: r.inputs.add(name="x", datatype="FP32", shape=[100_000, 100_000, 10]),
            "past 50000000 elements",
        ),
        (lambda r: None, "at least one tensor"),
    ],
    ids=[
        "int8-range",
        "uint8-range",
        "count",
        "wrong-field",
        "fp16-typed",
        "no-data",
        "negative",
        "cap",
        "empty",
    ],
)
def test_typed_requests_are_refused_naming_the_input(build: Any, words: str) -> None:
    request = messages.ModelInferRequest(model_name="m")
    build(request)
    with pytest.raises(InvalidInput, match=None) as raised:
        decode_model_infer(request)
    assert words in str(raised.value)


def test_raw_requests_are_refused_naming_the_input() -> None:
    request = messages.ModelInferRequest(model_name="m")
    request.inputs.add(name="a", datatype="FP32", shape=[2])
    request.inputs.add(name="b", datatype="BYTES", shape=[1])
    request.raw_input_contents.append(b"\0" * 8)
    with pytest.raises(InvalidInput, match="raw_input_contents has 1 entries for 2 inputs"):
        decode_model_infer(request)
    request.raw_input_contents.append(b"\x09\0\0\0abc")  # says 9 bytes, holds 3
    with pytest.raises(InvalidInput, match=r"input 'b' \(raw_input_contents\[1\]\).*declares 9 bytes"):
        decode_model_infer(request)
    request.raw_input_contents[0] = b"\0" * 7
    with pytest.raises(InvalidInput, match=r"input 'a' .*7 bytes, but its shape holds 2 FP32"):
        decode_model_infer(request)


def test_parameters_and_outputs_decode() -> None:
    request = _request(np.zeros((1, 2)), "FP64", raw=False)
    request.parameters["output"].string_param = "probabilities"
    request.parameters["n"].int64_param = 3
    request.parameters["t"].double_param = 0.5
    request.outputs.add(name="predict_proba")
    decoded = decode_model_infer(request)
    assert decoded.parameters == {"output": "probabilities", "n": 3, "t": 0.5}
    assert [o.name for o in decoded.outputs] == ["predict_proba"]
    request.parameters["shared_memory_region"].string_param = "r0"
    with pytest.raises(InvalidInput, match="shared_memory_region is not supported"):
        decode_model_infer(request)


def test_outputs_that_cannot_travel_are_refused_naming_them() -> None:
    with pytest.raises(InvalidInput, match="output 'y': FP16 travels only as raw contents"):
        encode_model_infer("m", "1", None, [("y", np.zeros(2, np.float16))], raw=False)
    with pytest.raises(InvalidInput, match="output 'y': dtype complex128 has no v2 datatype"):
        encode_model_infer("m", "1", None, [("y", np.zeros(2, complex))], raw=True)
    strings = encode_model_infer("m", "1", "id-1", [("y", np.array(["a", "bé"], dtype=object))], raw=False)
    assert list(strings.outputs[0].contents.bytes_contents) == [b"a", "bé".encode()] and strings.id == "id-1"


def test_the_compiled_descriptors_match_the_proto(tmp_path: Path) -> None:
    pytest.importorskip("grpc_tools", reason="grpcio-tools compiles the .proto (a dev dependency)")
    out = tmp_path / "out.pb"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            f"-I{PROTO}",
            f"--descriptor_set_out={out}",
            str(PROTO / "grpc_predict_v2.proto"),
        ],
        check=True,
    )
    assert out.read_bytes() == (PROTO / "grpc_predict_v2.pb").read_bytes(), "run `make proto`"


def test_the_messages_are_tritons_field_for_field() -> None:
    service_pb2 = pytest.importorskip(
        "tritonclient.grpc.service_pb2", reason="tritonclient[grpc] is a dev dependency"
    )

    def fields(descriptor: Any) -> dict[str, tuple[int, int, str]]:
        return {
            f.name: (f.number, f.type, f.message_type.full_name if f.message_type else "")
            for f in descriptor.fields
        }

    ours = messages.POOL.FindFileByName("grpc_predict_v2.proto")
    for name, descriptor in ours.message_types_by_name.items():
        theirs = service_pb2.DESCRIPTOR.message_types_by_name[name]
        assert fields(descriptor) == {k: v for k, v in fields(theirs).items() if k in fields(descriptor)}, (
            name
        )
        for nested in descriptor.nested_types:
            if not nested.GetOptions().map_entry:
                assert fields(nested) == fields(theirs.nested_types_by_name[nested.name]), nested.full_name
    service = ours.services_by_name["GRPCInferenceService"]
    triton_service = service_pb2.DESCRIPTOR.services_by_name["GRPCInferenceService"]
    for method in service.methods:
        theirs = triton_service.methods_by_name[method.name]
        assert (method.input_type.full_name, method.output_type.full_name) == (
            theirs.input_type.full_name,
            theirs.output_type.full_name,
        )
