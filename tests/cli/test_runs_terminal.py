"""Runs on a terminal: copyable ids, chosen or recent metric columns, nested runs, child runs and tracebacks
in ``runs show``, ``runs logs`` and ``shipyard artifacts list|download`` (console script, real store)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

import shipyard
from shipyard.cli import output
from tests.cli.test_cli import run_cli
from tests.conftest import console

_ID = re.compile(r"\b[0-9a-f]{32}\b")


@pytest.fixture
def nested() -> dict[str, str]:
    """A parent run with three children, and a lone run; metrics logged at known times."""
    ids: dict[str, str] = {}
    with shipyard.start_run("nest", name="parent") as parent:
        ids["parent"] = parent.run_id
        for i in range(3):
            with shipyard.start_run("nest", name=f"child-{i}", parent=parent) as child:
                ids[f"child-{i}"] = child.run_id
                child.log_param("depth", i)
                child.log_metric("acc", 0.5 + i / 10)
        parent.log_metric("best_acc", 0.7)
    with shipyard.start_run("nest", name="lone") as lone:
        ids["lone"] = lone.run_id
        lone.log_metric("loss", 1.5)
    return ids


def _rows(out: str) -> list[str]:
    return [line for line in out.splitlines() if line.startswith("│")]


def test_children_are_listed_under_their_parent_indented(
    capsys: pytest.CaptureFixture[str], nested: dict[str, str]
) -> None:
    code, out, _ = run_cli(capsys, "runs", "list", "nest")
    assert code == 0
    names = [row.split("│")[1].strip() for row in _rows(out)]
    assert names == ["lone", "parent", "└ child-0", "└ child-1", "└ child-2"]


def test_run_ids_are_never_wrapped_on_a_narrow_terminal(
    capsys: pytest.CaptureFixture[str], nested: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(output.console, "width", 70)
    code, out, _ = run_cli(capsys, "runs", "list", "nest", "-c", "acc,best_acc,loss,params.depth")
    assert code == 0
    whole = set(_ID.findall(out))
    assert whole == set(nested.values()), out  # each id whole on one line, none cut or folded


def test_columns_are_chosen_by_the_user_or_the_most_recently_logged(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with shipyard.start_run("cols", name="r") as run:
        for i, key in enumerate(["a_old", "b", "c", "d", "e", "f", "z_new"]):
            run.log_metric(key, float(i), timestamp=1_700_000_000_000 + i * 1000)
        run.log_param("lr", "0.1")
        run.set_tag("team", "vision")
    code, out, _ = run_cli(capsys, "runs", "list", "cols")
    header = next(line for line in out.splitlines() if line.startswith("┃"))
    assert "z_new" in header and "a_old" not in header  # the six newest keys, not the first six by name
    code, out, _ = run_cli(capsys, "runs", "list", "cols", "--columns", "lr,a_old", "-c", "tags.team")
    header = next(line for line in out.splitlines() if line.startswith("┃"))
    assert [h.strip() for h in header.split("┃")[5:-1]] == ["params.lr", "a_old", "tags.team"]
    assert "0.1" in out and "vision" in out
    code, out, _ = run_cli(capsys, "runs", "search", "cols", "-c", "lr")  # search loads only what it shows
    assert code == 0 and "params.lr" in out and "z_new" not in out
    code, _, err = run_cli(capsys, "runs", "list", "cols", "-c", "acuracy")
    assert code == 2 and "acuracy" in err and "metrics.a_old" in err and len(err.strip().splitlines()) == 1


FAILING_SCRIPT = """
import shipyard

with shipyard.start_run("scripts", name="inside-with"):
    shipyard.log_metric("loss", 1.0)
    try:
        {}["missing-key"]
    except KeyError as exc:
        raise ValueError("column 'price' has strings") from exc
"""

UNCAUGHT_SCRIPT = """
import shipyard

