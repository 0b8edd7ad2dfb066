"""Background sampling of system metrics (CPU, memory, disk and network I/O, NVIDIA GPUs) into a run.

Metrics are logged under ``system/…`` with the sample number as step. GPU metrics come from nvidia-ml-py
(``pip install 'shipyard[gpu]'``) and are skipped when the library or a GPU is absent.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

log = logging.getLogger(__name__)

LogFn = Callable[[Mapping[str, float], int], None]


def sample_system() -> dict[str, float]:
    """One reading of CPU/memory/disk/network counters (I/O as cumulative bytes)."""
    import psutil

    memory = psutil.virtual_memory()
    sample = {
        "system/cpu_percent": psutil.cpu_percent(interval=None),
        "system/memory_used_mb": memory.used / 2**20,
        "system/memory_percent": memory.percent,
    }
    disk = psutil.disk_io_counters()
    if disk is not None:
        sample["system/disk_read_mb"] = disk.read_bytes / 2**20
        sample["system/disk_write_mb"] = disk.write_bytes / 2**20
    net = psutil.net_io_counters()
    if net is not None:
        sample["system/network_sent_mb"] = net.bytes_sent / 2**20
        sample["system/network_recv_mb"] = net.bytes_recv / 2**20
    return sample


class GpuReading(NamedTuple):
    index: int
    utilization_percent: float
    memory_used_bytes: float
    memory_total_bytes: float
    power_watts: float | None


class GpuSampler:
    """Reads utilisation and memory of every NVIDIA GPU; `available` is False without NVML or a GPU."""

    def __init__(self, nvml: Any = None) -> None:
        """``nvml`` is the ``pynvml`` module (imported when omitted); tests pass a stand-in."""
        self._nvml: Any = None
        self._handles: list[Any] = []
        try:
            if nvml is None:
                import pynvml as nvml

            pynvml = nvml
            pynvml.nvmlInit()
            self._handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(pynvml.nvmlDeviceGetCount())]
            self._nvml = pynvml
        except Exception as exc:  # ImportError or NVMLError: no GPU metrics, not an error
            log.debug("GPU metrics unavailable: %s", exc)

    @property
    def available(self) -> bool:
        return bool(self._handles)

    def readings(self) -> list[GpuReading]:
        """One reading of every GPU, by index."""
        out = []
        for index, handle in enumerate(self._handles):
            util = self._nvml.nvmlDeviceGetUtilizationRates(handle)
            memory = self._nvml.nvmlDeviceGetMemoryInfo(handle)
            power = None
            with contextlib.suppress(Exception):  # not every board reports power
                power = self._nvml.nvmlDeviceGetPowerUsage(handle) / 1000.0
            out.append(GpuReading(index, float(util.gpu), float(memory.used), float(memory.total), power))
        return out

    def sample(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for r in self.readings():
            out[f"system/gpu_{r.index}_utilization_percent"] = r.utilization_percent
            out[f"system/gpu_{r.index}_memory_used_mb"] = r.memory_used_bytes / 2**20
            out[f"system/gpu_{r.index}_memory_percent"] = (
                100.0 * r.memory_used_bytes / max(r.memory_total_bytes, 1)
            )
            if r.power_watts is not None:
                out[f"system/gpu_{r.index}_power_watts"] = r.power_watts
        return out


class SystemMetricsMonitor:
    """A daemon thread that logs a sample every ``interval`` seconds until :meth:`stop`."""

    def __init__(
        self,
        log_metrics: LogFn,
        interval: float = 10.0,
        sample: Callable[[], dict[str, float]] | None = None,
        gpu: bool = True,
    ) -> None:
        """``sample``: what to read each time (default: the machine's counters, :func:`sample_system`);
        ``gpu``: add the GPUs' readings when NVML is there."""
        self._log_metrics = log_metrics
        self._interval = interval
        self._sample = sample or sample_system
        self._with_gpu = gpu
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="shipyard-system-metrics", daemon=True)
        self._gpu: GpuSampler | None = None

    def start(self) -> None:
        import psutil

        psutil.cpu_percent(interval=None)  # primes the CPU counter so the first sample is meaningful
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=self._interval + 5)

    def _loop(self) -> None:
        self._gpu = GpuSampler()
        step = 0
        next_at = time.monotonic() + self._interval
        while not self._stop.wait(max(0.0, next_at - time.monotonic())):
            next_at += self._interval
            try:
                sample = self._sample()
                if self._with_gpu and self._gpu.available:
                    sample.update(self._gpu.sample())
                self._log_metrics(sample, step)
            except Exception as exc:  # a sampling failure must never break the user's run
                log.warning("system metrics sample failed: %s", exc)
            step += 1
