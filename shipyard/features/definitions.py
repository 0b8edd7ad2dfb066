"""Feature definitions: entities, sources, feature views, on-demand features and feature services.

They are plain frozen values, written in a feature repository's Python files (or anywhere) and checked
when made: a bad name, a feature that shadows a join key, a TTL that is not positive each raise
:class:`~shipyard.errors.InvalidInput` naming the definition and the field. ``to_dict()`` is what the
registry stores and diffs; sources that hold data (a DataFrame) are stored by their content hash.
"""

from __future__ import annotations

import glob
import hashlib
import inspect
import re
import textwrap
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum
from typing import Any

import pandas as pd
import pyarrow as pa

from shipyard.errors import InvalidInput

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
RESERVED_PREFIX = "__"  # the offline join's own columns; no definition may use it


class ValueType(StrEnum):
    """A feature's or a join key's type: how it is stored offline (Arrow) and online."""

    INT32 = "int32"
    INT64 = "int64"
    FLOAT32 = "float32"
    FLOAT64 = "float64"
    STRING = "string"
    BOOL = "bool"
    BYTES = "bytes"
    TIMESTAMP = "timestamp"

    @property
    def arrow(self) -> pa.DataType:
        return _ARROW[self]

    @property
    def sql(self) -> str:
        """The DuckDB type a column is cast to."""
        return _SQL[self]


_ARROW: dict[ValueType, pa.DataType] = {
    ValueType.INT32: pa.int32(),
    ValueType.INT64: pa.int64(),
    ValueType.FLOAT32: pa.float32(),
    ValueType.FLOAT64: pa.float64(),
    ValueType.STRING: pa.string(),
    ValueType.BOOL: pa.bool_(),
    ValueType.BYTES: pa.binary(),
    ValueType.TIMESTAMP: pa.timestamp("us", tz="UTC"),
}
_SQL: dict[ValueType, str] = {
    ValueType.INT32: "INTEGER",
    ValueType.INT64: "BIGINT",
    ValueType.FLOAT32: "FLOAT",
    ValueType.FLOAT64: "DOUBLE",
    ValueType.STRING: "VARCHAR",
    ValueType.BOOL: "BOOLEAN",
    ValueType.BYTES: "BLOB",
    ValueType.TIMESTAMP: "TIMESTAMPTZ",
}


def as_value_type(value: ValueType | str, what: str) -> ValueType:
    """``value`` as a :class:`ValueType`; an unknown name is refused naming ``what`` and the known ones."""
    try:
        return ValueType(value)
    except ValueError:
        known = ", ".join(t.value for t in ValueType)
        raise InvalidInput(f"{what}: unknown type {value!r}; types: {known}") from None


