"""The platform server as the judge of who may manage this inference server's models (``serve --platform``).

With a platform URL, the admin routes take ``Authorization: Bearer <platform token>`` and ask the platform's
``GET /api/v1/access`` — passing the caller's bearer on — whether its user has the permission a route needs on
``deployment:<served model name>``. Only a 200 that says ``allowed`` for a signed-in user allows (an
allow-list: a platform without sign-in, a redirect or any other answer refuses); 401, 403 and 404 come back
as the platform worded them; a platform that cannot be reached, or answers otherwise, is a `StoreError`
(HTTP 503) naming its URL — never an allowance. Answers are not cached, so a revoked grant or token stops
working at the next request. Tokens are sent to the platform only, never logged or echoed.

On startup :func:`register_deployments` records each served model as a deployment on the platform
(``PUT /api/v1/deployments/{name}`` with this server's URL), so grants can name it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

import httpx

from shipyard.auth.records import Permission, ResourceType
from shipyard.deployments import DeploymentRecord, RemoteDeployments, check_server_url
from shipyard.errors import Forbidden, InvalidInput, NotFound, ShipyardError, StoreError, Unauthorized
from shipyard.store.http import HttpClient

_REFUSALS: dict[int, type[ShipyardError]] = {401: Unauthorized, 403: Forbidden, 404: NotFound}


def check_platform_url(url: str) -> str:
    """The platform server's base URL: ``http://`` or ``https://`` with a host; no trailing slash."""
    return check_server_url(url, "--platform", "the platform server's base URL")


class PlatformAccess:
    """Asks a platform server whether a bearer token's user may manage a deployment.

    Args:
        url: the platform server's base URL (``http://platform:5000``).
        timeout_s: how long one check may take before the request gets 503.
        transport: an httpx transport to use instead of the network (tests inject one).

    Safe to share between the requests of one event loop; :meth:`aclose` on shutdown.
    """

    def __init__(
        self, url: str, *, timeout_s: float = 5.0, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self.url = check_platform_url(url)
        self.timeout_s = timeout_s
        self._transport = transport
        self._client: httpx.AsyncClient | None = None

    async def require(self, credential: str, name: str, needed: Permission) -> str:
        """The user of ``credential`` if it has ``needed`` on deployment ``name``; else `Unauthorized`,
        `Forbidden` or `NotFound` as the platform says, or `StoreError` if it cannot say."""
        resource = f"{ResourceType.DEPLOYMENT.value}:{name}"
        try:
            response = await self._http().get(
                f"{self.url}/api/v1/access",
                params={"resource": resource, "permission": needed.value},
                headers={"Authorization": f"Bearer {credential}", "Accept": "application/json"},
            )
        except httpx.HTTPError as exc:
            reason = type(exc).__name__
            raise StoreError(f"cannot reach the platform at {self.url} to check access ({reason})") from None
        return self._verdict(response, resource, needed)

    async def readable(self, credential: str, names: Iterable[str]) -> list[str]:
        """Those of ``names`` the user of ``credential`` may read (a bad token is `Unauthorized` still)."""
        names = list(names)

        async def may_read(name: str) -> bool:
            try:
                await self.require(credential, name, Permission.READ)
            except (Forbidden, NotFound):  # not granted, or not registered on the platform: not shown
                return False
            return True

        verdicts = await asyncio.gather(*(may_read(name) for name in names))
        return [name for name, allowed in zip(names, verdicts, strict=True) if allowed]

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def _http(self) -> httpx.AsyncClient:
        # Made on first use, inside the server's event loop (its connection pool belongs to that loop).
        if self._client is None:
            self._client = httpx.AsyncClient(
                timeout=self.timeout_s, follow_redirects=False, transport=self._transport
            )
        return self._client

    def _verdict(self, response: httpx.Response, resource: str, needed: Permission) -> str:
        status = response.status_code
        if status in _REFUSALS:
            raise _REFUSALS[status](f"platform {self.url}: {_message(response)}")
        if status != 200:
            raise StoreError(f"the platform at {self.url} answered {status} to an access check")
        try:
            answer = response.json()
        except ValueError:
            raise StoreError(f"the platform at {self.url} answered an access check with no JSON") from None
        if not isinstance(answer, dict) or answer.get("allowed") is not True:
            raise Forbidden(f"platform {self.url} did not allow {needed.value} on {resource}")
        if answer.get("authenticated") is not True or not isinstance(answer.get("user"), str):
            raise Forbidden(
                f"the platform at {self.url} does not sign users in, so it cannot say who may manage "
                f"{resource}; run it with sign-in required"
            )
        return answer["user"]


def _message(response: httpx.Response) -> str:
    try:
        return str(response.json()["error"]["message"])[:500]
    except (ValueError, KeyError, TypeError):
        return f"HTTP {response.status_code}"


def register_deployments(
    platform_url: str, names: Iterable[str], url: str, token: str | None
) -> list[DeploymentRecord]:
    """Record each of ``names`` on the platform as a deployment served at ``url``, as the user of ``token``.

    Raises:
        InvalidInput: no token, or a bad URL.
        Unauthorized, Forbidden: the platform refused (the message says which deployment and why).
        StoreError: the platform cannot be reached.
    """
    platform_url = check_platform_url(platform_url)
    if not token:
        raise InvalidInput(
            "--platform needs a platform token to register the served models: set SHIPYARD_TRACKING_TOKEN "
            "(create one with: shipyard tokens create)"
        )
    client = HttpClient(platform_url, token=token, timeout_s=10.0)
    records = []
    try:
        deployments = RemoteDeployments(client)
        for name in names:
            try:
                records.append(deployments.put(name, url))
            except (Unauthorized, Forbidden, NotFound, InvalidInput) as exc:
                raise type(exc)(
                    f"the platform at {platform_url} refused to register deployment {name!r}: {exc}"
                ) from None
    finally:
        client.close()
    return records


__all__ = ["PlatformAccess", "check_platform_url", "register_deployments"]
