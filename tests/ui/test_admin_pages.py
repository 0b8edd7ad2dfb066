"""The admin pages on a real server with accounts: an admin creates users, changes roles, disables and enables
them, and gives and revokes grants through CSRF-checked forms; what the accounts refuse (a taken name, the
last admin, a grant naming an unknown user or resource) is shown on the page with its status; editors and
viewers get 403 on the pages and on every post; passwords appear on no page and in no audit record."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from shipyard.auth.accounts import Accounts
from shipyard.store import open_server_stores
from shipyard.tracking.client import TrackingClient
from tests.conftest import make_settings, platform_server, sign_up

PASSWORD = "a long enough password"
NEW_PASSWORD = "carols-secret-passphrase"
XSS_EXPERIMENT = "<script>alert('x')</script>"


@dataclass
class Site:
    url: str
    accounts: Accounts


SignIn = Callable[[str], httpx.Client]


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    settings = make_settings(tmp_path / "home")
    TrackingClient(settings).create_experiment(XSS_EXPERIMENT)
    TrackingClient(settings).create_experiment("churn")
    accounts = Accounts(open_server_stores(settings).auth)
    sign_up(
        accounts, [("root", "admin", PASSWORD), ("alice", "editor", PASSWORD), ("bob", "viewer", PASSWORD)]
    )
    with platform_server(settings, require_auth=True) as url:
        yield Site(url, accounts)


def _csrf(page: httpx.Response) -> str:
    return re.search(r'name="csrf" value="([0-9a-f]+)"', page.text)[1]


def _sign_in(url: str, user: str, password: str = PASSWORD) -> tuple[httpx.Client, httpx.Response]:
    web = httpx.Client(base_url=url, timeout=30)
    login = web.get("/ui/login")
    return web, web.post("/ui/login", data={"csrf": _csrf(login), "user": user, "password": password})


@pytest.fixture
def signed_in(site: Site) -> Iterator[SignIn]:
    clients: list[httpx.Client] = []

    def sign_in(user: str) -> httpx.Client:
        web, answer = _sign_in(site.url, user)
        clients.append(web)
        assert answer.status_code == 303, answer.text
        return web

    yield sign_in
    for web in clients:
        web.close()


def _post(web: httpx.Client, path: str, page: str, **fields: str) -> httpx.Response:
    """Post ``fields`` as the form on ``page`` would, with that page's CSRF token."""
    return web.post(path, data={"csrf": _csrf(web.get(page)), **fields})


def _row(page: httpx.Response, user: str) -> str:
    return re.search(rf'<tr data-user="{user}">(.*?)</tr>', page.text, re.S)[1]


def test_an_admin_creates_a_user_changes_its_role_and_disables_it(site: Site, signed_in: SignIn) -> None:
    web = signed_in("root")
    page = web.get("/ui/admin/users")
    assert page.status_code == 200 and {"root", "alice", "bob"} <= set(
        re.findall(r'data-user="(\w+)"', page.text)
    )
    assert "(you)" in _row(page, "root") and "editor" in _row(page, "alice")

    users = "/ui/admin/users"
    created = _post(web, users, users, name="carol", role="editor", password=NEW_PASSWORD)
    assert created.status_code == 303 and created.headers["location"] == users
    carol = _row(web.get(users), "carol")
    assert "editor" in carol and "enabled" in carol and "password or tokens" in carol
    _, login = _sign_in(site.url, "carol", NEW_PASSWORD)
    assert login.status_code == 303  # the new user signs in with the password given

    assert _post(web, f"{users}/carol/role", users, role="viewer").status_code == 303
    assert site.accounts.get_user("carol").role.value == "viewer"
    assert _post(web, f"{users}/carol/disabled", users, disabled="true").status_code == 303
    assert "disabled" in _row(web.get(users), "carol")
    _, refused = _sign_in(site.url, "carol", NEW_PASSWORD)
    assert refused.status_code == 401  # a disabled user cannot sign in
    assert _post(web, f"{users}/carol/disabled", users, disabled="false").status_code == 303
    assert _sign_in(site.url, "carol", NEW_PASSWORD)[1].status_code == 303

    token_only = _post(web, users, users, name="ci-bot", role="viewer", password="")
    assert token_only.status_code == 303 and "tokens only" in _row(web.get(users), "ci-bot")


def test_what_the_accounts_refuse_is_shown_on_the_page(site: Site, signed_in: SignIn) -> None:
    web, users = signed_in("root"), "/ui/admin/users"
    taken = _post(web, users, users, name="alice", role="viewer", password=NEW_PASSWORD)
    assert taken.status_code == 409 and 'id="admin-error"' in taken.text and "alice" in taken.text
    assert 'id="create-user"' in taken.text and 'value="alice"' in taken.text  # the form, as entered
    assert NEW_PASSWORD not in taken.text  # but never the password

    bad = _post(web, users, users, name="<script>x", role="viewer", password=NEW_PASSWORD)
    assert bad.status_code == 400 and "invalid user name" in bad.text
    assert "<script>x" not in bad.text and "&lt;script&gt;x" in bad.text

    short = _post(web, users, users, name="dave", role="viewer", password="short")
    assert (
        short.status_code == 400
        and "at least 8 characters" in short.text
        and 'value="short"' not in short.text
    )
    unknown_role = _post(web, users, users, name="dave", role="owner", password=NEW_PASSWORD)
    assert unknown_role.status_code == 400 and "unknown role" in unknown_role.text

    last = _post(web, f"{users}/root/disabled", users, disabled="true")
    assert last.status_code == 409 and "last enabled admin" in last.text
    demoted = _post(web, f"{users}/root/role", users, role="viewer")
    assert demoted.status_code == 409 and site.accounts.get_user("root").role.value == "admin"
    missing = _post(web, f"{users}/nobody/role", users, role="viewer")
    assert missing.status_code == 404 and "nobody" in missing.text


