"""A churn model fed by the feature store: synthetic shop data → 30-day aggregates (a feature view's weekly
snapshots) → a point-in-time training set from the ``churn`` feature service → a registered model that
serving feeds by customer id.

    generate → aggregate → train (If AUC > threshold: register, alias champion)

Run it from the repository root::

    shipyard features apply --repo examples/features/repo
    shipyard pipeline run examples.features.pipeline:churn
    shipyard features materialize-incremental --repo examples/features/repo
    shipyard serve examples/features/deploy.yaml

The customers and orders are written into the repository's ``data/`` folder; the activity snapshots are
the ``aggregate`` step's ``Dataset`` output, which the ``customer_activity`` view reads from the pipeline's
run (the running one inside it, else the newest that succeeded).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

import shipyard
from shipyard.pipelines import Dataset, Output, component, pipeline

REPO = str(Path(__file__).resolve().parent / "repo")
# The half year up to today: the latest weekly snapshot is fresh enough to serve (the views' TTL is 10 days).
END = pd.Timestamp.now(tz="UTC").normalize()
START = END - pd.Timedelta(days=182)
FEATURES = ["spend_30d", "orders_30d", "days_since_order", "is_pro", "spend_per_order"]


def shop(seed: int, customers: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Customers (id, sign-up time, plan) and their orders over the last half year: each buys at a rate of
    their own until, for about 40% of them, a day they stop."""
    rng = np.random.default_rng(seed)
    ids = np.arange(1, customers + 1)
    signed_up = START - pd.to_timedelta(rng.integers(1, 200, customers), unit="D")
    pro = (rng.random(customers) < 0.3).astype(np.int64)
    rate = rng.gamma(2.0, 0.12, customers) * (1 + pro)  # orders a day
    horizon = (END - START).days
    stops = np.where(rng.random(customers) < 0.4, rng.integers(20, horizon, customers), horizon)
    rows = []
    for customer, daily, stop in zip(ids, rate, stops, strict=True):
        count = rng.poisson(daily * stop)
        days = np.sort(rng.random(count) * stop)
        rows.append(
            pd.DataFrame({"customer_id": customer, "day": days, "amount": rng.gamma(2.0, 20.0, count)})
        )
    orders = pd.concat(rows, ignore_index=True)
    orders["ordered_at"] = START + pd.to_timedelta(orders.pop("day"), unit="D")
    customers_frame = pd.DataFrame({"customer_id": ids, "signed_up": signed_up, "is_pro": pro})
    return customers_frame, orders


@component
def generate(repo: str = REPO, seed: int = 7, customers: int = 2000) -> int:
    """The shop's customers (a feature view's source) and orders (the pipeline's raw data)."""
    data = Path(repo) / "data"
    data.mkdir(parents=True, exist_ok=True)
    people, orders = shop(seed, customers)
    people.to_parquet(data / "customers.parquet", index=False)
    orders.to_parquet(data / "orders.parquet", index=False)
    return len(orders)


@component
def aggregate(orders: int, snapshots: Output[Dataset], repo: str = REPO) -> int:
    """Weekly snapshots of each customer's last 30 days: the ``customer_activity`` view reads this output
    (a ``StepOutputSource``), so the training set leads back through this step in lineage."""
    del orders  # the order count: only so this step runs after generate
    data = Path(repo) / "data"
    found = pd.read_parquet(data / "orders.parquet")
    weeks = []
    for day in pd.date_range(END, START + pd.Timedelta(days=7), freq="-7D")[::-1]:  # the last one is today
        past = found[found["ordered_at"] <= day]
        recent = past[past["ordered_at"] > day - pd.Timedelta(days=30)]
        frame = pd.DataFrame({"customer_id": np.arange(1, found["customer_id"].max() + 1)})
        frame = frame.merge(
            recent.groupby("customer_id")["amount"].agg(["sum", "count"]), on="customer_id", how="left"
        )
        last = past.groupby("customer_id")["ordered_at"].max()
        frame["days_since_order"] = (
            (day - frame["customer_id"].map(last)).dt.total_seconds() / 86400
        ).astype(float)
        frame["spend_30d"] = frame.pop("sum").fillna(0.0)
        frame["orders_30d"] = frame.pop("count").fillna(0).astype(np.int64)
        frame["event_timestamp"] = day
        weeks.append(frame)
    table = pd.concat(weeks, ignore_index=True)
    table.to_parquet(snapshots.path, index=False)
    return len(table)


