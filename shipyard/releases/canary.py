"""Automated canary analysis: move traffic to a new version step by step, judging it at each step on the
live metrics of both versions, and roll back at the first step that shows it worse.

A canary names a deployment, the *stable* version (the one taking the traffic when it starts) and the
*canary* version, the traffic steps (``5,25,50,100`` percent) and how long each lasts, and rules. Each
evaluation (:func:`evaluate`: the CLI's ``--once``, or its loop) reads the inference server's ``/metrics``,
subtracts what the counters held when the step began, and judges the canary's window against the rules:

- **roll back** when a rule fails (with the canary's requests at least ``min_requests``): traffic to the
  stable version 100%, the canary 0%, the canary's registry version tagged ``shipyard.canary=rolled_back``;
- **hold** while the canary has fewer requests than ``min_requests`` in the step, or the step's interval has
  not passed;
- **advance** to the next step when the interval has passed and every rule holds; after the last step
  (100%) **promote**: the ``champion`` alias moves to the canary's registry version.

Every decision is appended to the canary's audit log with its evidence (each version's requests, error
rate, latency percentiles and the rules' verdicts): ``releases/canary/<deployment>/<id>/<n>.json`` in the
artifact store, one immutable file per decision.

Rules (YAML), each metric with the bounds that make sense for it::

    min_requests: 100          # the canary's requests in a step before it can pass or fail
    rules:
      - metric: error_rate     # share of answers that were 5xx
        max: 0.02              # absolute
        max_increase: 0.01     # above the stable version's rate in the same window
      - metric: p99_latency_ms # also p50_latency_ms, p95_latency_ms
        max: 250
        max_ratio: 2.0         # canary / stable
      - metric: accuracy       # also precision, recall, f1, r2 (min, max_decrease); mae, rmse (as latency)
        max_decrease: 0.02     # judged once min_labels (default 30) of the canary's predictions have labels

      - metric: drift_share    # inputs drifted from the version's training baseline (max, max_increase)
        max: 0.5               # judged from min_drift_rows (default 50) served rows

Quality rules join the payload log (the server must log payloads to the same artifact store) with the label
feed (``shipyard monitor labels``) by request id, over the step's window; until enough labels have arrived
they are not judged, and the step is decided on the other rules.
"""

from __future__ import annotations

import contextlib
import itertools
import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from shipyard.errors import Conflict, InvalidInput, NotFound
from shipyard.histograms import percentile
from shipyard.monitoring.baseline import check_model_name
from shipyard.releases import records
from shipyard.store.artifacts import ArtifactStore
from shipyard.tracking.records import now_ms

if TYPE_CHECKING:
    import pandas as pd

    from shipyard.config import Settings
    from shipyard.registry.client import RegistryClient
    from shipyard.releases.admin import AdminClient

PREFIX = "releases/canary"
RUNNING, PROMOTED, ROLLED_BACK = "running", "promoted", "rolled_back"
ABORTED = "aborted"  # could not begin: the first traffic change failed
HOLD, ADVANCE, PROMOTE, ROLLBACK = "hold", "advance", "promote", "rollback"

# metric -> the bounds a rule on it may set (lower-is-better metrics take maxima; the others minima)
_HIGHER_IS_BETTER = frozenset({"min", "max_decrease"})
_LOWER_IS_BETTER = frozenset({"max", "max_increase", "max_ratio"})
METRICS: dict[str, frozenset[str]] = {
    "error_rate": frozenset({"max", "max_increase"}),
    "p50_latency_ms": frozenset({"max", "max_ratio"}),
    "p95_latency_ms": frozenset({"max", "max_ratio"}),
    "p99_latency_ms": frozenset({"max", "max_ratio"}),
    # Against ground truth, once labels arrive (the monitoring label feed, joined by request id).
    "accuracy": _HIGHER_IS_BETTER,
    "precision": _HIGHER_IS_BETTER,
    "recall": _HIGHER_IS_BETTER,
    "f1": _HIGHER_IS_BETTER,
    "r2": _HIGHER_IS_BETTER,
    "mae": _LOWER_IS_BETTER,
    "rmse": _LOWER_IS_BETTER,
    # The share of input columns whose served distribution drifted from the version's training baseline.
    "drift_share": frozenset({"max", "max_increase"}),
}
PERFORMANCE_METRICS = frozenset({"accuracy", "precision", "recall", "f1", "r2", "mae", "rmse"})
_QUANTILES = {"p50_latency_ms": 0.5, "p95_latency_ms": 0.95, "p99_latency_ms": 0.99}


