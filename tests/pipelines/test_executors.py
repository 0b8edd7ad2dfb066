"""The executor contract: every test runs on the local executor (real worker processes) and on a real local
Ray; the Ray half skips with the reason when Ray cannot start here."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

import shipyard
from shipyard.config import Settings
from shipyard.pipelines import compile_pipeline
from shipyard.pipelines.executors import LocalExecutor, PipelineExecutor, StepStatus
from shipyard.tracking import RunStatus, get_client
from tests.pipelines import example_components as ex
from tests.pipelines import executor_components as comps

S, F, K = StepStatus.SUCCEEDED, StepStatus.FAILED, StepStatus.SKIPPED


def test_realistic_pipeline_flows_values_and_artifacts(
    executor: PipelineExecutor, settings: Settings
) -> None:
    result = executor.run(compile_pipeline(comps.realistic), {"n": 10})
    assert result.status is S
    assert {k: r.status for k, r in result.steps.items()} == {"make-data": S, "fit": S, "publish": S}
    assert result.steps["fit"].outputs["output"] == 1.0
    assert result.steps["publish"].outputs["output"] == "mean=4.5"
    assert Path(result.steps["fit"].outputs["model"]).read_text() == "mean=4.5"
    assert "/steps/fit/model" in result.steps["fit"].outputs["model"]

    client = get_client(settings)
    pipeline_run = client.get_run(result.run_id)
    assert pipeline_run.status is RunStatus.FINISHED
    assert pipeline_run.params["n"] == "10"
    fit_run = client.get_run(result.steps["fit"].run_id)
    assert fit_run.parent_run_id == result.run_id
    assert fit_run.status is RunStatus.FINISHED
    assert fit_run.metrics == {"acc": 1.0}
    make_run = shipyard.get_run(result.steps["make-data"].run_id)
    assert make_run.params["n"] == "10"
    names = {a.path for a in client.list_artifacts(make_run.run_id)}
    assert {"stdout.txt", "stderr.txt"} <= names
    assert client.read_artifact(make_run.run_id, "stdout.txt") == b"wrote 10 rows\n"
    assert client.read_artifact(make_run.run_id, "stderr.txt") == b"made data\n"
    quiet = {a.path for a in client.list_artifacts(result.steps["publish"].run_id)}
    assert not {"stdout.txt", "stderr.txt"} & quiet  # nothing printed, nothing stored


def test_if_branch_not_taken_skips_the_step(executor: PipelineExecutor) -> None:
    events: list[tuple[str, str]] = []
    result = executor.run(
        compile_pipeline(comps.realistic),
        {"n": 3},
        on_step=lambda key, r: events.append((key, "started" if r is None else r.status.value)),
    )
    assert result.status is S
    assert result.steps["publish"].status is K
    assert "condition" in (result.steps["publish"].error or "")
    # Every step reports its end; those that ran also their start, before it.
    assert sorted(k for k, e in events if e != "started") == sorted(result.steps)
    for key, step in result.steps.items():
        ran = [e for k, e in events if k == key]
        assert ran == (["started", step.status.value] if step.status is S else [step.status.value])


def test_parallel_for_fans_out_and_collects(executor: PipelineExecutor) -> None:
    result = executor.run(compile_pipeline(ex.fan_out), {"ns": [1, 2, 3]})
    assert result.status is S
    assert [result.steps[f"score[{i}]"].outputs["output"] for i in range(3)] == [0.1, 0.2, 0.3]
    assert result.steps["summarize"].outputs["output"] == 0.3
    assert result.steps["score-2[1]"].outputs["output"] == 0.5


def test_raising_step_records_traceback_and_skips_dependents(
    executor: PipelineExecutor, settings: Settings
) -> None:
    result = executor.run(compile_pipeline(comps.failing))
    assert result.status is F
    bad = result.steps["boom"]
    assert bad.status is F and "ValueError: boom 1" in (bad.error or "")
    assert result.steps["echo"].status is K
    assert result.steps["echo-2"].status is S
    client = get_client(settings)
    assert client.get_run(result.run_id).status is RunStatus.FAILED
    assert client.get_run(bad.run_id).status is RunStatus.FAILED
    assert "traceback.txt" in {a.path for a in client.list_artifacts(bad.run_id)}


@pytest.mark.parametrize("use_sys", [False, True])
def test_worker_crash_fails_only_that_step(executor: PipelineExecutor, use_sys: bool) -> None:
    result = executor.run(compile_pipeline(comps.crashing), {"use_sys": use_sys})
    assert result.status is F
    dead = result.steps["hard-exit"]
    assert dead.status is F and "worker process died" in (dead.error or "")
    if isinstance(executor, LocalExecutor):
        assert "exit code 3" in (dead.error or "")
    assert result.steps["echo"].status is K
    assert result.steps["echo-2"].outputs == {"output": 5}
    assert result.steps["echo-3"].outputs == {"output": 6}


def test_timeout_kills_the_attempt(executor: PipelineExecutor) -> None:
    result = executor.run(compile_pipeline(comps.timing_out))
    assert result.steps["sleepy"].status is F
    assert "timed out after 1" in (result.steps["sleepy"].error or "")
    assert result.steps["sleepy"].duration_s < 10
    assert result.steps["echo"].status is S


def test_retries_until_success(executor: PipelineExecutor, tmp_path: Path) -> None:
    marker = str(tmp_path / "marker")
    result = executor.run(compile_pipeline(comps.retrying), {"marker": marker, "fail_times": 2})
    assert result.status is S
    assert result.steps["flaky"].attempts == 3
    assert result.steps["flaky"].outputs == {"output": 3}


def test_retries_exhausted_fails(executor: PipelineExecutor, tmp_path: Path) -> None:
    marker = str(tmp_path / "marker")
    result = executor.run(compile_pipeline(comps.retrying), {"marker": marker, "fail_times": 5})
    assert result.steps["flaky"].status is F
    assert result.steps["flaky"].attempts == 3
    assert "attempt 3 fails" in (result.steps["flaky"].error or "")


def test_wrong_return_type_and_missing_artifact_fail(executor: PipelineExecutor) -> None:
    result = executor.run(compile_pipeline(comps.mistyped))
    wrong = result.steps["wrong-type"].error or ""
    assert "declared int" in wrong and "returned str" in wrong
    missing = result.steps["forgets"].error or ""
    assert "did not write artifact output 'model'" in missing and "/steps/forgets/model" in missing


def test_exit_handler_runs_even_when_guarded_steps_fail(executor: PipelineExecutor) -> None:
    result = executor.run(compile_pipeline(comps.guarded_failure))
    assert result.status is F
    assert result.steps["boom"].status is F
    assert result.steps["echo-2"].status is K
    assert result.steps["echo"].status is S and result.steps["echo"].outputs["output"] == 7


def test_example_pipeline_with_exit_handler_succeeds(executor: PipelineExecutor) -> None:
    result = executor.run(compile_pipeline(ex.guarded))
    assert result.status is S
    assert {k: r.status for k, r in result.steps.items()} == {"ingest": S, "validate": S, "notify": S}


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_ctrl_c_or_sigterm_kills_running_steps_and_marks_the_runs_killed(tmp_path: Path, signum: int) -> None:

    home = tmp_path / "home"
    code = (
        "from shipyard.pipelines import compile_pipeline\n"
        "from shipyard.pipelines.executors import LocalExecutor\n"
        "from tests.pipelines.executor_components import timing_out\n"
        "print('START', flush=True)\n"
        "LocalExecutor(max_parallel=1).run(compile_pipeline(timing_out))\n"
    )
    env = {**os.environ, "SHIPYARD_HOME": str(home), "PYTHONPATH": str(Path(__file__).parents[2])}
    proc = subprocess.Popen(
        [sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert proc.stdout is not None and proc.stdout.readline().startswith(b"START")
    client = shipyard.get_client(shipyard.Settings.load(environ={"SHIPYARD_HOME": str(home)}))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # wait until the step's nested run exists, i.e. it is running
        time.sleep(0.1)
        try:
            if any(r.tags.get("shipyard.step") == "sleepy" for r in client.search_runs(None)):
                break
        except Exception:  # the store may not exist yet
            continue
    workers = psutil.Process(proc.pid).children(recursive=True)
    assert workers  # the step's worker process is running
    proc.send_signal(signum)
    proc.wait(timeout=30)
    _, alive = psutil.wait_procs(workers, timeout=10)
    assert not alive  # no orphaned worker keeps running the step
    found = client.search_runs(None)
    pipeline_run = next(r for r in found if r.parent_run_id is None)
    sleepy_run = next(r for r in found if r.tags.get("shipyard.step") == "sleepy")
    assert pipeline_run.status is RunStatus.KILLED
    assert sleepy_run.status is RunStatus.KILLED
    assert all(r.status is not RunStatus.RUNNING for r in found)


def test_steps_record_lineage_from_dataset_to_model(executor: PipelineExecutor, settings: Settings) -> None:
    from shipyard.lineage import LineageClient

    result = executor.run(compile_pipeline(comps.realistic), {"n": 10}, cache=False)
    model_path = result.steps["fit"].outputs["model"]
    graph = LineageClient(get_client(settings)).upstream("file://" + model_path)
    steps = {e.name for e in graph.executions.values()}
    assert steps == {"fit", "make-data"}
    assert {e.pipeline_run_id for e in graph.executions.values()} == {result.run_id}
    data = next(a for a in graph.artifacts.values() if a.type.value == "Dataset")
    assert data.uri == "file://" + result.steps["make-data"].outputs["data"] and len(data.sha256) == 64


def test_a_step_logs_into_its_own_run_which_the_engine_ends(
    executor: PipelineExecutor, settings: Settings
) -> None:
    result = executor.run(compile_pipeline(comps.self_logging), {"epochs": 3})
    step = result.steps["logs-into-its-run"]
    assert step.status is S
    assert step.outputs["output"] == step.run_id  # the component saw its step's run as the active run
    client = get_client(settings)
    run = client.get_run(step.run_id)
    assert run.status is RunStatus.FINISHED
    assert run.tags["logged.by"] == "component"
    assert [m.value for m in client.metric_history(step.run_id, "loss")] == [1.0, 0.5, 1.0 / 3]


def test_a_step_uses_the_executors_store_not_the_environments(
    executor: PipelineExecutor, tmp_path: Path
) -> None:
    elsewhere = Settings.load(environ={"SHIPYARD_HOME": str(tmp_path / "elsewhere")})
    assert elsewhere.db_url != shipyard.config.get_settings().db_url
    result = type(executor)(max_parallel=1, settings=elsewhere).run(compile_pipeline(comps.store_report))
    assert result.steps["reports-store"].outputs["output"] == elsewhere.db_url


@pytest.mark.parametrize(("threshold", "published"), [(0.5, True), (0.95, True), (1.0, False)])
def test_a_condition_compares_with_a_pipeline_parameter(
    executor: PipelineExecutor, threshold: float, published: bool
) -> None:
    spec = compile_pipeline(comps.thresholded)
    result = executor.run(spec, {"n": 10, "threshold": threshold}, cache=False)
    assert result.steps["publish"].status is (S if published else K)


def test_local_workers_see_the_engines_environment_as_it_is_now(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    executor = LocalExecutor(max_parallel=1, settings=settings)
    spec = compile_pipeline(comps.env_report)
    executor.run(spec, {"name": "SHIPYARD_TEST_MARK"}, cache=False)  # the fork server is up by now
    monkeypatch.setenv("SHIPYARD_TEST_MARK", "set later")
    result = executor.run(spec, {"name": "SHIPYARD_TEST_MARK"}, cache=False)
    assert result.steps["reads-env"].outputs["output"] == "set later"


def test_captured_output_folders_are_removed_after_the_run(
    executor: PipelineExecutor, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tempfile

    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    result = executor.run(compile_pipeline(comps.failing))  # output and a traceback were captured
    assert result.status is F
    assert list(scratch.glob("shipyard-steps-*")) == []  # (pymp-*: the fork server's socket, not ours)


def test_the_cli_names_an_unreachable_ray_address_from_the_settings(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "SHIPYARD_HOME": str(tmp_path / "home"),
        "SHIPYARD_RAY_ADDRESS": "127.0.0.1:1",
        "PYTHONPATH": str(Path(__file__).parents[2]),
    }
    target = "tests.pipelines.executor_components:realistic"
    done = subprocess.run(
        [sys.executable, "-m", "shipyard.cli", "pipeline", "run", target, "--executor", "ray"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0
    assert done.stderr.strip().splitlines()[-1] == (
        "error: cannot reach a Ray cluster at '127.0.0.1:1': [Errno 111] Connection refused"
    )
