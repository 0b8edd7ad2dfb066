"""The one place where the server's errors become HTTP status codes and error bodies.

bad input 400, unauthorized 401, forbidden 403, unknown model or version 404, body not received in time 408
(connection closed), conflicting state 409, body too large 413, wrong content type 415, model raised (or a
bug of ours) 500, not ready or overloaded 503 (overload with ``Retry-After``), the platform server (or a
store) out of reach 503.
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
    StoreError,
    Unauthorized,
)
from shipyard.serving.tensors import encode_error


class BodyTooLarge(InvalidInput):
    """A request body over the server's limit (HTTP 413)."""


class BodyTimeout(InvalidInput):
    """A request body that did not arrive within the server's deadline (HTTP 408, connection closed)."""


class UnsupportedMediaType(InvalidInput):
    """A write whose ``Content-Type`` the route does not take (HTTP 415)."""


_STATUSES: list[tuple[type[ShipyardError], int]] = [
    (BodyTooLarge, 413),
    (BodyTimeout, 408),
    (UnsupportedMediaType, 415),
    (NotFound, 404),
    (InvalidInput, 400),
    (Unauthorized, 401),
    (Forbidden, 403),
    (Conflict, 409),
    (ModelNotReady, 503),
    (Overloaded, 503),
    (StoreError, 503),
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
    elif isinstance(exc, BodyTimeout):
        headers = {"Connection": "close"}  # the rest of the body is never read: end the connection
    return Response(encode_error(str(exc)), status_for(exc), headers, "application/json")
