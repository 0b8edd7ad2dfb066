"""Prometheus metrics of one inference server, in a registry of its own (not the process-global one).

- ``shipyard_requests_total{model, version, protocol, code}``
- ``shipyard_request_seconds{model, version, protocol}``: latency histogram, from the first byte read to the
  answer (by version, so a canary's latency can be told from the stable one's)
- ``shipyard_batch_size{model, version}``: requests per predict call; ``shipyard_predict_seconds``: its time
- ``shipyard_queue_depth{model, version}``: requests waiting now; ``shipyard_model_ready{model, version}``;
  ``shipyard_model_load_seconds{model, version}``
- given the artifact store, the gauges the last monitoring run of each served model wrote
  (``monitoring/metrics/<model>.prom``: drift share, feature drift scores, performance) and the last reading
  of its A/B test wrote (``releases/metrics/<model>.prom``), so one scrape of the server covers them all.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

from shipyard.payloads import METRICS_PREFIX, RELEASE_METRICS_PREFIX
from shipyard.serving.repository import ModelRepository, ModelState, ServedModel
from shipyard.store.artifacts import ArtifactStore
from shipyard.tracking.system_metrics import GpuSampler

log = logging.getLogger("shipyard.serving")

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)


class ServerMetrics:
    """The counters and histograms a server updates, and the gauges it reads when scraped."""

    def __init__(
        self,
        repository: ModelRepository,
        monitoring: ArtifactStore | None = None,
        gpus: GpuSampler | None = None,
    ) -> None:
        """``gpus``: the GPUs to export as gauges (default: this machine's, through NVML, when it has any)."""
        self.registry = CollectorRegistry()
        self.repository = repository
        self.queue_depth_of: Callable[[ServedModel], int] = lambda served: 0
        # Each label set's metric children, kept at hand: as many as served versions by protocols by status
        # codes (a model name nothing is served under counts as "", see observe_request).
        self._request_children: dict[tuple[str, str, str, int | str], tuple[Any, Any]] = {}
        self.requests = Counter(
            "shipyard_requests",
            "Inference requests answered, by model, version, protocol and HTTP status code.",
            ["model", "version", "protocol", "code"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "shipyard_request_seconds",
            "Time to answer an inference request.",
            ["model", "version", "protocol"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.batch_size = Histogram(
            "shipyard_batch_size",
            "Requests merged into one predict call.",
            ["model", "version"],
            buckets=_BATCH_BUCKETS,
            registry=self.registry,
        )
        self.predict_seconds = Histogram(
            "shipyard_predict_seconds",
            "Time of one predict call (a whole batch).",
            ["model", "version"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.registry.register(_StateCollector(self))
        gpus = gpus if gpus is not None else GpuSampler()
        if gpus.available:
            self.registry.register(GpuCollector(gpus))
        if monitoring is not None:
            names = sorted({served.name for served in repository.models})
            self.registry.register(MonitoringCollector(monitoring, names))

    def observe_request(
        self, model: str, version: str, protocol: str, code: int | str, seconds: float
    ) -> None:
        """Count one answered request (of any status; ``version`` "" when none was chosen) and its latency.
        A model name no model is served under counts as ``""``: a client must not be able to mint a new
        series (and its memory, in this server and in Prometheus) with each name it makes up."""
        if model not in self.repository.deployments:
            model = ""
        key = (model, version, protocol, code)
        children = self._request_children.get(key)
        if children is None:  # prometheus_client's labels() takes a lock and builds its key on every call
            children = (
                self.requests.labels(model, version, protocol, str(code)),
                self.latency.labels(model, version, protocol),
            )
            self._request_children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def observe_batch(self, served: ServedModel, requests: int, seconds: float) -> None:
        """Record one predict call of ``requests`` merged requests."""
        self.batch_size.labels(served.name, served.version).observe(requests)
        self.predict_seconds.labels(served.name, served.version).observe(seconds)

    def render(self) -> tuple[bytes, str]:
        """The exposition text and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class _StateCollector(Collector):
    """Gauges read at scrape time: queue depth, readiness and load time of each model."""

    def __init__(self, metrics: ServerMetrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[GaugeMetricFamily]:
        depth = GaugeMetricFamily(
            "shipyard_queue_depth", "Requests waiting for a predict slot.", labels=["model", "version"]
        )
        ready = GaugeMetricFamily(
            "shipyard_model_ready", "1 when the model serves.", labels=["model", "version"]
        )
        load = GaugeMetricFamily(
            "shipyard_model_load_seconds", "Time the model took to load.", labels=["model", "version"]
        )
        for served in self.metrics.repository.models:
            name = served.name
            depth.add_metric([name, served.version], self.metrics.queue_depth_of(served))
            ready.add_metric([name, served.version], 1.0 if served.state is ModelState.READY else 0.0)
            if served.load_seconds is not None:
                load.add_metric([name, served.version], served.load_seconds)
        yield from (depth, ready, load)


class GpuCollector(Collector):
    """The machine's NVIDIA GPUs, read at scrape time through NVML: utilisation, memory and power."""

    def __init__(self, sampler: GpuSampler) -> None:
        self.sampler = sampler

    def collect(self) -> Iterator[GaugeMetricFamily]:
        util = GaugeMetricFamily(
            "shipyard_gpu_utilization_percent", "GPU busy time, last sample period.", labels=["gpu"]
        )
        used = GaugeMetricFamily("shipyard_gpu_memory_used_bytes", "GPU memory in use.", labels=["gpu"])
        total = GaugeMetricFamily(
            "shipyard_gpu_memory_total_bytes", "GPU memory on the board.", labels=["gpu"]
        )
        power = GaugeMetricFamily("shipyard_gpu_power_watts", "GPU power draw.", labels=["gpu"])
        try:
            readings = self.sampler.readings()
        except Exception as exc:  # a driver hiccup must not break the scrape of serving metrics
            log.warning("could not read the GPUs: %s", exc)
            return
        for r in readings:
            gpu = [str(r.index)]
            util.add_metric(gpu, r.utilization_percent)
            used.add_metric(gpu, r.memory_used_bytes)
            total.add_metric(gpu, r.memory_total_bytes)
            if r.power_watts is not None:
                power.add_metric(gpu, r.power_watts)
        yield from (util, used, total, power)


class MonitoringCollector(Collector):
    """Re-exports the gauge files monitoring runs wrote for the served models, re-read at most every
    ``max_age`` seconds (a scrape must not walk the artifact store each time)."""

    def __init__(self, store: ArtifactStore, models: list[str], max_age: float = 15.0) -> None:
        self.store = store
        self.models = models
        self.max_age = max_age
        self._lock = threading.Lock()
        self._read_at = -float("inf")
        self._families: list[Metric] = []

    def describe(self) -> list[Metric]:
        return []  # names depend on the files; nothing to check at registration

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            if time.monotonic() - self._read_at >= self.max_age:
                self._families = self._read()
                self._read_at = time.monotonic()
            families = self._families
        yield from families

    def _read(self) -> list[Metric]:
        merged: dict[str, Metric] = {}
        for model, prefix in itertools.product(self.models, (METRICS_PREFIX, RELEASE_METRICS_PREFIX)):
            path = f"{prefix}/{model}.prom"
            try:
                if not self.store.exists(path):
                    continue
                text = self.store.read_bytes(path).decode("utf-8")
                for family in text_string_to_metric_families(text):
                    empty = Metric(family.name, family.documentation, family.type)
                    target = merged.setdefault(family.name, empty)
                    target.samples.extend(family.samples)
            except Exception as exc:  # a bad file must not break the scrape of serving metrics
                log.warning("could not read the monitoring metrics of %s (%s): %s", model, path, exc)
        return list(merged.values())
