"""A/B tests between the versions of a served model: their records, their outcomes, and their analysis.

An A/B test names a deployment, its arms (version labels with weights summing to 100; the first is the
control), the outcome metric, and the unit of assignment (a request header, e.g. ``X-User-Id``). While it
runs, the inference server assigns each request carrying that header to an arm by a hash of the test's id
and the header's value (:func:`shipyard.serving.routing.assign`), so one user stays in one arm across
requests, restarts and replicas, and logs every assigned request (its *exposure*: request id and arm) in
the payload log, whatever the sample rate.

Outcomes arrive later, by request id: a binary conversion (0/1) or any per-request number, delivered with
:func:`save_outcomes` (``shipyard ab outcomes``) under the test's metric name; the metric ``label`` reads
the monitoring label feed instead (``shipyard monitor labels``: numeric or boolean labels, first row of
each request). :func:`analyze` joins them to the exposures, estimates
each arm with a confidence interval, and compares each treatment arm with the control twice: the
fixed-horizon test (valid once the planned sample is reached) and the sequential mSPRT (valid at every
look; its state is kept in the record, so repeated looks only tighten it). Outcomes for request ids the
test never assigned are counted and reported, never joined.

Records are JSON documents in the artifact store, ``releases/ab/<deployment>/<id>.json``: the server reads
the running one at start-up, the CLI writes them.
"""

from __future__ import annotations

import io
import math
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from html import escape
from typing import Any

import pandas as pd

from shipyard.deployments import check_header_name
from shipyard.errors import Conflict, InvalidInput, NotFound
from shipyard.monitoring.baseline import check_model_name
from shipyard.payloads import read_payloads
from shipyard.releases import records, statistics
from shipyard.releases.statistics import Arm, Estimate, FixedHorizon, Sequential
from shipyard.store.artifacts import ArtifactStore
from shipyard.tracking.records import now_ms

PREFIX = "releases/ab"
LABEL_METRIC = "label"  # outcomes from the monitoring label feed
OUTCOMES_PREFIX = "releases/outcomes"
RUNNING, STOPPED = "running", "stopped"
_METRIC = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,63}")
_ID = re.compile(r"[0-9a-f]{32}")


@dataclass(frozen=True)
class ABTest:
    """One A/B test (see the module's notes). ``sequential`` holds each treatment arm's mSPRT state."""

    id: str
    deployment: str
    arms: dict[str, float]
    metric: str
    kind: str
    unit: str
    alpha: float = 0.05
    mde: float | None = None
    higher_is_better: bool = True
    min_samples: int = 100
    created_at: int = 0
    state: str = RUNNING
    stopped_at: int | None = None
    run_id: str | None = None
    sequential: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def control(self) -> str:
        return next(iter(self.arms))

    @property
    def treatments(self) -> list[str]:
        return list(self.arms)[1:]

    @property
    def comparison_alpha(self) -> float:
        """Alpha for each treatment-vs-control comparison: Bonferroni over the comparisons, so the chance of
        any false winner stays within ``alpha``."""
        return self.alpha / max(1, len(self.arms) - 1)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, document: Mapping[str, Any]) -> ABTest:
        return cls(**{k: document[k] for k in cls.__dataclass_fields__ if k in document})


def parse_arms(text: str) -> dict[str, float]:
    """``"champion=50,challenger=50"`` as ``{"champion": 50.0, "challenger": 50.0}`` (the control first).

    Raises:
        InvalidInput: a part that is not ``label=weight``, a weight that is not a positive number, a label
            given twice, fewer than two arms, or weights that do not sum to 100 (the sum is named).
    """
    arms: dict[str, float] = {}
    for part in text.split(","):
        label, sep, weight = part.strip().partition("=")
        label = label.strip()
        if not sep or not label:
            raise InvalidInput(f"an arm is label=weight (e.g. champion=50), got {part.strip()!r}")
        try:
            value = float(weight)
        except ValueError:
            raise InvalidInput(f"arm {label!r}: the weight must be a number, got {weight!r}") from None
        if not (math.isfinite(value) and value > 0):
            raise InvalidInput(f"arm {label!r}: the weight must be above 0, got {weight!r}")
        if label in arms:
            raise InvalidInput(f"arm {label!r} is given twice")
        arms[label] = value
    if len(arms) < 2:
        raise InvalidInput(f"an A/B test needs two arms or more, got {', '.join(arms) or 'none'}")
    total = sum(arms.values())
    if not math.isclose(total, 100.0, abs_tol=1e-9):
        raise InvalidInput(f"the arms' weights must sum to 100, they sum to {total:g}")
    return arms


