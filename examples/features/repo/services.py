"""What the churn model consumes."""

from views import activity, basket, profile

from shipyard.features import FeatureService

churn = FeatureService(
    "churn",
    [activity, profile, basket],
    description="features of the churn model",
    owner="growth@shop.example",
)
