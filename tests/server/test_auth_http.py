"""Sign-in on a real platform server: team-mode scripts with tokens, roles and grants end to end, Basic
passwords and their throttling, body limits, the audit log, TLS, and secrets kept out of logs and the DB."""

from __future__ import annotations

import base64
import os
import ssl
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

import shipyard
from shipyard.auth.accounts import FREE_FAILURES, Accounts
from shipyard.auth.records import Permission, ResourceType
from shipyard.config import Settings
from shipyard.errors import Forbidden, StoreError, Unauthorized
from shipyard.registry.client import RegistryClient
from shipyard.store import open_server_stores
from shipyard.tracking.client import TrackingClient
from shipyard.tracking.records import now_ms
from tests.conftest import (
    console,
    make_settings,
    platform_server,
    self_signed_certificate,
    server_process,
    sign_up,
)

PASSWORD = "alice's long password"


@dataclass
class Team:
    url: str
    server: Settings
    tokens: dict[str, str]
    tmp: Path

    def client(self, user: str | None) -> Settings:
        extra = {"tracking_token": self.tokens[user]} if user else {}
        return make_settings(self.tmp / f"client-{user}", tracking_uri=self.url, **extra)


@pytest.fixture
def team(tmp_path: Path) -> Iterator[Team]:
    server = make_settings(tmp_path / "server")
    accounts = Accounts(open_server_stores(server).auth)
    tokens = sign_up(
        accounts, [("root", "admin", None), ("alice", "editor", PASSWORD), ("bob", "viewer", None)]
    )
    with platform_server(server, require_auth=True, max_body_bytes=64 << 10) as url:
        yield Team(url, server, tokens, tmp_path)


def test_team_mode_scripts_sign_in_with_their_token(team: Team) -> None:
    alice = team.client("alice")
    with shipyard.start_run("churn", settings=alice) as run:
        run.log_params({"lr": 0.1})
        for step in range(20):
            run.log_metric("loss", 1 / (step + 1), step=step)
    stored = TrackingClient(alice).get_run(run.run_id)
    assert stored.user == "alice"  # the signed-in user, not the server's OS user
    assert stored.metrics["loss"] == pytest.approx(1 / 20)

    bob = team.client("bob")  # a viewer reads (the default permission is READ) but never writes
    assert [r.run_id for r in TrackingClient(bob).search_runs("churn")] == [run.run_id]
    with pytest.raises(Forbidden, match=r"user 'bob' \(viewer\) may not create experiment 'mine'"):
        shipyard.start_run("mine", settings=bob)
    with pytest.raises(Forbidden, match="has READ on experiment 'churn' and needs EDIT"):
        viewer = TrackingClient(bob)
        viewer.log_params(viewer.run_pk(run.run_id), {"x": 1})

    with pytest.raises(Unauthorized, match="authentication required"):
        TrackingClient(team.client(None)).list_experiments()
    forged = make_settings(
        team.tmp / "forged", tracking_uri=team.url, tracking_token="shy_" + "0" * 32 + "_" + "A" * 43
    )
    with pytest.raises(Unauthorized, match="unknown API token"):
        TrackingClient(forged).list_experiments()


def test_the_creator_manages_what_it_created_and_grants_open_it_to_others(team: Team) -> None:
    strict_root = make_settings(team.tmp / "root", tracking_uri=team.url, tracking_token=team.tokens["root"])
    alice = team.client("alice")
    TrackingClient(alice).create_experiment("alice-only")
    headers = {"Authorization": f"Bearer {team.tokens['alice']}"}
    mine = httpx.get(f"{team.url}/api/v1/grants", headers=headers).json()
    assert [(g["resource"], g["permission"]) for g in mine] == [("alice-only", "MANAGE")]
    # Alice (MANAGE) may grant on her experiment; bob may not grant himself more.
    body = {"user": "bob", "resource": "experiment:alice-only", "permission": "NO_PERMISSIONS"}
    assert httpx.put(f"{team.url}/api/v1/grants", json=body, headers=headers).status_code == 200
    experiment_id = TrackingClient(alice).get_experiment("alice-only").experiment_id
    with shipyard.start_run("alice-only", settings=alice):
        pass
    with pytest.raises(Forbidden, match="has NO_PERMISSIONS on experiment 'alice-only'"):
        TrackingClient(team.client("bob")).search_runs("alice-only")
    bob_headers = {"Authorization": f"Bearer {team.tokens['bob']}"}
    search = {"experiment_ids": [experiment_id]}
    assert httpx.post(f"{team.url}/api/v1/runs/search", json=search, headers=bob_headers).json() == []
    assert len(httpx.post(f"{team.url}/api/v1/runs/search", json=search, headers=headers).json()) == 1
    body["permission"] = "MANAGE"
    assert httpx.put(f"{team.url}/api/v1/grants", json=body, headers=bob_headers).status_code == 403
    # A grant naming an unknown user or resource is 404.
    for bad in ({**body, "user": "nobody"}, {**body, "resource": "experiment:nope"}):
        answer = httpx.put(f"{team.url}/api/v1/grants", json=bad, headers=headers)
        assert answer.status_code == 404, answer.text
    assert TrackingClient(strict_root).get_experiment("alice-only").name == "alice-only"


