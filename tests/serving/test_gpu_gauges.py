"""The inference server exports the machine's GPUs as Prometheus gauges (NVML read at scrape time); without
a GPU there are none. NVML stands in for the boards (no GPU on CI machines); a real one is used when lent."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from shipyard.serving.metrics import ServerMetrics
from shipyard.serving.repository import ModelRepository
from shipyard.tracking.system_metrics import GpuSampler
from tests.tracking.test_run_extras import _FakeNvml


def _gauges(metrics: ServerMetrics) -> dict[tuple[str, str], float]:
    text = metrics.render()[0].decode()
    return {
        (sample.name, sample.labels.get("gpu", "")): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name.startswith("shipyard_gpu_")
    }


def _repository() -> ModelRepository:
    return ModelRepository([], loader=lambda config, version: None)  # type: ignore[arg-type]


def test_each_gpu_is_a_labelled_gauge_read_at_scrape_time() -> None:
    gauges = _gauges(ServerMetrics(_repository(), gpus=GpuSampler(nvml=_FakeNvml())))
    assert gauges[("shipyard_gpu_utilization_percent", "0")] == 40.0
    assert gauges[("shipyard_gpu_utilization_percent", "1")] == 41.0
    assert gauges[("shipyard_gpu_memory_used_bytes", "1")] == 2 * 2**30
    assert gauges[("shipyard_gpu_memory_total_bytes", "0")] == 8 * 2**30
    assert gauges[("shipyard_gpu_power_watts", "0")] == 150.0
    assert ("shipyard_gpu_power_watts", "1") not in gauges  # that board reports no power


def test_without_gpus_there_are_no_gpu_gauges() -> None:
    class NoDriver:
        def nvmlInit(self) -> None:
            raise RuntimeError("NVML Shared Library Not Found")

    assert _gauges(ServerMetrics(_repository(), gpus=GpuSampler(nvml=NoDriver()))) == {}
