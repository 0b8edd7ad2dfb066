"""The MLflow importer: an MLflow store (SQL database or ``mlruns`` folder) copied into Shipyard,
idempotently.

``import_mlflow("sqlite:///mlflow.db")`` returns an :class:`ImportReport`; ``shipyard import mlflow SOURCE``
is the command. The ``mlflow`` package is never imported: MLflow's tables and files are read as they are.
"""

from shipyard.importers.mlflow.importer import import_mlflow
from shipyard.importers.mlflow.report import ImportReport, NotCarried

__all__ = ["ImportReport", "NotCarried", "import_mlflow"]
