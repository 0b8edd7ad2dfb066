"""Leaving the laptop: container build contexts, Kubernetes/KServe manifests and Kubeflow Pipelines IR.

Each writer turns what Shipyard already knows (a registered model's verified package, a deployment, a
pipeline) into the files the infrastructure teams run expect, checked against those systems' schemas in the
tests. Nothing here talks to a cluster: the output is files, applied by the user's own tools.
"""

from shipyard.export.image import BuildContext, build_image, find_engine, write_build_context

__all__ = ["BuildContext", "build_image", "find_engine", "write_build_context"]
