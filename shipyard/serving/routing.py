"""Traffic between the versions of one served model: weights (canary), a shadow, pins and rollback.

A request without a version goes to a version drawn by weight among those that are ready. A request may pin
a version by path (``/v2/models/churn/versions/challenger/infer``) or header (``X-Shipyard-Version``), by
label or version number. The shadow version, when set, also gets every routed request; its answer is
discarded (and logged). Weights change live: a change is one assignment on the event loop, so requests in
flight finish on the version they were routed to. Each change is remembered so it can be rolled back.
"""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from shipyard.errors import Conflict, InvalidInput, NotFound

if TYPE_CHECKING:
    from shipyard.serving.repository import ServedModel

_HISTORY = 50  # traffic changes remembered for rollback


@dataclass(frozen=True)
class Experiment:
    """An A/B test running on a deployment: requests carrying the ``unit`` header are assigned an arm by
    :func:`assign` (sticky: the same key, the same arm, across requests, restarts and replicas)."""

    id: str
    arms: Mapping[str, float]
    unit: str  # the request header whose value is the unit of assignment (a user id, a session)


def assign(experiment_id: str, key: str, arms: Mapping[str, float]) -> str:
    """The arm of ``arms`` (label -> weight) for unit ``key`` in experiment ``experiment_id``: a point in
    [0, 1) from SHA-256 of the id and key, placed on the arms' cumulative weights (in their given order).
    The id is part of the hash so that one user is not in the same arm of every test."""
    digest = hashlib.sha256(f"{experiment_id}\x00{key}".encode()).digest()
    point = int.from_bytes(digest[:8], "big") / 2.0**64 * sum(arms.values())
    for label, weight in arms.items():
        point -= weight
        if point < 0:
            return label
    return next(reversed(list(arms)))


@dataclass(frozen=True)
class Traffic:
    """Weights by label (all >= 0, some > 0) and an optional shadow label."""

    weights: Mapping[str, float]
    shadow: str | None = None


