"""Reading the UI's form posts (``application/x-www-form-urlencoded``, small) and checking them."""

from __future__ import annotations

from urllib.parse import parse_qs

from fastapi import Request

from shipyard.errors import InvalidInput
from shipyard.ui.templating import check_write

MAX_FORM_BYTES = 64 << 10


async def read_form(request: Request) -> dict[str, str]:
    """The posted fields (the last value of a repeated one), after the CSRF check.

    Raises:
        InvalidInput: not a URL-encoded form, or over ``MAX_FORM_BYTES``.
        Forbidden: the CSRF token is missing or wrong, or the post comes from another site.
    """
    kind = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if kind != "application/x-www-form-urlencoded":
        raise InvalidInput(f"expected a form (application/x-www-form-urlencoded), got {kind or 'no body'!r}")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise InvalidInput(f"the form is over {MAX_FORM_BYTES} bytes")
    try:
        parsed = parse_qs(body.decode("utf-8"), keep_blank_values=True, max_num_fields=200)
    except (UnicodeDecodeError, ValueError) as exc:
        raise InvalidInput(f"the form does not parse: {exc}") from exc
    fields = {name: values[-1] for name, values in parsed.items()}
    check_write(request, fields.get("csrf"))
    return fields


def safe_next(target: str | None, default: str = "/ui/") -> str:
    """Where to go after signing in: a path on this site only (never ``//host`` or a scheme), so the login
    page cannot be used to send someone elsewhere."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    if any(ord(c) < 32 for c in target):
        return default
    return target