def test_grants_are_given_and_revoked_and_unknown_names_are_404(site: Site, signed_in: SignIn) -> None:
    web, grants = signed_in("root"), "/ui/admin/grants"
    assert "No grants" in web.get(grants).text
    given = _post(web, grants, grants, user="bob", resource=f"experiment:{XSS_EXPERIMENT}", permission="EDIT")
    assert given.status_code == 303 and given.headers["location"] == grants
    table = web.get(grants).text.split('id="grants"', 1)[1]
    assert "<td>bob</td>" in table and "<td>EDIT</td>" in table and "<td>root</td>" in table
    assert (
        XSS_EXPERIMENT not in table and "experiment:&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in table
    )
    [(user, grant)] = [(g.user, g.describe()) for g in site.accounts.grants("bob")]
    assert (user, grant) == ("bob", f"experiment:{XSS_EXPERIMENT}")

    for fields, status, said in (
        ({"user": "nobody", "resource": "experiment:churn", "permission": "READ"}, 404, "nobody"),
        ({"user": "bob", "resource": "experiment:missing", "permission": "READ"}, 404, "no experiment named"),
        ({"user": "bob", "resource": "model:nope", "permission": "READ"}, 404, "no registered model named"),
        ({"user": "bob", "resource": "churn", "permission": "READ"}, 400, "must be TYPE:NAME"),
        ({"user": "bob", "resource": "experiment:churn", "permission": "ALL"}, 400, "unknown permission"),
    ):
        refused = _post(web, grants, grants, **fields)
        assert refused.status_code == status and said in refused.text, fields
        assert 'id="admin-error"' in refused.text and f'value="{fields["user"]}"' in refused.text

    revoked = _post(web, f"{grants}/revoke", grants, user="bob", resource=f"experiment:{XSS_EXPERIMENT}")
    assert revoked.status_code == 303 and site.accounts.grants("bob") == []
    again = _post(web, f"{grants}/revoke", grants, user="bob", resource=f"experiment:{XSS_EXPERIMENT}")
    assert again.status_code == 404 and "has no grant" in again.text


def test_editors_and_viewers_get_403_on_the_pages_and_every_post(site: Site, signed_in: SignIn) -> None:
    for name in ("alice", "bob"):
        web = signed_in(name)
        home = web.get("/ui/account")
        assert 'href="/ui/admin/users"' not in home.text  # the user menu offers no admin pages
        for path in ("/ui/admin/users", "/ui/admin/grants"):
            page = web.get(path)
            assert page.status_code == 403 and "<h1>Not allowed</h1>" in page.text and "admin" in page.text
        csrf = {"csrf": _csrf(home)}
        posts = {
            "/ui/admin/users": {"name": f"made-by-{name}", "role": "admin", "password": NEW_PASSWORD},
            f"/ui/admin/users/{name}/role": {"role": "admin"},
            "/ui/admin/users/root/disabled": {"disabled": "true"},
            "/ui/admin/grants": {"user": name, "resource": "experiment:churn", "permission": "MANAGE"},
            "/ui/admin/grants/revoke": {"user": name, "resource": "experiment:churn"},
        }
        for path, fields in posts.items():
            assert web.post(path, data={**csrf, **fields}).status_code == 403, (name, path)
    assert {u.name for u in site.accounts.list_users()} == {"root", "alice", "bob"}
    assert (
        site.accounts.get_user("alice").role.value == "editor" and not site.accounts.get_user("root").disabled
    )
    assert site.accounts.grants() == []


def test_posts_without_the_pages_csrf_token_are_refused(site: Site, signed_in: SignIn) -> None:
    web = signed_in("root")
    fields = {"name": "mallory", "role": "admin", "password": NEW_PASSWORD}
    assert web.post("/ui/admin/users", data=fields).status_code == 403
    assert web.post("/ui/admin/users", data={**fields, "csrf": "0" * 64}).status_code == 403
    forged = web.post(
        "/ui/admin/grants",
        data={"csrf": _csrf(web.get("/ui/admin/grants")), "user": "bob", "resource": "experiment:churn"},
        headers={"origin": "https://evil.example"},  # the right token, from another site
    )
    assert forged.status_code == 403
    assert "mallory" not in {u.name for u in site.accounts.list_users()} and site.accounts.grants() == []


def test_a_password_reaches_no_page_and_no_audit_record(site: Site, signed_in: SignIn) -> None:
    web, users = signed_in("root"), "/ui/admin/users"
    _post(web, users, users, name="erin", role="viewer", password=NEW_PASSWORD)
    _post(web, users, users, name="erin", role="viewer", password=NEW_PASSWORD)  # refused: shown again
    _post(web, users, users, name="frank", role="viewer", password="short")
    for path in (users, "/ui/admin/grants", "/ui/account"):
        page = web.get(path).text
        assert NEW_PASSWORD not in page and 'type="password" value' not in page
    events = site.accounts.audit(limit=1000)
    assert any(e.path == users for e in events)
    assert not any(NEW_PASSWORD in e.path or "short" in e.path for e in events)