def check_name(name: object, what: str) -> str:
    """``name`` if it is a valid definition or column name (letters, digits, ``_``; not ``__`` first)."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise InvalidInput(
            f"{what}: {name!r} is not a valid name (letters, digits and _, not starting with a digit)"
        )
    if name.startswith(RESERVED_PREFIX):
        raise InvalidInput(f"{what}: {name!r} starts with {RESERVED_PREFIX!r}, which Shipyard reserves")
    return name


def _tags(tags: Mapping[str, str] | None, what: str) -> tuple[tuple[str, str], ...]:
    out = []
    for key, value in (tags or {}).items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise InvalidInput(f"{what}.tags: keys and values must be strings, got {key!r}: {value!r}")
        out.append((key, value))
    return tuple(sorted(out))


@dataclass(frozen=True)
class Field:
    """A typed column: a feature, or a request-data input of on-demand features."""

    name: str
    dtype: ValueType
    description: str = ""

    def __post_init__(self) -> None:
        check_name(self.name, "field")
        object.__setattr__(self, "dtype", as_value_type(self.dtype, f"field {self.name}"))

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "dtype": self.dtype.value, "description": self.description}


def _fields(fields: Iterable[Field], what: str) -> tuple[Field, ...]:
    out = tuple(fields)
    seen: set[str] = set()
    for f in out:
        if not isinstance(f, Field):
            raise InvalidInput(f"{what}: {f!r} is not a Field")
        if f.name in seen:
            raise InvalidInput(f"{what}: field {f.name!r} is listed twice")
        seen.add(f.name)
    return out


@dataclass(frozen=True)
class Entity:
    """What features describe (a customer, a driver), identified by its join key columns."""

    name: str
    join_keys: tuple[str, ...] = ()
    value_type: ValueType = ValueType.INT64
    description: str = ""
    owner: str = ""
    tags: tuple[tuple[str, str], ...] = ()

    def __init__(
        self,
        name: str,
        join_keys: Sequence[str] | None = None,
        value_type: ValueType | str = ValueType.INT64,
        *,
        description: str = "",
        owner: str = "",
        tags: Mapping[str, str] | None = None,
    ) -> None:
        check_name(name, "entity")
        keys = tuple(join_keys) if join_keys else (name,)
        for key in keys:
            check_name(key, f"entity {name}: join key")
        if len(set(keys)) != len(keys):
            raise InvalidInput(f"entity {name}: join keys repeat: {', '.join(keys)}")
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "join_keys", keys)
        object.__setattr__(self, "value_type", as_value_type(value_type, f"entity {name}"))
        object.__setattr__(self, "description", description)
        object.__setattr__(self, "owner", owner)
        object.__setattr__(self, "tags", _tags(tags, f"entity {name}"))

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "join_keys": list(self.join_keys),
            "value_type": self.value_type.value,
            "description": self.description,
            "owner": self.owner,
            "tags": dict(self.tags),
        }


# ---------------------------------------------------------------------- sources
@dataclass(frozen=True)
class FileSource:
    """Parquet or CSV at a path or fsspec URL: one file, a folder of them, or a glob.

    ``timestamp_field``: when each row's values became true (the event time). ``created_timestamp_field``:
    when the row was written; it breaks ties between rows of one entity at one event time (the newest
    wins), and with the offline store's created cutoff a row counts only from its creation on.
    """

    path: str
    timestamp_field: str = "event_timestamp"
    created_timestamp_field: str | None = None
    file_format: str = ""  # "parquet" or "csv"; from the path's suffix when empty
    storage_options: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.path, str) or not self.path:
            raise InvalidInput(f"FileSource.path: {self.path!r} is not a path or URL")
        check_name(self.timestamp_field, f"source {self.path}: timestamp_field")
        if self.created_timestamp_field is not None:
            check_name(self.created_timestamp_field, f"source {self.path}: created_timestamp_field")
        fmt = self.file_format or _format_of(self.path)
        if fmt not in ("parquet", "csv"):
            raise InvalidInput(f"FileSource {self.path}: file_format {fmt!r} is not parquet or csv")
        object.__setattr__(self, "file_format", fmt)
        object.__setattr__(self, "storage_options", dict(self.storage_options))

    def to_dict(self) -> dict[str, Any]:
        # storage_options may hold credentials: never stored, never diffed.
        return {
            "kind": "file",
            "path": self.path,
            "file_format": self.file_format,
            "timestamp_field": self.timestamp_field,
            "created_timestamp_field": self.created_timestamp_field,
        }


def _format_of(path: str) -> str:
    lowered = path.lower().rstrip("/")
    if lowered.endswith(".csv") or lowered.endswith(".csv.gz"):
        return "csv"
    return "parquet"  # a .parquet file, a folder or a glob of them


def arrow_rows(rows: pd.DataFrame | pa.Table, what: str) -> pa.Table:
    """``rows`` as an Arrow table (a DataFrame's index dropped); anything else, or a column Arrow cannot
    hold, is refused naming ``what``."""
    if isinstance(rows, pa.Table):
        return rows
    if not isinstance(rows, pd.DataFrame):
        raise InvalidInput(
            f"{what}: expected a pandas DataFrame or an Arrow table, got {type(rows).__name__}"
        )
    try:
        return pa.Table.from_pandas(rows, preserve_index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise InvalidInput(f"{what}: a column cannot be read: {exc}") from None


class DataFrameSource:
    """Rows held in memory (a pandas DataFrame or an Arrow table), for notebooks and tests.

    The registry keeps the rows' content hash, not the rows: a repository that builds its frame from the
    same data applies as unchanged.
    """

    def __init__(
        self,
        frame: pd.DataFrame | pa.Table,
        timestamp_field: str = "event_timestamp",
        created_timestamp_field: str | None = None,
    ) -> None:
        table = arrow_rows(frame, "DataFrameSource")
        check_name(timestamp_field, "DataFrameSource: timestamp_field")
        if created_timestamp_field is not None:
            check_name(created_timestamp_field, "DataFrameSource: created_timestamp_field")
        self.table = table
        self.timestamp_field = timestamp_field
        self.created_timestamp_field = created_timestamp_field
        self._sha256: str | None = None

    @property
    def sha256(self) -> str:
        if self._sha256 is None:
            sink = pa.BufferOutputStream()
            with pa.ipc.new_stream(sink, self.table.schema) as writer:
                writer.write_table(self.table)
            self._sha256 = hashlib.sha256(sink.getvalue().to_pybytes()).hexdigest()
        return self._sha256

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "dataframe",
            "rows": self.table.num_rows,
            "sha256": self.sha256,
            "timestamp_field": self.timestamp_field,
            "created_timestamp_field": self.created_timestamp_field,
        }

    def __repr__(self) -> str:
        return f"DataFrameSource({self.table.num_rows} rows, timestamp_field={self.timestamp_field!r})"


@dataclass(frozen=True)
class RequestSource:
    """Values that come with each request (not stored), for on-demand features."""

    name: str
    schema: tuple[Field, ...]

    def __init__(self, name: str, schema: Iterable[Field]) -> None:
        check_name(name, "request source")
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "schema", _fields(schema, f"request source {name}"))

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "request", "name": self.name, "schema": [f.to_dict() for f in self.schema]}


class PushSource:
    """Rows that producers push (``FeatureStore.push``): each push is appended to ``batch_source`` — a
    folder of Parquet files, read offline like any file source — and written to the online store at once.
    Views over it read the folder offline; a streaming producer keeps both stores current."""

    def __init__(self, name: str, batch_source: FileSource) -> None:
        check_name(name, "push source")
        if not isinstance(batch_source, FileSource) or batch_source.file_format != "parquet":
            raise InvalidInput(
                f"push source {name}: batch_source must be a FileSource of Parquet files (a folder)"
            )
        if glob.has_magic(batch_source.path):
            raise InvalidInput(
                f"push source {name}: batch_source is a folder, not a glob ({batch_source.path})"
            )
        self.name = name
        self.batch_source = batch_source

    # What the offline store reads: the batch source, as if the view named it.
    @property
    def path(self) -> str:
        return self.batch_source.path

    @property
    def timestamp_field(self) -> str:
        return self.batch_source.timestamp_field

    @property
    def created_timestamp_field(self) -> str | None:
        return self.batch_source.created_timestamp_field

    @property
    def file_format(self) -> str:
        return "parquet"

    @property
    def storage_options(self) -> Mapping[str, Any]:
        return self.batch_source.storage_options

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "push", "name": self.name, "batch_source": self.batch_source.to_dict()}

    def __repr__(self) -> str:
        return f"PushSource({self.name!r}, {self.batch_source.path!r})"


class DatasetSource:
    """A dataset version (``customers@3``, made by ``shipyard data add``) read as Parquet or CSV files.

    Name a version for reproducible training sets (``customers`` alone is the newest, whichever that is when
    the view is read). The files are read from a verified local copy of the snapshot; lineage records the
    version and its hash.
    """

    def __init__(
        self,
        ref: str,
        timestamp_field: str = "event_timestamp",
        created_timestamp_field: str | None = None,
        file_format: str = "parquet",
    ) -> None:
        from shipyard.datasets.refs import parse_ref

        self.ref = parse_ref(ref)
        check_name(timestamp_field, f"dataset source {ref}: timestamp_field")
        if created_timestamp_field is not None:
            check_name(created_timestamp_field, f"dataset source {ref}: created_timestamp_field")
        if file_format not in ("parquet", "csv"):
            raise InvalidInput(f"dataset source {ref}: file_format {file_format!r} is not parquet or csv")
        self.timestamp_field = timestamp_field
        self.created_timestamp_field = created_timestamp_field
        self.file_format = file_format
        self.storage_options: Mapping[str, Any] = {}
        self._path: str | None = None

    @property
    def path(self) -> str:
        """The snapshot's verified local copy (fetched on first use)."""
        if self._path is None:
            from shipyard.datasets import dataset_path

            self._path = str(dataset_path(str(self.ref)))
        return self._path

    @property
    def uri(self) -> str:
        return f"data:{self.ref}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "dataset",
            "ref": str(self.ref),
            "file_format": self.file_format,
            "timestamp_field": self.timestamp_field,
            "created_timestamp_field": self.created_timestamp_field,
        }

    def __repr__(self) -> str:
        return f"DatasetSource({str(self.ref)!r})"