def test_grants_follow_a_renamed_experiment_or_model_and_stale_ones_on_the_new_name_do_not_open_it(
    team: Team,
) -> None:
    alice, bob = TrackingClient(team.client("alice")), TrackingClient(team.client("bob"))
    alice_headers = {"Authorization": f"Bearer {team.tokens['alice']}"}
    experiment = alice.create_experiment("alice-only")
    closed = {"user": "bob", "resource": "experiment:alice-only", "permission": "NO_PERMISSIONS"}
    assert httpx.put(f"{team.url}/api/v1/grants", json=closed, headers=alice_headers).status_code == 200
    RegistryClient(alice).create_model("alice-model")
    # Grants left behind on the new names (a deleted namesake's) must not carry over to the renamed ones.
    auth = open_server_stores(team.server).auth
    for kind, name in ((ResourceType.EXPERIMENT, "renamed"), (ResourceType.REGISTERED_MODEL, "alice-clf")):
        auth.put_grant("bob", kind, name, Permission.MANAGE, "root", now_ms())

    with pytest.raises(Forbidden, match="needs MANAGE"):
        bob.rename_experiment("alice-only", "bobs")
    assert alice.rename_experiment(experiment.experiment_id, "renamed").name == "renamed"
    with pytest.raises(Forbidden, match="has NO_PERMISSIONS on experiment 'renamed'"):
        bob.get_experiment(experiment.experiment_id)
    with pytest.raises(Forbidden, match="needs MANAGE"):
        RegistryClient(bob).rename_model("alice-model", "bobs-model")
    assert RegistryClient(alice).rename_model("alice-model", "alice-clf").name == "alice-clf"
    with pytest.raises(Forbidden, match="has READ on registered model 'alice-clf' and needs EDIT"):
        RegistryClient(bob).set_model_tags("alice-clf", {"owner": "bob"})
    mine = httpx.get(f"{team.url}/api/v1/grants", headers=alice_headers).json()
    assert sorted((g["resource_type"], g["resource"], g["permission"]) for g in mine) == [
        ("experiment", "renamed", "MANAGE"),
        ("registered_model", "alice-clf", "MANAGE"),
    ]


def test_basic_passwords_work_and_repeated_failures_lock_the_user(team: Team) -> None:
    def basic(user: str, password: str) -> dict[str, str]:
        return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}

    me = httpx.get(f"{team.url}/api/v1/users/me", headers=basic("alice", PASSWORD))
    assert me.json() == {
        "user": "alice",
        "role": "editor",
        "authenticated": True,
        "via": "password",
        "grants": [],
    }
    for _ in range(FREE_FAILURES):
        wrong = httpx.get(f"{team.url}/api/v1/users/me", headers=basic("alice", "guess"))
        assert (
            wrong.status_code == 401 and wrong.json()["error"]["message"] == "invalid user name or password"
        )
    locked = httpx.get(f"{team.url}/api/v1/users/me", headers=basic("alice", PASSWORD))
    assert locked.status_code == 401
    assert "too many failed logins for 'alice'" in locked.json()["error"]["message"]
    assert locked.headers["www-authenticate"].startswith("Bearer")


def test_bodies_over_the_limit_get_413(team: Team) -> None:
    headers = {"Authorization": f"Bearer {team.tokens['alice']}", "Content-Type": "application/json"}
    big = b'{"experiment_ids": ["' + b"x" * (70 << 10) + b'"]}'
    answer = httpx.post(f"{team.url}/api/v1/runs/search", content=big, headers=headers)
    assert answer.status_code == 413 and answer.json()["error"]["code"] == "TOO_LARGE"

    def chunked() -> Iterator[bytes]:  # no Content-Length: caught while streaming
        yield b'{"experiment_ids": ["'
        for _ in range(80):
            yield b"x" * 1024
        yield b'"]}'

    answer = httpx.post(f"{team.url}/api/v1/runs/search", content=chunked(), headers=headers)
    assert answer.status_code == 413


