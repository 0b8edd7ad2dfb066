"""`FeatureStore`: a project's feature definitions and what they serve — point-in-time training sets
(offline) today; materialization and online lookups build on the same definitions."""

from __future__ import annotations

import datetime as dt
import difflib
import functools
import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import pyarrow as pa

from shipyard.config import Settings, get_settings, using_settings
from shipyard.errors import AlreadyExists, Conflict, InvalidInput, NotFound
from shipyard.features import materialize as loading
from shipyard.features import offline, online
from shipyard.features import registry as registry_module
from shipyard.features.definitions import (
    Definition,
    Entity,
    FeatureService,
    FeatureView,
    OnDemandFeatureView,
    PushSource,
    ValueType,
)
from shipyard.features.online import Materialization, OnlineStore
from shipyard.features.records import DefinitionVersion, spec_hash

if TYPE_CHECKING:
    from shipyard.data.schema import Schema
    from shipyard.store.protocol import FeatureRegistryStore


@dataclass(frozen=True)
class TrainingSet:
    """Entity rows with their point-in-time features, in the entity rows' order. A training set made by
    :meth:`FeatureStore.training_set` also has its lineage URI and the service version it came from."""

    table: pa.Table
    features: tuple[str, ...]  # the refs asked for (``view:feature``)
    service: FeatureService | None = None
    uri: str | None = None
    service_version: int | None = None

    @functools.cached_property
    def sha256(self) -> str:
        """A hash of the rows (their Arrow IPC stream): the same training set gives the same hash."""
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, self.table.schema) as writer:
            writer.write_table(self.table)
        return hashlib.sha256(sink.getvalue().to_pybytes()).hexdigest()

    def to_arrow(self) -> pa.Table:
        return self.table

    def to_pandas(self) -> pd.DataFrame:
        return self.table.to_pandas()

    def __len__(self) -> int:
        return self.table.num_rows


@dataclass(frozen=True)
class OnlineResponse:
    """Online lookups, column by column in the entity rows' order: the join keys and the features, each
    value's status (PRESENT, NULL_VALUE, OUTSIDE_MAX_AGE, NOT_FOUND) and event time (epoch ms, or None)."""

    columns: dict[str, list[Any]]
    statuses: dict[str, list[str]]
    event_ms: dict[str, list[int | None]]

    def to_dict(self) -> dict[str, list[Any]]:
        return {k: list(v) for k, v in self.columns.items()}

    def to_pandas(self) -> pd.DataFrame:
        return pd.DataFrame(self.columns)


PRESENT, NULL_VALUE, OUTSIDE_MAX_AGE, NOT_FOUND = "PRESENT", "NULL_VALUE", "OUTSIDE_MAX_AGE", "NOT_FOUND"


