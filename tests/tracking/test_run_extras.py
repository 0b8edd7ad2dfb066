"""Module-level shortcuts, figures, system metrics and verified artifact reads."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

import shipyard
from shipyard import IntegrityError, InvalidInput, NotFound, Settings


def test_module_level_shortcuts_log_to_the_active_run(settings: Settings) -> None:
    with pytest.raises(InvalidInput, match="no active run"):
        shipyard.log_metric("acc", 1.0)
    with shipyard.start_run("mlflow-style", settings=settings) as run:
        shipyard.log_param("model", "rf")
        shipyard.log_params({"depth": 3})
        shipyard.log_metric("acc", 0.5, step=1)
        shipyard.log_metrics({"acc": 0.7, "loss": 0.2}, step=2)
        shipyard.set_tag("owner", "me")
        shipyard.log_text("hi", "hi.txt")
        shipyard.log_dict({"a": 1}, "a.json")
    stored = shipyard.get_client(settings).get_run(run.run_id)
    assert stored.params == {"model": "rf", "depth": "3"}
    assert stored.metrics == {"acc": 0.7, "loss": 0.2}
    assert stored.tags == {"owner": "me"}


def test_an_attached_run_is_logged_into_and_flushed_but_not_ended(settings: Settings) -> None:
    from shipyard.tracking.fluent import _open_runs, attached_run

    owner = shipyard.start_run("attach", settings=settings)
    seen: list[object] = []

    def worker() -> None:  # another thread has no active run of its own, like a pipeline worker process
        assert shipyard.active_run() is None
        with attached_run(owner.record, settings):
            run = shipyard.active_run()
            seen.append(run.run_id if run else None)
            shipyard.log_metric("loss", 0.25)
        seen.append(shipyard.active_run())

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()
    assert seen == [owner.run_id, None]
    assert _open_runs[owner.run_id] is owner  # exit hooks would end only the owner's handle
    stored = shipyard.get_client(settings).get_run(owner.run_id)
    assert stored.status is shipyard.RunStatus.RUNNING  # left for its owner to end
    assert stored.metrics == {"loss": 0.25}  # flushed when the block exited
    with pytest.raises(InvalidInput, match="is active"), attached_run(owner.record, settings):
        pass
    owner.end()


def test_log_figure_saves_an_image(settings: Settings) -> None:
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots()
    axis.plot([1, 2, 3], [3, 1, 2])
    with shipyard.start_run("fig", settings=settings) as run:
        record = run.log_figure(figure, "plots/curve.png")
        with pytest.raises(InvalidInput, match="matplotlib or plotly"):
            run.log_figure(object(), "x.png")
    data = shipyard.get_client(settings).read_artifact(run.run_id, "plots/curve.png")
    assert data.startswith(b"\x89PNG") and len(data) == record.size


def test_system_metrics_are_sampled_in_the_background(settings: Settings) -> None:
    with shipyard.start_run(
        "sys", settings=settings, log_system_metrics=True, system_metrics_interval=0.1
    ) as run:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            time.sleep(0.1)
            if len(run.info.metrics) and len(run.metric_history("system/cpu_percent")) >= 3:
                break
    stored = shipyard.get_client(settings).get_run(run.run_id)
    for key in ("system/cpu_percent", "system/memory_used_mb", "system/memory_percent"):
        assert key in stored.metrics
    steps = [p.step for p in shipyard.get_client(settings).metric_history(run.run_id, "system/cpu_percent")]
    assert steps == list(range(len(steps))) and len(steps) >= 3


def test_artifact_reads_are_verified(settings: Settings, tmp_path: Path) -> None:
    with shipyard.start_run("art", settings=settings) as run:
        run.log_text("original", "dir/file.txt")
        run.log_text("other", "dir/two.txt")
    client = shipyard.get_client(settings)
    assert client.read_artifact(run.run_id, "dir/file.txt") == b"original"
    out = client.download_artifacts(run.run_id, "dir", tmp_path / "dl")
    assert (out / "two.txt").read_text() == "other"
    Path(run.artifact_uri, "dir", "file.txt").write_text("tampered")
    with pytest.raises(IntegrityError, match=r"file\.txt"):
        client.read_artifact(run.run_id, "dir/file.txt")
    with pytest.raises(NotFound, match=r"nothing\.txt"):
        client.read_artifact(run.run_id, "nothing.txt")
    with pytest.raises(InvalidInput):
        client.read_artifact(run.run_id, "../../etc/passwd")


def test_symlink_escape_inside_run_root_is_refused(settings: Settings, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    with shipyard.start_run("art", settings=settings) as run:
        run.log_text("x", "keep.txt")
        Path(run.artifact_uri, "evil").symlink_to(outside)
        with pytest.raises(InvalidInput, match="escapes"):
            run.log_text("payload", "evil/planted.txt")
    assert not (outside / "planted.txt").exists()


class _FakeNvml:
    """Stands in for pynvml (no GPU on CI machines): two boards, the second without power readings."""

    class _Reading:
        def __init__(self, **values: float) -> None:
            self.__dict__.update(values)

    def nvmlInit(self) -> None:  # pynvml's method names
        pass

    def nvmlDeviceGetCount(self) -> int:
        return 2

    def nvmlDeviceGetHandleByIndex(self, index: int) -> int:
        return index

    def nvmlDeviceGetUtilizationRates(self, handle: int) -> object:
        return self._Reading(gpu=40 + handle)

    def nvmlDeviceGetMemoryInfo(self, handle: int) -> object:
        return self._Reading(used=2 * 2**30, total=8 * 2**30)

    def nvmlDeviceGetPowerUsage(self, handle: int) -> int:
        if handle == 1:
            raise RuntimeError("not supported")
        return 150_000


def test_gpu_sampler_reads_every_board() -> None:
    from shipyard.tracking.system_metrics import GpuSampler

    sampler = GpuSampler(nvml=_FakeNvml())
    assert sampler.available
    sample = sampler.sample()
    assert sample["system/gpu_0_utilization_percent"] == 40.0
    assert sample["system/gpu_1_memory_percent"] == 25.0
    assert sample["system/gpu_0_memory_used_mb"] == 2048.0
    assert sample["system/gpu_0_power_watts"] == 150.0 and "system/gpu_1_power_watts" not in sample


def test_gpu_sampler_on_a_real_gpu() -> None:
    from shipyard.tracking.system_metrics import GpuSampler

    sampler = GpuSampler()
    if not sampler.available:
        pytest.skip("no NVIDIA GPU or nvidia-ml-py on this machine")
    assert any(key.endswith("_utilization_percent") for key in sampler.sample())
