"""Model signatures: inference from examples, the dict round trip, and safe enforcement on requests."""

from __future__ import annotations

import datetime as dt
import json
import string
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from shipyard.errors import InvalidInput
from shipyard.registry.signature import (
    DTYPES,
    ColumnSpec,
    Signature,
    SignatureKind,
    enforce,
    infer_signature,
)

INT_DTYPES = ["int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64"]
FLOAT_DTYPES = ["float16", "float32", "float64"]


def frame_sig(**dtypes: str) -> Signature:
    return Signature(tuple(ColumnSpec(name, dtype) for name, dtype in dtypes.items()))


def tensor_sig(dtype: str, *shape: int) -> Signature:
    return Signature((ColumnSpec(None, dtype, (-1, *shape)),), kind="tensor")  # type: ignore[arg-type]


# -- specs and their validation ----------------------------------------------------------------------------


def test_kind_given_as_string_is_stored_as_enum_and_compares_equal() -> None:
    sig = tensor_sig("float32", 3)
    assert sig.kind is SignatureKind.TENSOR
    assert sig.kind == "tensor"
    assert sig == tensor_sig("float32", 3)


def test_shape_given_as_list_is_stored_as_tuple() -> None:
    assert ColumnSpec(None, "int64", [-1, 2]).shape == (-1, 2)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("build", "fragment"),
    [
        (lambda: ColumnSpec("a", "float"), "ColumnSpec.dtype: unknown dtype 'float'"),
        (lambda: ColumnSpec("", "int64"), "ColumnSpec.name"),
        (lambda: ColumnSpec("a", "int64", (-2,)), "ColumnSpec.shape"),
        (lambda: ColumnSpec("a", "int64", nullable=1), "ColumnSpec.nullable"),  # type: ignore[arg-type]
        (lambda: Signature(()), "inputs: a signature needs at least one input"),
        (lambda: Signature((ColumnSpec(None, "int64"),)), "inputs[0].name: a dataframe column needs a name"),
        (lambda: Signature((ColumnSpec("a", "int64", (-1,)),)), "inputs[0].shape"),
        (lambda: Signature((ColumnSpec("a", "int64"), ColumnSpec("a", "bool"))), "duplicate column 'a'"),
        (lambda: Signature((ColumnSpec(None, "int64", (4,)),), kind="tensor"), "first dimension"),  # type: ignore[arg-type]
        (lambda: Signature((ColumnSpec(None, "int64"),), kind="tensor"), "inputs[0].shape"),  # type: ignore[arg-type]
        (lambda: Signature((ColumnSpec("x", "int64", (-1,)),), kind="tensor"), "inputs[0].name"),  # type: ignore[arg-type]
        (
            lambda: Signature((ColumnSpec(None, "int64", (-1,), nullable=True),), kind="tensor"),  # type: ignore[arg-type]
            "inputs[0].nullable",
        ),
        (
            lambda: Signature(
                (ColumnSpec(None, "int64", (-1,)), ColumnSpec(None, "int64", (-1,))), kind="tensor"
            ),  # type: ignore[arg-type]
            "exactly one spec",
        ),
        (
            lambda: Signature((ColumnSpec("a", "int64"),), kind="table"),
            "kind: unknown signature kind 'table'",
        ),  # type: ignore[arg-type]
        (lambda: Signature(("a",)), "inputs[0]: expected a ColumnSpec"),  # type: ignore[arg-type]
        (
            lambda: Signature((ColumnSpec("a", "int64"),), (ColumnSpec(None, "int64", (3,)),)),
            "outputs[0].shape",
        ),
    ],
)
def test_invalid_specs_are_refused_naming_the_field(build: Any, fragment: str) -> None:
    with pytest.raises(InvalidInput) as info:
        build()
    assert fragment in str(info.value)


def test_output_kind_is_read_from_the_output_specs() -> None:
    frame_out = Signature(
        (ColumnSpec("a", "int64"),), (ColumnSpec("p", "float64"), ColumnSpec("q", "float64"))
    )
    tensor_out = Signature((ColumnSpec("a", "int64"),), (ColumnSpec(None, "float64", (-1, 3)),))
    assert frame_out.output_kind is SignatureKind.DATAFRAME
    assert tensor_out.output_kind is SignatureKind.TENSOR
    assert Signature((ColumnSpec("a", "int64"),)).output_kind is None


# -- to_dict / from_dict -----------------------------------------------------------------------------------


def test_to_dict_is_compact_and_json_and_yaml_safe() -> None:
    sig = Signature(
        (ColumnSpec("age", "int64", nullable=True), ColumnSpec("name", "string")),
        (ColumnSpec(None, "float32", (-1, 2)),),
    )
    d = sig.to_dict()
    assert d == {
        "kind": "dataframe",
        "inputs": [{"name": "age", "dtype": "int64", "nullable": True}, {"name": "name", "dtype": "string"}],
        "outputs": [{"name": None, "dtype": "float32", "shape": [-1, 2]}],
    }
    assert Signature.from_dict(json.loads(json.dumps(d))) == sig
    assert Signature.from_dict(yaml.safe_load(yaml.safe_dump(d))) == sig


def test_from_dict_defaults_outputs_to_none() -> None:
    sig = Signature.from_dict({"kind": "dataframe", "inputs": [{"name": "a", "dtype": "bool"}]})
    assert sig == frame_sig(a="bool")