class FeatureStore:
    """Feature definitions held by name; point-in-time training sets from their sources, and their latest
    values online (``online_store``: default SQLite under the Shipyard home, ``features/online.db``)."""

    def __init__(
        self,
        definitions: Iterable[Definition] = (),
        *,
        online_store: OnlineStore | None = None,
        settings: Settings | None = None,
        registry: FeatureRegistryStore | None = None,
    ) -> None:
        self._entities: dict[str, Entity] = {}
        self._views: dict[str, FeatureView] = {}
        self._on_demand: dict[str, OnDemandFeatureView] = {}
        self._services: dict[str, FeatureService] = {}
        self._online = online_store
        self._settings = settings
        self._registry = registry
        self._plans: dict[tuple[Any, ...], tuple[list[offline.Request], list[offline.OnDemandRequest]]] = {}
        self.add(*definitions)

    @classmethod
    def from_repository(cls, path: str | Path, **options: Any) -> FeatureStore:
        """The definitions of the feature repository at ``path`` (see :mod:`shipyard.features.repository`)."""
        from shipyard.features.repository import load_repository

        return cls(load_repository(path).definitions, **options)

    @property
    def definitions(self) -> list[Definition]:
        return [
            *self._entities.values(),
            *self._views.values(),
            *self._on_demand.values(),
            *self._services.values(),
        ]

    @property
    def registry(self) -> FeatureRegistryStore:
        """Where applied definitions are versioned: the metadata store (or the server, in team mode)."""
        if self._registry is None:
            from shipyard.store import open_stores

            self._registry = open_stores(self._settings or get_settings()).features
        return self._registry

    def plan(self) -> registry_module.Plan:
        """What :meth:`apply` would change in the registry: added, changed (with the schema difference) and
        removed definitions."""
        return registry_module.plan(self.registry.current(), self.definitions)

    def apply(self, *, user: str | None = None) -> list[DefinitionVersion]:
        """Record this store's definitions in the registry, a new version for each change (none when
        nothing changed); definitions applied before and absent now are marked removed."""
        changes = self.plan().changes
        if not changes:
            return []
        return self.registry.record(changes, user or _user())

    def service_version(self, name: str) -> DefinitionVersion:
        """The applied version of feature service ``name`` (what a model trained on it records); the service
        must be applied as it is defined here."""
        service = self.feature_service(name)
        found = registry_module.current_version(self.registry, "feature_service", name)
        if found.sha256 != spec_hash(service.to_dict()):
            raise Conflict(
                f"feature service {name!r} differs from its applied version {found.version}: apply it first "
                "(shipyard features apply)"
            )
        return found

    @property
    def online_store(self) -> OnlineStore:
        if self._online is None:
            settings = self._settings or get_settings()
            self._online = online.open_online_store(settings.online_store, Path(settings.home))
        return self._online

    # ------------------------------------------------------------------ definitions
    def add(self, *definitions: Definition) -> None:
        """Hold ``definitions`` (a view's entities come with it); a name taken by a different definition
        of the same kind raises `AlreadyExists`."""
        self._plans.clear()
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
        service, refs = self._refs(features)
        columns = entity_df.columns if isinstance(entity_df, pd.DataFrame) else entity_df.column_names
        requests, on_demand = self._plan(tuple(refs), full_feature_names, frozenset(map(str, columns)))
        with self._settings_in_use():
            table = offline.historical_features(
                entity_df, requests, on_demand, timestamp_field=timestamp_field, created_cutoff=created_cutoff
            )
        hidden = [c for c in table.column_names if c.startswith(_HIDDEN)]
        if hidden:
            table = table.drop_columns(hidden)
        return TrainingSet(table, tuple(refs), service)

    def training_set(
        self,
        service: FeatureService | str,
        entity_df: pd.DataFrame | pa.Table,
        *,
        run: Any = None,
        name: str | None = None,
        **options: Any,
    ) -> TrainingSet:
        """A service's point-in-time training set, with its lineage: the feature views' applied versions
        and their source files (with hashes) recorded as what it was made from, and — inside a run (the
        active one, or ``run``) — logged as the run's input, so the model the run logs records the service
        version and ``shipyard lineage`` goes from the model back to the feature views."""
        from shipyard.features.lineage import record_training_set

        found = self.get_historical_features(entity_df, service, **options)
        with self._settings_in_use():
            return record_training_set(self, found, run=run, name=name)

    # ------------------------------------------------------------------ push
    def push(self, source: str, rows: pd.DataFrame | pa.Table, *, to: str = "online_and_offline") -> int:
        """Write ``rows`` to push source ``source``: appended to its offline folder as one Parquet file
        (written whole, then renamed into place), and each entity's latest row upserted into the online
        store for every online view over it. ``to``: ``online_and_offline``, ``online`` or ``offline``.
        Returns the rows written."""
        from shipyard.features import push as pushing

        if to not in ("online_and_offline", "online", "offline"):
            raise InvalidInput(f"push to={to!r}: one of online_and_offline, online, offline")
        views = [
            v for v in self._views.values() if isinstance(v.source, PushSource) and v.source.name == source
        ]
        if not views:
            known = sorted({v.source.name for v in self._views.values() if isinstance(v.source, PushSource)})
            raise NotFound(_unknown("push source", source, known))
        table = pushing.checked_rows(views, rows)
        if to != "online":
            pushing.append_offline(views[0].source, table)  # type: ignore[arg-type]
        if to != "offline":
            for view in views:
                if view.online:
                    pushing.write_online(self.online_store, view, table)
        return table.num_rows

    # ------------------------------------------------------------------ online
    def materialize(
        self,
        start: dt.datetime | str,
        end: dt.datetime | str,
        views: Sequence[str] | None = None,
        *,
        progress: Callable[[str, int, int], None] | None = None,
        on_anomaly: str = "warn",
        schemas: Mapping[str, Schema] | None = None,
    ) -> list[Materialization]:
        """Load each online view's (or ``views``') latest values with event times in ``[start, end)``, each
        batch validated against ``schemas[view]`` or the view's kept schema (see
        :func:`shipyard.features.materialize.materialize` for ``on_anomaly``)."""
        begin, finish = loading.as_utc(start, "start"), loading.as_utc(end, "end")
        return [
            self._load(view, begin, finish, progress, on_anomaly, schemas)
            for view in self._online_views(views)
        ]

    def materialize_incremental(
        self,
        end: dt.datetime | str,
        views: Sequence[str] | None = None,
        *,
        progress: Callable[[str, int, int], None] | None = None,
        on_anomaly: str = "warn",
        schemas: Mapping[str, Schema] | None = None,
    ) -> list[Materialization]:
        """Load each online view from where its last load ended (first time: ``end`` minus its TTL) to
        ``end``; a view already loaded up to ``end`` is skipped. Batches are validated as in
        :meth:`materialize`."""
        finish = loading.as_utc(end, "end")
        done = []
        for view in self._online_views(views):
            begin = loading.incremental_start(self.online_store, view, finish)
            if begin < finish:
                done.append(self._load(view, begin, finish, progress, on_anomaly, schemas))
        return done

    def _load(
        self,
        view: FeatureView,
        start: dt.datetime,
        end: dt.datetime,
        progress: Callable[[str, int, int], None] | None,
        on_anomaly: str,
        schemas: Mapping[str, Schema] | None,
    ) -> Materialization:
        with self._settings_in_use():
            return loading.materialize(
                self.online_store,
                view,
                start,
                end,
                progress=_progress(progress, view),
                on_anomaly=on_anomaly,
                schema=(schemas or {}).get(view.name),
            )

    def _settings_in_use(self) -> AbstractContextManager[Any]:
        """This store's settings as the current ones while sources are read: a dataset version or a step
        output is looked up in this store's deployment, not the environment's."""
        return nullcontext() if self._settings is None else using_settings(self._settings)

    def _online_views(self, names: Sequence[str] | None) -> list[FeatureView]:
        if names is None:
            return [v for v in self._views.values() if v.online]
        out = []
        for name in names:
            view = self.feature_view(name)
            if not isinstance(view, FeatureView):
                raise InvalidInput(f"{name} is an on-demand feature view: it is computed, not materialized")
            out.append(view)
        return out

    def get_online_features(
        self,
        features: Sequence[str] | FeatureService | str,
        entity_rows: Sequence[Mapping[str, Any]] | Mapping[str, Sequence[Any]],
        *,
        full_feature_names: bool = False,
    ) -> OnlineResponse:
        """The latest values of ``features`` for each entity row (its join keys, plus the request data of
        on-demand features), with a status per value; a key never materialized is NOT_FOUND, a value
        older than its view's TTL OUTSIDE_MAX_AGE — neither is an error."""
        _, refs = self._refs(features)
        rows = _columnar(entity_rows)
        count = len(next(iter(rows.values()))) if rows else 0
        requests, on_demand = self._plan(tuple(refs), full_feature_names, frozenset(rows))
        columns: dict[str, list[Any]] = {}
        statuses: dict[str, list[str]] = {}
        stamps: dict[str, list[int | None]] = {}
        for request in requests:
            view = request.view
            for key in view.join_keys:
                if key not in rows:
                    raise InvalidInput(
                        f"entity rows have no {key!r}, the join key of feature view {view.name}; they have: "
                        f"{', '.join(rows) or 'nothing'}"
                    )
                columns.setdefault(key, list(rows[key]))
            keys = list(zip(*(rows[k] for k in view.join_keys), strict=True))
            found = self.online_store.read(view, keys)
            limit = None if view.ttl is None else view.ttl.total_seconds() * 1000
            now = online.now_ms()
            for feature, out in zip(request.features, request.output_names, strict=True):
                kind = view.field(feature).dtype
                pairs = [_value(record, feature, kind, limit, now) for record in found]
                columns[out] = [value for value, _ in pairs]
                statuses[out] = [mark for _, mark in pairs]
                stamps[out] = [None if r is None else r.event_ms for r in found]
        if on_demand:
            frame = pd.DataFrame({**{k: v for k, v in rows.items()}, **columns}, index=range(count))
            for request in on_demand:
                result = offline.compute_on_demand(
                    request, list(frame.columns), lambda names: frame[names].copy()
                )
                for feature, out in zip(request.features, request.output_names, strict=True):
                    values = [online.plain(v) for v in result[feature].tolist()]
                    columns[out] = values
                    statuses[out] = [PRESENT if v is not None else NULL_VALUE for v in values]
                    stamps[out] = [None] * count
        visible = {k: v for k, v in columns.items() if not k.startswith(_HIDDEN)}
        return OnlineResponse(
            visible,
            {k: v for k, v in statuses.items() if k in visible},
            {k: v for k, v in stamps.items() if k in visible},
        )

    def _refs(
        self, features: Sequence[str] | FeatureService | str
    ) -> tuple[FeatureService | None, list[str]]:
        """The service (if one is named) and the refs ``features`` stands for: a service, a service's name,
        one ``view:feature`` or a list of them."""
        if isinstance(features, FeatureService):
            return features, features.refs
        if isinstance(features, str):
            if ":" in features:
                return None, [features]
            service = self.feature_service(features)
            return service, service.refs
        return None, list(features)

    def _plan(
        self, refs: tuple[str, ...], full_names: bool, entity_columns: frozenset[str]
    ) -> tuple[list[offline.Request], list[offline.OnDemandRequest]]:
        """Group ``refs`` by view and name every output column (refusing collisions); the stored features
        that on-demand views read but nobody asked for are joined under hidden names. Plans are kept (an
        online lookup asks the same question thousands of times a second); ``add`` forgets them."""
        key = (refs, full_names, entity_columns)
        found = self._plans.get(key)
        if found is None:
            found = self._make_plan(refs, full_names, entity_columns)
            if len(self._plans) >= 256:
                self._plans.clear()
            self._plans[key] = found
        return found

    def _make_plan(
        self, refs: tuple[str, ...], full_names: bool, entity_columns: frozenset[str]
    ) -> tuple[list[offline.Request], list[offline.OnDemandRequest]]:
        if not refs:
            raise InvalidInput("features: ask for at least one feature (view:feature)")
        stored: dict[str, dict[str, str]] = {}  # view -> feature -> output column
        computed: dict[str, dict[str, str]] = {}
        outputs: dict[str, str] = {}
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


