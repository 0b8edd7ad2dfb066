"""Rendering the UI's pages: one Jinja2 environment (autoescaping every value), the context every page
gets (who is signed in, the CSRF token, what they may do) and the CSRF cookie a page hands out."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from shipyard import __version__
from shipyard.auth.records import Principal, Role
from shipyard.tracking.records import now_ms
from shipyard.ui import sessions

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"


def _time(ms: int | None) -> Markup:
    """A moment as ``<time>``: UTC in the page, turned into the browser's time zone by app.js."""
    if ms is None:
        return Markup("")
    moment = datetime.fromtimestamp(ms / 1000, tz=UTC)
    text = moment.strftime("%Y-%m-%d %H:%M:%S UTC")
    return Markup('<time datetime="{0}">{1}</time>').format(moment.isoformat(), text)


def _duration(start: int | None, end: int | None) -> str:
    if start is None or end is None:
        return ""
    seconds = max(end - start, 0) / 1000
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, seconds = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{seconds:02d}s"


def _number(value: Any) -> str:
    """A metric value short enough for a table cell (NaN and infinities spelled out)."""
    if value is None:
        return ""
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return f"{value:.6g}"
    return str(value)


def _json_data(value: Any) -> Markup:
    """Data for a script (a ``<script type="application/json">`` block, never executed): JSON with ``<``,
    ``>`` and ``&`` escaped so no value can close the block."""
    text = json.dumps(value, separators=(",", ":"), allow_nan=False)
    return Markup(text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e"))


def _query(params: dict[str, Any], **changes: Any) -> str:
    """``params`` with ``changes`` as a query string (None drops a key): links that keep a view's state."""
    merged = {**params, **changes}
    return urlencode({k: v for k, v in merged.items() if v not in (None, "", [])}, doseq=True)


environment = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(["html"], default_for_string=True, default=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
environment.filters.update(time=_time, duration=_duration, number=_number, json_data=_json_data)
environment.globals.update(query=_query, shipyard_version=__version__)


def principal(request: Request) -> Principal | None:
    return getattr(request.state, "principal", None)


def may_edit(request: Request) -> bool:
    """Whether the page may show write controls at all (the server checks each write anyway)."""
    who = principal(request)
    return who is None or who.at_least(Role.EDITOR)


def render(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    """``template`` rendered with ``context`` and the page's common context; hands the browser a CSRF
    cookie when it has none."""
    jar = sessions.cookies(request.headers.get("cookie"))
    csrf_secret = jar.get(sessions.CSRF_COOKIE)
    fresh = csrf_secret is None
    if csrf_secret is None:
        csrf_secret = sessions.new_csrf_secret()
    who = principal(request)
    page = environment.get_template(template).render(
        request=request,
        user=who,
        signed_in=who is not None,
        may_edit=may_edit(request),
        is_admin=who is None or who.at_least(Role.ADMIN),
        csrf=sessions.csrf_token(csrf_secret, jar.get(sessions.SESSION_COOKIE)),
        now=now_ms(),
        **context,
    )
    response = HTMLResponse(page, status_code=status)
    if fresh:
        secure = request.url.scheme == "https"
        value = sessions.cookie_header(sessions.CSRF_COOKIE, csrf_secret, max_age=None, secure=secure)
        response.headers.append("set-cookie", value)
    response.headers["cache-control"] = "no-store"
    return response


def check_write(request: Request, sent: str | None) -> None:
    """Refuse a UI write without this browser's CSRF token, or from another site (`Forbidden`)."""
    jar = sessions.cookies(request.headers.get("cookie"))
    sessions.check_csrf(
        sent or request.headers.get(sessions.CSRF_HEADER),
        jar.get(sessions.CSRF_COOKIE),
        jar.get(sessions.SESSION_COOKIE),
        request.headers.get("origin"),
        request.headers.get("host"),
    )