@component
def train(
    snapshots: int, repo: str = REPO, model_name: str = "churn-features", threshold: float = 0.6
) -> float:
    """A churn classifier on the ``churn`` service's point-in-time training set: label days at random,
    churned = no order in the 30 days after. Registered (alias champion) when its AUC beats ``threshold``."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import roc_auc_score

    from shipyard.features import FeatureStore

    del snapshots
    data = Path(repo) / "data"
    orders = pd.read_parquet(data / "orders.parquet")
    rng = np.random.default_rng(11)
    labels = pd.DataFrame(
        {
            "customer_id": rng.integers(1, orders["customer_id"].max() + 1, 6000),
            "event_timestamp": START
            + pd.Timedelta(days=45)
            + pd.to_timedelta(rng.integers(0, 100 * 24, 6000), unit="h"),
        }
    )
    after = orders.merge(labels, on="customer_id")
    window = (after["ordered_at"] > after["event_timestamp"]) & (
        after["ordered_at"] <= after["event_timestamp"] + pd.Timedelta(days=30)
    )
    active = after[window].groupby(["customer_id", "event_timestamp"]).size()
    labels["churned"] = [
        0 if (c, t) in active.index else 1
        for c, t in zip(labels["customer_id"], labels["event_timestamp"], strict=True)
    ]
    store = FeatureStore.from_repository(repo)
    training = store.training_set("churn", labels).to_pandas()  # logged as this run's input, with lineage
    training[FEATURES] = training[FEATURES].astype(float)  # a feature can be missing (null) when served
    cut = training["event_timestamp"] < START + pd.Timedelta(days=120)  # train on the past, test on later
    model = HistGradientBoostingClassifier(max_iter=100, random_state=0)
    model.fit(training.loc[cut, FEATURES], training.loc[cut, "churned"])
    auc = float(
        roc_auc_score(training.loc[~cut, "churned"], model.predict_proba(training.loc[~cut, FEATURES])[:, 1])
    )
    shipyard.log_metric("auc", auc)
    if auc > threshold:
        info = shipyard.models.log(model, name="model", input_example=training[FEATURES].head(5))
        version = shipyard.models.register(info.uri, model_name)
        shipyard.models.set_alias(model_name, "champion", version.version)
    return auc


@pipeline(name="churn-features")
def churn(repo: str = REPO, seed: int = 7, customers: int = 2000, threshold: float = 0.6) -> None:
    made = generate(repo=repo, seed=seed, customers=customers)
    snapshots = aggregate(orders=made.output, repo=repo)
    train(snapshots=snapshots.output, repo=repo, threshold=threshold)


def main(argv: list[str]) -> int:
    from shipyard.pipelines import compile_pipeline, parse_assignments
    from shipyard.pipelines.executors import LocalExecutor, StepStatus

    result = LocalExecutor().run(compile_pipeline(churn), parse_assignments(argv))
    print(f"pipeline run {result.run_id}: {result.status.value}")
    for step_id, step in result.steps.items():
        output = step.outputs.get("output", "")
        print(f"  {step_id:<10} {step.status.value:<10} {step.duration_s:6.2f}s  {output}")
        if step.status is StepStatus.FAILED:
            print(step.error, file=sys.stderr)
    return 0 if result.status is StepStatus.SUCCEEDED else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