@pytest.mark.parametrize(
    ("d", "fragment"),
    [
        ([], "signature: expected a mapping"),
        ({"inputs": []}, "kind: required field is missing"),
        ({"kind": "dataframe"}, "inputs: required field is missing"),
        ({"kind": "dataframe", "inputs": [], "extra": 1}, "signature: unknown field 'extra'"),
        ({"kind": "dataframe", "inputs": "a"}, "inputs: expected a list"),
        (
            {"kind": "dataframe", "inputs": [{"name": "a", "dtype": "int64"}], "outputs": 3},
            "outputs: expected a list",
        ),
        ({"kind": 1, "inputs": [{"name": "a", "dtype": "int64"}]}, "kind: expected a string"),
        (
            {"kind": "frame", "inputs": [{"name": "a", "dtype": "int64"}]},
            "kind: unknown signature kind 'frame'",
        ),
        ({"kind": "dataframe", "inputs": ["a"]}, "inputs[0]: expected a mapping"),
        ({"kind": "dataframe", "inputs": [{"name": "a"}]}, "inputs[0].dtype: required field is missing"),
        (
            {"kind": "dataframe", "inputs": [{"name": "a", "dtype": "float"}]},
            "inputs[0].dtype: unknown dtype",
        ),
        ({"kind": "dataframe", "inputs": [{"name": 3, "dtype": "int64"}]}, "inputs[0].name"),
        (
            {"kind": "dataframe", "inputs": [{"name": "a", "dtype": "int64"}, {"name": "b", "dtype": "x"}]},
            "inputs[1].dtype",
        ),
        (
            {"kind": "dataframe", "inputs": [{"name": "a", "dtype": "int64", "type": "x"}]},
            "inputs[0]: unknown field",
        ),
        ({"kind": "tensor", "inputs": [{"dtype": "int64", "shape": "(-1,)"}]}, "inputs[0].shape"),
        ({"kind": "tensor", "inputs": [{"dtype": "int64", "shape": [-1, True]}]}, "inputs[0].shape"),
        ({"kind": "tensor", "inputs": [{"dtype": "int64", "shape": [3]}]}, "inputs[0].shape"),
        (
            {"kind": "dataframe", "inputs": [{"name": "a", "dtype": "int64", "nullable": "yes"}]},
            "inputs[0].nullable",
        ),
        (
            {
                "kind": "dataframe",
                "inputs": [{"name": "a", "dtype": "int64"}],
                "outputs": [{"dtype": "int64"}],
            },
            "outputs[0].shape",
        ),
    ],
)
def test_from_dict_names_the_bad_field(d: Any, fragment: str) -> None:
    with pytest.raises(InvalidInput) as info:
        Signature.from_dict(d)
    assert fragment in str(info.value)


# -- infer_signature ---------------------------------------------------------------------------------------


def test_infers_every_numpy_dtype_from_a_dataframe() -> None:
    df = pd.DataFrame({name: np.zeros(2, dtype=name) for name in [*INT_DTYPES, *FLOAT_DTYPES, "bool"]})
    sig = infer_signature(df)
    assert sig.kind is SignatureKind.DATAFRAME
    assert [(s.name, s.dtype, s.nullable) for s in sig.inputs] == [(c, c, False) for c in df.columns]


def test_maps_pandas_extension_dtypes_to_canonical_names() -> None:
    df = pd.DataFrame(
        {
            "str_default": ["a", "b"],
            "str_object": pd.Series(["a", "b"], dtype=object),
            "str_python": pd.Series(["a", "b"], dtype="string"),
            "int_masked": pd.Series([1, 2], dtype="Int64"),
            "uint_masked": pd.Series([1, None], dtype="UInt8"),
            "bool_masked": pd.Series([True, None], dtype="boolean"),
            "category": pd.Categorical(["x", "y"]),
            "int_category": pd.Categorical([1, 2]),
            "bytes": [b"a", b"b"],
            "when": pd.to_datetime(["2024-01-01", "2024-01-02"]),
        }
    )
    specs = {s.name: (s.dtype, s.nullable) for s in infer_signature(df).inputs}
    assert specs == {
        "str_default": ("string", False),
        "str_object": ("string", False),
        "str_python": ("string", False),
        "int_masked": ("int64", True),  # the masked type itself marks nullable, even without a missing value
        "uint_masked": ("uint8", True),
        "bool_masked": ("bool", True),
        "category": ("string", False),
        "int_category": ("int64", False),
        "bytes": ("object", False),
        "when": ("datetime64[ns]", False),
    }


def test_missing_values_mark_non_float_columns_nullable_but_never_float_ones() -> None:
    df = pd.DataFrame(
        {
            "s": pd.Series(["a", None], dtype=object),
            "f": [1.0, np.nan],
            "t": pd.to_datetime(["2024-01-01", None]),
        }
    )
    assert {s.name: s.nullable for s in infer_signature(df).inputs} == {"s": True, "f": False, "t": True}


def test_ndarray_gives_a_tensor_with_any_batch_size() -> None:
    sig = infer_signature(np.zeros((5, 28, 28), dtype=np.float32), np.zeros(5, dtype=np.int64))
    assert sig.kind is SignatureKind.TENSOR
    assert sig.inputs == (ColumnSpec(None, "float32", (-1, 28, 28)),)
    assert sig.outputs == (ColumnSpec(None, "int64", (-1,)),)


def test_nested_list_gives_a_tensor_from_its_python_values() -> None:
    assert infer_signature([[1, 2], [3, 4]]).inputs == (ColumnSpec(None, "int64", (-1, 2)),)
    assert infer_signature([0.5, 1]).inputs == (ColumnSpec(None, "float64", (-1,)),)
    assert infer_signature([["a"], ["b"]]).inputs == (ColumnSpec(None, "string", (-1, 1)),)


