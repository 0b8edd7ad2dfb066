"""The Open Inference Protocol v2 gRPC messages (``inference.GRPCInferenceService``), built at run time.

The classes come from the compiled descriptors of ``proto/grpc_predict_v2.proto`` (``make proto`` writes
``proto/grpc_predict_v2.pb``) in a descriptor pool of Shipyard's own: tritonclient and KServe register
messages of the same full names (``inference.ModelInferRequest``…) in protobuf's default pool, and a process
that imports one of them and serves with Shipyard would otherwise fail on the duplicate symbols. No
generated Python code, so no check that ties the module to the protobuf release that generated it.
"""

from __future__ import annotations

from importlib import resources
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

SERVICE = "inference.GRPCInferenceService"
"""The gRPC service's full name: methods are ``/inference.GRPCInferenceService/<Method>``."""

_FILE = "grpc_predict_v2.proto"


def _load() -> descriptor_pool.DescriptorPool:
    data = resources.files("shipyard.serving").joinpath("proto", "grpc_predict_v2.pb").read_bytes()
    files = descriptor_pb2.FileDescriptorSet.FromString(data)
    pool = descriptor_pool.DescriptorPool()
    for proto in files.file:
        pool.Add(proto)
    return pool


POOL = _load()
_DESCRIPTOR = POOL.FindFileByName(_FILE)


def _message(name: str) -> Any:
    return message_factory.GetMessageClass(_DESCRIPTOR.message_types_by_name[name])


ServerLiveRequest = _message("ServerLiveRequest")
ServerLiveResponse = _message("ServerLiveResponse")
ServerReadyRequest = _message("ServerReadyRequest")
ServerReadyResponse = _message("ServerReadyResponse")
ModelReadyRequest = _message("ModelReadyRequest")
ModelReadyResponse = _message("ModelReadyResponse")
ServerMetadataRequest = _message("ServerMetadataRequest")
ServerMetadataResponse = _message("ServerMetadataResponse")
ModelMetadataRequest = _message("ModelMetadataRequest")
ModelMetadataResponse = _message("ModelMetadataResponse")
ModelInferRequest = _message("ModelInferRequest")
ModelInferResponse = _message("ModelInferResponse")
InferParameter = _message("InferParameter")
InferTensorContents = _message("InferTensorContents")

METHODS: dict[str, tuple[Any, Any]] = {
    method.name: (
        message_factory.GetMessageClass(method.input_type),
        message_factory.GetMessageClass(method.output_type),
    )
    for method in _DESCRIPTOR.services_by_name["GRPCInferenceService"].methods
}
"""Each RPC's name and its (request, response) classes, as the .proto declares them."""