def parse_unit(text: str) -> str:
    """``"header:X-User-Id"`` as the header name ``X-User-Id``; the only kind of unit is a request header.

    Raises:
        InvalidInput: another kind, or a name that is not an HTTP header token (letters, digits, '-').
    """
    kind, sep, name = text.partition(":")
    if kind != "header" or not sep:
        raise InvalidInput(f"the unit of assignment is header:<name> (e.g. header:X-User-Id), got {text!r}")
    return check_header_name(name, "the unit header")


def check_metric(metric: str) -> str:
    if not isinstance(metric, str) or not _METRIC.fullmatch(metric):
        raise InvalidInput(f"metric {metric!r} must be a letter or '_' then letters, digits, '_', '.', '-'")
    return metric


def new_test(
    deployment: str,
    arms: Mapping[str, float],
    metric: str,
    unit: str,
    *,
    served: Sequence[str],
    kind: str = "binary",
    alpha: float = 0.05,
    mde: float | None = None,
    higher_is_better: bool = True,
    min_samples: int = 100,
) -> ABTest:
    """A new running test, checked against the version labels the deployment ``served``.

    Raises:
        InvalidInput: the deployment serves a single version, an arm that it does not serve, a bad metric,
            kind, alpha or MDE.
    """
    check_model_name(deployment)
    statistics.check_kind(kind)
    if len(served) < 2:
        raise InvalidInput(
            f"an A/B test needs a deployment with two versions or more; {deployment!r} serves only "
            f"{', '.join(served) or 'nothing'}"
        )
    unknown = [label for label in arms if label not in served]
    if unknown:
        raise InvalidInput(
            f"deployment {deployment!r} has no version {unknown[0]!r}; it serves: {', '.join(served)}"
        )
    if not 0 < alpha < 1:
        raise InvalidInput(f"alpha must be between 0 and 1, got {alpha}")
    if mde is not None and not (math.isfinite(mde) and mde > 0):
        raise InvalidInput(f"the minimum detectable effect must be above 0, got {mde}")
    if min_samples < 2:
        raise InvalidInput(f"min_samples must be 2 or more, got {min_samples}")
    return ABTest(
        id=uuid.uuid4().hex,
        deployment=deployment,
        arms=dict(arms),
        metric=check_metric(metric),
        kind=kind,
        unit=unit,
        alpha=alpha,
        mde=mde,
        higher_is_better=higher_is_better,
        min_samples=min_samples,
        created_at=now_ms(),
    )


# ---------------------------------------------------------------------- records
def _path(deployment: str, test_id: str) -> str:
    return f"{PREFIX}/{check_model_name(deployment)}/{test_id}.json"


def save(store: ArtifactStore, test: ABTest) -> ABTest:
    """Write ``test``'s record (replacing the last one)."""
    records.write(store, _path(test.deployment, test.id), test.to_json())
    return test


def start(store: ArtifactStore, test: ABTest) -> ABTest:
    """Record ``test`` as running.

    Raises:
        Conflict: another test, or a canary, runs on the deployment (named).
    """
    other = running(store, test.deployment)
    if other is not None and other.id != test.id:
        raise Conflict(f"A/B test {other.id} is already running on deployment {test.deployment!r}")
    from shipyard.releases import canary  # NOTE: here: each module checks the other's records

    release = canary.running(store, test.deployment)
    if release is not None:  # both steer the deployment's traffic: one at a time
        raise Conflict(
            f"canary {release.id} ({release.stable} -> {release.canary}) is running on deployment "
            f"{test.deployment!r}; an A/B test waits until it ends"
        )
    return save(store, test)


def tests(store: ArtifactStore, deployment: str) -> list[ABTest]:
    """Every test of ``deployment``, oldest first."""
    found = [
        ABTest.from_json(d) for d in records.documents(store, f"{PREFIX}/{check_model_name(deployment)}")
    ]
    return sorted(found, key=lambda t: (t.created_at, t.id))


