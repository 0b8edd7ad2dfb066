"""`%load_ext shipyard` in a real IPython shell: %%shipyard_run tracks a cell as a run, FAILED with its
traceback when the cell raises; runs, search results, models and drift verdicts display as escaped HTML."""

from __future__ import annotations

from collections.abc import Iterator

import pandas as pd
import pytest
from IPython.core.interactiveshell import InteractiveShell

import shipyard
from shipyard.config import get_settings
from shipyard.data.drift import dataset_drift
from shipyard.store.artifacts import ArtifactStore
from shipyard.tracking import RunStatus


@pytest.fixture
def shell() -> Iterator[InteractiveShell]:
    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "shipyard")
    yield ip
    InteractiveShell.clear_instance()


def _html(shell: InteractiveShell, value: object) -> str:
    formatted, _ = shell.display_formatter.format(value)
    return formatted["text/html"]


def test_a_cell_runs_as_a_tracked_run(shell: InteractiveShell) -> None:
    cell = "import shipyard\nshipyard.log_param('lr', 0.1)\nshipyard.log_metric('acc', 0.93)\nx = 41 + 1\n"
    record = shell.run_cell_magic("shipyard_run", "-e notebooks -n first --tag team=ml", cell)
    assert shell.user_ns["x"] == 42  # the cell ran in the notebook's namespace
    run = shipyard.get_run(name="first", experiment="notebooks")
    assert record.run_id == run.run_id and run.status is RunStatus.FINISHED
    assert run.params == {"lr": "0.1"} and run.metrics == {"acc": 0.93} and run.tags["team"] == "ml"
    store = ArtifactStore.configured(get_settings(), run.artifact_uri)
    assert store.read_bytes("notebook/cell.py").decode() == cell
    html = _html(shell, record)
    assert "run first" in html and "acc=0.93" in html and "FINISHED" in html


def test_a_cell_that_raises_ends_its_run_failed_with_the_traceback(shell: InteractiveShell) -> None:
    record = shell.run_cell_magic("shipyard_run", "-n broken", "1 / 0\n")
    assert record.status is RunStatus.FAILED
    store = ArtifactStore.configured(get_settings(), record.artifact_uri)
    assert "ZeroDivisionError" in store.read_bytes("traceback.txt").decode()
    assert shipyard.active_run() is None  # nothing left open for the next cell


def test_a_bad_tag_is_refused_by_name(shell: InteractiveShell) -> None:
    with pytest.raises(shipyard.InvalidInput, match="--tag takes KEY=VALUE, got 'oops'"):
        shell.run_cell_magic("shipyard_run", "--tag oops", "pass\n")


def test_search_results_models_and_drift_show_as_escaped_html(shell: InteractiveShell) -> None:
    with shipyard.start_run("notebooks", name="<script>alert(1)</script>") as run:
        run.log_param("note", "<b>bold</b>")
    html = _html(shell, shipyard.search_runs("notebooks"))
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;b&gt;bold&lt;/b&gt;" in html and "1 runs" in html

    reference = pd.DataFrame({"a": range(500), "b": ["x", "y"] * 250})
    current = pd.DataFrame({"a": range(1000, 1500), "b": ["x", "y"] * 250})
    html = _html(shell, dataset_drift(reference, current))
    assert "drift detected" in html and '<span class="bad">drift</span>' in html and ">b<" in html


def test_a_model_version_and_its_registered_model_show_as_html(shell: InteractiveShell) -> None:
    from sklearn.linear_model import LogisticRegression

    X = pd.DataFrame({"f": [0.0, 1.0, 2.0, 3.0]})
    model = LogisticRegression().fit(X, [0, 0, 1, 1])
    with shipyard.start_run("notebooks") as run:
        info = shipyard.models.log(model, name="model", run=run, input_example=X)
    version = shipyard.models.register(info.uri, "scorer")
    shipyard.models.set_alias("scorer", "champion", version.version)
    html = _html(shell, version)
    assert "model scorer version 1" in html and "models:/scorer/1" in html and "sklearn" in html
    (registered,) = shipyard.models.list_models()
    assert "registered model scorer" in _html(shell, registered) and "@champion: v1" in _html(
        shell, registered
    )
