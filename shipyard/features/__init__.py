"""Feature store: entities and feature views over Parquet/CSV/DataFrame sources, point-in-time correct
training sets (DuckDB ASOF joins that keep every entity row), on-demand features and feature services.

    from shipyard.features import Entity, FeatureStore, FeatureView, Field, FileSource
    customer = Entity("customer", ["customer_id"])
    stats = FeatureView("customer_stats", [customer], [Field("spend_30d", "float64")],
                        FileSource("data/customer_stats.parquet"), ttl=timedelta(days=30))
    store = FeatureStore([stats])
    train = store.get_historical_features(entity_df, ["customer_stats:spend_30d"]).to_pandas()
"""

from shipyard.features.definitions import (
    DataFrameSource,
    DatasetSource,
    Entity,
    FeatureService,
    FeatureView,
    Field,
    FileSource,
    OnDemandFeatureView,
    Projection,
    PushSource,
    RequestSource,
    StepOutputSource,
    ValueType,
    on_demand_feature_view,
)
from shipyard.features.store import FeatureStore, TrainingSet

__all__ = [
    "DataFrameSource",
    "DatasetSource",
    "Entity",
    "FeatureService",
    "FeatureStore",
    "FeatureView",
    "Field",
    "FileSource",
    "OnDemandFeatureView",
    "Projection",
    "PushSource",
    "RequestSource",
    "StepOutputSource",
    "TrainingSet",
    "ValueType",
    "on_demand_feature_view",
]