def running(store: ArtifactStore, deployment: str) -> ABTest | None:
    """The test running on ``deployment``, if any."""
    return next((t for t in reversed(tests(store, deployment)) if t.state == RUNNING), None)


def get(store: ArtifactStore, deployment: str, test_id: str | None = None) -> ABTest:
    """The test ``test_id`` of ``deployment`` (default: the running one, else the latest).

    Raises:
        NotFound: no such test (the deployment's tests are named).
    """
    found = tests(store, deployment)
    if test_id is None:
        chosen = running(store, deployment) or (found[-1] if found else None)
    else:
        chosen = next((t for t in found if t.id == test_id), None)
    if chosen is None:
        known = ", ".join(t.id for t in found) or "none"
        what = f"A/B test {test_id!r}" if test_id else "an A/B test"
        raise NotFound(f"deployment {deployment!r} has no {what}; its tests: {known}")
    return chosen


def stopped(test: ABTest) -> ABTest:
    """``test`` marked stopped, now."""
    return replace(test, state=STOPPED, stopped_at=now_ms())


# ---------------------------------------------------------------------- outcomes
def save_outcomes(store: ArtifactStore, deployment: str, metric: str, outcomes: pd.DataFrame) -> str:
    """Store one delivery of outcomes of ``metric`` for ``deployment``'s requests.

    Args:
        outcomes: columns ``request_id`` (the served request's id, the ``X-Request-ID`` it was answered
            with) and ``value`` (or a column named as the metric): a number, or a bool (stored as 0/1).

    Returns:
        The store-relative path written; on the same request id a later delivery wins.

    Raises:
        InvalidInput: no rows, a missing column, an empty or null request id, one given twice, or a value
            that is not a finite number (the first bad request id is named).
    """
    check_model_name(deployment)
    check_metric(metric)
    column = "value" if "value" in outcomes.columns else metric
    missing = [c for c in ("request_id", column) if c not in outcomes.columns]
    if missing:
        raise InvalidInput(
            f"outcomes need the columns request_id and value (or {metric}); they have: "
            f"{', '.join(map(str, outcomes.columns)) or 'none'}"
        )
    if outcomes.empty:
        raise InvalidInput("the outcomes have no rows")
    ids = outcomes["request_id"]
    if ids.isna().any() or (ids.astype(str).str.strip() == "").any():
        raise InvalidInput("every outcome needs a request_id; some are empty")
    ids = ids.astype(str)
    twice = ids[ids.duplicated()]
    if not twice.empty:
        raise InvalidInput(f"request_id {twice.iloc[0]!r} has two outcomes in this delivery")
    raw = outcomes[column]
    values = pd.to_numeric(raw.astype("float64") if raw.dtype == bool else raw, errors="coerce")
    bad = values.isna() | ~values.map(lambda v: math.isfinite(v) if pd.notna(v) else False)
    if bad.any():
        first = int(bad.to_numpy().argmax())
        raise InvalidInput(
            f"outcome of request_id {ids.iloc[first]!r} is not a finite number: {raw.iloc[first]!r}"
        )
    frame = pd.DataFrame({"request_id": ids.to_numpy(), "value": values.astype("float64").to_numpy()})
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    stamp = f"{datetime.now(UTC):%Y%m%dT%H%M%S%fZ}-{uuid.uuid4().hex[:8]}"
    path = f"{OUTCOMES_PREFIX}/{deployment}/{metric}/{stamp}.parquet"
    store.put_bytes(buffer.getvalue(), path)
    return path


def load_outcomes(store: ArtifactStore, deployment: str, metric: str) -> pd.DataFrame:
    """Every outcome of ``metric`` for ``deployment`` (columns request_id, value); a later delivery wins."""
    prefix = f"{OUTCOMES_PREFIX}/{check_model_name(deployment)}/{check_metric(metric)}"
    files = (
        sorted(f.path for f in store.list(prefix) if f.path.endswith(".parquet"))
        if store.exists(prefix)
        else []
    )
    if not files:
        return pd.DataFrame({"request_id": pd.Series(dtype=str), "value": pd.Series(dtype="float64")})
    frames = [pd.read_parquet(io.BytesIO(store.read_bytes(path))) for path in files]
    merged = pd.concat(frames, ignore_index=True)
    return merged.drop_duplicates("request_id", keep="last").reset_index(drop=True)


