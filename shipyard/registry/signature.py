"""Model signatures: what a model takes and returns, inferred from examples and enforced on requests.

A :class:`Signature` describes a model's input either as named columns (``kind="dataframe"``) or as one
unnamed n-d array (``kind="tensor"``), plus optionally its output. :func:`infer_signature` derives one from
examples; :func:`enforce` checks a request against it and returns the data converted to what the model
expects, refusing every conversion that could change a value. Pure logic, no I/O: the package layer stores
``Signature.to_dict()`` in MODEL.yaml.

Column types are named by canonical strings (:data:`DTYPES`): ``bool``, ``int8``…``int64``,
``uint8``…``uint64``, ``float16``/``32``/``64``, ``string``, ``datetime64[ns]`` and ``object`` (raw bytes).

What :func:`enforce` converts (anything else raises :class:`~shipyard.errors.InvalidInput` naming the
column, the expected dtype, the offending value and its row):

- int → any int type whose range holds every value (so JSON's int64 fits an ``int32`` column);
- int → float when every value is exact there (``|v| <= 2**53`` for float64, ``2**24`` for float32);
- float → wider float; float → narrower float only when every value is exactly representable;
- float → int only for whole numbers; NaN counts as a missing value there;
- bool, string and bytes stay what they are; ISO 8601 strings parse into ``datetime64[ns]`` columns;
- Python lists (JSON) are literals: their floats round to the column's float width (overflow is refused),
  while numpy arrays are typed, so a float64 array is not silently rounded to float32.

Missing values (None, NaN, NA, NaT) are refused unless the spec is ``nullable``; float columns always take
NaN. Nullable int and bool columns come back as pandas ``Int64``/``boolean``.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import numpy as np
import pandas as pd

from shipyard.errors import InvalidInput
from shipyard.registry.casting import DATETIME as _DATETIME
from shipyard.registry.casting import FLOAT_DTYPES as _FLOAT_DTYPES
from shipyard.registry.casting import INT_DTYPES as _INT_DTYPES
from shipyard.registry.casting import conform, is_missing, mask_or_none

DTYPES: tuple[str, ...] = ("bool", *_INT_DTYPES, *_FLOAT_DTYPES, "string", _DATETIME, "object")
"""Every dtype name a :class:`ColumnSpec` may carry. ``object`` holds raw bytes."""

# The string dtype pandas uses by default: ``str`` (NaN-missing StringDtype) on pandas 3, object before.
_STR_DTYPE = pd.Series([], dtype="str").dtype


class SignatureKind(StrEnum):
    """How a model takes its input: named columns, or one n-d array whose first dimension is the batch."""

    DATAFRAME = "dataframe"
    TENSOR = "tensor"


@dataclass(frozen=True)
class ColumnSpec:
    """One input or output column (dataframe kind) or the one tensor (tensor kind).

    Attributes:
        name: column name; None for a tensor.
        dtype: one of :data:`DTYPES`.
        shape: a tensor's shape, ``-1`` for a dimension of any length (the first one is the batch); None for
            a column, which holds one value per row.
        nullable: the column may hold missing values. Float columns always accept NaN, whatever this says.
    """

    name: str | None
    dtype: str
    shape: tuple[int, ...] | None = None
    nullable: bool = False

    def __post_init__(self) -> None:
        _check_name(self.name, "ColumnSpec.name")
        _check_dtype(self.dtype, "ColumnSpec.dtype")
        object.__setattr__(self, "shape", _check_shape(self.shape, "ColumnSpec.shape"))
        _check_bool(self.nullable, "ColumnSpec.nullable")

    def to_dict(self) -> dict[str, Any]:
        """A JSON/YAML-safe dict; ``shape`` and ``nullable`` appear only when set."""
        out: dict[str, Any] = {"name": self.name, "dtype": self.dtype}
        if self.shape is not None:
            out["shape"] = list(self.shape)
        if self.nullable:
            out["nullable"] = True
        return out

    @classmethod
    def from_dict(cls, d: Any, *, where: str = "column") -> ColumnSpec:
        """Parse :meth:`to_dict` output; ``where`` prefixes error messages (``inputs[2]``)."""
        if not isinstance(d, Mapping):
            raise InvalidInput(f"{where}: expected a mapping, got {type(d).__name__}")
        _check_keys(d, {"name", "dtype", "shape", "nullable"}, where)
        if "dtype" not in d:
            raise InvalidInput(f"{where}.dtype: required field is missing")
        name, dtype = d.get("name"), d["dtype"]
        nullable = d.get("nullable", False)
        _check_name(name, f"{where}.name")
        _check_dtype(dtype, f"{where}.dtype")
        shape = _check_shape(d.get("shape"), f"{where}.shape")
        _check_bool(nullable, f"{where}.nullable")
        return cls(name, dtype, shape, nullable)


@dataclass(frozen=True)
class Signature:
    """A model's input and (optionally) output specs.

    ``kind`` describes the input. Dataframe kind: one or more uniquely named columns without shape. Tensor
    kind: exactly one unnamed spec with a shape whose first dimension is ``-1`` (the batch), not nullable.
    Outputs follow the same rules, their kind read from the specs (see :attr:`output_kind`).
    Construction validates all of this and raises `InvalidInput` naming the field.
    """

    inputs: tuple[ColumnSpec, ...]
    outputs: tuple[ColumnSpec, ...] = ()
    kind: SignatureKind = SignatureKind.DATAFRAME

    def __post_init__(self) -> None:
        try:
            kind = SignatureKind(self.kind)
        except ValueError:
            raise InvalidInput(
                f"kind: unknown signature kind {self.kind!r} (expected: dataframe, tensor)"
            ) from None
        object.__setattr__(self, "kind", kind)
        object.__setattr__(self, "inputs", _check_specs(self.inputs, kind, "inputs"))
        if not self.inputs:
            raise InvalidInput("inputs: a signature needs at least one input")
        outputs = _as_spec_tuple(self.outputs, "outputs")
        object.__setattr__(self, "outputs", _check_specs(outputs, _kind_of(outputs), "outputs"))

    @functools.cached_property
    def input_names(self) -> tuple[str, ...]:
        """The input column names, in order (a tensor signature's one spec has none: ``("",)``)."""
        return tuple(spec.name or "" for spec in self.inputs)

    @property
    def output_kind(self) -> SignatureKind | None:
        """Tensor when the output is one unnamed spec, dataframe when it is named columns, None if unknown."""
        return _kind_of(self.outputs) if self.outputs else None

    def to_dict(self) -> dict[str, Any]:
        """A JSON/YAML-safe dict: ``{"kind": ..., "inputs": [...], "outputs": [...]}``."""
        return {
            "kind": self.kind.value,
            "inputs": [spec.to_dict() for spec in self.inputs],
            "outputs": [spec.to_dict() for spec in self.outputs],
        }

    @classmethod
    def from_dict(cls, d: Any) -> Signature:
        """Parse :meth:`to_dict` output. Raises `InvalidInput` naming the bad field (``inputs[1].dtype``)."""
        if not isinstance(d, Mapping):
            raise InvalidInput(f"signature: expected a mapping, got {type(d).__name__}")
        _check_keys(d, {"kind", "inputs", "outputs"}, "signature")
        for required in ("kind", "inputs"):
            if required not in d:
                raise InvalidInput(f"{required}: required field is missing")
        specs: dict[str, tuple[ColumnSpec, ...]] = {}
        for field in ("inputs", "outputs"):
            items = d.get(field, [])
            if not isinstance(items, list | tuple):
                raise InvalidInput(f"{field}: expected a list, got {type(items).__name__}")
            specs[field] = tuple(
                ColumnSpec.from_dict(item, where=f"{field}[{i}]") for i, item in enumerate(items)
            )
        if not isinstance(d["kind"], str):
            raise InvalidInput(f"kind: expected a string, got {type(d['kind']).__name__}")
        return cls(specs["inputs"], specs["outputs"], d["kind"])  # type: ignore[arg-type]


# -- validation of specs ------------------------------------------------------------------------------------


def _check_keys(d: Mapping[Any, Any], allowed: set[str], where: str) -> None:
    unknown = [k for k in d if k not in allowed]
    if unknown:
        raise InvalidInput(f"{where}: unknown field {unknown[0]!r} (allowed: {', '.join(sorted(allowed))})")


def _check_name(name: Any, where: str) -> None:
    if name is not None and (not isinstance(name, str) or not name):
        raise InvalidInput(f"{where}: expected a non-empty string or null, got {name!r}")


def _check_dtype(dtype: Any, where: str) -> None:
    if not isinstance(dtype, str) or dtype not in DTYPES:
        raise InvalidInput(f"{where}: unknown dtype {dtype!r} (expected one of: {', '.join(DTYPES)})")


def _check_bool(value: Any, where: str) -> None:
    if not isinstance(value, bool):
        raise InvalidInput(f"{where}: expected true or false, got {value!r}")


def _check_shape(shape: Any, where: str) -> tuple[int, ...] | None:
    if shape is None:
        return None
    if not isinstance(shape, list | tuple) or not all(
        isinstance(n, int) and not isinstance(n, bool) and n >= -1 for n in shape
    ):
        raise InvalidInput(f"{where}: expected a list of dimension lengths (-1 = any), got {shape!r}")
    return tuple(shape)


def _as_spec_tuple(specs: Any, field: str) -> tuple[ColumnSpec, ...]:
    if not isinstance(specs, list | tuple):
        raise InvalidInput(f"{field}: expected a tuple of ColumnSpec, got {type(specs).__name__}")
    for i, spec in enumerate(specs):
        if not isinstance(spec, ColumnSpec):
            raise InvalidInput(f"{field}[{i}]: expected a ColumnSpec, got {type(spec).__name__}")
    return tuple(specs)


def _kind_of(specs: tuple[ColumnSpec, ...]) -> SignatureKind:
    return SignatureKind.TENSOR if len(specs) == 1 and specs[0].name is None else SignatureKind.DATAFRAME


def _check_specs(specs: Any, kind: SignatureKind, field: str) -> tuple[ColumnSpec, ...]:
    specs = _as_spec_tuple(specs, field)
    if kind is SignatureKind.TENSOR:
        if len(specs) != 1:
            raise InvalidInput(f"{field}: a tensor signature has exactly one spec, got {len(specs)}")
        spec = specs[0]
        if spec.name is not None:
            raise InvalidInput(f"{field}[0].name: a tensor is unnamed, got {spec.name!r}")
        if not spec.shape or spec.shape[0] != -1:
            raise InvalidInput(
                f"{field}[0].shape: a tensor needs a shape whose first dimension (the batch) is -1, "
                f"got {spec.shape!r}"
            )
        if spec.nullable:
            raise InvalidInput(f"{field}[0].nullable: a tensor cannot hold missing values")
        return specs
    seen: set[str] = set()
    for i, spec in enumerate(specs):
        if spec.name is None:
            raise InvalidInput(f"{field}[{i}].name: a dataframe column needs a name")
        if spec.shape is not None:
            raise InvalidInput(
                f"{field}[{i}].shape: column {spec.name!r} holds one value per row; shape must be null"
            )
        if spec.name in seen:
            raise InvalidInput(f"{field}[{i}].name: duplicate column {spec.name!r}")
        seen.add(spec.name)
    return specs


# -- inference ----------------------------------------------------------------------------------------------


def infer_signature(input_example: Any, output_example: Any = None) -> Signature:
    """Infer a signature from an input example and, optionally, the model's output for it.

    DataFrame, Series, dict of columns and list of records give dataframe kind (pandas extension types map
    to their canonical dtype: string and object-of-str → ``string``, ``Int64`` → nullable ``int64``,
    category → its categories' dtype); an ndarray or nested list gives tensor kind with shape
    ``(-1, *rest)``. Non-float columns with missing values in the example are marked nullable.

    Raises:
        InvalidInput: an unsupported example or column type, naming the column.
    """
    kind, inputs = _infer_specs(input_example, "input example")
    _enforce_specs(kind, inputs, input_example)  # NOTE: guarantees an example always passes its own signature
    outputs: tuple[ColumnSpec, ...] = ()
    if output_example is not None:
        out_kind, outputs = _infer_specs(output_example, "output example")
        _enforce_specs(out_kind, outputs, output_example)
    return Signature(inputs, outputs, kind)


def _infer_specs(example: Any, what: str) -> tuple[SignatureKind, tuple[ColumnSpec, ...]]:
    if isinstance(example, pd.DataFrame):
        names = [str(c) for c in example.columns]
        if not names:
            raise InvalidInput(f"{what}: the DataFrame has no columns")
        _check_unique(names, what)
        columns = {name: example.iloc[:, j] for j, name in enumerate(names)}
    elif isinstance(example, pd.Series):
        columns = {_series_name(example): example}
    elif isinstance(example, Mapping):
        columns = _columns_of_dict(example, None)
        if not columns:
            raise InvalidInput(f"{what}: the dict has no columns")
    elif isinstance(example, list | tuple) and example and all(isinstance(r, Mapping) for r in example):
        names = list(dict.fromkeys(str(k) for record in example for k in record))
        columns = _columns_of_records(example, names)
    elif isinstance(example, np.ndarray | list | tuple):
        array = example if isinstance(example, np.ndarray) else _literal_array(example, what)
        if array.ndim == 0:
            raise InvalidInput(f"{what}: a tensor example needs at least one dimension (the batch)")
        dtype, has_missing = _infer_array_dtype(array.ravel(), None, what)
        if has_missing and dtype not in _FLOAT_DTYPES:
            raise InvalidInput(f"{what}: a tensor cannot hold missing values (only float NaN)")
        return SignatureKind.TENSOR, (ColumnSpec(None, dtype, (-1, *array.shape[1:])),)
    else:
        raise InvalidInput(
            f"{what}: cannot infer a signature from {type(example).__name__}; pass a DataFrame, Series, "
            "ndarray, dict of columns or list of records"
        )
    specs = tuple(_infer_column(name, values) for name, values in columns.items())
    return SignatureKind.DATAFRAME, specs


def _infer_column(name: str, values: pd.Series | np.ndarray) -> ColumnSpec:
    where = f"column {name!r}"
    if isinstance(values, pd.Series) and isinstance(values.dtype, pd.StringDtype):
        return ColumnSpec(name, "string", nullable=bool(values.isna().any()))
    array, mask = _series_values(values, where) if isinstance(values, pd.Series) else (values, None)
    dtype, has_missing = _infer_array_dtype(array, mask, where)
    masked_type = isinstance(values, pd.Series) and _is_masked_int_or_bool(values.dtype)
    return ColumnSpec(name, dtype, nullable=dtype not in _FLOAT_DTYPES and (masked_type or has_missing))


def _is_masked_int_or_bool(dtype: Any) -> bool:
    numpy_dtype = getattr(dtype, "numpy_dtype", None)
    return not isinstance(dtype, np.dtype) and numpy_dtype is not None and np.dtype(numpy_dtype).kind in "biu"


def _infer_array_dtype(flat: np.ndarray, mask: np.ndarray | None, where: str) -> tuple[str, bool]:
    """The canonical dtype of 1-D (or raveled) values and whether any is missing."""
    if flat.dtype.kind != "O":
        has_missing = bool(mask is not None and mask.any())
        if flat.dtype.kind == "M":
            has_missing = has_missing or bool(np.isnat(flat).any())
        return _canonical_numpy_dtype(flat.dtype, where), has_missing
    present = [
        v for i, v in enumerate(flat.ravel()) if not (mask is not None and mask[i]) and not is_missing(v)
    ]
    if not present:
        raise InvalidInput(f"{where}: no values to infer a type from (empty or all missing)")
    inferred = pd.api.types.infer_dtype(present, skipna=False)
    dtype = _OBJECT_KINDS.get(inferred)
    if dtype is None:
        types = sorted({type(v).__name__ for v in present})
        raise InvalidInput(f"{where}: unsupported or mixed value types ({', '.join(types[:5])})")
    return dtype, len(present) < flat.size


_OBJECT_KINDS = {
    "string": "string",
    "bytes": "object",
    "boolean": "bool",
    "integer": "int64",
    "floating": "float64",
    "mixed-integer-float": "float64",
    "datetime": _DATETIME,
    "datetime64": _DATETIME,
}


def _canonical_numpy_dtype(dtype: np.dtype, where: str) -> str:
    kind, bits = dtype.kind, dtype.itemsize * 8
    name = {"b": "bool", "i": f"int{bits}", "u": f"uint{bits}", "f": f"float{bits}", "M": _DATETIME}.get(kind)
    name = {"U": "string", "S": "object"}.get(kind, name)
    if name not in DTYPES:
        raise InvalidInput(f"{where}: unsupported dtype {dtype} (supported: {', '.join(DTYPES)})")
    return name  # type: ignore[return-value]


def _check_unique(names: list[str], what: str) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise InvalidInput(f"{what}: duplicate column {name!r}")
        seen.add(name)


def _series_name(series: pd.Series) -> str:
    return "0" if series.name is None else str(series.name)  # as series.to_frame() would name it


# -- enforcement: from user data to columns -----------------------------------------------------------------


def enforce(signature: Signature, data: Any) -> pd.DataFrame | np.ndarray:
    """Check ``data`` against ``signature.inputs`` and return it converted to what the model expects.

    Dataframe kind accepts a DataFrame, a Series, a dict of column lists/arrays, a list of records or a 2-D
    ndarray with one column per input (assigned in order). Columns not in the signature are dropped; the
    result's columns follow the signature's order and keep the input DataFrame's index. Tensor kind accepts
    an ndarray or a nested list; its rank and every fixed dimension must match. Values convert only as the
    module docstring lists; columns already of the right type keep their values and dtype.

    Raises:
        InvalidInput: a missing column, wrong shape or a value that cannot convert safely, naming the column
            (or tensor index), the expected dtype and the offending value.
    """
    return _enforce_specs(signature.kind, signature.inputs, data)


def _enforce_specs(
    kind: SignatureKind, specs: tuple[ColumnSpec, ...], data: Any
) -> pd.DataFrame | np.ndarray:
    if kind is SignatureKind.TENSOR:
        return _enforce_tensor(specs[0], data)
    return _enforce_frame(specs, data)


def _enforce_tensor(spec: ColumnSpec, data: Any) -> np.ndarray:
    if isinstance(data, np.ndarray):
        array = data
    elif isinstance(data, list | tuple):
        array = _literal_array(data, "tensor input")
    else:
        hint = " (use .to_numpy())" if isinstance(data, pd.DataFrame | pd.Series) else ""
        raise InvalidInput(
            f"tensor input: expected an ndarray or nested list, got {type(data).__name__}{hint}"
        )
    expected = spec.shape or ()
    if array.ndim != len(expected) or any(
        e not in (-1, a) for e, a in zip(expected, array.shape, strict=True)
    ):
        raise InvalidInput(f"tensor input: expected shape {expected}, got {array.shape}")

    def locate(i: int) -> str:
        return f"index {tuple(int(x) for x in np.unravel_index(i, array.shape))}"

    out, _ = conform(array.ravel(), None, spec, "tensor input", locate)
    return out.reshape(array.shape)


def _enforce_frame(specs: tuple[ColumnSpec, ...], data: Any) -> pd.DataFrame:
    names = [spec.name or "" for spec in specs]
    index: pd.Index | None = None
    if isinstance(data, pd.DataFrame):
        labels = [str(c) for c in data.columns]
        _check_unique([label for label in labels if label in names], "data")
        columns: dict[str, pd.Series | np.ndarray] = {
            n: data.iloc[:, j] for j, n in enumerate(labels) if n in names
        }
        index = data.index
    elif isinstance(data, pd.Series):
        columns, index = {_series_name(data): data}, data.index
    elif isinstance(data, Mapping):
        columns = _columns_of_dict(data, names)
    elif isinstance(data, list | tuple):
        for i, record in enumerate(data):
            if not isinstance(record, Mapping):
                raise InvalidInput(
                    f"data: expected a list of records (dicts), item {i} is {type(record).__name__}"
                )
        present = {str(k) for record in data for k in record}
        columns = _columns_of_records(data, [n for n in names if n in present or not data])
    elif isinstance(data, np.ndarray):
        if data.ndim != 2 or data.shape[1] != len(specs):
            raise InvalidInput(
                f"data: expected a 2-D array with {len(specs)} columns ({', '.join(names)}), "
                f"got shape {data.shape}"
            )
        block = _uniform_block(specs, data)
        if block is not None:
            return pd.DataFrame(block, columns=_column_index(tuple(names)).view(), copy=False)
        columns = {name: data[:, j] for j, name in enumerate(names)}
    else:
        raise InvalidInput(
            "data: expected a DataFrame, dict of columns, list of records or 2-D array, "
            f"got {type(data).__name__}"
        )
    missing = [n for n in names if n not in columns]
    if missing:
        quoted = ", ".join(repr(n) for n in missing)
        raise InvalidInput(
            f"missing column{'s' if len(missing) > 1 else ''} {quoted} (expected: {', '.join(names)})"
        )
    converted = [_enforce_column(spec, columns[spec.name or ""]) for spec in specs]
    dtypes = {c.dtype for c in converted if isinstance(c, np.ndarray)}
    if len(dtypes) == 1 and all(isinstance(c, np.ndarray) for c in converted) and dtypes.pop().kind in "biuf":
        # One 2-D block: building 30 Series and joining them cost ~10x the model's own single-row predict.
        result = pd.DataFrame(
            np.column_stack(converted), columns=_column_index(tuple(names)).view(), copy=False
        )
    else:
        result = pd.DataFrame(dict(zip(names, converted, strict=True)))
    if index is not None:
        result.index = index
    return result


@functools.lru_cache(maxsize=256)
def _column_index(names: tuple[str, ...]) -> pd.Index:
    """The columns' labels as an Index, made once per signature: building one from strings took ~40 µs, a
    fifth of a served predict. Each frame gets a view of it, so renaming one frame's axis renames no other."""
    return pd.Index(names)


def _uniform_block(specs: tuple[ColumnSpec, ...], data: np.ndarray) -> np.ndarray | None:
    """A numeric 2-D ``data`` converted as one block, when every column takes the same plain numeric dtype
    (a nullable integer or boolean column becomes a masked array: not plain); the same values and dtype the
    column-by-column check gives, at the cost of one column's check. None when the columns differ, or when
    a value does not convert: the column-by-column check then says which column holds it."""
    dtype = specs[0].dtype
    if data.dtype.kind not in "biuf" or any(spec.dtype != dtype for spec in specs):
        return None
    if dtype not in _FLOAT_DTYPES and (
        (dtype not in _INT_DTYPES and dtype != "bool") or any(spec.nullable for spec in specs)
    ):
        return None
    try:
        out, missing = conform(data.ravel(), None, specs[0], "data", str)
    except InvalidInput:
        return None
    if missing is not None:
        return None
    out = out.reshape(data.shape)
    # As the column-by-column check does, the model gets a copy, never the caller's own array.
    return out.copy() if np.may_share_memory(out, data) else out


def _columns_of_dict(data: Mapping[Any, Any], names: list[str] | None) -> dict[str, pd.Series | np.ndarray]:
    """Columns of a dict of lists/arrays (only those in ``names`` when given), all of one length."""
    columns: dict[str, pd.Series | np.ndarray] = {}
    for key, values in data.items():
        name = str(key)
        if names is not None and name not in names:
            continue
        if name in columns:
            raise InvalidInput(f"data: duplicate column {name!r}")
        if isinstance(values, pd.Series):
            columns[name] = values.reset_index(drop=True)
        elif isinstance(values, np.ndarray) and values.ndim == 1:
            columns[name] = values
        elif isinstance(values, list | tuple):
            columns[name] = np.fromiter(values, dtype=object, count=len(values))
        else:
            shape = f" of shape {values.shape}" if isinstance(values, np.ndarray) else ""
            raise InvalidInput(
                f"column {name!r}: expected a list or 1-D array of values, got {type(values).__name__}{shape}"
            )
    lengths = {name: len(values) for name, values in columns.items()}
    if len(set(lengths.values())) > 1:
        detail = ", ".join(f"{name!r} has {n}" for name, n in lengths.items())
        raise InvalidInput(f"data: columns have different lengths ({detail})")
    return columns


def _columns_of_records(records: Sequence[Mapping[Any, Any]], names: list[str]) -> dict[str, np.ndarray]:
    """One object column per name; a record without the key holds a missing value there."""
    columns: dict[str, np.ndarray] = {}
    keyed = [{str(k): v for k, v in record.items()} for record in records]
    for name in names:
        columns[name] = np.fromiter((r.get(name) for r in keyed), dtype=object, count=len(keyed))
    return columns


def _literal_array(data: Sequence[Any], where: str) -> np.ndarray:
    """A nested list as an object array, so its Python values are checked one by one, not coerced."""
    try:
        array = np.asarray(data, dtype=object)
    except (ValueError, TypeError) as exc:  # inhomogeneous nesting numpy cannot place
        raise InvalidInput(f"{where}: ragged nested list ({exc})") from exc
    if any(isinstance(v, list | tuple | np.ndarray) for v in array.ravel()):
        raise InvalidInput(f"{where}: ragged nested list (rows of different lengths)")
    return array


def _series_values(series: pd.Series, where: str) -> tuple[np.ndarray, np.ndarray | None]:
    """A Series as a numpy array plus a mask of missing entries (None when the array holds them itself)."""
    dtype = series.dtype
    if isinstance(dtype, np.dtype):
        return series.to_numpy(), None
    if isinstance(dtype, pd.DatetimeTZDtype) or getattr(getattr(dtype, "pyarrow_dtype", None), "tz", None):
        raise InvalidInput(
            f"{where}: timezone-aware datetimes ({dtype}) are not supported; "
            "convert to naive UTC first (series.dt.tz_convert(None))"
        )
    mask = series.isna().to_numpy(dtype=bool)
    numpy_dtype = getattr(dtype, "numpy_dtype", None)
    if not isinstance(dtype, pd.CategoricalDtype | pd.StringDtype) and numpy_dtype is not None:
        numpy_dtype = np.dtype(numpy_dtype)
        fill = _FILL.get(numpy_dtype.kind)
        if fill is not None:
            values = series.to_numpy(dtype=numpy_dtype, na_value=fill)
            return values, (mask if mask.any() else None)
    return series.to_numpy(dtype=object, na_value=None), mask


_FILL: dict[str, Any] = {"b": False, "i": 0, "u": 0, "f": np.nan, "M": np.datetime64("NaT")}


def _enforce_column(spec: ColumnSpec, source: pd.Series | np.ndarray) -> pd.Series | np.ndarray:
    """The column converted to ``spec``: a plain numpy array when numpy can hold it, else a Series."""
    where = f"column {spec.name!r}"
    is_series = isinstance(source, pd.Series)
    values, mask = _series_values(source, where) if is_series else (source, None)
    out, missing = conform(values, mask, spec, where, lambda i: f"row {i}")
    if spec.dtype == "string":
        if is_series and (source.dtype == object or isinstance(source.dtype, pd.StringDtype)):
            return source.reset_index(drop=True)  # already strings (checked): pass through untouched
        return pd.Series(out.astype(object), dtype=_STR_DTYPE)
    if spec.nullable and spec.dtype in _INT_DTYPES:
        return pd.Series(pd.arrays.IntegerArray(out, mask_or_none(missing, out), copy=True))
    if spec.nullable and spec.dtype == "bool":
        return pd.Series(pd.arrays.BooleanArray(out, mask_or_none(missing, out), copy=True))
    if spec.dtype == "object":
        return pd.Series(out, dtype=object)
    return out


__all__ = ["DTYPES", "ColumnSpec", "Signature", "SignatureKind", "enforce", "infer_signature"]