class Rule(BaseModel):
    """One rule: a metric and its bounds (absolute, and relative to the stable version)."""

    model_config = ConfigDict(extra="forbid")

    metric: str
    max: float | None = Field(default=None, ge=0)
    min: float | None = None
    max_increase: float | None = Field(default=None, ge=0)
    max_decrease: float | None = Field(default=None, ge=0)
    max_ratio: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _known(self) -> Rule:
        allowed = METRICS.get(self.metric)
        if allowed is None:
            raise ValueError(f"unknown metric {self.metric!r}; known: {', '.join(METRICS)}")
        given = {
            k
            for k in ("max", "min", "max_increase", "max_decrease", "max_ratio")
            if getattr(self, k) is not None
        }
        if not given:
            raise ValueError(f"rule on {self.metric} sets no bound; it takes: {', '.join(sorted(allowed))}")
        wrong = sorted(given - allowed)
        if wrong:
            raise ValueError(
                f"rule on {self.metric} cannot set {', '.join(wrong)}; it takes: {', '.join(sorted(allowed))}"
            )
        return self


class Rules(BaseModel):
    """A canary's rules file."""

    model_config = ConfigDict(extra="forbid")

    min_requests: int = Field(default=100, ge=1)
    min_labels: int = Field(default=30, ge=1)  # labelled canary predictions before a quality rule is judged
    min_drift_rows: int = Field(default=50, ge=2)  # served input rows before drift is judged
    rules: list[Rule] = Field(min_length=1)

    @property
    def needs_labels(self) -> bool:
        return any(rule.metric in PERFORMANCE_METRICS for rule in self.rules)

    @property
    def needs_drift(self) -> bool:
        return any(rule.metric == "drift_share" for rule in self.rules)


def load_rules(text: str, source: str = "rules") -> Rules:
    """Parse and check a rules document (YAML or JSON).

    Raises:
        InvalidInput: not YAML, or a rule naming an unknown metric or a bound it cannot take (named).
    """
    import yaml

    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InvalidInput(f"{source} is not YAML: {exc}") from None
    try:
        return Rules.model_validate(document)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        message = str(first["msg"]).removeprefix("Value error, ")
        raise InvalidInput(f"{source}: {where + ': ' if where else ''}{message}") from None


# ---------------------------------------------------------------------- the server's counters
@dataclass
class Counts:
    """One version's counters: requests answered, 5xx among them, and the cumulative latency buckets."""

    requests: float = 0.0
    errors: float = 0.0
    buckets: dict[str, float] = field(default_factory=dict)  # upper bound (as text, JSON-safe) -> count

    def minus(self, earlier: Counts | None) -> Counts:
        """The window since ``earlier`` (a restarted server's counters start again at 0: then all of them)."""
        if earlier is None or self.requests < earlier.requests:
            return Counts(self.requests, self.errors, dict(self.buckets))
        return Counts(
            self.requests - earlier.requests,
            self.errors - earlier.errors,
            {le: count - earlier.buckets.get(le, 0.0) for le, count in self.buckets.items()},
        )

    def quantile_ms(self, q: float) -> float | None:
        found = percentile({float(le): count for le, count in self.buckets.items()}, q)
        return None if found is None else found * 1000


def parse_counts(text: str, model: str) -> dict[str, Counts]:
    """Per registry version of ``model``, its counters in a server's ``/metrics`` exposition ``text``."""
    from prometheus_client.parser import text_string_to_metric_families

    found: dict[str, Counts] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = sample.labels
            if labels.get("model") != model or not labels.get("version"):
                continue
            counts = found.setdefault(labels["version"], Counts())
            if sample.name == "shipyard_requests_total":
                counts.requests += sample.value
                if labels.get("code", "").startswith("5"):
                    counts.errors += sample.value
            elif sample.name == "shipyard_request_seconds_bucket":
                counts.buckets[labels["le"]] = counts.buckets.get(labels["le"], 0.0) + sample.value
    return found