def _label_outcomes(store: ArtifactStore, deployment: str) -> pd.DataFrame:
    """The monitoring label feed of ``deployment`` as outcomes: each request's first row's label, a number
    (booleans as 0/1).

    Raises:
        InvalidInput: a label that is not a number (the request id named).
    """
    from shipyard.monitoring.performance import load_labels

    labels = load_labels(store, deployment)
    labels = labels[labels["row"] == 0]
    raw = labels["label"]
    values = pd.to_numeric(raw.map(lambda v: float(v) if isinstance(v, bool) else v), errors="coerce")
    bad = values.isna()
    if bad.any():
        first = int(bad.to_numpy().argmax())
        request_id = labels["request_id"].iloc[first]
        raise InvalidInput(
            f"A/B outcomes from the label feed must be numbers; request_id {request_id!r} "
            f"has {raw.iloc[first]!r}"
        )
    return pd.DataFrame(
        {"request_id": labels["request_id"].astype(str).to_numpy(), "value": values.to_numpy()}
    )


# ---------------------------------------------------------------------- analysis
@dataclass(frozen=True)
class Comparison:
    """One treatment arm against the control: the fixed-horizon and the sequential reading."""

    arm: str
    fixed: FixedHorizon
    sequential: Sequential

    @property
    def decided(self) -> bool:
        return self.sequential.rejected


@dataclass(frozen=True)
class Report:
    """What a look at a test found: exposures, outcomes joined and not, per-arm estimates, comparisons."""

    test: ABTest
    exposures: dict[str, int]  # requests assigned, per arm
    estimates: dict[str, Estimate]  # per arm, over the requests that have an outcome
    comparisons: list[Comparison]
    unmatched: int  # outcomes for request ids this test never assigned: counted, not joined
    pending: int  # assigned requests with no outcome yet

    @property
    def decision(self) -> str:
        """In words: which arm the sequential test found better, worse, or that it goes on."""
        found = []
        for comparison in self.comparisons:
            if not comparison.decided:
                continue
            higher = comparison.sequential.low > 0
            better = higher == self.test.higher_is_better
            found.append(f"{comparison.arm} is {'better' if better else 'worse'} than {self.test.control}")
        return "; ".join(found) if found else "no difference found yet: keep the test running"

    def to_json(self) -> dict[str, Any]:
        def clean(value: float) -> float | None:
            return value if math.isfinite(value) else None

        return {
            "test": self.test.to_json(),
            "exposures": self.exposures,
            "unmatched_outcomes": self.unmatched,
            "pending_outcomes": self.pending,
            "estimates": {
                arm: {"n": e.n, "mean": clean(e.mean), "low": clean(e.low), "high": clean(e.high)}
                for arm, e in self.estimates.items()
            },
            "comparisons": [
                {
                    "arm": c.arm,
                    "control": self.test.control,
                    "difference": clean(c.fixed.difference),
                    "fixed_horizon": {
                        "low": clean(c.fixed.low),
                        "high": clean(c.fixed.high),
                        "p_value": clean(c.fixed.p_value),
                    },
                    "sequential": {
                        "low": clean(c.sequential.low),
                        "high": clean(c.sequential.high),
                        "p_value": c.sequential.p_value,
                        "rejected": c.sequential.rejected,
                        "looks": c.sequential.looks,
                    },
                }
                for c in self.comparisons
            ],
            "decision": self.decision,
        }


