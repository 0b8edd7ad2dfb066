"""Page loads in headless Chromium (Playwright's sync API, Debian's ``/usr/bin/chromium``), timed in the page.

A load goes to ``about:blank`` first, then to the page, and polls a condition in the page on every animation
frame; the time is the page's own ``performance.now()`` when the condition first holds, i.e. milliseconds
from its navigation start. Each load also keeps the page's navigation timing (when its document's first
byte came, when its ``load`` event ended) and, for the requests the page made whose URL holds ``watch``, how
long the server took to answer (response start - request start).

One context per system: its HTTP cache stays warm from one load to the next, as for a person coming back to
the page (the first, warm-up, load is not counted).
"""

from __future__ import annotations

import contextlib
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1400, "height": 900}

# Conditions polled in the page: each returns false, or {t: performance.now(), …what it saw}.
FIRST_ROW = """(selector) => {
  const row = document.querySelector(selector);
  if (!row) return false;
  const box = row.getBoundingClientRect();
  if (box.height <= 0 || box.bottom <= 0 || box.top >= innerHeight) return false;
  return {t: performance.now(), text: row.innerText.slice(0, 300)};
}"""

# Shipyard's compare: every chart holds its uPlot canvas (uPlot draws it in a microtask after it is made,
# so it is drawn by the next frame, where this runs).
UPLOT_CHARTS = """(charts) => {
  const figs = [...document.querySelectorAll("figure.chart")];
  if (figs.length < charts || !figs.every((f) => f.querySelector("canvas") && f._plot)) return false;
  return {t: performance.now(), charts: figs.length, series: figs.map((f) => f._plot.series.length - 1)};
}"""

# MLflow's metric page: its Plotly chart has drawn at least ``lines`` curves (it draws every trace at once).
PLOTLY_LINES = """(lines) => {
  const drawn = [...document.querySelectorAll(".js-plotly-plot .scatterlayer .trace path.js-line")]
    .filter((p) => (p.getAttribute("d") || "").length > 20);
  if (drawn.length < lines) return false;
  return {t: performance.now(), lines: drawn.length};
}"""

# Shipyard's pipeline run page: the DAG's SVG is in the DOM with all its nodes, and laid out.
DAG_DRAWN = """(nodes) => {
  const svg = document.querySelector("svg.dag");
  if (!svg) return false;
  const count = svg.querySelectorAll("g[data-step]").length;
  if (count < nodes) return false;
  const box = svg.getBoundingClientRect();
  if (box.width <= 0 || box.height <= 0) return false;
  return {t: performance.now(), nodes: count, width: box.width, height: box.height};
}"""

NAVIGATION = """() => {
  const n = performance.getEntriesByType("navigation")[0];
  return n ? {request: n.requestStart, first_byte: n.responseStart, document: n.responseEnd,
              dom_ready: n.domContentLoadedEventEnd, load: n.loadEventEnd} : {};
}"""


@dataclass
class Load:
    """One page load: ``ms`` from navigation start until the condition held (None: not within budget)."""

    ms: float | None
    seen: dict[str, Any] = field(default_factory=dict)
    navigation: dict[str, float] = field(default_factory=dict)
    server_ms: list[float] = field(default_factory=list)  # the watched requests' server times

    @property
    def document_server_ms(self) -> float | None:
        nav = self.navigation
        return nav["first_byte"] - nav["request"] if nav.get("first_byte") else None


@dataclass
class Loads:
    """Repeated loads of one page: the warm-up and the timed ones."""

    warmup: Load
    timed: list[Load]
    budget_s: float

    @property
    def complete(self) -> bool:
        return self.warmup.ms is not None and all(load.ms is not None for load in self.timed)

    @property
    def median_ms(self) -> float | None:
        times = [load.ms for load in self.timed if load.ms is not None]
        return statistics.median(times) if times and self.complete else None

    def summary(self) -> dict[str, Any]:
        """JSON-able figures: every load's time, what it saw, its navigation timing and server times."""
        return {
            "median_ms": self.median_ms,
            "budget_s": self.budget_s,
            "warmup": vars(self.warmup),
            "loads": [vars(load) for load in self.timed],
        }


