"""Batch inference: score tables bigger than memory with a registered model, tracked and in lineage."""

from shipyard.batch.predict import BatchResult, batch_predict

__all__ = ["BatchResult", "batch_predict"]