def analyze(store: ArtifactStore, test: ABTest, *, confidence: float = 0.95) -> Report:
    """Join ``test``'s exposures and outcomes and read it once more: the report, whose ``test`` carries
    the sequential states this look advanced (save it, so the next look goes on from there)."""
    payloads = read_payloads(store, test.deployment)
    exposed = payloads[(payloads["experiment"] == test.id) & ~payloads["shadow"].fillna(False).astype(bool)]
    exposed = exposed[exposed["status"] == 200].drop_duplicates("request_id", keep="first")
    exposed = exposed[exposed["label"].isin(list(test.arms))]
    if test.metric == LABEL_METRIC:
        outcomes = _label_outcomes(store, test.deployment)
    else:
        outcomes = load_outcomes(store, test.deployment, test.metric)
    joined = exposed[["request_id", "label"]].merge(outcomes, on="request_id", how="inner")
    unmatched = int((~outcomes["request_id"].isin(exposed["request_id"])).sum())
    arms = {arm: Arm.of(joined.loc[joined["label"] == arm, "value"]) for arm in test.arms}
    if test.kind == "binary":
        bad = joined.loc[~joined["value"].isin([0.0, 1.0]), "request_id"]
        if not bad.empty:
            raise InvalidInput(
                f"A/B test {test.id} has binary outcomes, but request_id {bad.iloc[0]!r} has another value "
                f"(start the test with --kind numeric for any number)"
            )
    estimates = {arm: statistics.estimate(stats, test.kind, confidence) for arm, stats in arms.items()}
    comparisons, states = [], dict(test.sequential)
    alpha = test.comparison_alpha
    for arm in test.treatments:
        previous = states.get(arm)
        state = (
            Sequential(**previous)
            if previous is not None
            else statistics.start_sequential(alpha, tau=test.mde)
        )
        state = statistics.look(state, arms[test.control], arms[arm], test.kind, test.min_samples)
        states[arm] = asdict(state)
        fixed = statistics.fixed_horizon(arms[test.control], arms[arm], test.kind, alpha)
        comparisons.append(Comparison(arm, fixed, state))
    counts = exposed["label"].value_counts()
    return Report(
        test=replace(test, sequential=states),
        exposures={arm: int(counts.get(arm, 0)) for arm in test.arms},
        estimates=estimates,
        comparisons=comparisons,
        unmatched=unmatched,
        pending=int(len(exposed) - len(joined)),
    )


# ---------------------------------------------------------------------- gauges and the HTML report
def write_gauges(store: ArtifactStore, report: Report) -> str:
    """Write ``report`` as Prometheus gauges where the model's inference server exports them
    (``releases/metrics/<deployment>.prom``); the path written."""
    from prometheus_client import CollectorRegistry, Gauge, generate_latest

    from shipyard.payloads import RELEASE_METRICS_PREFIX

    test, registry = report.test, CollectorRegistry()

    def gauge(name: str, documentation: str, labels: list[str]) -> Gauge:
        return Gauge(name, documentation, ["model", "test", *labels], registry=registry)

    running_gauge = gauge("shipyard_ab_running", "1 while the A/B test runs, 0 once stopped", [])
    exposures = gauge("shipyard_ab_exposures", "Requests the A/B test assigned to the arm", ["arm"])
    outcomes = gauge("shipyard_ab_outcomes", "Assigned requests of the arm with an outcome", ["arm"])
    mean = gauge(
        "shipyard_ab_mean", "The arm's mean outcome (a rate, for binary outcomes)", ["arm", "metric"]
    )
    low = gauge("shipyard_ab_mean_low", "Lower end of the arm's 95% confidence interval", ["arm", "metric"])
    high = gauge("shipyard_ab_mean_high", "Upper end of the arm's 95% confidence interval", ["arm", "metric"])
    p_value = gauge("shipyard_ab_p_value", "Always-valid p-value of the arm against the control", ["arm"])
    decided = gauge("shipyard_ab_decided", "1 when the sequential test found the arm differs", ["arm"])
    unmatched = gauge("shipyard_ab_unmatched_outcomes", "Outcomes for requests the test never assigned", [])
    ids = {"model": test.deployment, "test": test.id}
    running_gauge.labels(**ids).set(1 if test.state == RUNNING else 0)
    unmatched.labels(**ids).set(report.unmatched)
    for arm, estimate in report.estimates.items():
        exposures.labels(**ids, arm=arm).set(report.exposures[arm])
        outcomes.labels(**ids, arm=arm).set(estimate.n)
        for target, value in ((mean, estimate.mean), (low, estimate.low), (high, estimate.high)):
            if math.isfinite(value):
                target.labels(**ids, arm=arm, metric=test.metric).set(value)
    for comparison in report.comparisons:
        p_value.labels(**ids, arm=comparison.arm).set(comparison.sequential.p_value)
        decided.labels(**ids, arm=comparison.arm).set(int(comparison.decided))
    path = f"{RELEASE_METRICS_PREFIX}/{check_model_name(test.deployment)}.prom"
    store.put_bytes(generate_latest(registry), path)
    return path


