"""The issue's "done when": several machines' worth of client processes share one signed-in server with
two workers on PostgreSQL and its artifacts in a bucket (moto's S3 server on loopback)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from shipyard.auth.accounts import Accounts
from shipyard.store import open_server_stores
from shipyard.store.artifacts import ArtifactStore
from shipyard.tracking.client import TrackingClient
from tests.conftest import PostgresCluster, S3Server, make_settings, server_process, sign_up

pytestmark = [pytest.mark.s3, pytest.mark.postgres, pytest.mark.slow]

CLIENT = """
import sys
import shipyard

with shipyard.start_run("shared", name=sys.argv[1]) as run:
    run.log_params({"machine": sys.argv[1]})
    for step in range(2000):
        run.log_metric("loss", 1 / (step + 1), step=step)
    run.log_text(f"notes of {sys.argv[1]}", "notes.txt")
print(run.run_id)
"""


def test_client_processes_share_a_server_on_postgresql_with_artifacts_in_a_bucket(
    postgres: PostgresCluster, s3_server: S3Server, tmp_path: Path
) -> None:
    db_url, root = postgres.create_database(), s3_server.root("team")
    home = tmp_path / "server-home"
    accounts = Accounts(open_server_stores(make_settings(home, db_url=db_url)).auth)
    tokens = sign_up(accounts, [("ops", "admin"), ("ana", "editor"), ("ben", "editor"), ("viv", "viewer")])
    env = {
        **os.environ,
        "SHIPYARD_HOME": str(home),
        "SHIPYARD_ARTIFACT_ROOT": root,
        "SHIPYARD_ARTIFACT_STORAGE_OPTIONS": s3_server.storage_options_json,
    }
    args = ["--auth", "--store", db_url, "--workers", "2", "--log-level", "warning"]
    (tmp_path / "client.py").write_text(CLIENT)
    with server_process(args, env, log=tmp_path / "server.log") as (url, _):
        # The admin sets the team's experiment up; its members may write to it.
        admin = {"Authorization": f"Bearer {tokens['ops']}"}
        assert (
            httpx.post(f"{url}/api/v1/experiments", json={"name": "shared"}, headers=admin).status_code == 201
        )
        for member in ("ana", "ben"):
            grant = {"user": member, "resource": "experiment:shared", "permission": "EDIT"}
            assert httpx.put(f"{url}/api/v1/grants", json=grant, headers=admin).status_code == 200
        clients = []
        for i in range(6):  # two "machines" of three processes, each its own home and token
            user = "ana" if i < 3 else "ben"
            team = {
                **os.environ,
                "SHIPYARD_TRACKING_URI": url,
                "SHIPYARD_TRACKING_TOKEN": tokens[user],
                "SHIPYARD_HOME": str(tmp_path / f"machine-{i // 3}"),
            }
            team.pop("SHIPYARD_ARTIFACT_ROOT", None)
            clients.append(
                subprocess.Popen(
                    [sys.executable, "client.py", f"m{i // 3}-p{i}"],
                    cwd=tmp_path,
                    env=team,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                )
            )
        run_ids = []
        for client in clients:
            out, err = client.communicate(timeout=240)
            assert client.returncode == 0, err[-3000:]
            run_ids.append(out.strip().splitlines()[-1])
        reader = TrackingClient(
            make_settings(tmp_path / "viewer", tracking_uri=url, tracking_token=tokens["viv"])
        )
        for run_id in run_ids:
            run = reader.get_run(run_id)
            assert run.user in ("ana", "ben") and run.status.value == "FINISHED"
            assert len(reader.metric_history(run_id, "loss")) == 2000
            assert [a.path for a in reader.list_artifacts(run_id)] == ["notes.txt"]
    bucket = ArtifactStore(root, storage_options=s3_server.storage_options)
    notes = [info.path for info in bucket.list(recursive=True) if info.path.endswith("/notes.txt")]
    assert len(notes) == 6, notes
    assert not list(tmp_path.glob("machine-*/artifacts"))