class Browser:
    """Headless Chromium and Playwright, started once; :meth:`close` stops both."""

    def __init__(self) -> None:
        try:
            from playwright.sync_api import sync_playwright
        except ImportError as exc:
            raise RuntimeError(f"the UI benchmark needs Playwright: pip install playwright ({exc})") from exc
        if not CHROMIUM.exists():
            raise RuntimeError(
                f"the UI benchmark needs Debian's Chromium at {CHROMIUM} (apt-get install chromium)"
            )
        self._playwright = sync_playwright().start()
        try:
            self._chromium = self._playwright.chromium.launch(
                executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
            )
        except Exception:
            self._playwright.stop()
            raise
        self.version = self._chromium.version

    def tab(self) -> Tab:
        """A page in a context of its own (its own cache and cookies)."""
        return Tab(self._chromium.new_context(viewport=VIEWPORT))

    def close(self) -> None:
        self._chromium.close()
        self._playwright.stop()


class Tab:
    """One page of one context, loaded again and again."""

    def __init__(self, context: Any) -> None:
        self._context = context
        self.page = context.new_page()
        self._watch: str | None = None
        self._server_ms: list[float] = []
        self.page.on("requestfinished", self._finished)

    def _finished(self, request: Any) -> None:
        if self._watch is None or self._watch not in request.url:
            return
        timing = request.timing
        if timing.get("responseStart", -1) >= 0 and timing.get("requestStart", -1) >= 0:
            self._server_ms.append(timing["responseStart"] - timing["requestStart"])

    def load(self, url: str, condition: str, arg: Any, budget_s: float, watch: str | None = None) -> Load:
        """Load ``url`` and wait (at most ``budget_s``) for ``condition(arg)`` to hold in the page."""
        from playwright.sync_api import TimeoutError as PlaywrightTimeout

        page = self.page
        page.goto("about:blank")
        self._watch, self._server_ms = watch, []
        try:
            page.goto(url, wait_until="commit", timeout=budget_s * 1000)
            seen = page.wait_for_function(condition, arg=arg, polling="raf", timeout=budget_s * 1000)
        except PlaywrightTimeout:
            return Load(None, navigation=self._navigation(), server_ms=list(self._server_ms))
        found = dict(seen.json_value())
        with contextlib.suppress(PlaywrightTimeout):  # the load event's time stays unknown then
            page.wait_for_load_state("load", timeout=budget_s * 1000)
        return Load(found.pop("t"), found, self._navigation(), list(self._server_ms))

    def _navigation(self) -> dict[str, float]:
        try:
            return dict(self.page.evaluate(NAVIGATION))
        except Exception:  # the page is gone or still navigating: no timing to keep
            return {}

    def loads(
        self,
        url: str,
        condition: str,
        arg: Any,
        budget_s: float,
        repeats: int,
        watch: str | None = None,
        total_s: float | None = None,
    ) -> Loads:
        """A warm-up load, then up to ``repeats`` timed ones: none after a load that ran out of its budget,
        and, past the first, none that would end after ``total_s`` (judged by the load before it)."""
        started = time.monotonic()
        warmup = self.load(url, condition, arg, budget_s, watch)
        timed: list[Load] = []
        if warmup.ms is not None:
            for _ in range(repeats):
                began = time.monotonic()
                timed.append(self.load(url, condition, arg, budget_s, watch))
                if timed[-1].ms is None:
                    break
                took = time.monotonic() - began
                if total_s is not None and time.monotonic() - started + took > total_s:
                    break
        self.page.goto("about:blank")  # stop whatever the last page still does
        return Loads(warmup, timed, budget_s)

    def close(self) -> None:
        self._context.close()