def measure(window: Counts) -> dict[str, float | None]:
    """The rules' metrics over one version's window."""
    measured: dict[str, float | None] = {
        "requests": window.requests,
        "error_rate": window.errors / window.requests if window.requests else None,
    }
    for metric, q in _QUANTILES.items():
        measured[metric] = window.quantile_ms(q)
    return measured


def judge(rules: Rules, canary: Mapping[str, float | None], stable: Mapping[str, float | None]) -> list[str]:
    """The rules the canary's window breaks, each in words with its numbers (empty: it passes)."""
    broken = []
    for rule in rules.rules:
        value, base = canary.get(rule.metric), stable.get(rule.metric)
        if value is None:
            continue  # nothing measured for it in this window (no requests, no latency yet)
        name = rule.metric
        if rule.max is not None and value > rule.max:
            broken.append(f"{name} {value:.4g} > max {rule.max:g}")
        if rule.min is not None and value < rule.min:
            broken.append(f"{name} {value:.4g} < min {rule.min:g}")
        if base is None:
            continue
        if rule.max_increase is not None and value - base > rule.max_increase:
            broken.append(
                f"{name} {value:.4g} is {value - base:.4g} above stable's {base:.4g} "
                f"(max +{rule.max_increase:g})"
            )
        if rule.max_decrease is not None and base - value > rule.max_decrease:
            broken.append(
                f"{name} {value:.4g} is {base - value:.4g} below stable's {base:.4g} "
                f"(max -{rule.max_decrease:g})"
            )
        if rule.max_ratio is not None and base > 0 and value / base > rule.max_ratio:
            broken.append(
                f"{name} {value:.4g} is {value / base:.3g}x stable's {base:.4g} (max {rule.max_ratio:g}x)"
            )
    return broken


def logged_since(store: ArtifactStore, deployment: str, since_ms: int) -> pd.DataFrame:
    """The payload log of ``deployment`` from ``since_ms`` on (read once an evaluation, for both windows)."""
    import pandas as pd

    from shipyard.payloads import read_payloads

    payloads = read_payloads(store, deployment)
    return payloads[payloads["timestamp"] >= pd.Timestamp(since_ms, unit="ms", tz="UTC")]


def window_performance(
    store: ArtifactStore, deployment: str, payloads: pd.DataFrame
) -> dict[str, dict[str, float]]:
    """Per registry version of ``deployment``: its predictions in ``payloads`` (the step's window of the
    payload log) that have labels (joined with the label feed by request id), as ``labels`` and the quality
    metrics (accuracy, f1… or mae, rmse, r2). Shadow answers count for their version too."""
    from shipyard.monitoring.performance import join_labels, load_labels, performance_metrics

    if payloads.empty:
        return {}
    joined = join_labels(payloads, load_labels(store, deployment)).data
    found: dict[str, dict[str, float]] = {}
    for version, rows in joined.groupby("version"):
        found[str(version)] = {
            "labels": float(len(rows)),
            **performance_metrics(rows["label"], rows["prediction"]),
        }
    return found


def window_drift(
    store: ArtifactStore,
    deployment: str,
    payloads: pd.DataFrame,
    registry: RegistryClient | None,
    min_rows: int,
) -> dict[str, dict[str, Any]]:
    """Per registry version of ``deployment``: the inputs it answered in ``payloads`` (the step's window of
    the payload log) against its training baseline (the one set for the deployment, else the one packaged
    with the version): ``rows`` and ``drift_share``; ``note`` instead when there are fewer than
    ``min_rows`` or no baseline."""
    from shipyard.data.drift import dataset_drift
    from shipyard.errors import ShipyardError
    from shipyard.monitoring.baseline import find_baseline
    from shipyard.monitoring.job import served_inputs
    from shipyard.payloads import model_inputs
    from shipyard.registry.uri import RegistryUri, parse_model_uri

    found: dict[str, dict[str, Any]] = {}
    for version, answered in payloads[payloads["status"] == 200].groupby("version"):
        frame, _, _ = served_inputs(model_inputs(answered))
        if len(frame) < min_rows:
            found[str(version)] = {"rows": len(frame), "note": f"{len(frame)} of {min_rows} rows"}
            continue
        uris = answered["model_uri"].dropna()
        source = parse_model_uri(str(uris.iloc[0])) if len(uris) else None
        name = source.name if isinstance(source, RegistryUri) else None
        try:
            baseline = find_baseline(
                store, deployment, registry=registry, version=str(version), registered_name=name
            )
        except ShipyardError as exc:  # no baseline: drift cannot be judged for this version
            found[str(version)] = {"rows": len(frame), "note": str(exc)}
            continue
        current = frame[[c for c in baseline.frame.columns if c in frame.columns]]
        found[str(version)] = {
            "rows": len(frame),
            "drift_share": dataset_drift(baseline.frame, current).drift_share,
        }
    return found


