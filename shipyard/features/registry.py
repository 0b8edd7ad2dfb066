"""The feature registry: which definitions a project has applied, each change a new version.

``plan`` compares a repository's definitions with the registry's current versions — added, changed (with
the schema difference), removed — and ``apply`` records that plan, in one transaction: an unchanged
definition gets no new version, a removed one gets a version marked deleted. Versions are what a model
records of the feature service it was trained with, so serving knows which features it needs.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from shipyard.errors import InvalidInput, NotFound
from shipyard.features.definitions import Definition, Entity, FeatureService, FeatureView, OnDemandFeatureView
from shipyard.features.records import KINDS, Change, DefinitionVersion, spec_hash

if TYPE_CHECKING:
    from shipyard.store.protocol import FeatureRegistryStore


def kind_of(item: Definition) -> str:
    if isinstance(item, Entity):
        return "entity"
    if isinstance(item, FeatureView):
        return "feature_view"
    if isinstance(item, OnDemandFeatureView):
        return "on_demand_feature_view"
    if isinstance(item, FeatureService):
        return "feature_service"
    raise InvalidInput(f"not a feature definition: {item!r}")


@dataclass(frozen=True)
class Plan:
    """What applying a repository would change, and what it leaves as it is."""

    changes: tuple[Change, ...]
    unchanged: tuple[str, ...] = field(default=())

    @property
    def empty(self) -> bool:
        return not self.changes

    def lines(self) -> list[str]:
        """The plan for people: ``+ feature_view stats``, ``~ ...`` with the schema difference, ``- ...``."""
        marks = {"added": "+", "changed": "~", "removed": "-"}
        out = []
        for change in self.changes:
            head = f"{marks[change.action]} {change.kind} {change.name}"
            if change.previous is not None:
                head += f" (version {change.previous.version} -> {change.previous.version + 1})"
            out.append(head)
            out += [f"    {line}" for line in change.details]
        return out


def plan(current: Iterable[DefinitionVersion], definitions: Iterable[Definition]) -> Plan:
    """The changes that would make the registry's current versions match ``definitions``."""
    held = {(v.kind, v.name): v for v in current if not v.deleted}
    wanted: dict[tuple[str, str], Mapping[str, Any]] = {}
    for item in definitions:
        key = (kind_of(item), item.name)
        spec = item.to_dict()
        if key in wanted and wanted[key] != spec:
            raise InvalidInput(f"{key[0]} {key[1]!r} is defined twice in the repository, differently")
        wanted[key] = spec
    changes, unchanged = [], []
    for key, spec in sorted(wanted.items(), key=lambda kv: (KINDS.index(kv[0][0]), kv[0][1])):
        before = held.get(key)
        if before is None:
            changes.append(Change(key[0], key[1], "added", spec))
        elif before.sha256 != spec_hash(spec):
            changes.append(
                Change(key[0], key[1], "changed", spec, before, tuple(differences(before.spec, spec)))
            )
        else:
            unchanged.append(f"{key[0]} {key[1]}")
    for key, before in sorted(held.items(), key=lambda kv: (KINDS.index(kv[0][0]), kv[0][1])):
        if key not in wanted:
            changes.append(Change(key[0], key[1], "removed", None, before))
    return Plan(tuple(changes), tuple(unchanged))


def differences(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[str]:
    """What changed between two specs of one definition, for people: fields of a schema added, removed or
    retyped, then any other changed setting."""
    out = []
    old_fields = {f["name"]: f["dtype"] for f in before.get("schema", [])}
    new_fields = {f["name"]: f["dtype"] for f in after.get("schema", [])}
    for name, dtype in new_fields.items():
        if name not in old_fields:
            out.append(f"+ field {name}: {dtype}")
        elif old_fields[name] != dtype:
            out.append(f"~ field {name}: {old_fields[name]} -> {dtype}")
    out += [f"- field {name}: {dtype}" for name, dtype in old_fields.items() if name not in new_fields]
    for key in sorted(set(before) | set(after)):
        if key == "schema" or before.get(key) == after.get(key):
            continue
        out.append(f"~ {key}: {_short(before.get(key))} -> {_short(after.get(key))}")
    return out


def _short(value: Any) -> str:
    text = json.dumps(value, sort_keys=True)
    return text if len(text) <= 80 else text[:77] + "..."


def current_version(store: FeatureRegistryStore, kind: str, name: str) -> DefinitionVersion:
    """The live version of one definition; `NotFound` if it was never applied or was removed."""
    for found in store.current():
        if found.kind == kind and found.name == name and not found.deleted:
            return found
    raise NotFound(f"no {kind.replace('_', ' ')} {name!r} in the feature registry; apply it first")
