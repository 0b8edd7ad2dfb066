"""Model gates for CI/CD: check a candidate version against rules (and the champion) before it ships.

A rules file (YAML)::

    dataset: eval.parquet            # evaluation data: .parquet/.csv (relative to this file) or data:NAME@V
    label: target                    # its label column
    metrics:                         # on the dataset; delta = candidate - champion
      accuracy: {min: 0.90, min_delta: -0.01}
      f1: {min: 0.85}
    signature: compatible            # the candidate takes what the champion took (or: identical, ignore)
    package: {max_mb: 50}            # the package's files, as listed in MODEL.yaml
    latency: {max_p99_ms: 50, requests: 200}   # one-row requests to a local `shipyard serve` of the candidate
    drift: {max_share: 0.5}          # evaluation features vs the candidate's packaged training baseline
    required_tags: [owner]           # on the version
    required_card: [description, limitations]  # model card fields in MODEL.yaml
    audit:                           # per-segment performance and fairness on the dataset (shipyard audit's
      segments: [region]             #   rules, shipyard.data.fairness; label: the gate's by default)
      fairness: {demographic_parity_difference: {max: 0.1}}

:func:`evaluate_gate` returns one :class:`RuleResult` per rule; :func:`record_gate` writes the outcome on the
version (``shipyard.gate.*`` tags) with an audit event, which a model's ``shipyard.gate.required_for`` tag
("Production,@champion") makes a condition of those transitions and alias moves.
"""

from __future__ import annotations

import hashlib
import socket
import statistics
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shipyard.data.fairness import AuditRules, audit_predictions, check_performance_rules, check_segments
from shipyard.data.model_metrics import METRICS
from shipyard.data.thresholds import MetricRule
from shipyard.errors import InvalidInput, NotFound, ShipyardError
from shipyard.registry.records import GATE_REQUIRED_FOR
from shipyard.registry.signature import Signature
from shipyard.registry.uri import RegistryUri, parse_model_uri

if TYPE_CHECKING:
    from shipyard.registry.client import RegistryClient
    from shipyard.registry.loading import LoadedModel
    from shipyard.registry.records import ModelVersion

CARD_FIELDS = ("description", "limitations")


class _Rules(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PackageRule(_Rules):
    max_mb: float = Field(gt=0)


class LatencyRule(_Rules):
    max_p99_ms: float = Field(gt=0)
    requests: int = Field(200, ge=20, le=10_000)


class DriftRule(_Rules):
    max_share: float = Field(ge=0, le=1)


class GateRules(_Rules):
    """A parsed rules file."""

    dataset: str | None = None
    label: str | None = None
    metrics: dict[str, MetricRule] = Field(default_factory=dict)
    signature: str = "compatible"
    package: PackageRule | None = None
    latency: LatencyRule | None = None
    drift: DriftRule | None = None
    required_tags: list[str] = Field(default_factory=list)
    required_card: list[str] = Field(default_factory=list)
    audit: AuditRules | None = None


@dataclass(frozen=True)
class RuleResult:
    """One rule's verdict: what was measured, on the candidate and (for deltas) the champion."""

    rule: str
    passed: bool
    candidate: str
    champion: str = ""
    threshold: str = ""
    detail: str = ""
    skipped: bool = False  # not applicable (a delta without a champion); it does not fail the gate


@dataclass(frozen=True)
class GateReport:
    """Every rule's verdict for ``candidate`` (against ``champion`` when given)."""

    candidate: str
    champion: str | None
    rules_sha256: str
    results: list[RuleResult] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.results)

    @property
    def summary(self) -> str:
        failed = [r.rule for r in self.results if not r.passed]
        skipped = sum(r.skipped for r in self.results)
        checked = len(self.results) - skipped
        verdict = "passed" if not failed else f"failed: {', '.join(failed)}"
        against = f" against {self.champion}" if self.champion else ""
        extra = f", {skipped} skipped" if skipped else ""
        return f"gate {verdict} ({checked - len(failed)}/{checked} rules{extra}){against}"