# ---------------------------------------------------------------------- the canary's record
@dataclass(frozen=True)
class Canary:
    """One canary release (see the module's notes); ``baseline`` holds the counters when the step began."""

    id: str
    deployment: str
    stable: str  # version labels on the server
    canary: str
    stable_version: str  # registry version numbers, as the server's metrics label them
    canary_version: str
    steps: list[float]
    interval_s: float
    rules: dict[str, Any]
    model_uri: str | None = None  # the canary's registry version (models:/name/N), for promotion and marking
    step: int = 0  # index into steps
    state: str = RUNNING
    started_at: int = 0
    step_started_at: int = 0
    baseline: dict[str, dict[str, Any]] = field(default_factory=dict)
    decisions: int = 0

    @property
    def weight(self) -> float:
        return self.steps[self.step]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, document: Mapping[str, Any]) -> Canary:
        return cls(**{k: document[k] for k in cls.__dataclass_fields__ if k in document})


def parse_steps(text: str) -> list[float]:
    """``"5,25,50,100"`` as percentages; they must rise strictly and end at 100.

    Raises:
        InvalidInput: a step that is not a number in (0, 100], steps that do not rise, a last step below 100.
    """
    steps = []
    for part in text.split(","):
        try:
            value = float(part)
        except ValueError:
            raise InvalidInput(f"a canary step is a percentage, got {part.strip()!r}") from None
        if not 0 < value <= 100:
            raise InvalidInput(f"a canary step must be above 0 and at most 100, got {part.strip()}")
        steps.append(value)
    if any(b <= a for a, b in itertools.pairwise(steps)):
        raise InvalidInput(f"canary steps must rise, got {text}")
    if steps[-1] != 100:
        raise InvalidInput(f"the last canary step must be 100 (the promotion), got {steps[-1]:g}")
    return steps


_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)?")


def parse_interval(text: str) -> float:
    """``"5m"``, ``"30s"``, ``"1h"`` or seconds as a number, in seconds."""
    match = _DURATION.fullmatch(text.strip())
    if match is None:
        raise InvalidInput(f"an interval is a number with ms, s, m or h (e.g. 5m), got {text!r}")
    scale = {"ms": 0.001, "s": 1.0, None: 1.0, "m": 60.0, "h": 3600.0}[match.group(2)]
    return float(match.group(1)) * scale


def _folder(deployment: str) -> str:
    return f"{PREFIX}/{check_model_name(deployment)}"


def save(store: ArtifactStore, canary: Canary) -> Canary:
    records.write(store, f"{_folder(canary.deployment)}/{canary.id}.json", canary.to_json())
    return canary


def canaries(store: ArtifactStore, deployment: str) -> list[Canary]:
    """Every canary of ``deployment``, oldest first."""
    found = [Canary.from_json(d) for d in records.documents(store, _folder(deployment))]
    return sorted(found, key=lambda c: (c.started_at, c.id))


def running(store: ArtifactStore, deployment: str) -> Canary | None:
    return next((c for c in reversed(canaries(store, deployment)) if c.state == RUNNING), None)


def audit_log(store: ArtifactStore, canary: Canary) -> list[dict[str, Any]]:
    """The canary's decisions with their evidence, oldest first."""
    return records.documents(store, f"{_folder(canary.deployment)}/{canary.id}")


