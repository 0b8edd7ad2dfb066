"""Data statistics, schemas and drift: what training data looked like, and whether new data still does."""

from shipyard.data.drift import (
    ColumnDrift,
    ColumnKind,
    DatasetDrift,
    StatTest,
    choose_test,
    column_drift,
    dataset_drift,
)
from shipyard.data.schema import (
    Anomaly,
    AnomalyKind,
    ColumnSchema,
    Schema,
    Severity,
    ValidationResult,
    infer_schema,
    validate,
)
from shipyard.data.statistics import ColumnStatistics, DatasetStatistics, Histogram, compute_statistics

__all__ = [
    "Anomaly",
    "AnomalyKind",
    "ColumnDrift",
    "ColumnKind",
    "ColumnSchema",
    "ColumnStatistics",
    "DatasetDrift",
    "DatasetStatistics",
    "Histogram",
    "Schema",
    "Severity",
    "StatTest",
    "ValidationResult",
    "choose_test",
    "column_drift",
    "compute_statistics",
    "dataset_drift",
    "infer_schema",
    "validate",
]