def load_rules(path: Path) -> GateRules:
    """Read and check a rules file; errors name the file and the field (an unknown metric by name).

    Raises:
        InvalidInput: unreadable YAML, an unknown field or metric, a bad value, or a metric rule without a
            dataset to compute it on.
    """
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InvalidInput(f"cannot read gate rules {path}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise InvalidInput(f"{path} is not valid YAML: {exc}") from exc
    try:
        rules = GateRules.model_validate(data if data is not None else {})
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top level)"
        raise InvalidInput(f"{path}: {where}: {first['msg']}") from exc
    unknown = [m for m in rules.metrics if m not in METRICS]
    if unknown:
        raise InvalidInput(
            f"{path}: metrics.{unknown[0]}: unknown metric {unknown[0]!r}; known: {', '.join(METRICS)}"
        )
    for name, rule in rules.metrics.items():
        if all(v is None for v in (rule.min, rule.max, rule.min_delta, rule.max_delta)):
            raise InvalidInput(f"{path}: metrics.{name}: give min, max, min_delta or max_delta")
    if rules.signature not in ("compatible", "identical", "ignore"):
        raise InvalidInput(f"{path}: signature: {rules.signature!r} is not compatible, identical or ignore")
    unknown_card = [f for f in rules.required_card if f not in CARD_FIELDS]
    if unknown_card:
        raise InvalidInput(
            f"{path}: required_card: unknown model card field {unknown_card[0]!r}; known: "
            f"{', '.join(CARD_FIELDS)}"
        )
    needs_data = bool(rules.metrics) or rules.drift is not None or rules.latency is not None
    if (needs_data or rules.audit is not None) and rules.dataset is None:
        raise InvalidInput(
            f"{path}: dataset: the metrics, drift, latency and audit rules need an evaluation dataset"
        )
    if rules.audit is not None:
        if not rules.audit.segments:
            raise InvalidInput(f"{path}: audit.segments: name at least one segment column")
        if (rules.audit.label or rules.label) is None:
            raise InvalidInput(f"{path}: label: the audit needs the dataset's label column")
    if rules.metrics and rules.label is None:
        raise InvalidInput(f"{path}: label: the metric rules need the dataset's label column")
    return rules


def read_dataset(rules: GateRules, rules_path: Path) -> pd.DataFrame:
    """The evaluation data: a file (relative to the rules file) or a dataset version, data:NAME@V."""
    from shipyard.data.statistics import read_table

    assert rules.dataset is not None
    if rules.dataset.startswith("data:"):
        from shipyard.datasets import dataset_path

        try:
            path = dataset_path(rules.dataset)
        except NotFound as exc:
            raise InvalidInput(f"{rules_path}: dataset: {exc}") from exc
        if path.is_dir():
            tables = sorted(p for p in path.rglob("*") if p.suffix.lower() in (".parquet", ".pq", ".csv"))
            if len(tables) != 1:
                raise InvalidInput(
                    f"{rules_path}: dataset: {rules.dataset} holds {len(tables)} tables; name a version with "
                    "one"
                )
            path = tables[0]
    else:
        path = Path(rules.dataset)
        if not path.is_absolute():
            path = rules_path.parent / path
        if not path.exists():
            raise InvalidInput(f"{rules_path}: dataset: no evaluation dataset at {path}")
    frame = read_table(path).to_pandas()
    if rules.label is not None and rules.label not in frame.columns:
        raise InvalidInput(
            f"{rules_path}: label: column {rules.label!r} is not in {rules.dataset} (columns: "
            f"{', '.join(map(str, frame.columns[:20]))})"
        )
    if frame.empty:
        raise InvalidInput(f"{rules_path}: dataset: {rules.dataset} has no rows")
    return frame


