"""An inference server's heartbeat: every few seconds, what it serves and how it is doing, published as each
served model's :class:`~shipyard.deployments.DeploymentReport` — to the platform server (``--platform``, or
team mode) or into this machine's store — so the UI's deployments page shows every serving server.

A report covers the window since the previous one: requests answered, server errors (5xx), requests per
second, and the median and 95th-percentile latency interpolated within the latency histogram's buckets.
"""

from __future__ import annotations

import getpass
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from shipyard.config import Settings
from shipyard.deployments import DeploymentReport, Deployments, RemoteDeployments, ServedVersion
from shipyard.histograms import percentile
from shipyard.processes import host_name
from shipyard.serving.metrics import ServerMetrics
from shipyard.serving.routing import Deployment
from shipyard.store import open_server_stores
from shipyard.store.http import HttpClient

log = logging.getLogger("shipyard.serving")

Publish = Callable[[str, DeploymentReport], None]
INTERVAL_S = 15.0


@dataclass
class _Totals:
    requests: float = 0.0
    errors: float = 0.0
    buckets: dict[float, float] = field(default_factory=dict)  # upper bound -> cumulative count


def _totals(metrics: ServerMetrics) -> dict[str, _Totals]:
    """The counters so far, per served model name."""
    out: dict[str, _Totals] = {}
    for family in metrics.requests.collect():
        for sample in family.samples:
            if sample.name.endswith("_total"):
                totals = out.setdefault(sample.labels["model"], _Totals())
                totals.requests += sample.value
                if sample.labels["code"].startswith("5"):
                    totals.errors += sample.value
    for family in metrics.latency.collect():
        for sample in family.samples:
            if sample.name.endswith("_bucket"):
                totals = out.setdefault(sample.labels["model"], _Totals())
                bound = float(sample.labels["le"])
                totals.buckets[bound] = totals.buckets.get(bound, 0.0) + sample.value
    return out


def versions_of(deployment: Deployment) -> list[ServedVersion]:
    weights = dict(deployment.traffic.weights)  # a copy: the event loop may change it meanwhile
    return [
        ServedVersion(
            label=label,
            version=str(served.version),
            state=served.state.value,
            weight=float(weights.get(label, 0.0)),
            shadow=deployment.traffic.shadow == label,
        )
        for label, served in list(deployment.versions.items())
    ]


class Heartbeat:
    """Publishes a report of each of ``deployments`` every ``interval_s`` seconds from a daemon thread.

    A report that cannot be published (the platform is down) is logged and dropped: the next one covers its
    counts' totals again only as rates of its own window, which is what the page shows.
    """

    def __init__(
        self,
        metrics: ServerMetrics,
        deployments: Callable[[], Iterable[Deployment]],
        publish: Publish,
        *,
        interval_s: float = INTERVAL_S,
    ) -> None:
        self.metrics = metrics
        self.deployments = deployments
        self.publish = publish
        self.interval_s = interval_s
        self._last = _totals(metrics)
        self._last_at = time.monotonic()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def reports(self) -> dict[str, DeploymentReport]:
        """Each served model's report over the window since the previous call."""
        now = time.monotonic()
        window = max(now - self._last_at, 1e-3)
        current = _totals(self.metrics)
        out = {}
        for deployment in self.deployments():
            was, now_totals = (
                self._last.get(deployment.name, _Totals()),
                current.get(deployment.name, _Totals()),
            )
            requests = max(now_totals.requests - was.requests, 0.0)
            delta = {b: max(c - was.buckets.get(b, 0.0), 0.0) for b, c in now_totals.buckets.items()}
            p50, p95 = percentile(delta, 0.5), percentile(delta, 0.95)
            out[deployment.name] = DeploymentReport(
                versions=versions_of(deployment),
                window_s=round(window, 3),
                requests=int(requests),
                errors=int(max(now_totals.errors - was.errors, 0.0)),
                requests_per_s=requests / window,
                p50_ms=None if p50 is None else p50 * 1000,
                p95_ms=None if p95 is None else p95 * 1000,
                host=host_name(),
                pid=os.getpid(),
            )
        self._last, self._last_at = current, now
        return out

    def beat(self) -> None:
        """Publish one round of reports (each failure logged, never raised)."""
        for name, report in self.reports().items():
            try:
                self.publish(name, report)
            except Exception as exc:  # a heartbeat must never take the server down
                log.warning("could not publish the heartbeat of %s: %s", name, exc)

    def start(self) -> None:
        self.beat()  # at once: the deployments page shows a server from its start
        self._thread = threading.Thread(target=self._run, name="heartbeat", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.beat()


def publisher(settings: Settings, platform: str | None, own_url: str) -> Publish:
    """Where the heartbeat's reports go: the platform server (``--platform``, or team mode's tracking URI,
    as the token's user), else this machine's store (as its operating-system user)."""
    server = platform or settings.tracking_uri
    if server:
        remote = RemoteDeployments(HttpClient(server, token=settings.tracking_token, timeout_s=5.0))

        def to_platform(name: str, report: DeploymentReport) -> None:
            remote.report(name, own_url, report)

        return to_platform
    local = Deployments(open_server_stores(settings).deployments)
    user = getpass.getuser()

    def to_store(name: str, report: DeploymentReport) -> None:
        local.report(name, own_url, report, by=user)

    return to_store
