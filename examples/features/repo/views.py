"""The customers' features: 30-day activity aggregates (weekly snapshots, the `snapshots` output of the
churn-features pipeline's `aggregate` step) and the profile they signed up with (in data/, beside this
file)."""

from datetime import timedelta
from pathlib import Path

import pandas as pd
from entities import customer

from shipyard.features import FeatureView, Field, FileSource, StepOutputSource, on_demand_feature_view

DATA = Path(__file__).resolve().parent / "data"

activity = FeatureView(
    "customer_activity",
    [customer],
    [
        Field("spend_30d", "float64", "money spent in the 30 days up to the snapshot"),
        Field("orders_30d", "int64", "orders in the 30 days up to the snapshot"),
        Field("days_since_order", "float64", "days since the last order (null: none yet)"),
    ],
    # The step's output in the pipeline run reading it, else in the pipeline's newest succeeded run.
    StepOutputSource("churn-features", "aggregate", "snapshots"),
    ttl=timedelta(days=10),  # weekly snapshots: an older one is stale
    owner="growth@shop.example",
    description="30-day activity, a snapshot a week",
)

profile = FeatureView(
    "customer_profile",
    [customer],
    [Field("is_pro", "int64", "1 on the pro plan")],
    FileSource(str(DATA / "customers.parquet"), timestamp_field="signed_up"),
    description="what the customer signed up with",
)


@on_demand_feature_view(
    sources=[activity[["spend_30d", "orders_30d"]]], schema=[Field("spend_per_order", "float64")]
)
def basket(inputs: pd.DataFrame) -> pd.DataFrame:
    """Average order value over the last 30 days (null without orders)."""
    return pd.DataFrame(
        {"spend_per_order": inputs["spend_30d"] / inputs["orders_30d"].where(inputs["orders_30d"] > 0)}
    )
