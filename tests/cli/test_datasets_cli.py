"""``shipyard data add|get|diff|list|versions|show``: what they print, their JSON, and one-line errors with
the exit code of each kind of bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import shipyard
from shipyard.datasets.blobs import BLOBS_PREFIX, blob_path
from shipyard.store.artifacts import ArtifactStore
from tests.cli.test_cli import run_cli


@pytest.fixture
def customers(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    src = tmp_path / "customers"
    src.mkdir()
    (src / "people.csv").write_text("id,name\n1,ann\n2,bob\n3,cy\n")
    assert run_cli(capsys, "data", "add", str(src), "--name", "customers")[0] == 0
    (src / "people.csv").write_text("id,name,age\n1,ann,30\n2,BOB,40\n4,dee,50\n")
    code, out, _ = run_cli(
        capsys, "data", "add", str(src), "--name", "customers", "-d", "April", "--tag", "a=b"
    )
    assert code == 0 and out.startswith("customers@2")
    return src


def test_add_says_when_nothing_changed(customers: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "data", "add", str(customers), "--name", "customers")
    assert code == 0 and "unchanged: customers@2 already has this content" in out
    code, out, _ = run_cli(capsys, "data", "add", str(customers), "--name", "customers", "--force", "--json")
    assert code == 0 and json.loads(out)["version"] == 3


def test_get_list_versions_and_show(
    customers: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run_cli(capsys, "data", "get", "customers@1", "-o", str(tmp_path / "out"))
    assert code == 0 and "restored customers@1" in out
    assert (tmp_path / "out" / "people.csv").read_text().startswith("id,name\n1,ann")
    code, _, err = run_cli(capsys, "data", "get", "customers", "-o", str(tmp_path / "out"))
    assert code == 4 and "differ from customers@2: 'people.csv'" in err and "--force" in err
    assert run_cli(capsys, "data", "get", "customers", "-o", str(tmp_path / "out"), "--force")[0] == 0
    code, out, _ = run_cli(capsys, "data", "list", "--json")
    [listed] = json.loads(out)
    assert (listed["name"], listed["latest_version"], listed["versions"]) == ("customers", 2, 2)
    code, out, _ = run_cli(capsys, "data", "versions", "customers")
    assert code == 0 and "April" in out
    with shipyard.start_run("cli-data") as run:
        run.log_input("data:customers@2")
    code, out, _ = run_cli(capsys, "data", "show", "customers@2", "--json")
    shown = json.loads(out)
    assert shown["uri"] == "data:customers@2" and shown["tags"] == {"a": "b"}
    assert [f["path"] for f in shown["files"]] == ["people.csv"] and len(shown["files"][0]["sha256"]) == 64
    assert [r["run_id"] for r in shown["runs"]] == [run.run_id]
    code, out, _ = run_cli(capsys, "data", "show", "customers")
    assert code == 0 and "data:customers@2" in out and run.run_id in out


def test_diff_by_key_and_whole_rows(customers: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "data", "diff", "customers@1", "customers@2", "--key", "id")
    assert code == 0 and "column 'age' added" in out and "1 added, 1 removed, 1 changed" in out
    code, out, _ = run_cli(capsys, "data", "diff", "customers@1", "customers@2", "--json")
    [table] = json.loads(out)["tables"]
    assert (table["added"], table["removed"], table["changed"]) == (2, 2, None)


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (
            ["data", "add", "missing-folder", "--name", "x"],
            3,
            "cannot add 'missing-folder': no such file or folder",
        ),
        (["data", "add", ".", "--name", "bad name"], 2, "dataset name 'bad name' is not valid"),
        (["data", "show", "customers@x"], 2, "version 'x' is not a number"),
        (["data", "show", "customers@99"], 3, "has no version 99; it has: 1, 2"),
        (["data", "diff", "customers@1", "customers@2", "--key", "nope"], 2, "key column(s) 'nope' not in"),
    ],
)
def test_bad_input_is_one_line_and_a_nonzero_exit(
    customers: Path, capsys: pytest.CaptureFixture[str], args: list[str], code: int, message: str
) -> None:
    got, _, err = run_cli(capsys, *args)
    assert got == code and message in err and len(err.strip().splitlines()) == 1


def test_a_corrupt_blob_fails_get_naming_the_file(
    customers: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run_cli(capsys, "data", "show", "customers@1", "--json")
    digest = json.loads(out)["files"][0]["sha256"]
    ArtifactStore(shipyard.get_settings().artifact_root).child(BLOBS_PREFIX).put_bytes(
        b"x", blob_path(digest)
    )
    code, _, err = run_cli(capsys, "data", "get", "customers@1", "-o", str(tmp_path / "bad"))
    assert code != 0 and "customers@1: file 'people.csv' is corrupt" in err
