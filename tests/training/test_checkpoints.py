"""Checkpoints are hostile until checked: the pointer may only name a checkpoint file, the content must
match its sha256, and anything beyond tensors and plain containers needs trusted=True."""

from __future__ import annotations

import json

import pytest

import shipyard
from shipyard import training
from shipyard.errors import IntegrityError, InvalidInput, UntrustedArtifact
from tests.training import jobs


def test_a_checkpoint_round_trips_tensors_and_plain_values() -> None:
    import torch

    with shipyard.start_run("notebook"):
        state = {"w": torch.arange(4.0), "epoch": 3, "name": "x", "history": [0.5, 0.25]}
        path = training.save_checkpoint(state, 7)
        saved = training.latest_checkpoint()
    assert path == "checkpoints/step-000000007.pt"
    assert saved is not None and saved.step == 7 and saved.path == path
    assert torch.equal(saved.state["w"], torch.arange(4.0)) and saved.state["history"] == [0.5, 0.25]


def test_objects_that_need_unpickling_are_refused_unless_trusted() -> None:
    with shipyard.start_run("notebook"):
        training.save_checkpoint({"note": jobs.Note("kept")}, 1)
        with pytest.raises(UntrustedArtifact, match="checkpoints/step-000000001.pt .* trusted=True"):
            training.latest_checkpoint()
        trusted = training.latest_checkpoint(trusted=True)
    assert trusted is not None and trusted.state["note"].text == "kept"


def test_a_tampered_checkpoint_fails_its_sha256() -> None:
    with shipyard.start_run("notebook") as run:
        training.save_checkpoint({"epoch": 1}, 1)
        run.artifacts.put_bytes(b"not the checkpoint", "checkpoints/step-000000001.pt")
        with pytest.raises(IntegrityError):
            training.latest_checkpoint()


@pytest.mark.parametrize("path", ["../../../etc/passwd", "model/model.pkl", "checkpoints/step-1.pt/../../x"])
def test_a_pointer_naming_another_file_is_refused(path: str) -> None:
    with shipyard.start_run("notebook") as run:
        training.save_checkpoint({"epoch": 1}, 1)
        pointer = json.loads(run.artifacts.read_bytes("checkpoints/latest.json"))
        run.log_text(json.dumps({**pointer, "path": path}), "checkpoints/latest.json")
        with pytest.raises(InvalidInput, match="points outside checkpoints/"):
            training.latest_checkpoint()


@pytest.mark.parametrize("step", [-1, 1.5, True, "3"])
def test_a_bad_step_is_refused(step: object) -> None:
    with (
        shipyard.start_run("notebook"),
        pytest.raises(InvalidInput, match="step must be a non-negative integer"),
    ):
        training.save_checkpoint({}, step)  # type: ignore[arg-type]


def test_without_a_job_or_a_run_there_is_nowhere_to_keep_checkpoints() -> None:
    with pytest.raises(InvalidInput, match="no run to keep checkpoints in"):
        training.save_checkpoint({}, 0)