class StepOutputSource:
    """An artifact output (say ``Output[Dataset]``) of a pipeline step, read as Parquet or CSV: a file, or
    a folder of them.

    Which run's output: ``run_id``'s when given; else, inside a step of a run of ``pipeline``, that run's
    (so a later step reads what an earlier one of the same run wrote); else the newest succeeded run of
    ``pipeline`` whose output is intact. It is resolved when the view is first read and kept for the life
    of this definition (a repository loaded again sees newer runs). Lineage records the output's URI and
    the sha256 the step recorded, so a training set leads back through the step to its inputs.
    """

    def __init__(
        self,
        pipeline: str,
        step: str,
        output: str,
        timestamp_field: str = "event_timestamp",
        created_timestamp_field: str | None = None,
        file_format: str = "parquet",
        run_id: str | None = None,
    ) -> None:
        what = f"step output source {pipeline}/{step}/{output}"
        for label, value in (("pipeline", pipeline), ("step", step), ("output", output)):
            if not isinstance(value, str) or not value or not value.isprintable():
                raise InvalidInput(f"{what}: {label} {value!r} is not a name")
        check_name(timestamp_field, f"{what}: timestamp_field")
        if created_timestamp_field is not None:
            check_name(created_timestamp_field, f"{what}: created_timestamp_field")
        if file_format not in ("parquet", "csv"):
            raise InvalidInput(f"{what}: file_format {file_format!r} is not parquet or csv")
        if run_id is not None and not (isinstance(run_id, str) and run_id.isalnum()):
            raise InvalidInput(f"{what}: run_id {run_id!r} is not a run id")
        self.pipeline, self.step, self.output, self.run_id = pipeline, step, output, run_id
        self.timestamp_field = timestamp_field
        self.created_timestamp_field = created_timestamp_field
        self.file_format = file_format
        self._found: Any = None

    @property
    def found(self) -> Any:
        """The :class:`~shipyard.pipelines.outputs.StepOutput` read (resolved on first use).

        Raises:
            NotFound: no such run, step or output, or its files changed since the step wrote them.
        """
        if self._found is None:
            from shipyard.pipelines.outputs import current_pipeline_run_id, step_output
            from shipyard.tracking import get_client

            self._found = step_output(
                get_client(),
                self.pipeline,
                self.step,
                self.output,
                run_id=self.run_id,
                current_run_id=current_pipeline_run_id(),
            )
        return self._found

    @property
    def path(self) -> str:
        """The output's local path, or its URI on an object store."""
        return str(self.found.location)

    @property
    def storage_options(self) -> Mapping[str, Any]:
        """The settings' options for the object store holding the output (none for a local path)."""
        if "://" not in self.path:
            return {}
        from shipyard.config import get_settings

        return get_settings().storage_options_for(self.path)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "step_output",
            "pipeline": self.pipeline,
            "step": self.step,
            "output": self.output,
            "run_id": self.run_id,
            "file_format": self.file_format,
            "timestamp_field": self.timestamp_field,
            "created_timestamp_field": self.created_timestamp_field,
        }

    def __repr__(self) -> str:
        return f"StepOutputSource({self.pipeline!r}, {self.step!r}, {self.output!r})"