shipyard.start_run("scripts", name="no-with")
raise RuntimeError("the data folder is empty")
"""


@pytest.mark.parametrize(
    ("script", "name", "last_line"),
    [
        (FAILING_SCRIPT, "inside-with", "ValueError: column 'price' has strings"),
        (UNCAUGHT_SCRIPT, "no-with", "RuntimeError: the data folder is empty"),
    ],
)
def test_show_of_a_failed_run_ends_with_its_traceback(
    tmp_path: Path, script: str, name: str, last_line: str
) -> None:
    (tmp_path / "train.py").write_text(script)
    done = subprocess.run([sys.executable, "train.py"], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 1 and last_line in done.stderr
    shown = console("runs", "show", name, "--traceback-lines", "3")
    assert shown.returncode == 0, shown.stderr
    assert "FAILED" in shown.stdout
    tail = shown.stdout.rstrip().splitlines()
    assert tail[-1] == last_line and "last 3 line(s)" in tail[-4], shown.stdout


PIPELINE = """
import sys

from shipyard.pipelines import component, pipeline


@component
def prepare(rows: int) -> int:
    for i in range(rows):
        print(f"row {i}")
    print("3 rows had no label", file=sys.stderr)
    return rows


@component
def train(rows: int) -> float:
    print(f"training on {rows} rows")
    raise RuntimeError(f"only {rows} rows: too few to train")


@pipeline(name="logs-demo")
def logs_demo(rows: int = 5) -> None:
    train(rows=prepare(rows=rows).output)