def report_html(report: Report) -> str:
    """``report`` as one self-contained HTML page: the test, each arm's estimate with its interval drawn,
    each comparison with both readings, and the decision. Every value from outside is escaped."""
    test = report.test
    finite = [v for e in report.estimates.values() for v in (e.low, e.high) if math.isfinite(v)]
    lo, hi = (min(finite), max(finite)) if finite else (0.0, 1.0)
    span = (hi - lo) or 1.0

    def x(value: float) -> float:
        return 10 + 380 * (value - lo) / span

    def number(value: float) -> str:
        return f"{value:.4g}" if math.isfinite(value) else "&ndash;"

    arm_rows = []
    for arm, estimate in report.estimates.items():
        bar = ""
        if math.isfinite(estimate.low):
            bar = (
                f'<svg width="400" height="16" role="img" aria-label="interval">'
                f'<line x1="{x(estimate.low):.1f}" x2="{x(estimate.high):.1f}" y1="8" y2="8" stroke="#456" '
                f'stroke-width="3"/><circle cx="{x(estimate.mean):.1f}" cy="8" r="4" fill="#c33"/></svg>'
            )
        role = "control" if arm == test.control else "treatment"
        arm_rows.append(
            f"<tr><td>{escape(arm)}</td><td>{role}</td><td>{report.exposures[arm]:,}</td><td>{estimate.n:,}</td>"
            f"<td>{number(estimate.mean)}</td><td>[{number(estimate.low)}, {number(estimate.high)}]</td>"
            f"<td>{bar}</td></tr>"
        )
    comparison_rows = [
        f"<tr><td>{escape(c.arm)} &minus; {escape(test.control)}</td><td>{number(c.fixed.difference)}</td>"
        f"<td>[{number(c.fixed.low)}, {number(c.fixed.high)}]</td><td>{number(c.fixed.p_value)}</td>"
        f"<td>[{number(c.sequential.low)}, {number(c.sequential.high)}]</td>"
        f"<td>{number(c.sequential.p_value)}</td>"
        f"<td>{c.sequential.looks}</td></tr>"
        for c in report.comparisons
    ]
    arms = ", ".join(f"{escape(a)} {w:g}%" for a, w in test.arms.items())
    started = datetime.fromtimestamp(test.created_at / 1000, UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>A/B test {escape(test.id)}</title>
<style>body{{font:14px system-ui,sans-serif;margin:2em;color:#222}}
table{{border-collapse:collapse;margin:1em 0}}
td,th{{border-bottom:1px solid #ddd;padding:4px 10px;text-align:left}}
.decision{{font-size:1.2em;margin:1em 0}}</style>
</head><body>
<h1>A/B test on {escape(test.deployment)}</h1>
<p>Test <code>{escape(test.id)}</code>, {escape(test.state)}; started {started}. Arms: {arms}; unit: header
<code>{escape(test.unit)}</code>; metric <b>{escape(test.metric)}</b> ({escape(test.kind)},
{"higher" if test.higher_is_better else "lower"} is better); alpha {test.alpha:g}.</p>
<p class="decision">Decision: <b>{escape(report.decision)}</b></p>
<h2>Arms</h2>
<table><tr><th>arm</th><th>role</th><th>requests</th><th>outcomes</th><th>{escape(test.metric)}</th>
<th>95% interval</th><th></th></tr>
{"".join(arm_rows)}</table>
<h2>Against the control</h2>
<table><tr><th>comparison</th><th>difference</th><th>fixed-horizon interval</th><th>p (fixed horizon)</th>
<th>confidence sequence</th><th>p (always valid)</th><th>looks</th></tr>
{"".join(comparison_rows)}</table>
<p>The fixed-horizon test is valid when read once, at the planned sample size. The sequential test (mSPRT,
Johari et al. 2017) is valid at every look: its p-value only falls and its interval only narrows.
Each comparison uses alpha {test.comparison_alpha:g} (Bonferroni over {max(1, len(test.arms) - 1)}).</p>
<p>{report.pending:,} assigned requests wait for an outcome; {report.unmatched:,} outcomes name requests this
test never assigned (not joined).</p>
</body></html>
"""