Source = FileSource | DataFrameSource | PushSource | DatasetSource | StepOutputSource


# ---------------------------------------------------------------------- views
class _Features:
    """What both kinds of view answer about their features (``name`` and ``schema`` are theirs)."""

    name: str
    schema: tuple[Field, ...]

    @property
    def feature_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.schema)

    def field(self, name: str) -> Field:
        for f in self.schema:
            if f.name == name:
                return f
        raise unknown_feature(self.name, name, self.feature_names)

    def __getitem__(self, names: Sequence[str]) -> Projection:
        """A projection of some of the view's features (``view[["a", "b"]]``), for a feature service."""
        if isinstance(names, str):
            names = [names]
        return Projection(self, tuple(self.field(n).name for n in names))  # type: ignore[arg-type]


@dataclass(frozen=True)
class FeatureView(_Features):
    """Typed features of one or more entities, read from ``source``.

    ``ttl``: how old a feature row may be and still describe an entity at a point in time (None: any
    age). The offline join and the online store both honour it: an older value comes back null.
    """

    name: str
    entities: tuple[Entity, ...]
    schema: tuple[Field, ...]
    source: Source
    ttl: timedelta | None = None
    online: bool = True
    description: str = ""
    owner: str = ""
    tags: tuple[tuple[str, str], ...] = ()

    def __init__(
        self,
        name: str,
        entities: Sequence[Entity],
        schema: Iterable[Field],
        source: Source,
        ttl: timedelta | None = None,
        *,
        online: bool = True,
        description: str = "",
        owner: str = "",
        tags: Mapping[str, str] | None = None,
    ) -> None:
        check_name(name, "feature view")
        what = f"feature view {name}"
        entities = tuple(entities)
        if not entities or not all(isinstance(e, Entity) for e in entities):
            raise InvalidInput(f"{what}: entities must be one or more Entity objects")
        fields = _fields(schema, what)
        if not fields:
            raise InvalidInput(f"{what}: schema lists no features")
        if not isinstance(source, Source):
            raise InvalidInput(
                f"{what}: source must be a FileSource, DataFrameSource, PushSource, DatasetSource or "
                f"StepOutputSource, not "
                f"{type(source).__name__}"
            )
        keys = [k for e in entities for k in e.join_keys]
        if len(set(keys)) != len(keys):
            raise InvalidInput(f"{what}: its entities share a join key: {', '.join(keys)}")
        special = {source.timestamp_field, source.created_timestamp_field} | set(keys)
        for f in fields:
            if f.name in special:
                raise InvalidInput(f"{what}: feature {f.name!r} is also a join key or timestamp column")
        if ttl is not None and (not isinstance(ttl, timedelta) or ttl <= timedelta(0)):
            raise InvalidInput(f"{what}: ttl must be a positive timedelta or None, got {ttl!r}")
        for attr, value in (
            ("name", name),
            ("entities", entities),
            ("schema", fields),
            ("source", source),
            ("ttl", ttl),
            ("online", bool(online)),
            ("description", description),
            ("owner", owner),
            ("tags", _tags(tags, what)),
        ):
            object.__setattr__(self, attr, value)

    @property
    def join_keys(self) -> tuple[str, ...]:
        return tuple(k for e in self.entities for k in e.join_keys)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "entities": [e.name for e in self.entities],
            "join_keys": list(self.join_keys),
            "schema": [f.to_dict() for f in self.schema],
            "source": self.source.to_dict(),
            "ttl_s": None if self.ttl is None else self.ttl.total_seconds(),
            "online": self.online,
            "description": self.description,
            "owner": self.owner,
            "tags": dict(self.tags),
        }


