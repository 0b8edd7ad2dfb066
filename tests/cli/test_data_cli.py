"""``shipyard data stats|infer-schema|validate|drift`` on real Parquet and CSV files."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer

from tests.cli.test_cli import run_cli


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    frame = load_breast_cancer(as_frame=True).frame
    paths = {
        "train": tmp_path / "train.parquet",
        "shifted": tmp_path / "shifted.csv",
        "broken": tmp_path / "b.csv",
    }
    frame.to_parquet(paths["train"])
    shifted = frame.copy()
    shifted["mean radius"] += 10  # every row far out of the training range
    shifted.to_csv(paths["shifted"], index=False)
    frame.drop(columns=["mean texture"]).to_csv(paths["broken"], index=False)
    return paths


def test_stats_schema_validate_and_drift(
    capsys: pytest.CaptureFixture[str], files: dict[str, Path], tmp_path: Path
) -> None:
    code, out, _ = run_cli(capsys, "data", "stats", str(files["train"]), "--json")
    stats = json.loads(out)
    columns = {c["name"]: c for c in stats["columns"]}
    assert code == 0 and stats["rows"] == 569 and columns["mean radius"]["type"] == "float"

    schema = tmp_path / "schema.yaml"
    assert run_cli(capsys, "data", "infer-schema", str(files["train"]), "-o", str(schema))[0] == 0
    code, out, _ = run_cli(capsys, "data", "validate", str(files["train"]), "--schema", str(schema), "--json")
    assert code == 0 and json.loads(out) == {"ok": True, "anomalies": []}

    code, _, err = run_cli(capsys, "data", "validate", str(files["broken"]), "--schema", str(schema))
    assert code == 2 and "mean texture (missing_column)" in err and err.count("\n") == 1
    code, out, _ = run_cli(capsys, "data", "validate", str(files["shifted"]), "--schema", str(schema))
    assert code == 0 and "warning" in out and "mean radius" in out and "out_of_range" in out
    # A user who stands by the inferred ranges says so in the file: then crossing them is an error.
    schema.write_text(schema.read_text().replace("out_of_range: warning", "out_of_range: error"))
    code, _, err = run_cli(capsys, "data", "validate", str(files["shifted"]), "--schema", str(schema))
    assert code == 2 and "mean radius (out_of_range)" in err

    result = tmp_path / "drift.json"
    code, out, _ = run_cli(
        capsys, "data", "drift", str(files["train"]), str(files["shifted"]), "--json", str(result)
    )
    assert code == 0 and "DRIFT" in out
    # p-value tests show a p-value, named as one, with the rule that makes it drift (not a bare "statistic").
    assert "score" in out and "p = " in out and "p < 0.05" in out and "statistic" not in out
    verdicts = {c["column"]: c["drift_detected"] for c in json.loads(result.read_text())["columns"]}
    assert verdicts["mean radius"] is True and sum(verdicts.values()) == 1
    assert {c["score_kind"] for c in json.loads(result.read_text())["columns"]} == {"p_value"}

    code, out, _ = run_cli(
        capsys,
        "data",
        "drift",
        str(files["train"]),
        str(files["shifted"]),
        "--kind",
        "target=categorical",
        "--test",
        "mean radius=psi",
        "--json",
        str(result),
    )
    chosen = {c["column"]: (c["kind"], c["test"]) for c in json.loads(result.read_text())["columns"]}
    assert code == 0 and chosen["target"] == ("categorical", "chisquare")
    assert chosen["mean radius"] == ("numeric", "psi")


def test_drift_test_chisquare_evidently_is_chosen_by_name(
    capsys: pytest.CaptureFixture[str], files: dict[str, Path], tmp_path: Path
) -> None:
    result = tmp_path / "drift.json"
    args = ["data", "drift", str(files["train"]), str(files["shifted"]), "--json", str(result)]
    code, _, _ = run_cli(
        capsys, *args, "--kind", "target=categorical", "--test", "target=chisquare_evidently"
    )
    chosen = {c["column"]: (c["kind"], c["test"]) for c in json.loads(result.read_text())["columns"]}
    assert code == 0 and chosen["target"] == ("categorical", "chisquare_evidently")


def test_drift_reports_columns_on_one_side_only(
    capsys: pytest.CaptureFixture[str], files: dict[str, Path]
) -> None:
    code, _, err = run_cli(capsys, "data", "drift", str(files["train"]), str(files["broken"]))
    assert code == 0 and "missing in current: mean texture" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["data", "stats", "nope.parquet"], "nope.parquet: no such file"),
        (["data", "stats", "data.xlsx"], "unsupported file type"),
        (["data", "drift", "a.csv", "b.csv", "--test", "nonsense"], "not column=test"),
        (["data", "drift", "a.csv", "b.csv", "--kind", "age"], "--kind 'age' is not column=kind"),
    ],
)
def test_bad_input_is_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, args: list[str], message: str
) -> None:
    for name in ("a.csv", "b.csv"):
        pd.DataFrame({"x": [1.0, 2.0]}).to_csv(tmp_path / name, index=False)
    code, _, err = run_cli(capsys, *[str(tmp_path / a) if a.endswith(".csv") else a for a in args])
    assert code == 2 and message in err and err.count("\n") == 1


def test_a_schema_with_an_unknown_field_is_rejected_naming_it(
    capsys: pytest.CaptureFixture[str], files: dict[str, Path], tmp_path: Path
) -> None:
    schema = tmp_path / "schema.yaml"
    run_cli(capsys, "data", "infer-schema", str(files["train"]), "-o", str(schema))
    schema.write_text(schema.read_text().replace("type: float", "type: float\n    colour: red", 1))
    code, _, err = run_cli(capsys, "data", "validate", str(files["train"]), "--schema", str(schema))
    assert code == 2 and "colour" in err and err.count("\n") == 1