def evaluate_gate(
    candidate_uri: str,
    rules_path: Path,
    registry: RegistryClient,
    *,
    against: str | None = None,
    load: Callable[[str], LoadedModel] | None = None,
) -> GateReport:
    """Check ``candidate_uri`` against the rules in ``rules_path`` (and the version ``against`` names: an
    alias or a number of the same model, or a full URI).

    Raises:
        InvalidInput: a bad rules file or dataset (named); NotFound: a model or alias that does not exist.
    """
    from shipyard.registry.loading import load_model

    rules = load_rules(rules_path)
    rules_sha256 = hashlib.sha256(rules_path.read_bytes()).hexdigest()
    loader = load or (lambda uri: load_model(uri, registry))
    candidate = loader(candidate_uri)
    champion_uri = _champion_uri(candidate_uri, against) if against else None
    champion = loader(champion_uri) if champion_uri else None
    frame = read_dataset(rules, rules_path) if rules.dataset is not None else None
    features = frame.drop(columns=[rules.label]) if frame is not None and rules.label is not None else frame
    results: list[RuleResult] = []
    if rules.metrics:
        assert frame is not None and features is not None and rules.label is not None
        truth = frame[rules.label].to_numpy()
        scores = _scores(candidate, features, truth, rules.metrics)
        baseline = _scores(champion, features, truth, rules.metrics) if champion is not None else None
        for name, rule in rules.metrics.items():
            results.extend(_metric_results(name, rule, scores[name], baseline[name] if baseline else None))
    if rules.signature != "ignore":
        results.append(_signature_result(candidate, champion, rules.signature))
    if rules.package is not None:
        size = sum(f.size for f in candidate.manifest.files) / 2**20
        results.append(
            RuleResult(
                "package size",
                size <= rules.package.max_mb,
                f"{size:.2f} MB",
                threshold=f"<= {rules.package.max_mb:g} MB",
            )
        )
    if rules.latency is not None:
        assert features is not None
        p99 = measure_p99(candidate_uri, features, rules.latency.requests, registry)
        results.append(
            RuleResult(
                "p99 latency",
                p99 <= rules.latency.max_p99_ms,
                f"{p99:.2f} ms",
                threshold=f"<= {rules.latency.max_p99_ms:g} ms",
                detail=f"{rules.latency.requests} one-row requests to a local shipyard serve",
            )
        )
    if rules.drift is not None:
        assert features is not None
        results.append(_drift_result(candidate, features, rules.drift.max_share))
    if rules.audit is not None:
        assert frame is not None
        results.extend(_audit_results(candidate, frame, rules.audit, rules.label, rules_path))
    if rules.required_tags:
        tags = candidate.version.tags if candidate.version is not None else {}
        results.append(_presence("required tags", rules.required_tags, {k for k, v in tags.items() if v}))
    if rules.required_card:
        card = {f for f in CARD_FIELDS if (getattr(candidate.manifest, f) or "").strip()}
        results.append(_presence("model card", rules.required_card, card))
    return GateReport(
        _exact(candidate), _exact(champion) if champion is not None else None, rules_sha256, results
    )


def record_gate(registry: RegistryClient, report: GateReport) -> ModelVersion:
    """Write ``report`` on the candidate version (tags) and in the model's audit log."""
    parsed = parse_model_uri(report.candidate)
    if not isinstance(parsed, RegistryUri) or parsed.version is None:
        raise InvalidInput(f"{report.candidate} is not a registered version; only those record a gate")
    facts = {
        "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "against": report.champion or "",
        "rules_sha256": report.rules_sha256,
        "failed": ", ".join(r.rule for r in report.results if not r.passed),
    }
    return registry.record_gate(
        parsed.name, int(parsed.version), passed=report.passed, summary=report.summary, facts=facts
    )


def set_gate_requirement(registry: RegistryClient, name: str, required_for: list[str]) -> None:
    """Require a passed gate before ``name`` enters these stages (``Production``) or aliases (``@champ``)."""
    from shipyard.registry.naming import check_alias
    from shipyard.registry.records import Stage

    cleaned = []
    for item in required_for:
        if item.startswith("@"):
            check_alias(item[1:])
            cleaned.append(item)
        else:
            cleaned.append(Stage.parse(item).value)
    registry.get_model(name)
    registry.set_model_tags(name, {GATE_REQUIRED_FOR: ",".join(cleaned)})


# ---------------------------------------------------------------------- rules


def _audit_results(
    candidate: LoadedModel, frame: pd.DataFrame, audit: AuditRules, label: str | None, rules_path: Path
) -> list[RuleResult]:
    """The audit's checks (per-segment performance, fairness gaps), one rule result each."""
    label = audit.label or label
    assert label is not None
    try:
        check_segments(frame, audit.segments, label, str(rules_path))
        classifier = callable(getattr(candidate.raw, "predict_proba", None))
        known = ("accuracy", "precision", "recall", "f1") if classifier else ("mae", "mse", "rmse", "r2")
        check_performance_rules(audit, known)
    except InvalidInput as exc:
        raise InvalidInput(f"{rules_path}: audit: {exc}") from exc
    predicted = np.asarray(candidate.predict(frame.drop(columns=[label])))
    outcome = audit_predictions(
        frame, frame[label].to_numpy(), predicted, audit, classifier=classifier, classes=candidate.classes
    )
    return [
        RuleResult(
            f"audit {check.segment}: {check.rule}",
            check.passed,
            "" if check.value is None else f"{check.value:.4g}",
            threshold=check.threshold,
            detail=check.detail,
        )
        for check in outcome.checks
    ]


