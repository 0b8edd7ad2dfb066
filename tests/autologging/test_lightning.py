"""PyTorch Lightning autologging, read back from the store: hparams, step/epoch metrics, checkpoint, model."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import shipyard
from shipyard import Settings
from tests.autologging.runs import artifact_paths, history, only_run

torch = pytest.importorskip("torch", reason="PyTorch is not installed (pip install -e '.[dev]')")
L = pytest.importorskip("lightning.pytorch", reason="lightning is not installed (pip install -e '.[dev]')")

BATCHES, EPOCHS = 4, 3


class Regressor(L.LightningModule):
    """y = sum(x), learnt by a tiny MLP; logs a step+epoch train loss and an epoch-level val loss."""

    def __init__(self, hidden: int = 8, lr: float = 0.05) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.net = torch.nn.Sequential(
            torch.nn.Linear(3, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 1)
        )

    def forward(self, x: Any) -> Any:
        return self.net(x)

    def training_step(self, batch: Any, index: int) -> Any:
        x, y = batch
        loss = torch.nn.functional.mse_loss(self(x), y)
        self.log("train_loss", loss, on_step=True, on_epoch=True)
        return loss

    def validation_step(self, batch: Any, index: int) -> None:
        x, y = batch
        self.log("val_loss", torch.nn.functional.mse_loss(self(x), y))

    def configure_optimizers(self) -> Any:
        return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)


def _loader() -> Any:
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(16 * BATCHES, 3, generator=generator)
    return torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(x, x.sum(1, keepdim=True)), batch_size=16
    )


def test_fit_logs_hparams_metrics_per_step_and_epoch_the_best_checkpoint_and_model(
    autologged: Settings, tmp_path: Path
) -> None:
    torch.manual_seed(0)
    checkpoint = L.callbacks.ModelCheckpoint(monitor="val_loss", mode="min")
    trainer = L.Trainer(
        max_epochs=EPOCHS,
        logger=False,
        log_every_n_steps=1,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path / "pl",
        callbacks=[checkpoint, L.callbacks.EarlyStopping("val_loss", patience=5)],
    )
    module = Regressor(hidden=8, lr=0.05)
    trainer.fit(module, _loader(), _loader())

    run = only_run(autologged)
    assert run.name.startswith("Regressor-")
    assert run.params == {
        "hidden": "8",
        "lr": "0.05",
        "epochs": str(EPOCHS),
        "optimizer_name": "SGD",
        "learning_rate": "0.05",
        "early_stopping_monitor": "val_loss",
        "early_stopping_mode": "min",
        "early_stopping_patience": "5",
        "early_stopping_min_delta": "0.0",
    }
    steps = list(range(BATCHES * EPOCHS))
    assert [step for step, _ in history(autologged, run.run_id, "train_loss_step")] == steps
    epoch_ends = [BATCHES * (epoch + 1) - 1 for epoch in range(EPOCHS)]  # Lightning's step at each epoch end
    val_loss = history(autologged, run.run_id, "val_loss")
    assert [step for step, _ in val_loss] == epoch_ends
    assert [step for step, _ in history(autologged, run.run_id, "train_loss_epoch")] == epoch_ends
    assert val_loss[-1][1] == pytest.approx(float(trainer.callback_metrics["val_loss"]))
    assert run.metrics["best_model_score"] == pytest.approx(float(checkpoint.best_model_score))
    assert run.metrics["stopped_epoch"] == 0  # patience never ran out
    best = Path(checkpoint.best_model_path)
    assert best.parent == tmp_path / "pl" / "checkpoints"  # where Lightning puts them with no logger
    assert f"checkpoints/{best.name}" in artifact_paths(autologged, run.run_id)
    summary = shipyard.get_client(autologged).read_artifact(run.run_id, "model_summary.txt").decode()
    assert "Sequential" in summary
    assert re.search(r"^41\s+Total params$", summary, re.MULTILINE)  # 3*8+8 + 8*1+1
    assert trainer.loggers == []  # the Shipyard logger was there for the fit only

    loaded = shipyard.models.load(f"runs:/{run.run_id}/model", settings=autologged)
    sample = np.random.default_rng(0).normal(size=(4, 3)).astype(np.float32)
    with torch.no_grad():
        expected = module(torch.from_numpy(sample)).numpy()
    np.testing.assert_allclose(loaded.predict(sample), expected, rtol=1e-5)


def test_fit_with_log_models_false_logs_no_model(autologged: Settings, tmp_path: Path) -> None:
    shipyard.autolog(settings=autologged, log_models=False)
    trainer = L.Trainer(
        max_epochs=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path / "pl",
    )
    trainer.fit(Regressor(), _loader())

    run = only_run(autologged)
    assert run.params["epochs"] == "1"
    assert artifact_paths(autologged, run.run_id) == {"model_summary.txt"}


def test_a_fit_in_forked_workers_is_one_run_with_the_final_metrics(
    autologged: Settings, tmp_path: Path
) -> None:
    shipyard.autolog(settings=autologged, log_models=False)
    trainer = L.Trainer(
        max_epochs=1,
        accelerator="cpu",
        devices=2,
        strategy="ddp_fork",  # the trainer runs in two processes it forks; no logger of ours goes there
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path / "pl",
    )
    trainer.fit(Regressor(hidden=4), _loader())

    run = only_run(autologged)
    assert run.params["hidden"] == "4"
    assert run.params["epochs"] == "1"
    assert history(autologged, run.run_id, "train_loss_epoch") == [
        (trainer.global_step, pytest.approx(float(trainer.callback_metrics["train_loss_epoch"])))
    ]
