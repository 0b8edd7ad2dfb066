"""The server's one error shape, ``{"error": {"code", "message", "field"?}}``, and each error's status."""

from __future__ import annotations

from typing import Any

from shipyard.errors import (
    AlreadyExists,
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    ShipyardError,
    StoreError,
    Unauthorized,
)

# (error class, HTTP status, code): the first match wins, so subclasses come before their bases.
ERRORS: list[tuple[type[ShipyardError], int, str]] = [
    (NotFound, 404, "NOT_FOUND"),
    (AlreadyExists, 409, "ALREADY_EXISTS"),
    (Conflict, 409, "CONFLICT"),
    (InvalidInput, 400, "INVALID_INPUT"),
    (Unauthorized, 401, "UNAUTHORIZED"),
    (Forbidden, 403, "FORBIDDEN"),
    (StoreError, 503, "STORE_UNAVAILABLE"),
    (ShipyardError, 500, "INTERNAL"),
]


def error_body(code: str, message: str, field: str | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if field:
        error["field"] = field
    return {"error": error}


def error_answer(exc: ShipyardError) -> tuple[int, dict[str, Any]]:
    """The status and body that answer ``exc``."""
    for kind, status, code in ERRORS:
        if isinstance(exc, kind):
            return status, error_body(code, str(exc))
    return 500, error_body("INTERNAL", str(exc))  # pragma: no cover
