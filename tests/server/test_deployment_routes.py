"""Deployment records and access checks on a real platform server with sign-in: who may register, see,
repoint and delete a deployment, grants on it, and the access route other services ask."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from shipyard.auth.accounts import Accounts
from shipyard.store import open_server_stores
from tests.conftest import make_settings, platform_server, sign_up


@dataclass
class Platform:
    url: str
    tokens: dict[str, str]

    def call(self, method: str, path: str, user: str | None, **options: object) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.tokens[user]}"} if user else {}
        return httpx.request(method, self.url + "/api/v1" + path, headers=headers, timeout=30, **options)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    settings = make_settings(tmp_path_factory.mktemp("deployments") / "server")
    accounts = Accounts(open_server_stores(settings).auth)
    tokens = sign_up(accounts, [("root", "admin"), ("alice", "editor"), ("bob", "editor"), ("vic", "viewer")])
    with platform_server(settings, require_auth=True, default_permission="NO_PERMISSIONS") as url:
        yield Platform(url, tokens)


def test_an_editor_registers_a_deployment_and_manages_it(platform: Platform) -> None:
    made = platform.call("PUT", "/deployments/churn", "alice", json={"url": "http://10.0.0.5:8080/"})
    assert made.status_code == 200, made.text
    assert made.json()["url"] == "http://10.0.0.5:8080" and made.json()["created_by"] == "alice"
    grants = platform.call("GET", "/grants", "alice").json()
    assert [(g["resource"], g["permission"]) for g in grants if g["resource_type"] == "deployment"] == [
        ("churn", "MANAGE")
    ]
    moved = platform.call("PUT", "/deployments/churn", "alice", json={"url": "https://churn.example.com"})
    assert moved.json()["url"] == "https://churn.example.com" and moved.json()["created_by"] == "alice"
    assert platform.call("GET", "/deployments/churn", "alice").status_code == 200


def test_others_may_not_repoint_read_or_delete_it_without_a_grant(platform: Platform) -> None:
    platform.call("PUT", "/deployments/fraud", "alice", json={"url": "http://10.0.0.7:8080"})
    hijack = platform.call("PUT", "/deployments/fraud", "bob", json={"url": "http://evil.example"})
    assert hijack.status_code == 403
    assert (
        "user 'bob' has NO_PERMISSIONS on deployment 'fraud' and needs EDIT"
        in hijack.json()["error"]["message"]
    )
    assert platform.call("GET", "/deployments/fraud", "alice").json()["url"] == "http://10.0.0.7:8080"
    assert platform.call("GET", "/deployments/fraud", "bob").status_code == 403
    assert platform.call("DELETE", "/deployments/fraud", "bob").status_code == 403
    assert "fraud" not in [d["name"] for d in platform.call("GET", "/deployments", "bob").json()]
    # A viewer never registers one; nobody signed out reaches any of it.
    refused = platform.call("PUT", "/deployments/mine", "vic", json={"url": "http://10.0.0.9"})
    assert refused.status_code == 403 and "needs the editor role" in refused.json()["error"]["message"]
    assert platform.call("GET", "/deployments", None).status_code == 401
    assert platform.call("PUT", "/deployments/x", None, json={"url": "http://a"}).status_code == 401


def test_bad_names_and_urls_are_refused(platform: Platform) -> None:
    for url in ("file:///etc/passwd", "javascript:alert(1)", "http://user:pw@host"):
        answer = platform.call("PUT", "/deployments/bad", "alice", json={"url": url})
        assert answer.status_code == 400, (url, answer.text)
    assert platform.call("PUT", "/deployments/bad", "alice", json={"url": 5}).status_code == 422
    assert (
        platform.call("PUT", "/deployments/bad", "alice", json={"url": "http://a", "x": 1}).status_code == 422
    )
    assert platform.call("GET", "/deployments/bad", "alice").status_code == 404


def test_grants_on_a_deployment_open_it_and_the_access_route_says_so(platform: Platform) -> None:
    platform.call("PUT", "/deployments/ranker", "alice", json={"url": "http://10.0.0.8:8080"})
    query = {"resource": "deployment:ranker", "permission": "EDIT"}
    denied = platform.call("GET", "/access", "bob", params=query)
    assert denied.status_code == 403
    message = denied.json()["error"]["message"]
    assert "'bob'" in message and "deployment 'ranker'" in message and "EDIT" in message

    body = {"user": "bob", "resource": "deployment:ranker", "permission": "EDIT"}
    assert platform.call("PUT", "/grants", "bob", json=body).status_code == 403  # no granting oneself
    assert platform.call("PUT", "/grants", "alice", json=body).status_code == 200  # its MANAGE holder may
    allowed = platform.call("GET", "/access", "bob", params=query)
    assert allowed.status_code == 200
    assert allowed.json() == {
        "user": "bob",
        "role": "editor",
        "resource": "deployment:ranker",
        "permission": "EDIT",
        "allowed": True,
        "authenticated": True,
    }
    # MANAGE is still alice's: bob may repoint it now but not delete it.
    assert platform.call("GET", "/access", "bob", params={**query, "permission": "MANAGE"}).status_code == 403
    revoked = platform.call(
        "DELETE", "/grants", "alice", params={"user": "bob", "resource": "deployment:ranker"}
    )
    assert revoked.status_code == 204
    assert platform.call("GET", "/access", "bob", params=query).status_code == 403


def test_a_viewer_granted_edit_still_only_reads(platform: Platform) -> None:
    platform.call("PUT", "/deployments/scorer", "alice", json={"url": "http://10.0.0.4:8080"})
    body = {"user": "vic", "resource": "deployment:scorer", "permission": "EDIT"}
    assert platform.call("PUT", "/grants", "root", json=body).status_code == 200
    query = {"resource": "deployment:scorer", "permission": "EDIT"}
    assert platform.call("GET", "/access", "vic", params=query).status_code == 403
    assert platform.call("GET", "/access", "vic", params={**query, "permission": "READ"}).status_code == 200
    assert [d["name"] for d in platform.call("GET", "/deployments", "vic").json()] == ["scorer"]


def test_unknown_resources_are_404_and_anonymous_checks_401(platform: Platform) -> None:
    unknown = platform.call(
        "GET", "/access", "root", params={"resource": "deployment:nope", "permission": "READ"}
    )
    assert unknown.status_code == 404 and "no deployment named 'nope'" in unknown.json()["error"]["message"]
    body = {"user": "bob", "resource": "deployment:nope", "permission": "EDIT"}
    granted = platform.call("PUT", "/grants", "root", json=body)
    assert granted.status_code == 404 and "no deployment named 'nope'" in granted.json()["error"]["message"]
    bad = platform.call("GET", "/access", "root", params={"resource": "pod:x", "permission": "READ"})
    assert bad.status_code == 400
    anonymous = platform.call(
        "GET", "/access", None, params={"resource": "deployment:churn", "permission": "READ"}
    )
    assert anonymous.status_code == 401
    forged = httpx.get(
        platform.url + "/api/v1/access",
        params={"resource": "deployment:churn", "permission": "READ"},
        headers={"Authorization": "Bearer shy_" + "0" * 32 + "_" + "A" * 43},
    )
    assert forged.status_code == 401


def test_deleting_a_deployment_drops_its_grants(platform: Platform) -> None:
    platform.call("PUT", "/deployments/temp", "alice", json={"url": "http://10.0.0.3:8080"})
    body = {"user": "bob", "resource": "deployment:temp", "permission": "EDIT"}
    assert platform.call("PUT", "/grants", "alice", json=body).status_code == 200
    assert platform.call("DELETE", "/deployments/temp", "alice").status_code == 204
    assert platform.call("GET", "/deployments/temp", "root").status_code == 404
    assert all(g["resource"] != "temp" for g in platform.call("GET", "/grants", "bob").json())
    audit = platform.call("GET", "/audit", "root", params={"user": "alice"}).json()
    assert any(e["method"] == "DELETE" and e["path"] == "/api/v1/deployments/temp" for e in audit)


def test_a_server_without_sign_in_answers_access_as_unauthenticated(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "open")
    from shipyard.deployments import Deployments

    Deployments(open_server_stores(settings).deployments).register("churn", "http://a:1", by="x")
    with platform_server(settings) as url:
        answer = httpx.get(
            url + "/api/v1/access", params={"resource": "deployment:churn", "permission": "EDIT"}
        )
    assert answer.status_code == 200 and answer.json()["authenticated"] is False