def new_canary(
    deployment: Mapping[str, Any],
    to: str,
    steps: Sequence[float],
    interval_s: float,
    rules: Rules,
    *,
    counts: Mapping[str, Counts],
) -> Canary:
    """A canary of ``deployment`` (the server's description of it) to version ``to``, starting at the first
    step; the stable version is the one with the most traffic now.

    Raises:
        InvalidInput: ``to`` is not served there, is the stable version, or shares its registry version.
    """
    name = check_model_name(deployment["name"])
    versions = {v["label"]: v for v in deployment["versions"]}
    if to not in versions:
        raise InvalidInput(f"deployment {name!r} has no version {to!r}; it serves: {', '.join(versions)}")
    traffic = dict(deployment["traffic"])
    stable = max(
        (label for label in versions if label != to), key=lambda label: traffic.get(label, 0.0), default=None
    )
    if stable is None:
        raise InvalidInput(
            f"deployment {name!r} serves only {to!r}: a canary needs a stable version beside it"
        )
    if versions[stable]["version"] == versions[to]["version"]:
        raise InvalidInput(
            f"{to!r} and {stable!r} are both version {versions[to]['version']}: "
            "their metrics could not be told apart"
        )
    uri = versions[to].get("uri")
    started = now_ms()
    return Canary(
        id=uuid.uuid4().hex,
        deployment=name,
        stable=stable,
        canary=to,
        stable_version=str(versions[stable]["version"]),
        canary_version=str(versions[to]["version"]),
        steps=list(steps),
        interval_s=interval_s,
        rules=rules.model_dump(exclude_none=True),
        model_uri=uri if isinstance(uri, str) and uri.startswith("models:/") else None,
        started_at=started,
        step_started_at=started,
        baseline=snapshot(counts),
    )


def snapshot(counts: Mapping[str, Counts]) -> dict[str, dict[str, Any]]:
    """The counters as a step's baseline (JSON-safe)."""
    return {version: asdict(c) for version, c in counts.items()}


def start(store: ArtifactStore, canary: Canary) -> Canary:
    """Record ``canary`` as running.

    Raises:
        Conflict: another canary, or an A/B test, runs on the deployment (named).
    """
    other = running(store, canary.deployment)
    if other is not None and other.id != canary.id:
        raise _taken(other)
    from shipyard.releases import abtests  # NOTE: here: each module checks the other's records

    test = abtests.running(store, canary.deployment)
    if test is not None:  # both steer the deployment's traffic: one at a time
        raise Conflict(f"A/B test {test.id} is running on deployment {canary.deployment!r}; stop it first")
    return save(store, canary)


def _taken(other: Canary) -> Conflict:
    return Conflict(
        f"canary {other.id} ({other.stable} -> {other.canary}) is already running on deployment "
        f"{other.deployment!r}"
    )


# ---------------------------------------------------------------------- one evaluation
@dataclass(frozen=True)
class Decision:
    """What one evaluation decided, and the evidence: each version's window and the broken rules."""

    action: str
    reason: str
    weight: float  # the canary's traffic share after the decision
    evidence: dict[str, Any]


@dataclass(frozen=True)
class Actions:
    """How a decision reaches the world (the server's traffic, the registry); injected so that the
    decision logic stays one pure function plus these calls."""

    set_traffic: Callable[[dict[str, float]], None]
    promote: Callable[[Canary], None]
    mark_rolled_back: Callable[[Canary, str], None]


