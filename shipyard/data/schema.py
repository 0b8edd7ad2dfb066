"""Dataset schemas: infer one from training statistics, keep it as YAML, validate new data against it.

A :class:`Schema` is a pydantic model with ``extra="forbid"``: a YAML file with a misspelt field is rejected
with the file and the field named. :func:`infer_schema` derives one from :class:`DatasetStatistics`;
:func:`validate` compares new data with it and returns :class:`Anomaly` records.

Anomaly kinds and their default severities (override per column, or for all columns at the schema level,
with ``severity: {kind: error|warning}``):

=================== ========= ==========================================================================
kind                severity  when
=================== ========= ==========================================================================
missing_column      error     a ``required`` column is absent
new_column          warning   a column the schema does not know (schema-level override only)
type_change         error     the column's type differs (int data in a float column, and float data
                              whose values are all whole numbers in an int column, are accepted)
out_of_range        warning   finite values outside [min, max]: a warning below 1% of rows
                    / error   (:data:`OUT_OF_RANGE_ERROR_FRACTION`), an error from there on
unseen_category     error     the fraction of non-null values not in ``categories`` exceeds
                              ``unseen_category_threshold`` (default 0.01: a rare typo is tolerated,
                              a new category of real weight is not; set 0.0 to flag any unseen value)
null_rate           error     nulls in a non-nullable column, or a null fraction above
                              ``max_null_fraction``
non_finite          error     ±inf in a numeric column
=================== ========= ==========================================================================

:func:`infer_schema` marks out-of-range as a warning for the whole schema (the inferred min/max are the
training sample's extremes, which ordinary new data crosses), and sets ``max_null_fraction`` to ``min(1,
max(2p, p + 0.05))`` for a training null fraction ``p > 0`` (so a column with 10% nulls tolerates up to
20%); a column with no training nulls is not nullable. Given only statistics (no data), :func:`validate`
bounds what it cannot count: out-of-range is judged from the new min/max (severity error, as the fraction is
unknown) and unseen categories from the new data's top values (exact when the column has at most 20 distinct
values, a lower bound otherwise).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shipyard.data.statistics import (
    CATEGORY_LIMIT,
    ColumnData,
    ColumnStatistics,
    ColumnType,
    DatasetStatistics,
    load_columns,
    statistics_from_columns,
)
from shipyard.errors import InvalidInput

OUT_OF_RANGE_ERROR_FRACTION = 0.01
DEFAULT_UNSEEN_CATEGORY_THRESHOLD = 0.01


class AnomalyKind(StrEnum):
    """What is wrong with a column of new data."""

    MISSING_COLUMN = "missing_column"
    NEW_COLUMN = "new_column"
    TYPE_CHANGE = "type_change"
    OUT_OF_RANGE = "out_of_range"
    UNSEEN_CATEGORY = "unseen_category"
    NULL_RATE = "null_rate"
    NON_FINITE = "non_finite"


class Severity(StrEnum):
    """An ``error`` makes :attr:`ValidationResult.ok` false; a ``warning`` does not."""

    ERROR = "error"
    WARNING = "warning"


class ColumnSchema(BaseModel):
    """What one column is expected to look like."""

    model_config = ConfigDict(extra="forbid")

    type: ColumnType
    required: bool = True
    nullable: bool = False
    max_null_fraction: float | None = Field(default=None, ge=0.0, le=1.0)
    min: float | None = None
    max: float | None = None
    categories: list[str] | None = None
    unseen_category_threshold: float = Field(default=DEFAULT_UNSEEN_CATEGORY_THRESHOLD, ge=0.0, le=1.0)
    severity: dict[AnomalyKind, Severity] = Field(default_factory=dict)


class Schema(BaseModel):
    """A versioned set of column schemas; ``severity`` overrides apply to every column."""

    model_config = ConfigDict(extra="forbid")

    version: int = Field(default=1, ge=1)
    columns: dict[str, ColumnSchema]
    severity: dict[AnomalyKind, Severity] = Field(default_factory=dict)

    def to_yaml(self) -> str:
        """YAML text that :meth:`from_yaml` reads back to an equal schema."""
        # NOTE: defaults are left out to keep the file short, but the version is always written.
        body = self.model_dump(mode="json", exclude_defaults=True)
        return yaml.safe_dump({"version": self.version, **body}, sort_keys=False)

    @classmethod
    def from_yaml(cls, text: str, *, source: str = "<schema>") -> Schema:
        """Parse YAML text; errors raise InvalidInput naming ``source`` and the field."""
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise InvalidInput(f"{source}: not valid YAML: {exc}") from exc
        if not isinstance(data, dict):
            raise InvalidInput(f"{source}: expected a mapping with 'version' and 'columns'")
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            problems = []
            for err in exc.errors():
                where = ".".join(str(part) for part in err["loc"]) or "(top level)"
                message = err["msg"][:1].lower() + err["msg"][1:]
                problems.append(f"{source}: {where}: {message}")
            raise InvalidInput("\n".join(problems)) from exc

    @classmethod
    def load(cls, path: str | Path) -> Schema:
        """Read a schema YAML file."""
        path = Path(path)
        try:
            text = path.read_text()
        except OSError as exc:
            raise InvalidInput(f"{path}: cannot read schema: {exc.strerror}") from exc
        return cls.from_yaml(text, source=str(path))


@dataclass(frozen=True)
class Anomaly:
    """One finding: ``expected`` and ``actual`` are JSON-safe values (numbers, strings, lists)."""

    column: str
    kind: AnomalyKind
    expected: Any
    actual: Any
    severity: Severity
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "column": self.column,
            "kind": self.kind.value,
            "expected": self.expected,
            "actual": self.actual,
            "severity": self.severity.value,
            "message": self.message,
        }


@dataclass(frozen=True)
class ValidationResult:
    """Anomalies of new data against a schema, and the statistics computed on the way."""

    anomalies: tuple[Anomaly, ...]
    statistics: DatasetStatistics | None = field(default=None, compare=False)

    @property
    def ok(self) -> bool:
        """True when no anomaly has severity ``error``."""
        return all(a.severity is Severity.WARNING for a in self.anomalies)

    def to_dict(self) -> dict[str, Any]:
        """``{"ok": …, "anomalies": [...]}`` (statistics left out; they have their own ``to_dict``)."""
        return {"ok": self.ok, "anomalies": [a.to_dict() for a in self.anomalies]}


def infer_schema(stats: DatasetStatistics) -> Schema:
    """A schema that the training data behind ``stats`` satisfies.

    Every column is required; nullable iff it had nulls (with ``max_null_fraction`` as in the module
    docstring); numeric columns get the training min/max, and values outside it are warnings (schema-level
    ``severity: {out_of_range: warning}``; remove it or set ``error`` for limits you stand by); string
    columns with at most 50 distinct values get their categories.
    """
    columns: dict[str, ColumnSchema] = {}
    for name, col in stats.columns.items():
        fraction = col.null_fraction
        nullable = col.missing > 0
        spec: dict[str, Any] = {"type": col.type, "nullable": nullable}
        if nullable:
            spec["max_null_fraction"] = min(1.0, max(2 * fraction, fraction + 0.05))
        if col.type in ("int", "float") and col.min is not None:
            spec["min"], spec["max"] = float(col.min), float(col.max)  # type: ignore[arg-type]
        if col.type == "string" and col.all_values is not None and len(col.all_values) <= CATEGORY_LIMIT:
            spec["categories"] = sorted(str(v) for v, _ in col.all_values)
        columns[name] = ColumnSchema(**spec)
    # The training extremes are not limits anyone chose: new data from the same distribution crosses them in
    # a few rows (TFDV infers no ranges at all), so crossing them warns unless the user sets it to error.
    return Schema(columns=columns, severity={AnomalyKind.OUT_OF_RANGE: Severity.WARNING})


def validate(
    data: pd.DataFrame | pa.Table | str | Path | DatasetStatistics, schema: Schema
) -> ValidationResult:
    """Check new data (or only its statistics) against ``schema``; see the module docstring for the rules."""
    columns: Mapping[str, ColumnData] | None = None
    if isinstance(data, DatasetStatistics):
        stats = data
    else:
        rows, columns = load_columns(data)
        stats = statistics_from_columns(rows, columns)
    anomalies: list[Anomaly] = []
    for name, spec in schema.columns.items():
        col = stats.columns.get(name)
        if col is None:
            if spec.required:
                anomalies.append(
                    _anomaly(
                        schema,
                        spec,
                        name,
                        AnomalyKind.MISSING_COLUMN,
                        "present",
                        "absent",
                        f"column {name!r} is missing",
                    )
                )
            continue
        column = columns.get(name) if columns is not None else None
        anomalies.extend(_check_column(schema, spec, col, column))
    for name in stats.columns:
        if name not in schema.columns:
            anomalies.append(
                _anomaly(
                    schema,
                    None,
                    name,
                    AnomalyKind.NEW_COLUMN,
                    "absent",
                    stats.columns[name].type,
                    f"column {name!r} is not in the schema",
                )
            )
    return ValidationResult(tuple(anomalies), stats)


def _check_column(
    schema: Schema, spec: ColumnSchema, col: ColumnStatistics, column: ColumnData | None
) -> list[Anomaly]:
    name = col.name
    found: list[Anomaly] = []

    def add(
        kind: AnomalyKind, expected: Any, actual: Any, message: str, severity: Severity | None = None
    ) -> None:
        found.append(_anomaly(schema, spec, name, kind, expected, actual, message, severity))

    all_null = col.count > 0 and col.missing == col.count
    if col.type != spec.type and not all_null and not _compatible(spec.type, col, column):
        add(
            AnomalyKind.TYPE_CHANGE,
            spec.type,
            col.type,
            f"column {name!r} is {col.type}, expected {spec.type}",
        )
        return found  # range and category checks would compare unlike values
    if col.missing and col.count:
        fraction = col.null_fraction
        if not spec.nullable:
            add(
                AnomalyKind.NULL_RATE,
                0.0,
                fraction,
                f"column {name!r} is not nullable but has {col.missing} nulls",
            )
        elif spec.max_null_fraction is not None and fraction > spec.max_null_fraction:
            add(
                AnomalyKind.NULL_RATE,
                spec.max_null_fraction,
                fraction,
                f"column {name!r} null fraction {fraction:.4g} exceeds {spec.max_null_fraction:.4g}",
            )
    if col.non_finite:
        add(
            AnomalyKind.NON_FINITE, 0, col.non_finite, f"column {name!r} has {col.non_finite} infinite values"
        )
    if (spec.min is not None or spec.max is not None) and col.min is not None:
        found.extend(_check_range(schema, spec, col, column))
    if spec.categories is not None and col.type == "string":
        found.extend(_check_categories(schema, spec, col, column))
    return found


def _compatible(expected: ColumnType, col: ColumnStatistics, column: ColumnData | None) -> bool:
    """int data fits a float column; float data fits an int column when every finite value is whole."""
    if expected == "float" and col.type == "int":
        return True
    if expected == "int" and col.type == "float":
        if column is None or isinstance(column, pd.Series):
            return False
        values = _finite_values(column)
        return bool(np.all(values == np.round(values)))
    return False


def _check_range(
    schema: Schema, spec: ColumnSchema, col: ColumnStatistics, column: ColumnData | None
) -> list[Anomaly]:
    low = -np.inf if spec.min is None else spec.min
    high = np.inf if spec.max is None else spec.max
    expected = [spec.min, spec.max]
    if column is None or isinstance(column, pd.Series):
        if col.min >= low and col.max <= high:  # type: ignore[operator]
            return []
        actual = [col.min, col.max]
        return [
            _anomaly(
                schema,
                spec,
                col.name,
                AnomalyKind.OUT_OF_RANGE,
                expected,
                actual,
                f"column {col.name!r} range [{col.min}, {col.max}] exceeds [{spec.min}, {spec.max}]",
            )
        ]
    values = _finite_values(column)
    outside = int(np.count_nonzero((values < low) | (values > high)))
    if not outside:
        return []
    fraction = outside / col.count
    severity = Severity.WARNING if fraction < OUT_OF_RANGE_ERROR_FRACTION else Severity.ERROR
    message = (
        f"column {col.name!r}: {outside} values ({fraction:.2%}) outside [{spec.min}, {spec.max}]"
        f" (seen [{col.min}, {col.max}])"
    )
    return [_anomaly(schema, spec, col.name, AnomalyKind.OUT_OF_RANGE, expected, outside, message, severity)]


def _check_categories(
    schema: Schema, spec: ColumnSchema, col: ColumnStatistics, column: ColumnData | None
) -> list[Anomaly]:
    known = set(spec.categories or ())
    present = col.count - col.missing
    if not present:
        return []
    if column is None or isinstance(column, pd.Series):
        pairs = col.all_values or col.top_values or ()
        unseen_values = [v for v, _ in pairs if v not in known]
        unseen = sum(c for v, c in pairs if v not in known)
    else:
        column = column.dictionary_decode() if pa.types.is_dictionary(column.type) else column
        mask = pc.invert(pc.is_in(column, value_set=pa.array(sorted(known), type=column.type)))
        mask = pc.fill_null(mask, False)
        unseen = int(pc.sum(mask).as_py() or 0)
        unseen_values = sorted(set(pc.filter(column, mask).unique().to_pylist()))
    fraction = unseen / present
    if fraction <= spec.unseen_category_threshold:
        return []
    shown = ", ".join(repr(v) for v in unseen_values[:10]) + (" …" if len(unseen_values) > 10 else "")
    message = (
        f"column {col.name!r}: {fraction:.2%} of values are unseen categories"
        f" (threshold {spec.unseen_category_threshold:.2%}): {shown}"
    )
    return [
        _anomaly(
            schema,
            spec,
            col.name,
            AnomalyKind.UNSEEN_CATEGORY,
            spec.unseen_category_threshold,
            fraction,
            message,
        )
    ]


def _finite_values(column: pa.Array) -> np.ndarray:
    values = column.drop_null().to_numpy(zero_copy_only=False).astype(np.float64, copy=False)
    return values[np.isfinite(values)]


_DEFAULT_SEVERITY = {
    AnomalyKind.MISSING_COLUMN: Severity.ERROR,
    AnomalyKind.NEW_COLUMN: Severity.WARNING,
    AnomalyKind.TYPE_CHANGE: Severity.ERROR,
    AnomalyKind.OUT_OF_RANGE: Severity.ERROR,  # with data: warning below OUT_OF_RANGE_ERROR_FRACTION
    AnomalyKind.UNSEEN_CATEGORY: Severity.ERROR,
    AnomalyKind.NULL_RATE: Severity.ERROR,
    AnomalyKind.NON_FINITE: Severity.ERROR,
}


def _anomaly(
    schema: Schema,
    spec: ColumnSchema | None,
    column: str,
    kind: AnomalyKind,
    expected: Any,
    actual: Any,
    message: str,
    severity: Severity | None = None,
) -> Anomaly:
    """Build an anomaly; a column override beats a schema override beats the computed/default severity."""
    chosen = (spec.severity.get(kind) if spec else None) or schema.severity.get(kind)
    chosen = chosen or severity or _DEFAULT_SEVERITY[kind]
    return Anomaly(column, kind, expected, actual, chosen, message)
