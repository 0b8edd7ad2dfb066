"""Pipelines on the platform server: a real ``shipyard server`` process with sign-in runs submitted specs in
real driver processes (local executor), reports their steps and logs, cancels and resumes them, runs the
schedules created through its API by itself, and imports only code installed on it."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from shipyard.auth.accounts import Accounts
from shipyard.config import Settings
from shipyard.pipelines import compile_pipeline
from shipyard.pipelines.remote import RemotePipelines
from shipyard.pipelines.schedule_store import ScheduleClient
from shipyard.store import open_server_stores
from shipyard.tracking import get_client
from tests.conftest import console, make_settings, server_process, sign_up
from tests.pipelines import cache_components as cc
from tests.pipelines import executor_components as comps
from tests.server import napping_components

# The server imports the tests' components from the repository (its --pipelines-path), as it would a
# deployment's pipeline code.
REPO = Path(__file__).resolve().parents[2]
REALISTIC = compile_pipeline(comps.realistic).to_yaml()


@dataclass
class Site:
    url: str
    root: Path
    tokens: dict[str, str]

    def call(self, method: str, path: str, user: str | None = "ed", **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.tokens[user]}"} if user else {}
        return httpx.request(method, f"{self.url}/api/v1{path}", headers=headers, timeout=60, **kwargs)

    def submit(self, spec: str, parameters: dict[str, Any] | None = None, **fields: Any) -> httpx.Response:
        return self.call(
            "POST", "/pipelines/runs", json={"spec": spec, "parameters": parameters or {}, **fields}
        )

    def wait(self, run_id: str, timeout_s: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while True:
            state = self.call("GET", f"/pipelines/runs/{run_id}").json()
            if state["status"] not in ("RUNNING", "LOST") or time.monotonic() > deadline:
                return state
            time.sleep(0.2)

    def client_settings(self, user: str = "ed") -> Settings:
        return make_settings(
            self.root / f"client-{user}", tracking_uri=self.url, tracking_token=self.tokens[user]
        )


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    root = tmp_path_factory.mktemp("pipelines-server")
    home = root / "server"
    accounts = Accounts(open_server_stores(make_settings(home)).auth)
    tokens = sign_up(accounts, [("root", "admin"), ("ed", "editor"), ("viv", "viewer")])
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHIPYARD_")}
    env["SHIPYARD_HOME"] = str(home)
    args = [
        "--auth",
        "--artifacts",
        str(root / "files"),
        "--pipelines-path",
        str(REPO),
        "--scheduler-interval",
        "0.3",
        "--log-level",
        "warning",
    ]
    with server_process(args, env, log=root / "server.log") as (url, _):
        yield Site(url, root, tokens)


def _steps(state: dict[str, Any]) -> dict[str, str]:
    return {s["key"]: s["status"] for s in state["steps"]}


def test_a_submitted_pipeline_runs_every_step_and_keeps_what_each_printed(site: Site) -> None:
    answer = site.submit(REALISTIC, {"n": 10}, experiment="served")
    assert answer.status_code == 202, answer.text
    run_id = answer.json()["run_id"]
    # The run exists as the answer arrives.
    assert site.call("GET", f"/pipelines/runs/{run_id}").status_code == 200

    state = site.wait(run_id)
    assert state["status"] == "FINISHED"
    assert _steps(state) == {"make-data": "FINISHED", "fit": "FINISHED", "publish": "FINISHED"}
    assert all(s["attempts"] == 1 and not s["cached"] and s["run_id"] for s in state["steps"])
    assert state["user"] == "ed" and state["pipeline"] == "realistic"

    logs = site.call("GET", f"/pipelines/runs/{run_id}/steps/make-data/logs").json()
    assert logs["stdout"] == "wrote 10 rows\n" and logs["stderr"] == "made data\n"
    missing = site.call("GET", f"/pipelines/runs/{run_id}/steps/nope/logs")
    assert missing.status_code == 404 and "no step 'nope'" in missing.json()["error"]["message"]

    listed = site.call("GET", "/pipelines/runs", params={"experiment": "served"}).json()
    assert [r["run_id"] for r in listed["runs"]] == [run_id]
    # The same through the team-mode client.
    remote = RemotePipelines(site.client_settings())
    assert remote.status(run_id).steps[0].key == "make-data"
    assert remote.logs(run_id, "make-data").stdout == "wrote 10 rows\n"


def test_cancel_ends_a_running_pipeline_and_its_step_killed_within_seconds(site: Site) -> None:
    spec = compile_pipeline(napping_components.napping).to_yaml()
    run_id = site.submit(spec, experiment="naps").json()["run_id"]
    deadline = time.monotonic() + 30
    while _steps(site.call("GET", f"/pipelines/runs/{run_id}").json()).get("nap") != "RUNNING":
        assert time.monotonic() < deadline, "the step never started"
        time.sleep(0.2)

    viewer = site.call("POST", f"/pipelines/runs/{run_id}/cancel", user="viv")
    assert viewer.status_code == 403
    cancelled = site.call("POST", f"/pipelines/runs/{run_id}/cancel")
    assert cancelled.status_code == 202, cancelled.text
    started = time.monotonic()
    state = site.wait(run_id, timeout_s=15)
    assert state["status"] == "KILLED" and time.monotonic() - started < 10
    assert _steps(state) == {"nap": "KILLED"}
    again = site.call("POST", f"/pipelines/runs/{run_id}/cancel")
    assert again.status_code == 409 and "not running" in again.json()["error"]["message"]
    audit = site.call("GET", "/audit", user="root").json()
    cancels = [(e["user"], e["status"]) for e in audit if e["path"].endswith(f"{run_id}/cancel")]
    assert sorted(cancels) == [("ed", 202), ("ed", 409), ("viv", 403)]


def test_resume_of_a_failed_pipeline_reuses_its_finished_steps(site: Site, tmp_path: Path) -> None:
    counter, marker = tmp_path / "counter", tmp_path / "marker"
    spec = compile_pipeline(cc.resumable).to_yaml()
    params = {"counter": str(counter), "marker": str(marker)}
    failed_id = site.submit(spec, params, experiment="resumed", cache=False).json()["run_id"]
    failed = site.wait(failed_id)
    assert failed["status"] == "FAILED" and _steps(failed)["gate"] == "FAILED"

    marker.touch()
    answer = site.call("POST", f"/pipelines/runs/{failed_id}/resume")
    assert answer.status_code == 202, answer.text
    resumed = site.wait(answer.json()["run_id"])
    assert resumed["status"] == "FINISHED" and resumed["resumed_from"] == failed_id
    cached = {s["key"] for s in resumed["steps"] if s["cached"]}
    assert cached == {"produce", "bump"}
    assert cc.executions(str(counter)) == ["bump", "consume", "gate", "gate", "produce"]
    done = site.call("POST", f"/pipelines/runs/{resumed['run_id']}/resume")
    assert done.status_code == 400 and "nothing to resume" in done.json()["error"]["message"]


def test_only_signed_in_editors_may_submit(site: Site) -> None:
    body = {"spec": REALISTIC, "experiment": "refused"}
    anonymous = site.call("POST", "/pipelines/runs", user=None, json=body)
    assert anonymous.status_code == 401
    viewer = site.call("POST", "/pipelines/runs", user="viv", json=body)
    assert viewer.status_code == 403 and "editor role" in viewer.json()["error"]["message"]
    listed = site.call("GET", "/pipelines/runs", user="root", params={"experiment": "refused"})
    assert listed.status_code == 404  # no run (and so no experiment) was made for either


def test_a_bad_spec_step_or_parameter_is_named_before_anything_runs(site: Site) -> None:
    data = yaml.safe_load(REALISTIC)
    del data["steps"]["fit"]["component"]
    broken = site.submit(yaml.safe_dump(data))
    assert broken.status_code == 400 and "steps.fit" in broken.json()["error"]["message"]

    mistyped = site.submit(REALISTIC, {"n": "many"})
    assert mistyped.status_code == 400 and "parameter 'n'" in mistyped.json()["error"]["message"]
    unknown = site.submit(REALISTIC, {"bogus": 1})
    assert unknown.status_code == 400 and "bogus" in unknown.json()["error"]["message"]

    changed = yaml.safe_load(REALISTIC)
    changed["steps"]["fit"]["component"]["source_sha256"] = "0" * 64
    stale = site.submit(yaml.safe_dump(changed))
    assert stale.status_code == 400
    assert (
        "step 'fit'" in stale.json()["error"]["message"]
        and "compiled from" in stale.json()["error"]["message"]
    )


def test_a_spec_cannot_make_the_server_import_code_from_its_project_dir(site: Site, tmp_path: Path) -> None:
    """The attack: a spec naming a module that exists only in a folder it names, or installed code that is
    not a component (os.system), must not run."""
    planted = tmp_path / "planted"
    planted.mkdir()
    pwned = tmp_path / "pwned"
    (planted / "evil_steps.py").write_text(
        f"from pathlib import Path\nPath({str(pwned)!r}).write_text('imported')\n"
        "from shipyard.pipelines import component\n\n"
        "@component\ndef make_data(n: int) -> int:\n    return n\n"
    )
    data = yaml.safe_load(REALISTIC)
    data["project_dir"] = str(planted)
    data["steps"]["make-data"]["component"]["module"] = "evil_steps"
    answer = site.submit(yaml.safe_dump(data))
    assert answer.status_code == 400, answer.text
    message = answer.json()["error"]["message"]
    assert "step 'make-data'" in message and "evil_steps" in message and str(planted) not in message
    assert not pwned.exists()

    data = yaml.safe_load(REALISTIC)
    data["steps"]["make-data"]["component"].update(module="os", function="system")
    shell = site.submit(yaml.safe_dump(data))
    assert shell.status_code == 400 and "not a @component" in shell.json()["error"]["message"]


def test_the_server_runs_a_schedule_created_through_its_api(site: Site) -> None:
    """No scheduler runs here: the server's own loop claims the due tick and runs it."""
    client = get_client(site.client_settings())
    schedules = ScheduleClient(client)
    spec = compile_pipeline(comps.realistic)
    schedules.create(
        spec,
        "0 * * * *",
        name="served-hourly",
        experiment="scheduled",
        now=datetime.now(UTC) - timedelta(hours=1),
    )
    deadline = time.monotonic() + 60
    while (found := schedules.get("served-hourly")).last_status is None:
        assert time.monotonic() < deadline, "the server never ran the due schedule"
        time.sleep(0.3)
    assert found.last_status == "succeeded" and found.last_run_id
    run = client.get_run(found.last_run_id)
    assert run.status.value == "FINISHED" and run.tags["shipyard.schedule"] == "served-hourly"
    assert found.next_run_at > int(time.time() * 1000)
    # Who set it up owns it and its runs, not the server's operating-system user.
    assert found.created_by == "ed" and run.user == "ed"
    assert site.call("GET", f"/pipelines/runs/{found.last_run_id}").json()["user"] == "ed"

    # A row that names another creator is stored as the caller's: nobody schedules runs as someone else.
    forged = ScheduleClient(client)
    real_insert = forged.backend.insert
    forged.backend.insert = lambda row: real_insert({**row, "created_by": "root"})  # type: ignore[method-assign]
    made = forged.create(spec, "0 3 * * *", name="forged-owner", experiment="forged-owner")
    assert made.created_by == "ed" and forged.get("forged-owner").created_by == "ed"
    forged.delete("forged-owner")