def _user() -> str:
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a container)
        return "unknown"


def _progress(
    report: Callable[[str, int, int], None] | None, view: FeatureView
) -> Callable[[int, int], None] | None:
    if report is None:
        return None
    return lambda done, total: report(view.name, done, total)


def _columnar(rows: Sequence[Mapping[str, Any]] | Mapping[str, Sequence[Any]]) -> dict[str, list[Any]]:
    """Entity rows as columns: a list of dicts (all with the same keys) or a dict of equal-length lists."""
    if isinstance(rows, pd.DataFrame):
        return {str(c): rows[c].tolist() for c in rows.columns}
    if isinstance(rows, Mapping):
        columns = {str(k): list(v) for k, v in rows.items()}
    else:
        rows = list(rows)
        names = list(rows[0]) if rows else []
        for i, row in enumerate(rows):
            if not isinstance(row, Mapping) or set(row) != set(names):
                raise InvalidInput(
                    f"entity_rows[{i}]: every row must be a mapping with the same keys as the first"
                )
        columns = {n: [row[n] for row in rows] for n in names}
    lengths = {len(v) for v in columns.values()}
    if len(lengths) > 1:
        raise InvalidInput(f"entity_rows: columns of different lengths ({sorted(lengths)})")
    return columns


def _value(
    record: online.Record | None, feature: str, kind: ValueType, limit_ms: float | None, now_ms: int
) -> tuple[Any, str]:
    """One looked-up value and its status."""
    if record is None:
        return None, NOT_FOUND
    if limit_ms is not None and now_ms - record.event_ms > limit_ms:
        return None, OUTSIDE_MAX_AGE
    value = _typed(record.values.get(feature), kind)
    return value, PRESENT if value is not None else NULL_VALUE


def _typed(value: Any, kind: ValueType) -> Any:
    if value is not None and kind is ValueType.TIMESTAMP:
        return dt.datetime.fromtimestamp(value / 1000, dt.UTC)
    if value is not None and kind is ValueType.BYTES:
        return bytes.fromhex(value)
    return value


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