def decide(
    canary: Canary,
    counts: Mapping[str, Counts],
    now: int,
    performance: Mapping[str, Mapping[str, float]] | None = None,
    drift: Mapping[str, Mapping[str, Any]] | None = None,
) -> tuple[Decision, Canary]:
    """Judge the current step's window (``counts`` now, minus the step's baseline; ``performance`` per
    version over the step, from :func:`window_performance`; ``drift`` from :func:`window_drift`) and say
    what to do."""
    rules = Rules.model_validate(canary.rules)
    windows = {
        role: counts.get(version, Counts()).minus(
            Counts(**canary.baseline[version]) if version in canary.baseline else None
        )
        for role, version in (("stable", canary.stable_version), ("canary", canary.canary_version))
    }
    measured = {role: measure(window) for role, window in windows.items()}
    for role, version in (("stable", canary.stable_version), ("canary", canary.canary_version)):
        quality = dict((performance or {}).get(version, {}))
        labelled = quality.pop("labels", 0.0)
        measured[role]["labels"] = labelled
        if labelled >= rules.min_labels:  # fewer: not judged yet (labels arrive late)
            measured[role].update({k: v for k, v in quality.items() if k in PERFORMANCE_METRICS})
        inputs = (drift or {}).get(version)
        if inputs is not None:
            measured[role]["drift"] = dict(inputs)
            if "drift_share" in inputs:
                measured[role]["drift_share"] = inputs["drift_share"]
    elapsed_s = (now - canary.step_started_at) / 1000
    evidence = {
        "step": canary.step,
        "weight": canary.weight,
        "elapsed_s": round(elapsed_s, 3),
        "min_requests": rules.min_requests,
        "stable": {"label": canary.stable, "version": canary.stable_version, **measured["stable"]},
        "canary": {"label": canary.canary, "version": canary.canary_version, **measured["canary"]},
    }
    requests = windows["canary"].requests
    if requests < rules.min_requests:
        reason = f"{requests:g} of {rules.min_requests} canary requests in this step so far"
        return Decision(HOLD, reason, canary.weight, evidence), canary
    broken = judge(rules, measured["canary"], measured["stable"])
    evidence["broken"] = broken
    if broken:
        return Decision(ROLLBACK, "; ".join(broken), 0.0, evidence), replace(canary, state=ROLLED_BACK)
    if elapsed_s < canary.interval_s:
        reason = f"healthy; the step ends in {canary.interval_s - elapsed_s:.0f} s"
        return Decision(HOLD, reason, canary.weight, evidence), canary
    if canary.step + 1 >= len(canary.steps):
        return Decision(PROMOTE, "every step passed", 100.0, evidence), replace(canary, state=PROMOTED)
    advanced = replace(
        canary,
        step=canary.step + 1,
        step_started_at=now,
        baseline=snapshot(counts),
    )
    reason = f"step {canary.step + 1} passed: {canary.weight:g}% -> {advanced.weight:g}%"
    return Decision(ADVANCE, reason, advanced.weight, evidence), advanced


def evaluate(
    store: ArtifactStore,
    canary: Canary,
    counts: Mapping[str, Counts],
    actions: Actions,
    now: int | None = None,
    registry: RegistryClient | None = None,
) -> tuple[Decision, Canary]:
    """One evaluation: decide, act (traffic, registry), then record the decision in the audit log and the
    canary's new state. Acting first: a crash between the two repeats the decision, never loses it.
    Quality and drift rules read the payload log and the labels in ``store`` (the server's artifact store);
    drift compares with baselines packaged with registered versions through ``registry``."""
    if canary.state != RUNNING:
        raise Conflict(f"canary {canary.id} on {canary.deployment!r} is {canary.state}, not running")
    rules = Rules.model_validate(canary.rules)
    performance = drift = None
    if rules.needs_labels or rules.needs_drift:
        logged = logged_since(store, canary.deployment, canary.step_started_at)
        if rules.needs_labels:
            performance = window_performance(store, canary.deployment, logged)
        if rules.needs_drift:
            drift = window_drift(store, canary.deployment, logged, registry, rules.min_drift_rows)
    decision, updated = decide(canary, counts, now_ms() if now is None else now, performance, drift)
    if decision.action == ROLLBACK:
        actions.set_traffic({canary.stable: 100.0, canary.canary: 0.0})
        actions.mark_rolled_back(canary, decision.reason)
    elif decision.action == ADVANCE:
        actions.set_traffic({canary.stable: 100.0 - decision.weight, canary.canary: decision.weight})
    elif decision.action == PROMOTE:
        actions.set_traffic({canary.stable: 0.0, canary.canary: 100.0})
        actions.promote(canary)
    updated = replace(updated, decisions=canary.decisions + 1)
    entry = {"at": now_ms(), "canary": canary.id, **asdict(decision)}
    records.write(store, f"{_folder(canary.deployment)}/{canary.id}/{updated.decisions:06d}.json", entry)
    return decision, save(store, updated)


def first_traffic(canary: Canary) -> dict[str, float]:
    """The weights of the canary's first step."""
    return {canary.stable: 100.0 - canary.weight, canary.canary: canary.weight}


def wait_s(canary: Canary) -> float:
    """How long a looping controller sleeps before the next evaluation: a tenth of the step, within 1-30 s."""
    return min(30.0, max(1.0, canary.interval_s / 10))


def check_not_running(store: ArtifactStore, deployment: str, to: str) -> Canary | None:
    """The canary running on ``deployment`` toward ``to`` (go on with it), None when none runs.

    Raises:
        Conflict: a canary toward another version runs there (named).
    """
    found = running(store, deployment)
    if found is not None and found.canary != to:
        raise _taken(found)
    return found


