"""Dataset versions: content-addressed snapshots of files and folders, named ``customers@3``, restored byte
for byte, compared file by file and row by row, and named by runs and lineage as ``data:customers@3``."""

from shipyard.datasets.diff import DatasetDiff
from shipyard.datasets.records import DatasetFile, DatasetSummary, DatasetVersion, SnapshotKind
from shipyard.datasets.refs import DatasetRef, check_dataset_name, parse_ref
from shipyard.datasets.tabular import ColumnChange, TableDiff
from shipyard.datasets.versions import (
    DatasetClient,
    Restored,
    add_dataset,
    dataset_path,
    dataset_version,
    diff_datasets,
    get_dataset,
    list_datasets,
)

__all__ = [
    "ColumnChange",
    "DatasetClient",
    "DatasetDiff",
    "DatasetFile",
    "DatasetRef",
    "DatasetSummary",
    "DatasetVersion",
    "Restored",
    "SnapshotKind",
    "TableDiff",
    "add_dataset",
    "check_dataset_name",
    "dataset_path",
    "dataset_version",
    "diff_datasets",
    "get_dataset",
    "list_datasets",
    "parse_ref",
]
