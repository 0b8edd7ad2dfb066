"""Global feature importance recorded on a registered version, as the ``shipyard.importance`` tag.

An explicit step after registering (``shipyard.explain.record_importance("models:/churn/3")``): registering
stays fast and needs no shap. The tag holds compact JSON: the method and explainer, the rows explained, and
mean ``|SHAP|`` per feature, the most important first (as many as fit in a tag's 8,000 characters).
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass

from shipyard.config import Settings
from shipyard.errors import InvalidInput
from shipyard.explain.explaining import DEFAULT_BACKGROUND_ROWS, explain, model_rows, resolve_model
from shipyard.explain.records import Explanation
from shipyard.registry.fluent import registry_client
from shipyard.registry.records import ModelVersion
from shipyard.tracking.values import MAX_TEXT_VALUE

IMPORTANCE_TAG = "shipyard.importance"
DEFAULT_IMPORTANCE_ROWS = 1000
_SEED = 1  # not the background's seed: the rows explained are a different sample of the baseline


@dataclass(frozen=True)
class RecordedImportance:
    """Global importance as a version records it.

    Attributes:
        importance: feature to mean ``|SHAP|``, the most important first; ``features`` says how many the
            model has (more than listed when the tag had no room for all).
    """

    method: str
    explainer: str
    output_space: str
    rows: int
    features: int
    importance: Mapping[str, float]
    at: str

    @classmethod
    def from_explanation(cls, explanation: Explanation, at: str | None = None) -> RecordedImportance:
        ranked = {name: float(f"{value:.6g}") for name, value in explanation.ranked()}
        return cls(
            method=explanation.method,
            explainer=explanation.explainer,
            output_space=explanation.output_space,
            rows=explanation.rows,
            features=len(ranked),
            importance=ranked,
            at=at or time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        )

    def to_json(self, limit: int = MAX_TEXT_VALUE) -> str:
        """Compact JSON of at most ``limit`` characters, keeping the most important features that fit."""
        document = {
            "method": self.method,
            "explainer": self.explainer,
            "output_space": self.output_space,
            "rows": self.rows,
            "features": self.features,
            "at": self.at,
            "importance": {},
        }
        room = limit - len(_compact(document))
        kept: dict[str, float] = {}
        for name, value in self.importance.items():
            entry = len(_compact({name: value})) - 2 + (1 if kept else 0)  # without braces, with a comma
            if entry > room:
                break
            kept[name] = value
            room -= entry
        return _compact({**document, "importance": kept})

    @classmethod
    def from_json(cls, text: str) -> RecordedImportance:
        """Parse the tag; `InvalidInput` when it is not what :meth:`to_json` writes."""
        try:
            document = json.loads(text)
            return cls(
                method=str(document["method"]),
                explainer=str(document["explainer"]),
                output_space=str(document["output_space"]),
                rows=int(document["rows"]),
                features=int(document["features"]),
                importance={str(k): float(v) for k, v in dict(document["importance"]).items()},
                at=str(document["at"]),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise InvalidInput(f"tag {IMPORTANCE_TAG} does not hold recorded importance: {exc}") from exc

    def to_markdown(self) -> str:
        """A model card section: the features by importance, as a table."""
        lines = [
            "## Feature importance",
            "",
            f"Mean |SHAP| ({self.output_space}) over {self.rows} baseline rows, {self.explainer}, {self.at}.",
            "",
            "| feature | importance |",
            "|---|---|",
        ]
        lines += [f"| {name.replace('|', '/')} | {value:.4g} |" for name, value in self.importance.items()]
        if len(self.importance) < self.features:
            lines += ["", f"_{self.features - len(self.importance)} less important features not listed._"]
        return "\n".join(lines) + "\n"


def record_importance(
    uri: str,
    *,
    max_rows: int = DEFAULT_IMPORTANCE_ROWS,
    max_background: int = DEFAULT_BACKGROUND_ROWS,
    settings: Settings | None = None,
) -> RecordedImportance:
    """Compute a registered version's global importance from its packaged baseline (SHAP on a seeded sample
    of ``max_rows`` rows) and store it on the version as the :data:`IMPORTANCE_TAG` tag.

    Raises:
        InvalidInput: ``uri`` is not a registered version, the version has no baseline, or SHAP cannot
            explain it (each named).
    """
    if max_rows < 1:
        raise InvalidInput(f"max_rows must be >= 1, got {max_rows}")
    model = resolve_model(uri, settings)
    version = model.version
    if version is None:
        raise InvalidInput(f"{uri} is not a registered version; register it first to record its importance")
    baseline = model.baseline()
    if baseline is None:
        raise InvalidInput(
            f"{version.uri} has no baseline to compute importance on: log the model with baseline= "
            "(shipyard.models.log(model, baseline=X_train)) and register that version"
        )
    rows = model_rows(model, baseline, f"the baseline packaged with {version.uri}")
    if len(rows) > max_rows:
        rows = rows.sample(n=max_rows, random_state=_SEED)
    explanation = explain(model, rows, method="shap", max_background=max_background)
    recorded = RecordedImportance.from_explanation(explanation)
    registry_client(settings).set_version_tags(
        version.name, version.version, {IMPORTANCE_TAG: recorded.to_json()}
    )
    return recorded


def recorded_importance(version: ModelVersion) -> RecordedImportance | None:
    """The importance recorded on ``version``, or None when none was."""
    text = version.tags.get(IMPORTANCE_TAG)
    return RecordedImportance.from_json(text) if text is not None else None


def _compact(document: Mapping[str, object]) -> str:
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False)