def test_string_and_bytes_arrays_give_string_and_object_tensors() -> None:
    assert infer_signature(np.array(["a", "bc"])).inputs[0].dtype == "string"
    assert infer_signature(np.array([b"a", b"bc"])).inputs[0].dtype == "object"


def test_dict_of_columns_and_records_give_dataframe_kind() -> None:
    expected = Signature((ColumnSpec("a", "int64"), ColumnSpec("b", "string", nullable=True)))
    assert infer_signature({"a": [1, 2], "b": ["x", None]}) == expected
    assert infer_signature({"a": np.array([1, 2]), "b": ["x", None]}) == expected
    assert infer_signature([{"a": 1, "b": "x"}, {"a": 2}]) == expected


def test_series_gives_one_column_named_like_to_frame() -> None:
    assert infer_signature(pd.Series([1.0], name="p")) == frame_sig(p="float64")
    assert infer_signature(pd.Series([True])) == frame_sig(**{"0": "bool"})


def test_dataframe_input_and_ndarray_output() -> None:
    sig = infer_signature(pd.DataFrame({"x": [1.0, 2.0]}), np.array([0, 1]))
    assert sig.kind is SignatureKind.DATAFRAME
    assert sig.output_kind is SignatureKind.TENSOR
    assert sig.outputs == (ColumnSpec(None, "int64", (-1,)),)


@pytest.mark.parametrize(
    ("example", "fragment"),
    [
        (
            pd.DataFrame({"t": pd.to_datetime(["2024-01-01"]).tz_localize("UTC")}),
            "column 't': timezone-aware",
        ),
        (
            pd.DataFrame({"m": pd.Series([1, "a"], dtype=object)}),
            "column 'm': unsupported or mixed value types",
        ),
        (pd.DataFrame({"c": np.array([1j])}), "column 'c': unsupported dtype complex128"),
        (pd.DataFrame({"d": pd.to_timedelta([1], unit="s")}), "column 'd': unsupported dtype"),
        (pd.DataFrame({"n": pd.Series([None, None], dtype=object)}), "column 'n': no values to infer"),
        (pd.DataFrame(), "the DataFrame has no columns"),
        (pd.DataFrame([[1, 2]], columns=["a", "a"]), "duplicate column 'a'"),
        ({}, "the dict has no columns"),
        ({"a": 1}, "column 'a': expected a list or 1-D array"),
        (
            {"a": np.zeros((2, 2))},
            "column 'a': expected a list or 1-D array of values, got ndarray of shape (2, 2)",
        ),
        ({"a": [1, 2], "b": [1]}, "columns have different lengths ('a' has 2, 'b' has 1)"),
        ({"a": [1, 2**70]}, "column 'a' expects int64; got 1180591620717411303424"),
        (3.5, "cannot infer a signature from float"),
        (np.float64(3.5), "cannot infer a signature from float64"),
        ("abc", "cannot infer a signature from str"),
        (np.array(1.0), "at least one dimension"),
        ([[1, 2], [3]], "ragged nested list"),
        ([1, "a"], "input example: unsupported or mixed value types (int, str)"),
        (np.array(["a", None], dtype=object), "a tensor cannot hold missing values"),
    ],
)
def test_unsupported_examples_are_refused_naming_the_column(example: Any, fragment: str) -> None:
    with pytest.raises(InvalidInput) as info:
        infer_signature(example)
    assert fragment in str(info.value)


def test_bad_output_example_is_named_as_such() -> None:
    with pytest.raises(InvalidInput, match="output example"):
        infer_signature(pd.DataFrame({"a": [1]}), object())


# -- enforce: dataframe kind, shapes of input --------------------------------------------------------------

ABC = frame_sig(a="int64", b="float64", c="string")


@pytest.mark.parametrize(
    "data",
    [
        pd.DataFrame({"c": ["x", "y"], "b": [0.5, 1.5], "a": [1, 2]}),
        {"a": [1, 2], "b": [0.5, 1.5], "c": ["x", "y"]},
        {"a": np.array([1, 2]), "b": pd.Series([0.5, 1.5], index=[7, 8]), "c": ("x", "y")},
        [{"a": 1, "b": 0.5, "c": "x"}, {"c": "y", "b": 1.5, "a": 2}],
        np.array([[1, 0.5, "x"], [2, 1.5, "y"]], dtype=object),
    ],
    ids=["dataframe", "dict-of-lists", "dict-of-arrays", "records", "2d-object-array"],
)
def test_accepted_forms_give_the_same_frame_in_signature_order(data: Any) -> None:
    result = enforce(ABC, data)
    expected = pd.DataFrame({"a": [1, 2], "b": [0.5, 1.5], "c": ["x", "y"]})
    pd.testing.assert_frame_equal(result, expected)


def test_2d_numeric_array_assigns_columns_in_order() -> None:
    sig = frame_sig(x="float64", y="float64")
    result = enforce(sig, np.array([[1.0, 2.0], [3.0, 4.0]]))
    pd.testing.assert_frame_equal(result, pd.DataFrame({"x": [1.0, 3.0], "y": [2.0, 4.0]}))


def test_frames_from_one_signature_do_not_share_a_mutable_column_index() -> None:
    sig = frame_sig(x="float64", y="float64")
    first, second = (enforce(sig, np.array([[1.0, 2.0]])) for _ in range(2))
    first.columns.name = "renamed by a pre-processor"
    assert second.columns.name is None and list(second.columns) == ["x", "y"]
    assert enforce(sig, {"x": [1.0], "y": [2.0]}).columns.name is None