def test_writes_are_audited_and_the_cli_reads_the_log_as_an_admin(team: Team, tmp_path: Path) -> None:
    with shipyard.start_run("audited", settings=team.client("alice")):
        pass
    env = {
        **os.environ,
        "SHIPYARD_TRACKING_URI": team.url,
        "SHIPYARD_TRACKING_TOKEN": team.tokens["root"],
        "SHIPYARD_HOME": str(tmp_path / "cli"),
    }
    shown = console("audit", "--user", "alice", "--json", env=env)
    assert shown.returncode == 0, shown.stderr
    import json

    events = json.loads(shown.stdout)
    assert {(e["method"], e["path"]) for e in events} >= {("POST", "/api/v1/runs")}
    assert all(e["user"] == "alice" and e["address"] == "127.0.0.1" for e in events)
    denied = console("audit", env={**env, "SHIPYARD_TRACKING_TOKEN": team.tokens["bob"]})
    assert denied.returncode != 0 and "may not read the audit log" in denied.stderr
    assert denied.stderr.count("\n") == 1


def test_tokens_through_the_cli_revoke_at_once(team: Team, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "SHIPYARD_TRACKING_URI": team.url,
        "SHIPYARD_TRACKING_TOKEN": team.tokens["alice"],
        "SHIPYARD_HOME": str(tmp_path / "cli"),
    }
    made = console("tokens", "create", "--name", "ci", "--json", env=env)
    assert made.returncode == 0, made.stderr
    import json

    token = json.loads(made.stdout)
    worked = httpx.get(f"{team.url}/api/v1/users/me", headers={"Authorization": f"Bearer {token['token']}"})
    assert worked.json()["user"] == "alice"
    listed = console("tokens", "list", env=env)
    assert token["token_id"] in listed.stdout and token["token"] not in listed.stdout
    assert console("tokens", "revoke", token["token_id"], env=env).returncode == 0
    revoked = httpx.get(f"{team.url}/api/v1/users/me", headers={"Authorization": f"Bearer {token['token']}"})
    assert revoked.status_code == 401 and "revoked" in revoked.json()["error"]["message"]


def test_a_real_server_with_auth_and_tls_keeps_secrets_out_of_its_log_and_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "server-home"
    env = {**os.environ, "SHIPYARD_HOME": str(home)}
    refused = console("server", "--auth", env=env)
    assert (
        refused.returncode == 2
        and "create one with 'shipyard users create NAME --role admin'" in refused.stderr
    )
    made = subprocess.run(
        [
            str(Path(sys.executable).parent / "shipyard"),
            "users",
            "create",
            "ops",
            "--role",
            "admin",
            "--password-stdin",
        ],
        input=PASSWORD + "\n",
        env=env,
        capture_output=True,
        text=True,
    )
    assert made.returncode == 0, made.stderr
    token = Accounts(open_server_stores(make_settings(home)).auth).create_token("ops")[1]
    cert, key = self_signed_certificate(tmp_path)
    log = tmp_path / "server.log"
    args = [
        "--auth",
        "--ssl-certfile",
        str(cert),
        "--ssl-keyfile",
        str(key),
        "--log-level",
        "debug",
        "--access-log",
    ]
    trust = ssl.create_default_context(cafile=str(cert))
    with server_process(args, env, log=log, scheme="https", verify=trust) as (url, _):
        with httpx.Client(verify=trust) as http:
            assert (
                http.get(f"{url}/api/v1/users/me", headers={"Authorization": f"Bearer {token}"}).status_code
                == 200
            )
            basic = base64.b64encode(f"ops:{PASSWORD}".encode()).decode()
            assert (
                http.get(f"{url}/api/v1/users/me", headers={"Authorization": f"Basic {basic}"}).status_code
                == 200
            )
            bad = http.get(f"{url}/api/v1/users/me", headers={"Authorization": f"Bearer {token}x"})
            assert bad.status_code == 401 and token not in bad.text
            made = http.post(
                f"{url}/api/v1/tokens", json={"name": "second"}, headers={"Authorization": f"Bearer {token}"}
            )
            second = made.json()["token"]
        with pytest.raises(httpx.TransportError):  # TLS only
            httpx.get(url.replace("https", "http") + "/api/v1/health", timeout=5)
        # The team-mode client checks the server's certificate: refused until told to trust it.
        client_settings = make_settings(tmp_path / "client", tracking_uri=url, tracking_token=token)
        with pytest.raises(StoreError, match=f"cannot reach the Shipyard server at {url}.*CERTIFICATE"):
            TrackingClient(client_settings).list_experiments()
        monkeypatch.setenv("SSL_CERT_FILE", str(cert))
        assert TrackingClient(client_settings).list_experiments() == []
    secrets = [token.split("_", 2)[2], second.split("_", 2)[2], PASSWORD, basic]
    text = log.read_text()
    assert "GET /api/v1/users/me" in text  # the log is there, and detailed
    database = b"".join(p.read_bytes() for p in home.glob("shipyard.db*"))
    for secret in secrets:
        assert secret not in text, "a secret reached the server's log"
        assert secret.encode() not in database, "a secret reached the database in clear"


