"""A client of an inference server's admin routes and ``/metrics``, for the release controllers and the CLI.

Errors are typed as the server meant them (400 `InvalidInput`, 401 `Unauthorized`, 403 `Forbidden`, 404
`NotFound`, 409 `Conflict`), with the server's reason; a server out of reach is a `ServingError`.
The token is sent as ``Authorization: Bearer`` and never appears in an error.
"""

from __future__ import annotations

from typing import Any

import httpx

from shipyard.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    ServingError,
    ShipyardError,
    Unauthorized,
)

_ERRORS: dict[int, type[ShipyardError]] = {
    400: InvalidInput,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
}


class AdminClient:
    """The admin API of the inference server at ``url``."""

    def __init__(self, url: str, token: str | None = None, timeout_s: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self.token = token
        self.timeout_s = timeout_s

    def call(self, method: str, path: str, body: Any = None) -> Any:
        """``method path`` with a JSON ``body``; the JSON answer."""
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        if method != "GET":
            headers["Content-Type"] = "application/json"  # the server takes admin writes only as JSON
        try:
            response = httpx.request(
                method, self.url + path, json=body, headers=headers, timeout=self.timeout_s
            )
        except httpx.HTTPError as exc:
            raise ServingError(f"cannot reach the server at {self.url}: {exc}") from exc
        if response.status_code >= 400:
            try:
                message = response.json()["error"]
            except (ValueError, KeyError, TypeError):
                message = response.text[:200]
            raise _ERRORS.get(response.status_code, ServingError)(f"{self.url}: {message}")
        return response.json()

    def deployment(self, name: str) -> dict[str, Any]:
        """The server's description of the model ``name`` (versions, traffic, experiment)."""
        for found in self.call("GET", "/admin/deployments")["deployments"]:
            if found["name"] == name:
                return dict(found)
        raise NotFound(f"the server at {self.url} serves no model named {name!r}")

    def set_traffic(self, name: str, weights: dict[str, float]) -> dict[str, Any]:
        return dict(self.call("PUT", f"/admin/deployments/{name}/traffic", {"traffic": weights}))

    def metrics_text(self) -> str:
        """The server's Prometheus exposition (``/metrics``)."""
        try:
            response = httpx.get(self.url + "/metrics", timeout=self.timeout_s)
        except httpx.HTTPError as exc:
            raise ServingError(f"cannot reach the server at {self.url}: {exc}") from exc
        if response.status_code != 200:
            raise ServingError(f"{self.url}/metrics answered {response.status_code}")
        return response.text