def test_2d_array_with_the_wrong_number_of_columns_is_refused() -> None:
    with pytest.raises(
        InvalidInput, match=r"expected a 2-D array with 3 columns \(a, b, c\), got shape \(2, 2\)"
    ):
        enforce(ABC, np.zeros((2, 2)))


def test_series_is_one_column() -> None:
    result = enforce(frame_sig(p="float64"), pd.Series([1, 2], name="p"))
    pd.testing.assert_frame_equal(result, pd.DataFrame({"p": [1.0, 2.0]}))


def test_extra_columns_are_dropped() -> None:
    result = enforce(frame_sig(a="int64"), pd.DataFrame({"z": ["junk"], "a": [1], "y": [object()]}))
    assert list(result.columns) == ["a"]


def test_missing_column_names_it_and_the_expected_columns() -> None:
    with pytest.raises(InvalidInput) as info:
        enforce(frame_sig(a="int64", b="int64", x="int64"), {"a": [1], "b": [2]})
    assert str(info.value) == "missing column 'x' (expected: a, b, x)"


def test_several_missing_columns_are_all_named() -> None:
    with pytest.raises(InvalidInput, match=r"missing columns 'b', 'c' \(expected: a, b, c\)"):
        enforce(ABC, [{"a": 1}])


def test_dataframe_index_is_kept() -> None:
    df = pd.DataFrame({"a": [1, 2]}, index=["r1", "r2"])
    assert list(enforce(frame_sig(a="int64"), df).index) == ["r1", "r2"]


def test_non_string_column_labels_match_by_their_string_form() -> None:
    result = enforce(frame_sig(**{"0": "int64", "1": "int64"}), pd.DataFrame([[1, 2]]))
    pd.testing.assert_frame_equal(result, pd.DataFrame({"0": [1], "1": [2]}))


def test_a_record_without_a_key_holds_a_missing_value() -> None:
    sig = Signature((ColumnSpec("a", "int64"), ColumnSpec("b", "int64", nullable=True)))
    result = enforce(sig, [{"a": 1, "b": 2}, {"a": 2}])
    assert result["b"].dtype == "Int64"
    assert result["b"].isna().tolist() == [False, True]


def test_empty_list_of_records_gives_an_empty_frame_of_the_right_columns() -> None:
    result = enforce(ABC, [])
    assert list(result.columns) == ["a", "b", "c"]
    assert len(result) == 0
    assert result["a"].dtype == np.int64


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (42, "expected a DataFrame, dict of columns, list of records or 2-D array, got int"),
        ([1, 2], "expected a list of records (dicts), item 0 is int"),
        ({"a": 1, "b": 2.0, "c": "x"}, "column 'a': expected a list or 1-D array of values, got int"),
        ({"a": [1, 2], "b": [0.5], "c": ["x", "y"]}, "columns have different lengths"),
        (pd.DataFrame([[1, 2.0, "x", 3]], columns=["a", "b", "c", "a"]), "duplicate column 'a'"),
        (np.zeros(3), "expected a 2-D array with 3 columns"),
    ],
)
def test_unusable_data_forms_are_refused(data: Any, fragment: str) -> None:
    with pytest.raises(InvalidInput) as info:
        enforce(ABC, data)
    assert fragment in str(info.value)


# -- enforce: value conversion -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "values"),
    [
        ("int64", np.array([1, -2], dtype=np.int8)),  # wider int
        ("int32", np.array([2**31 - 1, -(2**31)], dtype=np.int64)),  # narrower, every value fits
        ("uint8", np.array([0, 255], dtype=np.int64)),
        ("int64", np.array([2**63 - 1], dtype=np.uint64)),
        ("float64", np.array([2**53, -(2**53)], dtype=np.int64)),  # exact in float64
        ("float32", np.array([2**24], dtype=np.int64)),
        ("float64", np.array([1, 2], dtype=np.int32)),
        ("float64", np.array([0.1], dtype=np.float32)),  # wider float
        ("float32", np.array([0.5, np.nan, np.inf], dtype=np.float64)),  # exactly representable
        ("int64", np.array([1.0, -3.0])),  # whole floats
        ("uint64", np.array([2.0**63])),
        ("int8", [1, 2.0, np.int16(3)]),
        ("float32", [0.1, 1, 1e30]),  # Python literals round to the column width
        ("float16", [65504.0]),
        ("bool", np.array([True, False])),
        ("bool", [True, np.bool_(False)]),
        ("string", np.array(["a", "b"])),
        ("string", ["a", np.str_("b")]),
        ("object", [b"a", bytearray(b"b")]),
        ("object", np.array([b"a", b"b"])),
        ("datetime64[ns]", np.array(["2024-01-01"], dtype="datetime64[D]")),
        (
            "datetime64[ns]",
            ["2024-01-01T10:00:00", "2024-01-02", dt.datetime(2024, 1, 3), np.datetime64("2024-01-04")],
        ),
    ],
)
def test_safe_conversions_are_made(target: str, values: Any) -> None:
    result = enforce(frame_sig(col=target), {"col": values})
    expected_dtype = pd.Series([], dtype="str").dtype if target == "string" else np.dtype(target)
    if target == "object":
        expected_dtype = np.dtype(object)
    assert result["col"].dtype == expected_dtype
    if target not in ("object", "string", "datetime64[ns]"):
        expected = [float(v) for v in values]
        assert [float(v) for v in result["col"]] == pytest.approx(expected, rel=1e-7, nan_ok=True)


