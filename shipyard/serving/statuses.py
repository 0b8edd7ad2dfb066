"""The one place where the server's errors become HTTP status codes and error bodies.

bad input 400, unauthorized 401, forbidden 403, unknown model or version 404, conflicting state 409, body
too large 413, model raised (or a bug of ours) 500, not ready or overloaded 503 (overload with
``Retry-After``).
"""

from __future__ import annotations

from starlette.responses import Response

from shipyard.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    ModelNotReady,
    NotFound,
    Overloaded,
    ShipyardError,
    Unauthorized,
)
from shipyard.serving.tensors import encode_error


class BodyTooLarge(InvalidInput):
    """A request body over the server's limit (HTTP 413)."""


_STATUSES: list[tuple[type[ShipyardError], int]] = [
    (BodyTooLarge, 413),
    (NotFound, 404),
    (InvalidInput, 400),
    (Unauthorized, 401),
    (Forbidden, 403),
    (Conflict, 409),
    (ModelNotReady, 503),
    (Overloaded, 503),
]


def status_for(exc: ShipyardError) -> int:
    """The HTTP status for ``exc``; 500 for anything not listed (a model that raised, a bug)."""
    for kind, status in _STATUSES:
        if isinstance(exc, kind):
            return status
    return 500


def error_response(exc: ShipyardError) -> Response:
    """``{"error": message}`` with the status for ``exc`` (and ``Retry-After`` when overloaded)."""
    headers = None
    if isinstance(exc, Overloaded):
        headers = {"Retry-After": str(max(1, round(exc.retry_after_s)))}
    elif isinstance(exc, Unauthorized):
        headers = {"WWW-Authenticate": "Bearer"}
    return Response(encode_error(str(exc)), status_for(exc), headers, "application/json")