@dataclass(frozen=True)
class Projection:
    """Some features of a view (all when made from the view itself)."""

    view: FeatureView | OnDemandFeatureView
    features: tuple[str, ...]

    @property
    def refs(self) -> list[str]:
        return [f"{self.view.name}:{f}" for f in self.features]


@dataclass(frozen=True)
class OnDemandFeatureView(_Features):
    """Features computed from request data and other views' features by a Python function of a pandas
    DataFrame (one row per entity row), the same function offline and online.

    The function gets a DataFrame with the sources' columns (request fields by name, a view's features by
    name) and returns one with every ``schema`` column, row for row.
    """

    name: str
    sources: tuple[FeatureView | Projection | RequestSource, ...]
    schema: tuple[Field, ...]
    udf: Callable[[pd.DataFrame], pd.DataFrame]
    description: str = ""
    owner: str = ""
    tags: tuple[tuple[str, str], ...] = ()

    def __init__(
        self,
        name: str,
        sources: Sequence[FeatureView | Projection | RequestSource],
        schema: Iterable[Field],
        udf: Callable[[pd.DataFrame], pd.DataFrame],
        *,
        description: str = "",
        owner: str = "",
        tags: Mapping[str, str] | None = None,
    ) -> None:
        check_name(name, "on-demand feature view")
        what = f"on-demand feature view {name}"
        sources = tuple(sources)
        if not sources or not all(isinstance(s, FeatureView | Projection | RequestSource) for s in sources):
            raise InvalidInput(f"{what}: sources must be feature views, projections or request sources")
        if not callable(udf):
            raise InvalidInput(f"{what}: udf must be a function of a DataFrame")
        fields = _fields(schema, what)
        if not fields:
            raise InvalidInput(f"{what}: schema lists no features")
        inputs = [f.name for s in sources if isinstance(s, RequestSource) for f in s.schema]
        inputs += [
            r.split(":", 1)[1] for s in sources if not isinstance(s, RequestSource) for r in _source_refs(s)
        ]
        repeated = sorted({n for n in inputs if inputs.count(n) > 1})
        if repeated:
            raise InvalidInput(f"{what}: its sources have more than one value named {repeated[0]!r}")
        for attr, value in (
            ("name", name),
            ("sources", sources),
            ("schema", fields),
            ("udf", udf),
            ("description", description),
            ("owner", owner),
            ("tags", _tags(tags, what)),
        ):
            object.__setattr__(self, attr, value)

    @property
    def request_fields(self) -> tuple[Field, ...]:
        return tuple(f for s in self.sources if isinstance(s, RequestSource) for f in s.schema)

    @property
    def input_refs(self) -> list[str]:
        """The stored features it reads (``view:feature``)."""
        return [r for s in self.sources if not isinstance(s, RequestSource) for r in _source_refs(s)]

    def to_dict(self) -> dict[str, Any]:
        try:
            code = textwrap.dedent(inspect.getsource(self.udf))
        except (OSError, TypeError):
            code = getattr(self.udf, "__qualname__", repr(self.udf))
        return {
            "name": self.name,
            "sources": [
                s.to_dict() if isinstance(s, RequestSource) else {"kind": "features", "refs": _source_refs(s)}
                for s in self.sources
            ],
            "schema": [f.to_dict() for f in self.schema],
            "udf": {
                "name": getattr(self.udf, "__qualname__", ""),
                "sha256": hashlib.sha256(code.encode()).hexdigest(),
            },
            "description": self.description,
            "owner": self.owner,
            "tags": dict(self.tags),
        }