"""


def test_logs_and_show_of_a_failed_pipeline_run(tmp_path: Path) -> None:
    (tmp_path / "steps.py").write_text(PIPELINE)
    ran = console("pipeline", "run", "steps:logs_demo", "--json", cwd=tmp_path, timeout=180)
    assert ran.returncode == 1, ran.stdout + ran.stderr
    pipeline_run = json.loads(ran.stdout)["run_id"]
    prepare_run = json.loads(ran.stdout)["steps"]["prepare"]["run_id"]

    logs = console("runs", "logs", pipeline_run, cwd=tmp_path)
    assert logs.returncode == 0, logs.stderr
    out = logs.stdout
    assert (
        out.index("row 0") < out.index("row 4") < out.index("3 rows had no label") < out.index("training on")
    )
    assert "RuntimeError: only 5 rows: too few to train" in out
    assert out.count("RuntimeError: only 5 rows") == 1  # the traceback once, not again from traceback.txt
    assert f"({prepare_run}) stdout.txt <==" in out

    tail = console("runs", "logs", prepare_run, "--tail", "2", cwd=tmp_path)
    assert (
        "row 3\nrow 4\n" in tail.stdout and "row 2" not in tail.stdout and "last 2 of 5 lines" in tail.stdout
    )

    shown = console("runs", "show", pipeline_run, cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert "Child runs (2)" in shown.stdout and prepare_run in shown.stdout
    assert "Traceback of child run" in shown.stdout and "too few to train" in shown.stdout.splitlines()[-2]
    assert f"shipyard runs logs {pipeline_run}" not in shown.stdout  # the steps have the output, not it

    bad = console("runs", "logs", pipeline_run, "--tail", "0", cwd=tmp_path)
    assert bad.returncode == 2 and "--tail" in bad.stderr


def test_logs_of_a_run_without_captured_output_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    with shipyard.start_run("quiet", name="q"):
        pass
    code, out, _ = run_cli(capsys, "runs", "logs", "q")
    assert code == 0 and "has no captured output" in out


@pytest.fixture
def with_files(tmp_path: Path) -> str:
    folder = tmp_path / "src"
    (folder / "model").mkdir(parents=True)
    (folder / "model" / "weights.bin").write_bytes(b"\x00" * 2048)
    (folder / "model" / "config.json").write_text('{"depth": 3}')
    (folder / "report.txt").write_text("ok\n")
    with shipyard.start_run("files", name="with-files") as run:
        run.log_artifacts(folder)
        return run.run_id


def test_artifacts_list_and_download(tmp_path: Path, with_files: str) -> None:
    listed = console("artifacts", "list", with_files, "--json")
    assert listed.returncode == 0, listed.stderr
    assert [f["path"] for f in json.loads(listed.stdout)] == [
        "model/config.json",
        "model/weights.bin",
        "report.txt",
    ]
    only_model = console("artifacts", "list", f"runs:/{with_files}/model")
    assert "weights.bin" in only_model.stdout and "report.txt" not in only_model.stdout
    assert "2 file(s), 2.0 KiB" in only_model.stdout

    got = console("artifacts", "download", with_files, "model", "-o", str(tmp_path / "out"))
    assert got.returncode == 0, got.stderr
    assert (tmp_path / "out" / "model" / "config.json").read_text() == '{"depth": 3}'
    assert not (tmp_path / "out" / "report.txt").exists()
    again = console("artifacts", "download", with_files, "model", "-o", str(tmp_path / "out"))
    assert again.returncode == 2 and "already exists" in again.stderr and "--force" in again.stderr
    (tmp_path / "out" / "model" / "config.json").write_text("edited")
    forced = console("artifacts", "download", with_files, "model", "-o", str(tmp_path / "out"), "--force")
    assert (
        forced.returncode == 0 and (tmp_path / "out" / "model" / "config.json").read_text() == '{"depth": 3}'
    )


@pytest.mark.parametrize(
    ("args", "code", "words"),
    [
        (["list", "{run}", "../../etc/passwd"], 2, "'..' component"),
        (["download", "{run}", "/etc/passwd"], 2, "absolute"),
        (["list", "{run}", "nothere"], 3, "no artifact 'nothere'"),
        (["download", "runs:/", "x"], 2, "names no run"),
        (["download", "runs:/{run}/report.txt", "model"], 2, "give the path once"),
        (["list", "0" * 32], 3, "no run"),
    ],
)
def test_artifacts_bad_input_gets_one_line(with_files: str, args: list[str], code: int, words: str) -> None:
    done = console("artifacts", *(a.format(run=with_files) for a in args))
    assert done.returncode == code and words in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_a_tampered_artifact_record_cannot_write_outside_the_folder(tmp_path: Path, with_files: str) -> None:
    """The recorded path is checked again on download: a store someone edited cannot aim a file elsewhere."""
    import sqlalchemy as sa

    from shipyard.tracking import get_client

    client = get_client()
    with client.stores.db.write() as conn:  # type: ignore[attr-defined]
        conn.execute(sa.text("UPDATE artifacts SET path = '../escaped.txt' WHERE path = 'report.txt'"))
    done = console("artifacts", "download", with_files, "-o", str(tmp_path / "out"))
    assert done.returncode == 2 and "'..' component" in done.stderr
    assert not (tmp_path / "escaped.txt").exists()


def test_pipeline_run_shows_live_step_progress(tmp_path: Path) -> None:
    (tmp_path / "steps.py").write_text(PIPELINE.replace("raise RuntimeError", "return 0.5  #"))
    ran = console("pipeline", "run", "steps:logs_demo", "--progress", cwd=tmp_path, timeout=180)
    assert ran.returncode == 0, ran.stderr
    lines = ran.stdout.splitlines()
    assert lines[0] == "pipeline logs-demo: 2 step(s)"
    assert lines.index("  prepare: running…") < lines.index("  train: running…")
    assert any(re.fullmatch(r"  train: succeeded in \d+\.\ds", line) for line in lines)
    quiet = console("pipeline", "run", "steps:logs_demo", "--json", "--progress", cwd=tmp_path, timeout=180)
    assert json.loads(quiet.stdout)["status"] == "succeeded"  # --json output stays JSON


def test_flags_are_shown_without_a_type_in_help() -> None:
    shown = console("runs", "list", "--help", env=None)
    assert "--json" in shown.stdout and "<bool>" not in shown.stdout