def test_the_cli_submits_waits_and_reads_logs_in_team_mode(site: Site, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHIPYARD_")}
    env.update(SHIPYARD_HOME=str(tmp_path / "home"), SHIPYARD_CEILING_DIRECTORIES=str(tmp_path))
    outside = console(
        "pipeline", "submit", "tests.pipelines.executor_components:realistic", cwd=REPO, env=env
    )
    assert outside.returncode == 1 and "SHIPYARD_TRACKING_URI" in outside.stderr
    assert len(outside.stderr.strip().splitlines()) == 1

    env.update(SHIPYARD_TRACKING_URI=site.url, SHIPYARD_TRACKING_TOKEN=site.tokens["ed"])
    target = "tests.pipelines.executor_components:realistic"
    done = console(
        "pipeline",
        "submit",
        target,
        "-p",
        "n=10",
        "-e",
        "cli",
        "--no-cache",
        "--wait",
        "--json",
        cwd=REPO,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    run_id = yaml.safe_load(done.stdout)["run_id"]
    logs = console("pipeline", "logs", run_id, "make-data", env=env)
    assert logs.returncode == 0 and logs.stdout == "wrote 10 rows\n", logs.stderr
    failing = console(
        "pipeline", "submit", "tests.pipelines.executor_components:failing", "--wait", cwd=REPO, env=env
    )
    assert failing.returncode == 1 and "at step(s) boom" in failing.stderr


def test_the_cli_resumes_a_failed_run_on_the_server(site: Site, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHIPYARD_")}
    env.update(SHIPYARD_HOME=str(tmp_path / "home"), SHIPYARD_CEILING_DIRECTORIES=str(tmp_path))
    env.update(SHIPYARD_TRACKING_URI=site.url, SHIPYARD_TRACKING_TOKEN=site.tokens["ed"])
    failing = "tests.pipelines.executor_components:failing"
    first = console("pipeline", "submit", failing, "--wait", "--json", cwd=REPO, env=env)
    assert first.returncode == 1
    failed_id = yaml.safe_load(first.stdout)["run_id"]
    local_wait = console("pipeline", "resume", failed_id, "--wait", env=env)
    assert local_wait.returncode == 2 and "--on-server" in local_wait.stderr
    again = console("pipeline", "resume", failed_id, "--on-server", "--wait", "--json", env=env)
    assert again.returncode == 1 and "at step(s) boom" in again.stderr  # the step fails again, there
    resumed = yaml.safe_load(again.stdout)
    assert resumed["run_id"] != failed_id and resumed["resumed_from"] == failed_id


@pytest.mark.slow
def test_a_ray_executor_on_the_server_passes_datasets_between_steps_through_its_files(
    tmp_path: Path, ray_cluster: Any
) -> None:
    """With --executor ray on a running cluster (this test process's) the steps run in Ray workers that do
    not have the driver's environment: each task carries the server's artifact destination, so a step reads
    what the one before it wrote."""
    home = tmp_path / "server"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHIPYARD_")}
    env["SHIPYARD_HOME"] = str(home)
    env["SHIPYARD_RAY_ADDRESS"] = ray_cluster.get_runtime_context().gcs_address
    args = ["--artifacts", str(tmp_path / "files"), "--pipelines-path", str(REPO), "--executor", "ray"]
    with server_process([*args, "--log-level", "warning"], env, log=tmp_path / "server.log") as (url, _):
        answer = httpx.post(
            f"{url}/api/v1/pipelines/runs",
            json={"spec": REALISTIC, "parameters": {"n": 10}, "experiment": "on-ray"},
            timeout=60,
        )
        assert answer.status_code == 202, answer.text
        run_id = answer.json()["run_id"]
        deadline = time.monotonic() + 240
        while True:
            state = httpx.get(f"{url}/api/v1/pipelines/runs/{run_id}", timeout=30).json()
            if state["status"] not in ("RUNNING", "LOST") or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert state["status"] == "FINISHED", (state, (tmp_path / "server.log").read_text()[-3000:])
        assert _steps(state) == {"make-data": "FINISHED", "fit": "FINISHED", "publish": "FINISHED"}