def test_float_literals_round_to_float32() -> None:
    result = enforce(frame_sig(x="float32"), {"x": [0.1]})
    assert result["x"].dtype == np.float32
    assert result["x"].iloc[0] == np.float32(0.1)


def test_iso_strings_parse_into_datetime_columns() -> None:
    result = enforce(frame_sig(t="datetime64[ns]"), [{"t": "2024-03-01T12:30:00"}])
    assert result["t"].iloc[0] == pd.Timestamp("2024-03-01 12:30")
    assert result["t"].dtype == "datetime64[ns]"


@pytest.mark.parametrize(
    ("target", "values", "message"),
    [
        ("float64", ["1.0", "abc"], "column 'col' expects float64; got '1.0' (str) at row 0"),
        ("float64", np.array(["abc"]), "column 'col' expects float64; got 'abc' (str) at row 0"),
        ("int64", [1, 1.5], "column 'col' expects int64; got 1.5 (float) at row 1: not a whole number"),
        (
            "int64",
            np.array([1.0, 1.5]),
            "column 'col' expects int64; got 1.5 (float64) at row 1: not a whole number",
        ),
        (
            "int64",
            np.array([1.0, np.nan]),
            "column 'col' expects int64; got nan (float64) at row 1: column 'col' is not nullable",
        ),
        (
            "int64",
            [1, None],
            "column 'col' expects int64; got None (NoneType) at row 1: column 'col' is not nullable",
        ),
        (
            "int64",
            pd.Series([1, None], dtype="Int64"),
            "got <NA> (NAType) at row 1: column 'col' is not nullable",
        ),
        ("int64", np.array([np.inf]), "got inf (float64) at row 0: out of range for int64"),
        (
            "int8",
            np.array([1, 300]),
            "column 'col' expects int8; got 300 (int64) at row 1: out of range for int8",
        ),
        ("int8", [1, 300], "column 'col' expects int8; got 300 (int) at row 1: out of range for int8"),
        (
            "uint8",
            np.array([-1]),
            "column 'col' expects uint8; got -1 (int64) at row 0: out of range for uint8",
        ),
        (
            "int64",
            np.array([2**64 - 1], dtype=np.uint64),
            "got 18446744073709551615 (uint64) at row 0: out of range",
        ),
        ("int64", [2**70], "out of range for int64"),
        (
            "float64",
            np.array([2**53 + 1], dtype=np.int64),
            "got 9007199254740993 (int64) at row 0: beyond ±2**53",
        ),
        (
            "float64",
            [2**53 + 1],
            "got 9007199254740993 (int) at row 0: beyond ±2**53, float64 cannot hold it exactly",
        ),
        ("float32", np.array([2**24 + 1], dtype=np.int32), "got 16777217 (int32) at row 0: beyond ±2**24"),
        ("float32", np.array([0.1]), "got 0.1 (float64) at row 0: not exactly representable in float32"),
        ("float32", [1e300], "got 1e+300 (float) at row 0: out of range for float32"),
        ("float16", np.array([1e6], dtype=np.float32), "not exactly representable in float16"),
        ("int64", [True], "got True (bool) at row 0: a bool is not an integer"),
        ("int64", np.array([True]), "column 'col' expects int64; got True (bool) at row 0"),
        ("float64", [False], "got False (bool) at row 0: a bool is not a number"),
        ("bool", [1], "column 'col' expects bool; got 1 (int) at row 0"),
        ("bool", np.array([0, 1]), "column 'col' expects bool; got 0 (int64) at row 0"),
        ("bool", ["true"], "column 'col' expects bool; got 'true' (str) at row 0"),
        ("string", [5], "column 'col' expects string; got 5 (int) at row 0"),
        ("string", np.array([1.5]), "column 'col' expects string; got 1.5 (float64) at row 0"),
        (
            "string",
            ["a", None],
            "column 'col' expects string; got None (NoneType) at row 1: column 'col' is not nullable",
        ),
        ("string", pd.Series(["a", None]), "at row 1: column 'col' is not nullable"),
        ("object", ["x"], "column 'col' expects object; got 'x' (str) at row 0"),
        (
            "datetime64[ns]",
            ["now"],
            "column 'col' expects datetime64[ns]; got 'now' (str) at row 0: not an ISO 8601",
        ),
        ("datetime64[ns]", ["Jan 1 2024"], "not an ISO 8601 datetime"),
        ("datetime64[ns]", [""], "got '' (str) at row 0: not an ISO 8601 datetime"),
        (
            "datetime64[ns]",
            [1_700_000_000],
            "column 'col' expects datetime64[ns]; got 1700000000 (int) at row 0",
        ),
        ("datetime64[ns]", ["2024-01-01T00:00:00Z"], "at row 0: timezone-aware; convert to naive UTC first"),
        ("datetime64[ns]", [dt.datetime(2024, 1, 1, tzinfo=dt.UTC)], "timezone-aware"),
        (
            "datetime64[ns]",
            np.array(["3000-01-01"], dtype="datetime64[us]"),
            "out of range for datetime64[ns]",
        ),
        ("datetime64[ns]", ["3000-01-01"], "out of range for datetime64[ns]"),
        ("datetime64[ns]", pd.Series(pd.to_datetime(["2024-01-01"]).tz_localize("UTC")), "timezone-aware"),
        ("datetime64[ns]", [np.datetime64("NaT")], "column 'col' is not nullable"),
        ("float64", [[1.0]], "column 'col' expects float64; got [1.0] (list) at row 0"),
        ("float64", np.array([1j]), "column 'col' expects float64; got 1j (complex128) at row 0"),
        ("int64", [{"x": 1}], "column 'col' expects int64; got {'x': 1} (dict) at row 0"),
    ],
)
def test_unsafe_conversions_name_column_dtype_and_value(target: str, values: Any, message: str) -> None:
    with pytest.raises(InvalidInput) as info:
        enforce(frame_sig(col=target), {"col": values})
    assert message in str(info.value)