def _source_refs(source: FeatureView | Projection) -> list[str]:
    if isinstance(source, Projection):
        return source.refs
    return [f"{source.name}:{f}" for f in source.feature_names]


def on_demand_feature_view(
    *,
    sources: Sequence[FeatureView | Projection | RequestSource],
    schema: Iterable[Field],
    name: str | None = None,
    description: str = "",
    owner: str = "",
    tags: Mapping[str, str] | None = None,
) -> Callable[[Callable[[pd.DataFrame], pd.DataFrame]], OnDemandFeatureView]:
    """Decorator form of :class:`OnDemandFeatureView`: the function's name is the view's name."""

    def wrap(fn: Callable[[pd.DataFrame], pd.DataFrame]) -> OnDemandFeatureView:
        return OnDemandFeatureView(
            name or fn.__name__, sources, schema, fn, description=description, owner=owner, tags=tags
        )

    return wrap


@dataclass(frozen=True)
class FeatureService:
    """The named set of features a model consumes; the registry versions it on every change."""

    name: str
    features: tuple[Projection, ...]
    description: str = ""
    owner: str = ""
    tags: tuple[tuple[str, str], ...] = ()

    def __init__(
        self,
        name: str,
        features: Sequence[FeatureView | OnDemandFeatureView | Projection],
        *,
        description: str = "",
        owner: str = "",
        tags: Mapping[str, str] | None = None,
    ) -> None:
        check_name(name, "feature service")
        projections = []
        for item in features:
            if isinstance(item, FeatureView | OnDemandFeatureView):
                projections.append(Projection(item, item.feature_names))
            elif isinstance(item, Projection):
                projections.append(item)
            else:
                raise InvalidInput(
                    f"feature service {name}: {item!r} is not a feature view or a projection of one"
                )
        if not projections:
            raise InvalidInput(f"feature service {name}: it lists no features")
        refs = [r for p in projections for r in p.refs]
        if len(set(refs)) != len(refs):
            raise InvalidInput(f"feature service {name}: a feature is listed twice: {', '.join(refs)}")
        for attr, value in (
            ("name", name),
            ("features", tuple(projections)),
            ("description", description),
            ("owner", owner),
            ("tags", _tags(tags, f"feature service {name}")),
        ):
            object.__setattr__(self, attr, value)

    @property
    def refs(self) -> list[str]:
        return [r for p in self.features for r in p.refs]

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "features": self.refs,
            "description": self.description,
            "owner": self.owner,
            "tags": dict(self.tags),
        }


Definition = Entity | FeatureView | OnDemandFeatureView | FeatureService


def unknown_feature(view: str, name: str, known: Iterable[str]) -> InvalidInput:
    """The error for ``view:name`` that does not exist, with the close matches among ``known``."""
    import difflib

    known = list(known)
    close = difflib.get_close_matches(name, known, n=3)
    hint = (
        f"; did you mean {', '.join(f'{view}:{c}' for c in close)}?"
        if close
        else f"; it has: {', '.join(known[:20])}"
    )
    return InvalidInput(f"feature view {view} has no feature {name!r}{hint}")
