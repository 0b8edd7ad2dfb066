"""The monitoring and admin pages in a real browser (headless Chromium) under their CSP: a model's drift share
chart is drawn without an error, a report shows in its sandboxed frame, a report holding a script does not run
it, and an admin's users page renders. Screenshots: tests/ui/screenshots/monitoring.png, admin-users.png."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pytest

from shipyard.auth.accounts import Accounts
from shipyard.store import open_server_stores
from tests.conftest import free_port, make_settings, platform_server, sign_up
from tests.ui.conftest import screenshot, watch_for_errors
from tests.ui.test_monitoring_pages import MODEL, OTHER, PASSWORD, populate

if TYPE_CHECKING:
    from playwright.sync_api import Page


@dataclass
class Site:
    url: str
    reports: list[str]
    other_report: str


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    settings = make_settings(tmp_path_factory.mktemp("browser-monitoring") / "home")
    reports, other = populate(settings, free_port())
    sign_up(Accounts(open_server_stores(settings).auth), [("root", "admin", PASSWORD)])
    with platform_server(settings, require_auth=True) as url:
        yield Site(url, reports, other)


def _open_signed_in(page: Page, url: str) -> list[str]:
    """Open ``url`` (through the login page, as root); the errors the page reports from then on."""
    page.goto(url)
    page.locator("input[name=user]").fill("root")
    page.locator("input[name=password]").fill(PASSWORD)
    errors = watch_for_errors(page)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(url)
    page.wait_for_load_state("networkidle")
    return errors


def test_monitoring_pages_draw_the_chart_and_frame_reports_without_running_them(
    site: Site, page: Page
) -> None:
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    errors = _open_signed_in(page, f"{site.url}/ui/monitoring/{MODEL}")
    page.locator("#drift-share-chart canvas").first.wait_for()
    assert page.locator("#features tbody tr").count() == 3 and page.locator("#performance").count() == 1
    screenshot(page, "monitoring")
    assert errors == []

    page.goto(f"{site.url}/ui/monitoring")
    assert page.locator("#monitored tbody tr").count() == 2
    page.goto(f"{site.url}/ui/monitoring/{MODEL}")
    page.locator(f'#reports a[href$="/reports/{site.reports[0]}"]').click()
    page.wait_for_url(f"**/reports/{site.reports[0]}")
    frame = page.frame_locator("#report-frame")
    assert "Data drift: churn" in frame.locator("h1").first.inner_text()
    page.wait_for_load_state("networkidle")
    screenshot(page, "monitoring-report")
    assert errors == []

    page.goto(f"{site.url}/ui/monitoring/{OTHER}/reports/{site.other_report}")
    said = page.frame_locator("#report-frame").locator("#said")
    assert said.inner_text() == "not run"  # its script was blocked
    page.wait_for_load_state("networkidle")
    blocked = [e for e in errors if "sandboxed" in e and "allow-scripts" in e]
    assert blocked and [e for e in errors if e not in blocked] == []  # blocked: the only error reported
    assert dialogs == []


def test_an_admin_sees_the_users_page(site: Site, page: Page) -> None:
    errors = _open_signed_in(page, f"{site.url}/ui/admin/users")
    assert page.locator("#users tbody tr").count() == 1
    page.locator("#create-user input[name=name]").fill("carol")
    page.locator("#create-user input[name=password]").fill("carols-secret-passphrase")
    page.locator("#create-user button").click()
    page.locator('#users tr[data-user="carol"]').wait_for()
    page.locator("details.menu summary").click()
    screenshot(page, "admin-users")
    page.goto(f"{site.url}/ui/admin/grants")
    page.wait_for_load_state("networkidle")
    assert errors == []