def _presence(rule: str, required: list[str], present: set[str]) -> RuleResult:
    missing = [item for item in required if item not in present]
    found = "missing: " + ", ".join(missing) if missing else "all present"
    return RuleResult(rule, not missing, found, threshold=", ".join(required))


def _champion_uri(candidate_uri: str, against: str) -> str:
    if against.startswith(("models:/", "runs:/")) or "/" in against:
        return against
    parsed = parse_model_uri(candidate_uri)
    if not isinstance(parsed, RegistryUri):
        raise InvalidInput(
            f"--against {against!r} needs a full URI when the candidate is not a registered model"
        )
    return f"models:/{parsed.name}/{against}" if against.isdigit() else f"models:/{parsed.name}@{against}"


def _exact(model: LoadedModel) -> str:
    version = model.version
    return f"models:/{version.name}/{version.version}" if version is not None else model.uri


def _scores(
    model: LoadedModel, features: pd.DataFrame, truth: np.ndarray, wanted: Mapping[str, MetricRule]
) -> dict[str, float]:
    predicted = np.asarray(model.predict(features))
    if predicted.ndim > 1 and predicted.shape[1] == 1:
        predicted = predicted[:, 0]
    proba = None
    if any(name in ("roc_auc", "log_loss") for name in wanted):
        try:
            proba = np.asarray(model.predict_proba(features))
        except (ShipyardError, AttributeError, NotImplementedError):
            proba = None
    return {name: METRICS[name][0](truth, predicted, proba) for name in wanted}


def _metric_results(name: str, rule: MetricRule, value: float, baseline: float | None) -> list[RuleResult]:
    found = []
    if rule.min is not None:
        found.append(
            RuleResult(
                f"{name} >= {rule.min:g}", value >= rule.min, f"{value:.4f}", threshold=f">= {rule.min:g}"
            )
        )
    if rule.max is not None:
        found.append(
            RuleResult(
                f"{name} <= {rule.max:g}", value <= rule.max, f"{value:.4f}", threshold=f"<= {rule.max:g}"
            )
        )
    for bound, limit in (("min_delta", rule.min_delta), ("max_delta", rule.max_delta)):
        if limit is None:
            continue
        label = f"{name} delta {'>=' if bound == 'min_delta' else '<='} {limit:+g}"
        if baseline is None:
            # A first model has no champion: a comparison with none is not applicable (--against names one).
            found.append(
                RuleResult(
                    label, True, f"{value:.4f}", threshold=f"{limit:+g}", detail="no champion", skipped=True
                )
            )
            continue
        delta = value - baseline
        ok = delta >= limit if bound == "min_delta" else delta <= limit
        found.append(
            RuleResult(label, ok, f"{value:.4f}", f"{baseline:.4f}", f"{limit:+g}", f"delta {delta:+.4f}")
        )
    return found


def _signature_result(candidate: LoadedModel, champion: LoadedModel | None, mode: str) -> RuleResult:
    rule = f"signature {mode}"
    mine = candidate.manifest.signature
    if mine is None:
        return RuleResult(rule, False, "no signature", detail="log the model with an input example")
    if champion is None:
        return RuleResult(rule, True, "has a signature", detail="no champion to compare with")
    theirs = champion.manifest.signature
    if theirs is None:
        return RuleResult(rule, True, "has a signature", "no signature")
    new, old = Signature.from_dict(mine), Signature.from_dict(theirs)
    if mode == "identical":
        same = new.to_dict()["inputs"] == old.to_dict()["inputs"] and new.kind == old.kind
        return RuleResult(
            rule, same, "identical" if same else "differs", detail="" if same else _difference(new, old)
        )
    problem = _incompatible(new, old)
    return RuleResult(
        rule, problem is None, "compatible" if problem is None else "incompatible", detail=problem or ""
    )


