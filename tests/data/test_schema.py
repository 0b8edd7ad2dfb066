"""infer_schema, the schema's YAML form, and validate's anomaly kinds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from shipyard.data.schema import (
    AnomalyKind,
    ColumnSchema,
    Schema,
    Severity,
    infer_schema,
    validate,
)
from shipyard.data.statistics import compute_statistics
from shipyard.errors import InvalidInput


@pytest.fixture
def training() -> pd.DataFrame:
    rng = np.random.default_rng(7)
    n = 1000
    age = rng.integers(18, 90, n).astype(float)
    age[:100] = np.nan  # 10% nulls
    return pd.DataFrame(
        {
            "age": age,
            "income": rng.normal(50_000, 10_000, n),
            "visits": rng.integers(0, 20, n),
            "city": rng.choice(["paris", "rome", "oslo"], n),
            "user": [f"u{i}" for i in range(n)],
        }
    )


def _kinds(result) -> dict[tuple[str, AnomalyKind], object]:
    return {(a.column, a.kind): a for a in result.anomalies}


def test_infer_schema_from_known_frame(training: pd.DataFrame) -> None:
    schema = infer_schema(compute_statistics(training))
    assert schema.version == 1
    age = schema.columns["age"]
    assert (age.type, age.nullable, age.required) == ("float", True, True)
    assert age.max_null_fraction == pytest.approx(0.2)  # max(2 * 0.1, 0.1 + 0.05)
    assert (age.min, age.max) == (training["age"].min(), training["age"].max())
    visits = schema.columns["visits"]
    assert (visits.type, visits.nullable, visits.max_null_fraction) == ("int", False, None)
    assert schema.columns["city"].categories == ["oslo", "paris", "rome"]
    assert schema.columns["user"].categories is None  # 1000 distinct values: not a category
    assert schema.columns["city"].unseen_category_threshold == 0.01


def test_yaml_round_trip(training: pd.DataFrame, tmp_path: Path) -> None:
    schema = infer_schema(compute_statistics(training))
    schema.columns["city"].severity[AnomalyKind.UNSEEN_CATEGORY] = Severity.WARNING
    text = schema.to_yaml()
    assert "unseen_category: warning" in text
    assert text.startswith("version: 1\n")
    assert Schema.from_yaml(text, source="schema.yaml") == schema
    path = tmp_path / "schema.yaml"
    path.write_text(text)
    assert Schema.load(path) == schema


def test_unknown_field_is_rejected_naming_file_and_field() -> None:
    text = "version: 1\ncolumns:\n  age:\n    type: int\n    colour: red\n"
    with pytest.raises(
        InvalidInput, match=r"^schema\.yaml: columns\.age\.colour: extra inputs are not permitted"
    ):
        Schema.from_yaml(text, source="schema.yaml")


def test_bad_values_and_bad_yaml_are_rejected_with_the_source() -> None:
    with pytest.raises(InvalidInput, match=r"s\.yaml: columns\.age\.type: input should be"):
        Schema.from_yaml("columns:\n  age:\n    type: integer\n", source="s.yaml")
    with pytest.raises(InvalidInput, match=r"s\.yaml: version: input should be greater than or equal to 1"):
        Schema.from_yaml("version: 0\ncolumns: {}\n", source="s.yaml")
    with pytest.raises(InvalidInput, match=r"s\.yaml: not valid YAML"):
        Schema.from_yaml("columns: [\n", source="s.yaml")
    with pytest.raises(InvalidInput, match=r"s\.yaml: expected a mapping"):
        Schema.from_yaml("- 1\n", source="s.yaml")


def test_clean_data_is_ok(training: pd.DataFrame) -> None:
    schema = infer_schema(compute_statistics(training))
    result = validate(training, schema)
    assert result.ok and result.anomalies == ()
    assert result.to_dict() == {"ok": True, "anomalies": []}
    assert validate(pa.Table.from_pandas(training), schema).ok
    assert validate(compute_statistics(training), schema).ok


def test_missing_and_new_columns(training: pd.DataFrame) -> None:
    schema = infer_schema(compute_statistics(training))
    result = validate(training.rename(columns={"visits": "visit_count"}), schema)
    found = _kinds(result)
    missing = found["visits", AnomalyKind.MISSING_COLUMN]
    assert (missing.expected, missing.actual, missing.severity) == ("present", "absent", Severity.ERROR)
    new = found["visit_count", AnomalyKind.NEW_COLUMN]
    assert (new.expected, new.actual, new.severity) == ("absent", "int", Severity.WARNING)
    assert not result.ok
    schema.columns["visits"].required = False
    assert validate(training.drop(columns="visits"), schema).ok


def test_type_change(training: pd.DataFrame) -> None:
    schema = infer_schema(compute_statistics(training))
    changed = training.assign(visits=training["visits"].astype(str))
    anomaly = _kinds(validate(changed, schema))["visits", AnomalyKind.TYPE_CHANGE]
    assert (anomaly.expected, anomaly.actual, anomaly.severity) == ("int", "string", Severity.ERROR)


def test_whole_floats_in_int_column_and_ints_in_float_column_are_accepted(training: pd.DataFrame) -> None:
    schema = infer_schema(compute_statistics(training))
    widened = training.assign(
        visits=training["visits"].astype(float), income=training["income"].round().astype(int)
    )
    assert validate(widened, schema).ok
    fractional = training.assign(visits=training["visits"] + 0.5)
    assert (("visits", AnomalyKind.TYPE_CHANGE)) in _kinds(validate(fractional, schema))


def test_out_of_range_warning_below_one_percent_error_above(training: pd.DataFrame) -> None:
    # The rule for ranges a person wrote (an inferred schema warns at any fraction).
    schema = infer_schema(compute_statistics(training)).model_copy(update={"severity": {}})
    few = training.copy()
    few.loc[:4, "income"] = 1e9  # 5 of 1000 rows = 0.5%
    anomaly = _kinds(validate(few, schema))["income", AnomalyKind.OUT_OF_RANGE]
    assert anomaly.expected == [schema.columns["income"].min, schema.columns["income"].max]
    assert (anomaly.actual, anomaly.severity) == (5, Severity.WARNING)
    many = training.assign(income=training["income"] + 40_000)
    anomaly = _kinds(validate(many, schema))["income", AnomalyKind.OUT_OF_RANGE]
    assert anomaly.severity is Severity.ERROR and anomaly.actual > 10
    from_stats = _kinds(validate(compute_statistics(few), schema))["income", AnomalyKind.OUT_OF_RANGE]
    assert from_stats.actual[1] == 1e9 and from_stats.severity is Severity.ERROR


def test_unseen_category_above_threshold(training: pd.DataFrame) -> None:
    schema = infer_schema(compute_statistics(training))
    rare = training.copy()
    rare.loc[:4, "city"] = "lima"  # 0.5% ≤ 1% threshold
    assert ("city", AnomalyKind.UNSEEN_CATEGORY) not in _kinds(validate(rare, schema))
    common = training.copy()
    common.loc[:49, "city"] = "lima"  # 5%
    anomaly = _kinds(validate(common, schema))["city", AnomalyKind.UNSEEN_CATEGORY]
    assert (anomaly.expected, anomaly.actual, anomaly.severity) == (0.01, pytest.approx(0.05), Severity.ERROR)
    assert "'lima'" in anomaly.message
    from_stats = _kinds(validate(compute_statistics(common), schema))["city", AnomalyKind.UNSEEN_CATEGORY]
    assert from_stats.actual == pytest.approx(0.05)
    schema.columns["city"].unseen_category_threshold = 0.0
    assert ("city", AnomalyKind.UNSEEN_CATEGORY) in _kinds(validate(rare, schema))


def test_null_rate_jump_and_nulls_in_non_nullable_column(training: pd.DataFrame) -> None:
    schema = infer_schema(compute_statistics(training))
    jumped = training.copy()
    jumped.loc[:299, "age"] = np.nan  # 30% > 20%
    anomaly = _kinds(validate(jumped, schema))["age", AnomalyKind.NULL_RATE]
    assert (anomaly.expected, anomaly.actual, anomaly.severity) == (pytest.approx(0.2), 0.3, Severity.ERROR)
    slight = training.copy()
    slight.loc[:149, "age"] = np.nan  # 15% ≤ 20%
    assert validate(slight, schema).ok
    nulls = training.assign(income=training["income"].where(training.index >= 1))
    anomaly = _kinds(validate(nulls, schema))["income", AnomalyKind.NULL_RATE]
    assert (anomaly.expected, anomaly.actual, anomaly.severity) == (0.0, 0.001, Severity.ERROR)


def test_non_finite_values(training: pd.DataFrame) -> None:
    schema = infer_schema(compute_statistics(training))
    broken = training.copy()
    broken.loc[:1, "income"] = np.inf
    anomaly = _kinds(validate(broken, schema))["income", AnomalyKind.NON_FINITE]
    assert (anomaly.expected, anomaly.actual, anomaly.severity) == (0, 2, Severity.ERROR)


def test_severity_overrides_column_beats_schema(training: pd.DataFrame) -> None:
    schema = infer_schema(compute_statistics(training))
    schema.severity[AnomalyKind.MISSING_COLUMN] = Severity.WARNING
    schema.columns["city"].severity[AnomalyKind.MISSING_COLUMN] = Severity.ERROR
    found = _kinds(validate(training.drop(columns=["visits", "city"]), schema))
    assert found["visits", AnomalyKind.MISSING_COLUMN].severity is Severity.WARNING
    assert found["city", AnomalyKind.MISSING_COLUMN].severity is Severity.ERROR


def test_column_schema_defaults() -> None:
    column = ColumnSchema(type="string")
    assert (column.required, column.nullable, column.unseen_category_threshold) == (True, False, 0.01)


def test_result_to_dict_is_plain() -> None:
    schema = Schema(columns={"x": ColumnSchema(type="float", min=0.0, max=1.0)})
    result = validate(pd.DataFrame({"x": [0.5, 2.0], "y": [1, 2]}), schema)
    assert result.to_dict() == {
        "ok": False,
        "anomalies": [
            {
                "column": "x",
                "kind": "out_of_range",
                "expected": [0.0, 1.0],
                "actual": 1,
                "severity": "error",
                "message": result.anomalies[0].message,
            },
            {
                "column": "y",
                "kind": "new_column",
                "expected": "absent",
                "actual": "int",
                "severity": "warning",
                "message": "column 'y' is not in the schema",
            },
        ],
    }


def test_breast_cancer_against_its_own_schema() -> None:
    datasets = pytest.importorskip("sklearn.datasets", reason="scikit-learn is not installed")
    frame = datasets.load_breast_cancer(as_frame=True).frame
    schema = infer_schema(compute_statistics(frame))
    assert len(schema.columns) == 31 and schema.columns["target"].type == "int"
    assert Schema.from_yaml(schema.to_yaml()) == schema
    assert validate(frame, schema).anomalies == ()

    shifted = frame.assign(**{"mean radius": frame["mean radius"] + 3 * frame["mean radius"].std()})
    anomaly = _kinds(validate(shifted, schema))["mean radius", AnomalyKind.OUT_OF_RANGE]
    assert anomaly.severity is Severity.WARNING
    kept = schema.model_copy(update={"severity": {AnomalyKind.OUT_OF_RANGE: Severity.ERROR}})
    assert _kinds(validate(shifted, kept))["mean radius", AnomalyKind.OUT_OF_RANGE].severity is Severity.ERROR

    renamed = frame.rename(columns={"mean area": "area"}).drop(columns="worst texture")
    found = _kinds(validate(renamed, schema))
    assert set(found) == {
        ("mean area", AnomalyKind.MISSING_COLUMN),
        ("worst texture", AnomalyKind.MISSING_COLUMN),
        ("area", AnomalyKind.NEW_COLUMN),
    }


def test_an_ordinary_holdout_passes_the_schema_inferred_from_training() -> None:
    # Inferred ranges are the training sample's extremes, not limits anyone chose: a holdout from the same
    # distribution crosses them in a few rows, which is worth a warning and never an error.
    datasets = pytest.importorskip("sklearn.datasets", reason="scikit-learn is not installed")
    frame = datasets.load_breast_cancer(as_frame=True).frame.sample(frac=1.0, random_state=0)
    train, holdout = frame.iloc[:455], frame.iloc[455:]
    schema = infer_schema(compute_statistics(train))
    result = validate(holdout, schema)
    assert result.ok, [a.message for a in result.anomalies if a.severity is Severity.ERROR]
    assert any(a.kind is AnomalyKind.OUT_OF_RANGE for a in result.anomalies)  # still reported
    assert Schema.from_yaml(schema.to_yaml()).severity == {AnomalyKind.OUT_OF_RANGE: Severity.WARNING}
    # Types, missing columns and null-rate jumps stay errors.
    broken = holdout.drop(columns="mean texture").assign(**{"mean area": None})
    kinds = {(a.kind, a.severity) for a in validate(broken, schema).anomalies}
    assert (AnomalyKind.MISSING_COLUMN, Severity.ERROR) in kinds
    assert (AnomalyKind.NULL_RATE, Severity.ERROR) in kinds
    # A range a person writes keeps the rule: an error once 1% of rows are outside.
    chosen = schema.model_copy(update={"severity": {}})
    assert not validate(holdout.assign(**{"mean radius": 1e6}), chosen).ok
