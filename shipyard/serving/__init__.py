"""Model serving: Open Inference Protocol v2 and KServe v1 over REST, batching, traffic and payload logs."""

from shipyard.payloads import PayloadLogConfig, PayloadLogger, read_payloads
from shipyard.serving.app import InferenceServer, ServerConfig
from shipyard.serving.batching import Batcher, BatchPolicy
from shipyard.serving.deployment import DeploymentSpec, load_deployment
from shipyard.serving.repository import ModelConfig, ModelRepository, ModelState, ServedModel
from shipyard.serving.routing import Deployment, Traffic
from shipyard.serving.server import run_server

__all__ = [
    "BatchPolicy",
    "Batcher",
    "Deployment",
    "DeploymentSpec",
    "InferenceServer",
    "ModelConfig",
    "ModelRepository",
    "ModelState",
    "PayloadLogConfig",
    "PayloadLogger",
    "ServedModel",
    "ServerConfig",
    "Traffic",
    "load_deployment",
    "read_payloads",
    "run_server",
]