def get(store: ArtifactStore, deployment: str) -> Canary:
    """The running canary of ``deployment``, else its latest; `NotFound` when it never had one."""
    found = canaries(store, deployment)
    chosen = running(store, deployment) or (found[-1] if found else None)
    if chosen is None:
        raise NotFound(f"deployment {deployment!r} has no canary")
    return chosen


def budget_s(canary: Canary) -> float:
    """The longest a looping controller runs: every step's interval twice, plus an hour for traffic."""
    return 2 * canary.interval_s * len(canary.steps) + 3600.0


# ---------------------------------------------------------------------- the controller
@dataclass
class Controller:
    """Drives one canary of ``deployment`` toward ``to`` on the server ``client`` talks to: each
    :meth:`step` starts it (the first time: traffic to the first step) or evaluates it once. A canary
    already running toward ``to`` goes on with the settings it was started with."""

    client: AdminClient
    store: ArtifactStore
    registry: RegistryClient
    deployment: str
    to: str
    steps: list[float]
    interval_s: float
    rules: Rules

    @classmethod
    def configured(
        cls,
        client: AdminClient,
        deployment: str,
        to: str,
        steps: list[float],
        interval_s: float,
        rules: Rules,
        settings: Settings | None = None,
    ) -> Controller:
        """A controller over the configured artifact store and registry (``settings``: the environment's)."""
        from shipyard.config import get_settings
        from shipyard.registry.fluent import registry_client

        settings = settings or get_settings()
        store = ArtifactStore.configured(settings)
        return cls(client, store, registry_client(settings), deployment, to, steps, interval_s, rules)

    def step(self) -> tuple[Decision | None, Canary]:
        """Start the canary (no decision yet) or evaluate it once.

        Raises:
            Conflict: a canary toward another version runs on the deployment (named).
        """
        current = check_not_running(self.store, self.deployment, self.to)
        counts = parse_counts(self.client.metrics_text(), self.deployment)
        if current is None:
            described = self.client.deployment(self.deployment)
            created = new_canary(described, self.to, self.steps, self.interval_s, self.rules, counts=counts)
            self._hold(created)  # the server refuses (409) while another canary or an A/B test steers it
            try:
                current = start(self.store, created)
            except BaseException:
                self._release(created)  # never begun: the server must not stay held for it
                raise
            try:
                self.client.set_traffic(self.deployment, first_traffic(current))
            except BaseException:
                save(self.store, replace(current, state=ABORTED))
                self._release(current)
                raise
            return None, current
        self._hold(current)  # again: a restarted server has forgotten it
        decision, current = evaluate(self.store, current, counts, self.actions(), registry=self.registry)
        if current.state != RUNNING:
            self._release(current)
        return decision, current

    def _hold(self, canary: Canary) -> None:
        body = {"stable": canary.stable, "canary": canary.canary}
        self.client.call("PUT", f"/admin/deployments/{self.deployment}/canaries/{canary.id}", body)

    def _release(self, canary: Canary) -> None:
        with contextlib.suppress(NotFound):  # not held there (a restarted server): nothing to release
            self.client.call("DELETE", f"/admin/deployments/{self.deployment}/canaries/{canary.id}")

    def actions(self) -> Actions:
        """Traffic through the server's admin API; promotion and marking in the registry."""
        from shipyard.registry.uri import RegistryUri, parse_model_uri

        def registry_version(canary: Canary) -> tuple[str, int] | None:
            parsed = parse_model_uri(canary.model_uri) if canary.model_uri else None
            return (parsed.name, int(canary.canary_version)) if isinstance(parsed, RegistryUri) else None

        def promote(canary: Canary) -> None:
            found = registry_version(canary)
            if found is not None:
                steps = ", ".join(f"{s:g}%" for s in canary.steps)
                reason = f"canary {canary.id} passed every step ({steps})"
                self.registry.set_alias(found[0], "champion", found[1], reason=reason)

        def mark_rolled_back(canary: Canary, reason: str) -> None:
            found = registry_version(canary)
            if found is not None:
                tags = {
                    "shipyard.canary": "rolled_back",
                    "shipyard.canary.reason": reason[:500],
                    "shipyard.canary.id": canary.id,
                }
                self.registry.set_version_tags(found[0], found[1], tags)

        return Actions(
            lambda weights: self.client.set_traffic(self.deployment, weights), promote, mark_rolled_back
        )
