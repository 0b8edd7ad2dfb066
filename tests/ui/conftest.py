"""Browser fixtures: one headless Debian Chromium driven by Playwright's sync API, a fresh context per test.

The UI tests use Debian's ``/usr/bin/chromium`` (never ``playwright install``, which downloads a browser).
Without Playwright or that Chromium, or when it cannot start, the browser tests skip with the reason — unless
``SHIPYARD_REQUIRE_BROWSER=1`` (set by CI), where that fails.

NOTE: the browser is package-scoped, not session-scoped. While Playwright's sync API is running it marks its
event loop as the thread's running loop between calls, so ``asyncio.run()`` elsewhere in the main thread
raises "cannot be called from a running event loop". Scoped to ``tests/ui`` (a package: it has an
``__init__.py``), Playwright stops after the last UI test, before any other test module runs.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(__file__).parent / "screenshots"  # git-ignored
TIMEOUT_MS = 10_000  # a missing element fails in seconds, well inside pytest-timeout's 300 s


def _unavailable(reason: str) -> NoReturn:
    # In CI (SHIPYARD_REQUIRE_BROWSER=1) a browser that cannot start is a failure, not a skip.
    if os.environ.get("SHIPYARD_REQUIRE_BROWSER") == "1":
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    """Headless Chromium, started once for the UI tests; closed (and Playwright stopped) after them."""
    try:
        from playwright.sync_api import Error, sync_playwright
    except ImportError as exc:
        _unavailable(f"browser tests need Playwright (pip install -e '.[dev]'): {exc}")
    if not CHROMIUM.exists():
        _unavailable(f"browser tests need Debian's Chromium at {CHROMIUM} (apt-get install chromium)")
    try:
        playwright = sync_playwright().start()
    except Error as exc:
        _unavailable(f"Playwright's driver could not start: {exc}")
    try:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
    except Error as exc:
        playwright.stop()
        _unavailable(f"Chromium ({CHROMIUM}) could not start: {exc}")
    yield chromium
    chromium.close()
    playwright.stop()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A page in a fresh browser context (no cookies or storage from other tests); closed after the test."""
    context = browser.new_context()
    context.set_default_timeout(TIMEOUT_MS)
    try:
        yield context.new_page()
    finally:
        context.close()


def screenshot(page: Page, name: str) -> Path:
    """Save a full-page PNG of ``page`` as ``tests/ui/screenshots/<name>.png`` (for a human to look at)."""
    SCREENSHOTS.mkdir(exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


# Reported through the console so that one listener sees it. Playwright injects this script itself, so the
# page's Content-Security-Policy does not block it.
_REPORT_CSP_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (event) => {
  console.error(`CSP violation: ${event.violatedDirective} blocked ${event.blockedURI || "inline"}`);
});
"""


def watch_for_errors(page: Page) -> list[str]:
    """Collect, from now on, what ``page`` reports as wrong: console errors, uncaught exceptions and CSP
    violations. Returns the list, which fills as the page runs; call before ``page.goto``."""
    errors: list[str] = []
    page.add_init_script(_REPORT_CSP_VIOLATIONS)
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(f"uncaught: {error}"))
    return errors
