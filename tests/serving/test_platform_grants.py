"""An inference server that takes platform tokens (``serve --platform``), against a real platform server with
sign-in: its models registered as deployments at startup, grants on ``deployment:NAME`` deciding who may
change traffic, revocations biting at once, and every refusal tried as an attack."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import httpx
import pytest

from shipyard.auth.accounts import Accounts
from shipyard.cli import main
from shipyard.errors import Forbidden, InvalidInput, StoreError
from shipyard.serving.platform import PlatformAccess, register_deployments
from shipyard.serving.repository import ModelConfig
from shipyard.store import open_server_stores
from tests.conftest import free_port, make_settings, platform_server, sign_up
from tests.serving.conftest import Registered, RunningServer

ADMIN_TOKEN = "static-admin-s3cret"
JSON = {"Content-Type": "application/json"}


@dataclass
class Team:
    platform: str
    tokens: dict[str, str]
    served: RunningServer

    def headers(self, user: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[user]}", **JSON}


def _two_versions(name: str) -> ModelConfig:
    return ModelConfig(
        name, versions={"champion": "models:/bc@champion", "challenger": "models:/bc@challenger"}
    )


@pytest.fixture(scope="module")
def team(
    registered: Registered,
    start_server: Callable[..., RunningServer],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Team]:
    """A platform with sign-in where nobody may do anything without a grant; alice (editor) serves ``churn``
    and ``fraud`` with --platform and the admin token; bob is an editor, vic a viewer."""
    settings = make_settings(tmp_path_factory.mktemp("platform") / "server")
    accounts = Accounts(open_server_stores(settings).auth)
    tokens = sign_up(accounts, [("root", "admin"), ("alice", "editor"), ("bob", "editor"), ("vic", "viewer")])
    with platform_server(settings, require_auth=True, default_permission="NO_PERMISSIONS") as url:
        served = start_server(
            [_two_versions("churn"), _two_versions("fraud")],
            registered.settings,
            platform=PlatformAccess(url),
            admin_token=ADMIN_TOKEN,
        )
        # What `shipyard serve --platform` does before it starts serving.
        register_deployments(url, ["churn", "fraud"], served.url, tokens["alice"])
        yield Team(url, tokens, served)


def _traffic(team: Team, user: str, weights: dict[str, int], name: str = "churn") -> httpx.Response:
    url = f"{team.served.url}/admin/deployments/{name}/traffic"
    return httpx.put(url, json={"traffic": weights}, headers=team.headers(user), timeout=30)


def _weights(team: Team, name: str = "churn") -> dict[str, float]:
    found = httpx.get(
        team.served.url + "/admin/deployments", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
    )
    return {d["name"]: d["traffic"] for d in found.json()["deployments"]}[name]


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as info:
        main(list(args))
    out, err = capsys.readouterr()
    return (info.value.code if isinstance(info.value.code, int) else 0), out, err


def test_startup_registers_each_served_model_as_a_deployment(team: Team) -> None:
    found = httpx.get(team.platform + "/api/v1/deployments", headers=team.headers("root")).json()
    assert [(d["name"], d["url"], d["created_by"]) for d in found] == [
        ("churn", team.served.url, "alice"),
        ("fraud", team.served.url, "alice"),
    ]
    # Registering again (a restart) repoints the records it may edit: alice has MANAGE on them.
    again = register_deployments(team.platform, ["churn"], team.served.url + "/", team.tokens["alice"])
    assert again[0].url == team.served.url


def test_traffic_follows_the_grant_and_stops_at_its_revocation(
    team: Team, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    before = _weights(team)
    refused = _traffic(team, "bob", {"challenger": 100})
    assert refused.status_code == 403
    assert "user 'bob' has NO_PERMISSIONS on deployment 'churn' and needs EDIT" in refused.json()["error"]
    assert _weights(team) == before

    # alice holds MANAGE on what she registered, so she grants through the platform as herself.
    monkeypatch.setenv("SHIPYARD_TRACKING_URI", team.platform)
    monkeypatch.setenv("SHIPYARD_TRACKING_TOKEN", team.tokens["alice"])
    code, out, err = _cli(capsys, "grant", "bob", "deployment:churn", "EDIT")
    assert code == 0, err
    assert "bob has EDIT on deployment:churn" in out

    changed = _traffic(team, "bob", {"challenger": 100})
    assert changed.status_code == 200, changed.text
    assert _weights(team) == {"challenger": 100}
    rolled = httpx.post(
        team.served.url + "/admin/deployments/churn/rollback", json={}, headers=team.headers("bob")
    )
    assert rolled.status_code == 200 and rolled.json()["traffic"] == before
    # The grant is on churn only.
    assert _traffic(team, "bob", {"challenger": 100}, name="fraud").status_code == 403

    code, _, err = _cli(capsys, "grant", "bob", "deployment:churn", "--revoke")
    assert code == 0, err
    again = _traffic(team, "bob", {"challenger": 100})
    assert again.status_code == 403  # at once: the inference server keeps no verdicts
    assert _weights(team) == before


def test_a_viewer_lists_only_the_deployments_he_may_read_and_changes_none(team: Team) -> None:
    grant = {"user": "vic", "resource": "deployment:fraud", "permission": "EDIT"}
    assert (
        httpx.put(team.platform + "/api/v1/grants", json=grant, headers=team.headers("alice")).status_code
        == 200
    )
    listed = httpx.get(team.served.url + "/admin/deployments", headers=team.headers("vic"))
    assert listed.status_code == 200
    assert [d["name"] for d in listed.json()["deployments"]] == ["fraud"]
    # An EDIT grant does not lift a viewer above reading.
    assert _traffic(team, "vic", {"challenger": 100}, name="fraud").status_code == 403
    everything = httpx.get(team.served.url + "/admin/deployments", headers=team.headers("alice")).json()
    assert [d["name"] for d in everything["deployments"]] == ["churn", "fraud"]


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer", "Bearer nonsense", "Bearer shy_" + "0" * 32 + "_" + "A" * 43, "Basic YWxpY2U6eA=="],
)
def test_no_or_bad_credentials_are_401_even_from_this_machine(team: Team, authorization: str | None) -> None:
    headers = {**JSON, **({"Authorization": authorization} if authorization else {})}
    base = team.served.url + "/admin/deployments"
    assert httpx.get(base, headers=headers).status_code == 401
    answer = httpx.put(base + "/churn/traffic", json={"traffic": {"challenger": 100}}, headers=headers)
    assert answer.status_code == 401
    if authorization and len(authorization) > 10:
        assert authorization.split(" ", 1)[1] not in answer.text  # never echoed
    assert httpx.post(base + "/churn/rollback", json={}, headers=headers).status_code == 401


def test_a_refused_write_is_answered_before_its_body_is_sent(team: Team) -> None:
    head = (
        "PUT /admin/deployments/churn/traffic HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Bearer {team.tokens['bob']}\r\n"
        "Content-Type: application/json\r\nContent-Length: 32768\r\n\r\n"
    )
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", team.served.port), timeout=5) as sock:
        sock.sendall(head.encode())
        answer = sock.recv(65536)
    assert answer.startswith(b"HTTP/1.1 403")
    assert time.monotonic() - started < 3


def test_the_static_admin_token_still_works(team: Team) -> None:
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}", **JSON}
    base = team.served.url + "/admin/deployments/fraud"
    assert (
        httpx.put(base + "/traffic", json={"traffic": {"challenger": 100}}, headers=headers).status_code
        == 200
    )
    assert httpx.post(base + "/rollback", json={}, headers=headers).status_code == 200
    near_miss = {"Authorization": f"Bearer {ADMIN_TOKEN}x", **JSON}
    assert (
        httpx.put(base + "/traffic", json={"traffic": {"challenger": 1}}, headers=near_miss).status_code
        == 401
    )


def test_an_unreachable_platform_is_503_naming_it_and_changes_nothing(
    team: Team, registered: Registered, start_server: Callable[..., RunningServer]
) -> None:
    gone = f"http://127.0.0.1:{free_port()}"
    served = start_server(
        [_two_versions("churn")], registered.settings, platform=PlatformAccess(gone, timeout_s=2.0)
    )
    answer = httpx.put(
        served.url + "/admin/deployments/churn/traffic",
        json={"traffic": {"challenger": 100}},
        headers=team.headers("alice"),
    )
    assert answer.status_code == 503 and gone in answer.json()["error"]
    assert team.tokens["alice"] not in answer.text
    assert httpx.get(served.url + "/admin/deployments", headers=team.headers("alice")).status_code == 503
    # No admin token here; a loopback client without credentials is still not let in with --platform.
    assert httpx.get(served.url + "/admin/deployments").status_code == 401
    assert served.server.repository.deployment("churn").traffic.weights == {"champion": 100.0}


def test_registration_refusals_are_one_clear_error(team: Team) -> None:
    with pytest.raises(Forbidden, match=r"refused to register deployment 'scorer': .*'vic' \(viewer\)"):
        register_deployments(team.platform, ["scorer"], "http://10.0.0.9:8080", team.tokens["vic"])
    # bob may not repoint alice's deployment at his own server.
    with pytest.raises(Forbidden, match="refused to register deployment 'churn'"):
        register_deployments(team.platform, ["churn"], "http://evil.example:8080", team.tokens["bob"])
    with pytest.raises(InvalidInput, match="SHIPYARD_TRACKING_TOKEN"):
        register_deployments(team.platform, ["scorer"], "http://10.0.0.9:8080", None)
    with pytest.raises(StoreError, match="cannot reach"):
        register_deployments(f"http://127.0.0.1:{free_port()}", ["x"], "http://10.0.0.9:8080", "shy_x")
    with pytest.raises(InvalidInput, match="--platform"):
        PlatformAccess("file:///tmp/platform")


def test_serve_with_platform_fails_startup_with_one_line_when_refused(
    team: Team, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHIPYARD_TRACKING_TOKEN", team.tokens["vic"])
    code, _, err = _cli(
        capsys,
        "serve",
        "models:/bc@champion",
        "--name",
        "scorer",
        "--port",
        str(free_port()),
        "--platform",
        team.platform,
    )
    assert code == 6
    assert err.count("\n") == 1 and err.startswith("error: the platform at ")
    assert "refused to register deployment 'scorer'" in err and team.tokens["vic"] not in err


def test_the_cli_sends_the_platform_token_and_lists_deployments(
    team: Team, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHIPYARD_TRACKING_URI", team.platform)
    monkeypatch.setenv("SHIPYARD_TRACKING_TOKEN", team.tokens["alice"])  # no SHIPYARD_ADMIN_TOKEN
    code, out, err = _cli(
        capsys, "deploy", "set-traffic", "fraud", "champion=50", "challenger=50", "--url", team.served.url
    )
    assert code == 0, err
    assert "fraud: traffic set: champion=50 challenger=50" in out
    code, out, err = _cli(capsys, "deploy", "rollback", "fraud", "--url", team.served.url)
    assert code == 0, err

    # vic may read fraud (granted here too: under pytest-xdist this test may run without the one above).
    grant = {"user": "vic", "resource": "deployment:fraud", "permission": "EDIT"}
    granted = httpx.put(team.platform + "/api/v1/grants", json=grant, headers=team.headers("alice"))
    assert granted.status_code == 200
    monkeypatch.setenv("SHIPYARD_TRACKING_TOKEN", team.tokens["vic"])
    code, out, err = _cli(capsys, "deployments", "list", "--json")
    assert code == 0, err
    assert [(d["name"], d["url"], d["created_by"]) for d in json.loads(out)] == [
        ("fraud", team.served.url, "alice")
    ]
    code, out, _ = _cli(capsys, "deploy", "set-traffic", "churn", "champion=1", "--url", team.served.url)
    assert code == 6
    code, _, err = _cli(capsys, "grant", "bob", "deployment:nope", "EDIT")
    assert code == 3 and "no deployment named 'nope'" in err
    code, _, err = _cli(capsys, "grant", "bob", "pod:nope", "EDIT")
    assert code == 2 and err.count("\n") == 1