def _incompatible(new: Signature, old: Signature) -> str | None:
    """Why requests the champion accepted would fail on the candidate (None: they would not)."""
    if new.kind != old.kind:
        return f"input kind {old.kind.value} -> {new.kind.value}"
    if new.kind.value != "dataframe":
        a, b = new.inputs[0], old.inputs[0]
        if a.dtype != b.dtype or a.shape != b.shape:
            return f"tensor {b.dtype}{list(b.shape or ())} -> {a.dtype}{list(a.shape or ())}"
        return None
    before = {c.name: c for c in old.inputs}
    for column in new.inputs:
        if column.name not in before:
            return f"new required column {column.name!r}"
        was = before[column.name]
        if was.dtype != column.dtype and not _widens(was.dtype, column.dtype):
            return f"column {column.name!r}: {was.dtype} -> {column.dtype}"
        if was.nullable and not column.nullable:
            return f"column {column.name!r} no longer accepts missing values"
    return None


def _widens(old: str, new: str) -> bool:
    order = ["bool", "int8", "int16", "int32", "int64", "float32", "float64", "double"]
    return (
        old in order
        and new in order
        and order.index(new) >= order.index(old)
        and new.startswith(("int", "float", "double"))
    )


def _difference(new: Signature, old: Signature) -> str:
    a = {c.name: c.dtype for c in new.inputs}
    b = {c.name: c.dtype for c in old.inputs}
    changed = sorted(set(a.items()) ^ set(b.items()), key=str)
    return "inputs differ: " + ", ".join(f"{k}:{v}" for k, v in changed[:6])


def _drift_result(candidate: LoadedModel, features: pd.DataFrame, max_share: float) -> RuleResult:
    from shipyard.data.drift import dataset_drift

    reference = candidate.baseline()
    if reference is None:
        return RuleResult(
            "drift",
            False,
            "no baseline",
            threshold=f"share <= {max_share:g}",
            detail="log the model with baseline=",
        )
    common = [c for c in reference.columns if c in features.columns]
    if not common:
        return RuleResult("drift", False, "no shared columns", threshold=f"share <= {max_share:g}")
    report = dataset_drift(reference[common], features[common])
    drifted = [c.column for c in report.columns if c.drift_detected]
    return RuleResult(
        "drift",
        report.drift_share <= max_share,
        f"share {report.drift_share:.2f}",
        threshold=f"share <= {max_share:g}",
        detail=f"drifted: {', '.join(drifted[:5])}" if drifted else "no column drifted",
    )


def measure_p99(uri: str, features: pd.DataFrame, requests: int, registry: RegistryClient) -> float:
    """p99 (ms) of ``requests`` one-row OIP v2 requests, one at a time, to a local server of ``uri``."""
    import httpx
    import uvicorn

    from shipyard.registry.loading import load_model
    from shipyard.serving.app import InferenceServer
    from shipyard.serving.repository import ModelConfig, ModelRepository
    from shipyard.serving.server import uvicorn_config

    # Served as `shipyard serve` serves it by default: the verified ONNX copy when there is one.
    config = ModelConfig("candidate", uri, options={"prefer": "auto"})
    repository = ModelRepository([config], lambda u, **o: load_model(u, registry, **o))
    server = InferenceServer(repository)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    uv = uvicorn.Server(uvicorn_config(server, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 60
        while not uv.started:
            if time.monotonic() > deadline or not thread.is_alive():
                raise ShipyardError("the latency check's local server did not start")
            time.sleep(0.02)
        repository.wait_loaded(120)
        rows = features.to_dict("records")
        timings = []
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            for i in range(requests + 10):
                row = rows[i % len(rows)]
                start = time.perf_counter()
                answer = client.post("/models/candidate/predict", json=[row])
                elapsed = (time.perf_counter() - start) * 1000
                if answer.status_code != 200:
                    raise ShipyardError(
                        f"the latency check's request failed: {answer.status_code} {answer.text[:200]}"
                    )
                if i >= 10:  # the first ones warm the connection and the model
                    timings.append(elapsed)
        return float(np.percentile(timings, 99)) if len(timings) > 1 else statistics.fmean(timings)
    finally:
        uv.should_exit = True
        thread.join(30)
