"""Model serving: Open Inference Protocol v2 over REST, KServe v1, adaptive batching."""

from shipyard.serving.app import InferenceServer, ServerConfig
from shipyard.serving.batching import Batcher, BatchPolicy
from shipyard.serving.deployment import DeploymentSpec, load_deployment
from shipyard.serving.repository import ModelConfig, ModelRepository, ModelState, ServedModel
from shipyard.serving.server import run_server

__all__ = [
    "BatchPolicy",
    "Batcher",
    "DeploymentSpec",
    "InferenceServer",
    "ModelConfig",
    "ModelRepository",
    "ModelState",
    "ServedModel",
    "ServerConfig",
    "load_deployment",
    "run_server",
]