def test_artifact_paths_follow_what_they_belong_to(team: Team, tmp_path: Path) -> None:
    """Served models' payload logs and monitoring files go by the model's permissions; an editor may start
    those of a model not registered yet, a viewer may not; paths outside the allow-list are an admin's."""

    def put(user: str, path: str) -> int:
        headers = {"Authorization": f"Bearer {team.tokens[user]}"}
        return httpx.put(f"{team.url}/api/v1/artifacts/{path}", content=b"x", headers=headers).status_code

    with platform_server(team.server, artifacts=str(tmp_path / "files"), require_auth=True) as url:
        team.url = url
        assert put("alice", "artifacts/payloads/churn/2026-12-05/a.parquet") == 200
        assert put("alice", "artifacts/monitoring/reports/churn/r.json") == 200
        assert put("bob", "artifacts/payloads/churn/2026-12-05/b.parquet") == 403
        assert put("alice", "artifacts/elsewhere/file.txt") == 403
        assert put("alice", "outside/file.txt") == 403
        assert put("root", "elsewhere/file.txt") == 200


def test_only_the_public_paths_answer_without_credentials(team: Team) -> None:
    assert httpx.get(f"{team.url}/api/v1/health").status_code == 200
    assert httpx.get(f"{team.url}/docs").status_code == 200
    assert httpx.get(f"{team.url}/api/v1/openapi.json").status_code == 200
    for path in ("/api/v2/runs", "/anything", "/api/v1/../v1/users", "/API/v1/users"):
        assert httpx.get(f"{team.url}{path}").status_code == 401, path


def test_team_artifacts_and_model_packages_go_through_a_signed_in_server(team: Team, tmp_path: Path) -> None:
    """With sign-in on, a team-mode script's artifacts and model travel with its token; the registered
    version's package downloads as a tar whose files match the manifest's hashes; a viewer reads it too."""
    import hashlib
    import io
    import tarfile

    import yaml
    from sklearn.linear_model import LogisticRegression

    # A server process of its own: in one process, serving artifacts and reaching them as a client collide.
    env = {**os.environ, "SHIPYARD_HOME": str(team.server.home)}
    args = ["--auth", "--artifacts", str(tmp_path / "files"), "--log-level", "warning"]
    with server_process(args, env) as (url, _):
        team.url = url
        alice = team.client("alice")
        model = LogisticRegression().fit([[0.0], [1.0], [2.0], [3.0]], [0, 0, 1, 1])
        with shipyard.start_run("packaged", settings=alice) as run:
            run.log_text("hello", "notes/hello.txt")
            info = shipyard.models.log(model, "model", run=run)
        version = shipyard.models.register(info.uri, "packaged-clf", settings=alice)
        assert version.package_uri.startswith("shipyard-artifacts://")
        for user in ("alice", "bob"):
            answer = httpx.get(
                f"{url}/api/v1/registered-models/packaged-clf/versions/{version.version}/package",
                headers={"Authorization": f"Bearer {team.tokens[user]}"},
            )
            assert answer.status_code == 200, answer.text
            with tarfile.open(fileobj=io.BytesIO(answer.content)) as archive:
                members = {m.name: archive.extractfile(m).read() for m in archive.getmembers()}  # type: ignore[union-attr]
            manifest = yaml.safe_load(members["MODEL.yaml"])
            listed = {f["path"]: f["sha256"] for f in manifest["files"]}
            assert listed and all(hashlib.sha256(members[p]).hexdigest() == h for p, h in listed.items())
        anonymous = httpx.get(f"{url}/api/v1/registered-models/packaged-clf/versions/1/package")
        assert anonymous.status_code == 401
        loaded = shipyard.models.load("models:/packaged-clf/1", settings=team.client("bob"))
        assert list(loaded.predict([[0.0], [3.0]])) == [0, 1]
