"""The UI stack runs in a real browser under a strict Content-Security-Policy: the vendored htmx swaps a
server fragment in, and the vendored uPlot loads and draws, with no inline script or style anywhere."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from tests.conftest import asgi_server
from tests.ui.conftest import screenshot, watch_for_errors

if TYPE_CHECKING:
    from playwright.sync_api import Page

CSP = "default-src 'self'; script-src 'self'; style-src 'self'"
# htmx 2 adds an inline <style> for its indicator class unless this config turns it off.
HTMX_CONFIG = """<meta name="htmx-config" content='{"includeIndicatorStyles": false}'>"""
PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  {config}
  <title>Shipyard UI smoke test</title>
  <link rel="stylesheet" href="/static/vendor/uPlot.min.css">
  <script src="/static/vendor/htmx.min.js"></script>
  <script src="/static/vendor/uPlot.iife.min.js"></script>
</head>
<body>
  <button id="load" hx-get="/fragment" hx-target="#out">Load</button>
  <div id="out"></div>
  <div id="chart"></div>
</body>
</html>
"""
FRAGMENT = '<p id="fragment">a fragment from the server</p>'


def _with_csp(app: Any) -> Any:
    """Every response carries the strict policy (an ASGI wrapper, so static files get it too)."""

    async def wrapped(scope: dict[str, Any], receive: Any, send: Any) -> None:
        async def send_with_csp(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message["headers"], (b"content-security-policy", CSP.encode())]
            await send(message)

        await app(scope, receive, send_with_csp)

    return wrapped


def _smoke_app() -> Any:
    async def index(request: Request) -> Response:
        return HTMLResponse(PAGE.format(config=HTMX_CONFIG))

    async def without_htmx_config(request: Request) -> Response:
        return HTMLResponse(PAGE.format(config=""))

    async def fragment(request: Request) -> Response:
        return HTMLResponse(FRAGMENT)

    async def no_favicon(request: Request) -> Response:
        return Response(status_code=204)

    return _with_csp(
        Starlette(
            routes=[
                Route("/", index),
                Route("/without-htmx-config", without_htmx_config),
                Route("/fragment", fragment),
                Route("/favicon.ico", no_favicon),  # Chromium asks for it, and a 404 is a console error
                # How the UI will serve its files: from the installed package, not a source checkout.
                Mount("/static", StaticFiles(packages=[("shipyard.ui", "static")]), name="static"),
            ]
        )
    )


@pytest.fixture(scope="module")
def smoke_url() -> Iterator[str]:
    with asgi_server(_smoke_app()) as url:
        yield url


def test_htmx_and_uplot_run_under_a_strict_csp(page: Page, smoke_url: str) -> None:
    errors = watch_for_errors(page)
    response = page.goto(smoke_url)
    assert response is not None and response.headers["content-security-policy"] == CSP

    page.click("#load")
    page.wait_for_selector("#out #fragment")
    assert page.text_content("#out") == "a fragment from the server"

    assert page.evaluate('typeof uPlot === "function"')
    drawn = page.evaluate(
        """() => {
            new uPlot({width: 400, height: 200, series: [{}, {stroke: "red"}]},
                      [[1, 2, 3], [3, 1, 2]], document.getElementById("chart"));
            return document.querySelectorAll("#chart canvas").length;
        }"""
    )
    assert drawn == 1
    screenshot(page, "smoke")
    assert errors == []


def test_errors_are_seen_when_htmx_adds_its_inline_style(page: Page, smoke_url: str) -> None:
    # The control for the test above: without the htmx config the policy blocks htmx's <style>, and the
    # watcher reports it — so an empty error list there means no violation, not a deaf listener.
    errors = watch_for_errors(page)
    with page.expect_event("console", lambda message: "style-src" in message.text):
        page.goto(f"{smoke_url}/without-htmx-config")
    assert any("style-src" in error for error in errors), errors
