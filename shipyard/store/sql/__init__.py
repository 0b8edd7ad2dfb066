"""The SQL metadata store (SQLite or PostgreSQL): every SQL statement Shipyard runs is in this package."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

from shipyard.config import Settings
from shipyard.store.db import MetadataStore, open_store
from shipyard.store.sql.tracking import SqlTrackingStore

if TYPE_CHECKING:
    from shipyard.store.sql.auth import SqlAuthStore
    from shipyard.store.sql.copies import SqlImportStore
    from shipyard.store.sql.datasets import SqlDatasetStore
    from shipyard.store.sql.deployments import SqlDeploymentStore
    from shipyard.store.sql.features import SqlFeatureRegistryStore
    from shipyard.store.sql.lineage import SqlLineageStore
    from shipyard.store.sql.logged_models import SqlLoggedModelStore
    from shipyard.store.sql.registry import SqlRegistryStore
    from shipyard.store.sql.schedules import SqlScheduleStore

__all__ = ["SqlStores", "SqlTrackingStore"]


class SqlStores:
    """Every record kind in one SQL database (a :class:`shipyard.store.protocol.MetadataStores`).

    The registry, lineage, schedule, dataset, access and deployment stores are built on first use: a script
    that only logs runs does not import them.
    """

    def __init__(self, db: MetadataStore, settings: Settings) -> None:
        self.db = db
        self.settings = settings
        self.tracking = SqlTrackingStore(db, settings)

    @classmethod
    def open(cls, settings: Settings) -> SqlStores:
        """The stores of the database ``settings.db_url`` names (created and migrated on first use)."""
        return cls(open_store(settings.db_url), settings)

    @functools.cached_property
    def registry(self) -> SqlRegistryStore:
        from shipyard.store.sql.registry import SqlRegistryStore

        return SqlRegistryStore(self.db)

    @functools.cached_property
    def auth(self) -> SqlAuthStore:
        from shipyard.store.sql.auth import SqlAuthStore

        return SqlAuthStore(self.db)

    @functools.cached_property
    def deployments(self) -> SqlDeploymentStore:
        from shipyard.store.sql.deployments import SqlDeploymentStore

        return SqlDeploymentStore(self.db)

    @functools.cached_property
    def features(self) -> SqlFeatureRegistryStore:
        from shipyard.store.sql.features import SqlFeatureRegistryStore

        return SqlFeatureRegistryStore(self.db)

    @functools.cached_property
    def imports(self) -> SqlImportStore:
        from shipyard.store.sql.copies import SqlImportStore

        return SqlImportStore(self.db, self.settings)

    @functools.cached_property
    def lineage(self) -> SqlLineageStore:
        from shipyard.store.sql.lineage import SqlLineageStore

        return SqlLineageStore(self.db)

    @functools.cached_property
    def logged_models(self) -> SqlLoggedModelStore:
        from shipyard.store.sql.logged_models import SqlLoggedModelStore

        return SqlLoggedModelStore(self.db)

    @functools.cached_property
    def datasets(self) -> SqlDatasetStore:
        from shipyard.store.sql.datasets import SqlDatasetStore

        return SqlDatasetStore(self.db)

    @functools.cached_property
    def schedules(self) -> SqlScheduleStore:
        from shipyard.store.sql.schedules import SqlScheduleStore

        return SqlScheduleStore(self.db)