class Deployment:
    """One served model name and its versions. Used from the event loop only (not thread-safe)."""

    def __init__(
        self,
        name: str,
        versions: Sequence[ServedModel],
        traffic: Mapping[str, float] | None = None,
        shadow: str | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.name = name
        self.versions: dict[str, ServedModel] = {v.label: v for v in versions}
        if len(self.versions) != len(versions):
            raise InvalidInput(f"model {name!r}: two versions share a label")
        first = next(iter(self.versions))
        self.traffic = self._checked(Traffic(dict(traffic) if traffic else {first: 100.0}, shadow))
        self.history: list[Traffic] = []
        self.experiment: Experiment | None = None
        self.canary: tuple[str, str] | None = None  # (id, what it moves) of the canary steering the traffic
        self._rng = rng or random.Random()

    def find(self, version: str) -> ServedModel:
        """The version with this label or version number; `NotFound` naming what exists."""
        found = self.versions.get(version)
        if found is None:
            found = next((v for v in self.versions.values() if v.version == version), None)
        if found is None:
            known = ", ".join(f"{v.label} (version {v.version})" for v in self.versions.values())
            raise NotFound(f"model {self.name!r} has no version {version!r} here; it serves: {known}")
        return found

    def route(self) -> ServedModel:
        """A ready version drawn by weight; `ModelNotReady` when none that takes traffic is ready."""
        ready = [
            (self.versions[label], weight)
            for label, weight in self.traffic.weights.items()
            if weight > 0 and self.versions[label].is_ready
        ]
        if not ready:
            weighted = [self.versions[label] for label, w in self.traffic.weights.items() if w > 0]
            weighted[0].require_ready()  # raises, saying why (loading, or the load error)
        if len(ready) == 1:
            return ready[0][0]
        point = self._rng.random() * sum(w for _, w in ready)
        for served, weight in ready:
            point -= weight
            if point < 0:
                return served
        return ready[-1][0]

    def assigned(self, key: str | None) -> tuple[ServedModel, str | None]:
        """The version for a request whose unit key (the experiment's header) is ``key``, and the id of the
        experiment that assigned it: its arm while an experiment runs, the key is given and that arm is
        ready; else the version traffic picks, outside any experiment (None)."""
        experiment = self.experiment
        if experiment is not None and key:
            chosen = self.versions[assign(experiment.id, key, experiment.arms)]
            if chosen.is_ready:
                return chosen, experiment.id
        return self.route(), None

    def start_experiment(self, experiment: Experiment) -> None:
        """Assign requests by ``experiment`` from the next one on.

        Raises:
            Conflict: another experiment runs here (named); starting the same one again is a no-op.
            InvalidInput: fewer than two arms, an unknown label, a weight that is not a positive number.
        """
        running = self.experiment
        if running is not None and running.id != experiment.id:
            raise Conflict(f"model {self.name!r}: experiment {running.id!r} is already running here")
        if self.canary is not None:
            raise Conflict(f"model {self.name!r}: canary {self.canary[0]} ({self.canary[1]}) is running here")
        if len(experiment.arms) < 2:
            raise InvalidInput(f"model {self.name!r}: an experiment needs two arms or more")
        for label, weight in experiment.arms.items():
            if label not in self.versions:
                raise InvalidInput(
                    f"model {self.name!r} has no version {label!r}; it has: {', '.join(self.versions)}"
                )
            if not isinstance(weight, int | float) or isinstance(weight, bool) or not 0 < weight < math.inf:
                raise InvalidInput(
                    f"model {self.name!r}: arm {label!r} needs a positive weight, got {weight!r}"
                )
        self.experiment = experiment

    def stop_experiment(self, experiment_id: str) -> None:
        """Stop assigning by the experiment ``experiment_id``; `NotFound` when it is not the one running."""
        if self.experiment is None or self.experiment.id != experiment_id:
            raise NotFound(f"model {self.name!r}: experiment {experiment_id!r} is not running here")
        self.experiment = None

    def hold_canary(self, canary_id: str, what: str) -> None:
        """Mark the traffic as steered by the canary ``canary_id`` (``what``: e.g. "stable -> next"); holding
        it again is a no-op.

        Raises:
            Conflict: another canary, or an experiment, steers it (named).
        """
        if self.canary is not None and self.canary[0] != canary_id:
            raise Conflict(
                f"model {self.name!r}: canary {self.canary[0]} ({self.canary[1]}) is already running here"
            )
        if self.experiment is not None:
            raise Conflict(f"model {self.name!r}: experiment {self.experiment.id!r} is running here")
        self.canary = (canary_id, what)

    def release_canary(self, canary_id: str) -> None:
        """The canary ``canary_id`` is over; `NotFound` when it is not the one holding the traffic."""
        if self.canary is None or self.canary[0] != canary_id:
            raise NotFound(f"model {self.name!r}: canary {canary_id!r} is not running here")
        self.canary = None

    def shadow_for(self, chosen: ServedModel) -> ServedModel | None:
        """The shadow version to mirror a request routed to ``chosen`` to, if any (never itself)."""
        label = self.traffic.shadow
        if label is None or label == chosen.label:
            return None
        return self.versions[label]

    def set_traffic(self, weights: Mapping[str, float], shadow: str | None = None) -> Traffic:
        """Replace the weights (and shadow) at once, remembering the old ones for :meth:`rollback`.

        Raises:
            InvalidInput: an unknown label, a negative or non-finite weight, or no positive weight.
        """
        new = self._checked(Traffic(dict(weights), shadow))
        self.history = [*self.history[-(_HISTORY - 1) :], self.traffic]
        self.traffic = new
        return new

    def rollback(self) -> Traffic:
        """Go back to the traffic before the last change; `Conflict` when there was none."""
        if not self.history:
            raise Conflict(f"model {self.name!r}: no earlier traffic to roll back to")
        self.traffic = self.history.pop()
        return self.traffic

    def describe(self) -> dict[str, Any]:
        """The deployment as JSON: versions with state, weights, shadow, how many rollbacks are possible."""
        return {
            "name": self.name,
            "traffic": dict(self.traffic.weights),
            "shadow": self.traffic.shadow,
            "rollbacks": len(self.history),
            "canary": None if self.canary is None else {"id": self.canary[0], "moves": self.canary[1]},
            "experiment": (
                None
                if self.experiment is None
                else {
                    "id": self.experiment.id,
                    "arms": dict(self.experiment.arms),
                    "unit": self.experiment.unit,
                }
            ),
            "versions": [
                {
                    "label": v.label,
                    "version": v.version,
                    "uri": v.uri,
                    "state": v.state.value,
                    **({"error": v.error} if v.error else {}),
                }
                for v in self.versions.values()
            ],
        }

    def _checked(self, traffic: Traffic) -> Traffic:
        where = f"model {self.name!r}"
        for label, weight in traffic.weights.items():
            if label not in self.versions:
                raise InvalidInput(f"{where} has no version {label!r}; it has: {', '.join(self.versions)}")
            if not isinstance(weight, int | float) or isinstance(weight, bool) or not math.isfinite(weight):
                raise InvalidInput(f"{where}: the weight of {label!r} must be a number, got {weight!r}")
            if weight < 0:
                raise InvalidInput(f"{where}: the weight of {label!r} must be >= 0, got {weight}")
        if not any(w > 0 for w in traffic.weights.values()):
            raise InvalidInput(f"{where}: traffic needs a version with a weight above 0")
        if traffic.shadow is not None and traffic.shadow not in self.versions:
            raise InvalidInput(f"{where} has no version {traffic.shadow!r} to shadow to")
        return traffic
