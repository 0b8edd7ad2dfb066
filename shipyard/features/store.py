"""`FeatureStore`: a project's feature definitions and what they serve — point-in-time training sets
(offline) today; materialization and online lookups build on the same definitions."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import pandas as pd
import pyarrow as pa

from shipyard.errors import AlreadyExists, InvalidInput, NotFound
from shipyard.features import offline
from shipyard.features.definitions import (
    Definition,
    Entity,
    FeatureService,
    FeatureView,
    OnDemandFeatureView,
)


@dataclass(frozen=True)
class TrainingSet:
    """Entity rows with their point-in-time features, in the entity rows' order."""

    table: pa.Table
    features: tuple[str, ...]  # the refs asked for (``view:feature``)
    service: FeatureService | None = None

    def to_arrow(self) -> pa.Table:
        return self.table

    def to_pandas(self) -> pd.DataFrame:
        return self.table.to_pandas()

    def __len__(self) -> int:
        return self.table.num_rows


class FeatureStore:
    """Feature definitions held by name, and the point-in-time join over them."""

    def __init__(self, definitions: Iterable[Definition] = ()) -> None:
        self._entities: dict[str, Entity] = {}
        self._views: dict[str, FeatureView] = {}
        self._on_demand: dict[str, OnDemandFeatureView] = {}
        self._services: dict[str, FeatureService] = {}
        self.add(*definitions)

    # ------------------------------------------------------------------ definitions
    def add(self, *definitions: Definition) -> None:
        """Hold ``definitions`` (a view's entities come with it); a name taken by a different definition
        of the same kind raises `AlreadyExists`."""
        for item in definitions:
            if isinstance(item, FeatureView):
                for entity in item.entities:
                    self._put(self._entities, entity, "entity")
                self._put(self._views, item, "feature view", also=self._on_demand)
            elif isinstance(item, OnDemandFeatureView):
                self._put(self._on_demand, item, "on-demand feature view", also=self._views)
            elif isinstance(item, Entity):
                self._put(self._entities, item, "entity")
            elif isinstance(item, FeatureService):
                self._put(self._services, item, "feature service")
            else:
                raise InvalidInput(f"not a feature definition: {item!r}")

    @staticmethod
    def _put(into: dict, item: Definition, kind: str, also: dict | None = None) -> None:  # type: ignore[type-arg]
        name = item.name
        held = into.get(name)
        if held is not None and held is not item and held.to_dict() != item.to_dict():
            raise AlreadyExists(f"{kind} {name!r} is defined twice, differently")
        if also is not None and name in also:
            raise AlreadyExists(f"{kind} {name!r}: a feature view of that name exists already")
        into[name] = item

    @property
    def entities(self) -> list[Entity]:
        return list(self._entities.values())

    @property
    def feature_views(self) -> list[FeatureView]:
        return list(self._views.values())

    @property
    def on_demand_feature_views(self) -> list[OnDemandFeatureView]:
        return list(self._on_demand.values())

    @property
    def feature_services(self) -> list[FeatureService]:
        return list(self._services.values())

    def feature_view(self, name: str) -> FeatureView | OnDemandFeatureView:
        found = self._views.get(name) or self._on_demand.get(name)
        if found is None:
            raise NotFound(_unknown("feature view", name, [*self._views, *self._on_demand]))
        return found

    def feature_service(self, name: str) -> FeatureService:
        found = self._services.get(name)
        if found is None:
            raise NotFound(_unknown("feature service", name, self._services))
        return found

    # ------------------------------------------------------------------ offline
    def get_historical_features(
        self,
        entity_df: pd.DataFrame | pa.Table,
        features: Sequence[str] | FeatureService | str,
        *,
        full_feature_names: bool = False,
        timestamp_field: str = "event_timestamp",
        created_cutoff: bool = True,
    ) -> TrainingSet:
        """``entity_df``'s rows, each with the features as they were at its ``timestamp_field``.

        ``features``: refs (``"view:feature"``), a :class:`FeatureService`, or a service's name. Output
        columns are the feature names (``view__feature`` with ``full_feature_names``). Semantics — every
        row kept, TTL, ties, the created cutoff, time zones — are :mod:`shipyard.features.offline`'s.
        """
        service = None
        if isinstance(features, str):
            service = self.feature_service(features)
        elif isinstance(features, FeatureService):
            service = features
        refs = service.refs if service is not None else list(features)
        requests, on_demand = self._plan(refs, full_feature_names, entity_df)
        table = offline.historical_features(
            entity_df, requests, on_demand, timestamp_field=timestamp_field, created_cutoff=created_cutoff
        )
        hidden = [c for c in table.column_names if c.startswith(_HIDDEN)]
        if hidden:
            table = table.drop_columns(hidden)
        return TrainingSet(table, tuple(refs), service)

    def _plan(
        self, refs: Sequence[str], full_names: bool, entity_df: pd.DataFrame | pa.Table
    ) -> tuple[list[offline.Request], list[offline.OnDemandRequest]]:
        """Group ``refs`` by view and name every output column (refusing collisions); the stored features
        that on-demand views read but nobody asked for are joined under hidden names."""
        if not refs:
            raise InvalidInput("features: ask for at least one feature (view:feature)")
        stored: dict[str, dict[str, str]] = {}  # view -> feature -> output column
        computed: dict[str, dict[str, str]] = {}
        outputs: dict[str, str] = {}
        entity_columns = set(
            entity_df.columns if isinstance(entity_df, pd.DataFrame) else entity_df.column_names
        )
        for ref in refs:
            view_name, feature = _split(ref)
            view = self.feature_view(view_name)
            view.field(feature)
            out = f"{view_name}__{feature}" if full_names else feature
            if out in outputs:
                raise InvalidInput(
                    f"features {outputs[out]} and {ref} would both be column {out!r}: ask for "
                    "full_feature_names=True (columns view__feature)"
                )
            if out in entity_columns:
                raise InvalidInput(
                    f"feature {ref} would overwrite entity_df's column {out!r}; rename that column"
                )
            outputs[out] = ref
            target = computed if isinstance(view, OnDemandFeatureView) else stored
            target.setdefault(view_name, {})[feature] = out
        on_demand = []
        for view_name, chosen in computed.items():
            odfv = self._on_demand[view_name]
            inputs = []
            for ref in odfv.input_refs:
                source_view, feature = _split(ref)
                if source_view not in self._views:
                    raise NotFound(
                        _unknown("feature view", source_view, self._views) + f" (read by {view_name})"
                    )
                columns = stored.setdefault(source_view, {})
                column = columns.setdefault(feature, f"{_HIDDEN}{source_view}__{feature}")
                inputs.append((feature, column))
            on_demand.append(
                offline.OnDemandRequest(odfv, tuple(chosen), tuple(chosen.values()), tuple(inputs))
            )
        requests = [
            offline.Request(self._views[name], tuple(chosen), tuple(chosen.values()))
            for name, chosen in stored.items()
        ]
        return requests, on_demand


_HIDDEN = "__input__"


def _split(ref: str) -> tuple[str, str]:
    if not isinstance(ref, str) or ref.count(":") != 1 or not all(ref.split(":")):
        raise InvalidInput(f"feature {ref!r}: write it as view:feature")
    view, feature = ref.split(":")
    return view, feature


def _unknown(kind: str, name: str, known: Iterable[str]) -> str:
    known = list(known)
    close = difflib.get_close_matches(name, known, n=3)
    if close:
        return f"no {kind} {name!r}; did you mean {', '.join(close)}?"
    return f"no {kind} {name!r}; known: {', '.join(known) or 'none'}"