def test_rows_are_counted_by_position_in_a_dataframe() -> None:
    df = pd.DataFrame({"price": [1.0, 2.0, "abc"]}, index=[10, 20, 30])
    with pytest.raises(InvalidInput, match=r"column 'price' expects float64; got 'abc' \(str\) at row 2"):
        enforce(frame_sig(price="float64"), df)


def test_float_columns_always_accept_missing_values_as_nan() -> None:
    result = enforce(frame_sig(x="float32"), {"x": [1, None, np.nan, pd.NA]})
    assert result["x"].dtype == np.float32
    assert result["x"].isna().tolist() == [False, True, True, True]


def test_nullable_int_column_comes_back_as_masked_ints() -> None:
    sig = Signature((ColumnSpec("n", "int32", nullable=True),))
    for data in (
        {"n": [1, None]},
        {"n": np.array([1.0, np.nan])},
        {"n": pd.Series([1, None], dtype="Int64")},
    ):
        result = enforce(sig, data)
        assert result["n"].dtype == "Int32"
        assert result["n"].isna().tolist() == [False, True]
        assert result["n"].iloc[0] == 1
    assert enforce(sig, {"n": np.array([5], dtype=np.int8)})["n"].dtype == "Int32"


def test_nullable_bool_column_comes_back_as_masked_bools() -> None:
    result = enforce(Signature((ColumnSpec("b", "bool", nullable=True),)), {"b": [True, None]})
    assert result["b"].dtype == "boolean"
    assert result["b"].isna().tolist() == [False, True]


def test_nullable_string_datetime_and_bytes_columns_hold_missing_values() -> None:
    sig = Signature(
        (
            ColumnSpec("s", "string", nullable=True),
            ColumnSpec("t", "datetime64[ns]", nullable=True),
            ColumnSpec("o", "object", nullable=True),
        )
    )
    result = enforce(sig, [{"s": "a", "t": "2024-01-01", "o": b"x"}, {"s": None, "t": None, "o": None}])
    assert result.isna().to_numpy().tolist() == [[False] * 3, [True] * 3]


def test_an_all_missing_typed_column_is_missing_not_mistyped() -> None:
    sig = Signature((ColumnSpec("s", "string", nullable=True),))
    result = enforce(sig, pd.DataFrame({"s": pd.Series([None, None], dtype="Int64")}))
    assert result["s"].isna().all()


def test_string_columns_of_any_string_type_pass_through_unchanged() -> None:
    sig = frame_sig(s="string")
    for series in (pd.Series(["a"], dtype=object), pd.Series(["a"], dtype="string"), pd.Series(["a"])):
        assert enforce(sig, pd.DataFrame({"s": series}))["s"].dtype == series.dtype


def test_category_column_becomes_plain_strings() -> None:
    result = enforce(frame_sig(s="string"), pd.DataFrame({"s": pd.Categorical(["a", "b", "a"])}))
    assert not isinstance(result["s"].dtype, pd.CategoricalDtype)
    assert result["s"].tolist() == ["a", "b", "a"]


def test_columns_already_of_the_right_type_are_unchanged() -> None:
    df = pd.DataFrame({"i": np.array([1, 2], dtype=np.int16), "f": [0.5, np.nan], "b": [True, False]})
    sig = infer_signature(df)
    pd.testing.assert_frame_equal(enforce(sig, df), df)


# -- enforce: tensor kind ----------------------------------------------------------------------------------


def test_tensor_of_the_right_dtype_and_any_batch_passes() -> None:
    sig = tensor_sig("float32", 2, 3)
    data = np.ones((7, 2, 3), dtype=np.float32)
    result = enforce(sig, data)
    assert isinstance(result, np.ndarray)
    np.testing.assert_array_equal(result, data)
    assert result.dtype == np.float32


def test_nested_list_becomes_a_tensor_of_the_signature_dtype() -> None:
    result = enforce(tensor_sig("float32", 2), [[0.1, 1], [2, 3]])
    assert result.dtype == np.float32
    assert result.shape == (2, 2)
    assert result[0, 0] == np.float32(0.1)


def test_any_length_dimension_accepts_any_length() -> None:
    sig = tensor_sig("int64", -1)
    assert enforce(sig, np.zeros((2, 5), dtype=np.int64)).shape == (2, 5)
    assert enforce(sig, np.zeros((1, 0), dtype=np.int64)).shape == (1, 0)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (np.zeros((4, 28)), "tensor input: expected shape (-1, 28, 28), got (4, 28)"),
        (np.zeros((4, 28, 27)), "tensor input: expected shape (-1, 28, 28), got (4, 28, 27)"),
        (np.zeros(3), "tensor input: expected shape (-1, 28, 28), got (3,)"),
        (np.float32(1), "tensor input: expected an ndarray or nested list, got float32"),
        ([[1, 2], [3]], "tensor input: ragged nested list"),
    ],
)
def test_wrong_tensor_shapes_name_expected_and_actual(data: Any, message: str) -> None:
    with pytest.raises(InvalidInput) as info:
        enforce(tensor_sig("float64", 28, 28), data)
    assert message in str(info.value)


