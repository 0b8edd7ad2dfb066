"""What an MLflow user types out of habit works the same here."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import shipyard
from shipyard import InvalidInput, Settings
from shipyard.tracking import fluent


@pytest.fixture(autouse=True)
def _forget_chosen_experiment() -> Iterator[None]:
    yield
    fluent._default_experiment = None


@pytest.fixture
def default_store(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    # get_run(), like mlflow.get_run(), reads the store the environment names.
    monkeypatch.setenv("SHIPYARD_HOME", str(settings.home))
    return settings


def test_set_experiment_is_where_later_runs_go(default_store: Settings) -> None:
    experiment = shipyard.set_experiment("churn")
    assert experiment.name == "churn"
    with shipyard.start_run() as run:
        pass
    with shipyard.start_run(experiment="other") as explicit:
        pass
    client = shipyard.get_client()
    assert client.get_run(run.run_id).experiment_id == experiment.experiment_id
    assert client.get_experiment(client.get_run(explicit.run_id).experiment_id).name == "other"


def test_run_name_is_name(default_store: Settings) -> None:
    with shipyard.start_run(experiment="e", run_name="rf-depth-8") as run:
        assert run.name == "rf-depth-8"
    with pytest.raises(InvalidInput, match="name='a' and run_name='b'"):
        shipyard.start_run(experiment="e", name="a", run_name="b")


def test_nested_true_makes_the_active_run_the_parent_in_its_experiment(default_store: Settings) -> None:
    with shipyard.start_run(experiment="cv") as parent, shipyard.start_run(nested=True) as child:
        shipyard.log_metric("fold_acc", 0.9)
    assert child.parent_run_id == parent.run_id
    assert child.experiment_id == parent.experiment_id
    with shipyard.start_run(experiment="cv", nested=True) as alone:  # no active run: a top-level run
        assert alone.parent_run_id is None


def test_a_child_given_its_parent_by_id_joins_the_parents_experiment(default_store: Settings) -> None:
    with shipyard.start_run(experiment="cv") as parent:
        pass
    with shipyard.start_run(parent=parent.run_id) as child:
        pass
    assert child.experiment_id == parent.experiment_id


def test_metric_history_on_the_record_get_run_returns(default_store: Settings) -> None:
    with shipyard.start_run(experiment="e") as run:
        for step in range(3):
            shipyard.log_metric("loss", 1 / (step + 1), step=step)
        # Buffered points are flushed first, as with shipyard.metric_history.
        points = shipyard.get_run(run.run_id).metric_history("loss")
    assert [(p.step, p.value) for p in points] == [(0, 1.0), (1, 0.5), (2, 1 / 3)]
    assert shipyard.get_run(name=run.name, experiment="e").metric_history("loss") == points
    # A record equal in every stored field compares equal whatever it can fetch.
    assert shipyard.get_run(run.run_id) == shipyard.get_client().get_run(run.run_id)
    with pytest.raises(InvalidInput, match="does not know its store"):
        shipyard.get_client().get_run(run.run_id).metric_history("loss")
