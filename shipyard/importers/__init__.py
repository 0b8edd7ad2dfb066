"""Importers: other systems' records copied into Shipyard (:mod:`shipyard.importers.mlflow`)."""