def test_dataframe_into_a_tensor_signature_hints_at_to_numpy() -> None:
    with pytest.raises(InvalidInput, match=r"got DataFrame \(use \.to_numpy\(\)\)"):
        enforce(tensor_sig("float64", 1), pd.DataFrame({"a": [1.0]}))


@pytest.mark.parametrize(
    ("target", "data", "message"),
    [
        ("float32", np.full((2, 2), 0.1), "tensor input expects float32; got 0.1 (float64) at index (0, 0)"),
        ("int64", np.array([[1.0, 2.5]]), "tensor input expects int64; got 2.5 (float64) at index (0, 1)"),
        (
            "int64",
            np.array([[1.0, np.nan]]),
            "got nan (float64) at index (0, 1): tensor input is not nullable",
        ),
        ("int64", [[1, "a"]], "tensor input expects int64; got 'a' (str) at index (0, 1)"),
        ("uint8", [[1, 256]], "got 256 (int) at index (0, 1): out of range for uint8"),
        ("string", [[1, 2]], "tensor input expects string; got 1 (int) at index (0, 0)"),
    ],
)
def test_tensor_values_that_cannot_convert_name_the_index(target: str, data: Any, message: str) -> None:
    with pytest.raises(InvalidInput) as info:
        enforce(tensor_sig(target, 2), data)
    assert message in str(info.value)


def test_string_and_bytes_tensors() -> None:
    strings = np.array([["a", "b"]])
    np.testing.assert_array_equal(enforce(tensor_sig("string", 2), strings), strings)
    assert enforce(tensor_sig("string", 2), [["a", "b"]]).tolist() == [["a", "b"]]
    assert enforce(tensor_sig("object", 1), np.array([[b"x"]])).tolist() == [[b"x"]]


def test_float_tensor_takes_nan_from_a_literal_none() -> None:
    result = enforce(tensor_sig("float64", 2), [[1, None]])
    assert np.isnan(result[0, 1])


# -- properties --------------------------------------------------------------------------------------------

NAMES = st.text(alphabet=string.ascii_lowercase, min_size=1, max_size=6)


@st.composite
def supported_frames(draw: st.DrawFn) -> pd.DataFrame:
    """DataFrames whose columns are each of a supported dtype, in the representation enforce hands back."""
    n = draw(st.integers(min_value=0, max_value=12))
    names = draw(st.lists(NAMES, min_size=1, max_size=6, unique=True))
    kinds = [
        *INT_DTYPES,
        *FLOAT_DTYPES,
        "bool",
        "datetime64[ns]",
        "str",
        "object-str",
        "bytes",
        "Int64",
        "boolean",
    ]
    columns: dict[str, pd.Series] = {}
    for name in names:
        kind = draw(st.sampled_from(kinds))
        if kind in (*INT_DTYPES, *FLOAT_DTYPES, "bool", "datetime64[ns]"):
            columns[name] = pd.Series(draw(hnp.arrays(np.dtype(kind), n)))
        elif kind in ("Int64", "boolean"):
            element = st.booleans() if kind == "boolean" else st.integers(-(2**63), 2**63 - 1)
            columns[name] = pd.Series(draw(st.lists(st.none() | element, min_size=n, max_size=n)), dtype=kind)
        elif kind == "str" or n == 0:  # object columns need a present value to infer from
            columns[name] = pd.Series(
                draw(st.lists(st.none() | st.text(), min_size=n, max_size=n)), dtype="str"
            )
        else:
            element = st.text() if kind == "object-str" else st.binary()
            values = draw(st.lists(st.none() | element, min_size=n, max_size=n))
            values[0] = draw(element)
            columns[name] = pd.Series(values, dtype=object)
    return pd.DataFrame(columns)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(supported_frames())
def test_enforcing_a_frame_against_its_own_signature_returns_an_equal_frame(df: pd.DataFrame) -> None:
    result = enforce(infer_signature(df), df)
    pd.testing.assert_frame_equal(result, df, check_column_type=False)


specs = st.builds(
    ColumnSpec,
    name=NAMES,
    dtype=st.sampled_from(DTYPES),
    nullable=st.booleans(),
)
tensor_specs = st.builds(
    ColumnSpec,
    name=st.none(),
    dtype=st.sampled_from(DTYPES),
    shape=st.lists(st.integers(-1, 5), max_size=3).map(lambda rest: (-1, *rest)),
)
columns = st.lists(specs, min_size=1, max_size=5, unique_by=lambda s: s.name).map(tuple)
signatures = st.one_of(
    st.builds(
        Signature,
        columns,
        st.one_of(st.just(()), columns, tensor_specs.map(lambda s: (s,))),
        st.just("dataframe"),
    ),
    st.builds(
        Signature, tensor_specs.map(lambda s: (s,)), st.one_of(st.just(()), columns), st.just("tensor")
    ),
)


@given(signatures)
def test_to_dict_from_dict_round_trips(sig: Signature) -> None:
    assert Signature.from_dict(sig.to_dict()) == sig
    assert Signature.from_dict(json.loads(json.dumps(sig.to_dict()))) == sig


scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=5),
    st.sampled_from(["2024-01-01", "now", "1e5", "nan", ""]),
    st.binary(max_size=5),
    st.datetimes(timezones=st.none() | st.just(dt.UTC)),
    st.dates(),
    st.complex_numbers(),
    st.just(pd.NA),
    st.just(pd.NaT),
    st.just(np.datetime64("NaT")),
    st.just(object()),
)
values = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(NAMES, inner, max_size=3)
)
arrays = hnp.arrays(
    st.one_of(
        hnp.scalar_dtypes(), hnp.byte_string_dtypes(), hnp.unicode_string_dtypes(), st.just(np.dtype(object))
    ),
    hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=3),
)
column_values = st.one_of(st.lists(scalars, max_size=4), arrays, scalars)


EXTENSION_DTYPES = [
    "Int64",
    "UInt8",
    "Float32",
    "boolean",
    "string",
    "str",
    "category",
    "int64[pyarrow]",
    "double[pyarrow]",
    "string[pyarrow]",
    "timedelta64[ns]",
    "datetime64[ns]",
    "datetime64[ns, UTC]",
    "Sparse[float64]",
    "period",
    "interval",
]


def extension_column(kind: str, ints: list[int | None]) -> pd.Series:
    """A column of pandas extension (or otherwise unusual) dtype built from small ints and None."""
    if kind == "period":
        return pd.Series(pd.period_range("2024-01-01", periods=len(ints), freq="D"))
    if kind == "interval":
        return pd.Series(pd.interval_range(0, len(ints)) if ints else pd.IntervalIndex.from_breaks([0]))
    return pd.Series(ints, dtype="Int64").astype(kind)


@st.composite
def mixed_data(draw: st.DrawFn, sig: Signature) -> Any:
    """Anything a client might send: dicts, records, arrays, frames, nested lists, scalars."""
    names = [s.name for s in sig.inputs if s.name] + draw(st.lists(NAMES, max_size=2))
    keys = st.sampled_from(names) if names else NAMES
    choice = draw(st.integers(0, 7))
    if sig.kind is SignatureKind.TENSOR and choice >= 6:  # the right shape, so the values get checked
        shape = tuple(draw(st.integers(0, 3)) if d == -1 else d for d in sig.inputs[0].shape or ())
        if choice == 6:
            return draw(hnp.arrays(st.one_of(hnp.scalar_dtypes(), hnp.unicode_string_dtypes()), shape))
        return draw(hnp.arrays(np.dtype(object), shape, elements=scalars)).tolist()
    if choice == 0:
        return draw(st.dictionaries(keys, column_values, max_size=4))
    if choice == 1:
        return draw(st.lists(st.dictionaries(keys, scalars, max_size=4) | scalars, max_size=4))
    if choice == 2:
        return draw(arrays)
    if choice == 3:
        n = draw(st.integers(0, 3))
        data = draw(st.dictionaries(keys, st.lists(scalars, min_size=n, max_size=n), max_size=4))
        frame = pd.DataFrame({k: pd.Series(v, dtype=object) for k, v in data.items()})
        for name, kind in draw(st.dictionaries(keys, st.sampled_from(EXTENSION_DTYPES))).items():
            ints = draw(st.lists(st.none() | st.integers(-5, 5), min_size=n, max_size=n))
            frame[name] = extension_column(kind, ints)
        return frame
    if choice == 4:
        return draw(values)
    return draw(st.lists(st.lists(scalars, min_size=2, max_size=2), max_size=3))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_enforce_raises_only_invalid_input_on_arbitrary_data(data: st.DataObject) -> None:
    sig = data.draw(signatures)
    payload = data.draw(mixed_data(sig))
    try:
        result = enforce(sig, payload)
    except InvalidInput:
        return
    if sig.kind is SignatureKind.TENSOR:
        assert isinstance(result, np.ndarray)
        assert result.ndim == len(sig.inputs[0].shape or ())
    else:
        assert isinstance(result, pd.DataFrame)
        assert list(result.columns) == [s.name for s in sig.inputs]


@settings(max_examples=200, deadline=None)
@given(st.one_of(values, arrays, st.dictionaries(NAMES, column_values, max_size=3)))
def test_infer_signature_raises_only_invalid_input_and_its_example_passes(example: Any) -> None:
    try:
        sig = infer_signature(example)
    except InvalidInput:
        return
    enforce(sig, example)


@settings(max_examples=300, deadline=None)
@given(
    dtype=st.sampled_from([*INT_DTYPES, *FLOAT_DTYPES, "bool"]),
    nullable=st.booleans(),
    array=hnp.arrays(
        st.sampled_from(["bool", "int8", "int64", "uint64", "float16", "float32", "float64"]),
        st.tuples(st.integers(0, 4), st.integers(1, 4)),
    ),
)
def test_a_numeric_matrix_converts_as_its_columns_would_one_by_one(
    dtype: str, nullable: bool, array: np.ndarray
) -> None:
    """A 2-D array whose columns all take one numeric dtype is checked as one block (the serving fast
    path): the same frame as its columns checked one by one, and a refusal that still names the column."""
    sig = Signature(tuple(ColumnSpec(f"c{j}", dtype, nullable=nullable) for j in range(array.shape[1])))
    columns = {f"c{j}": array[:, j] for j in range(array.shape[1])}
    try:
        expected = enforce(sig, columns)
    except InvalidInput as exc:
        with pytest.raises(InvalidInput) as raised:
            enforce(sig, array)
        assert str(raised.value) == str(exc)
        return
    result = enforce(sig, array)
    pd.testing.assert_frame_equal(result, expected)
    assert not any(np.shares_memory(result[c].to_numpy(), array) for c in result.columns)
