"""Users, tokens, grants and the audit log of a platform server, over its REST API (team mode's CLI).

Mirrors :class:`shipyard.auth.accounts.Accounts`, which the CLI uses directly on the server's own database.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from shipyard.auth.records import AuditEvent, Grant, Permission, ResourceType, Role, Token, User
from shipyard.store.http import HttpClient


class RemoteAccounts:
    """The access records of the server ``client`` talks to, as the signed-in user may see them."""

    def __init__(self, client: HttpClient) -> None:
        self._client = client

    def whoami(self) -> dict[str, Any]:
        return self._client.call("GET", "/users/me")

    def create_user(self, name: str, role: Role | str = Role.VIEWER, password: str | None = None) -> User:
        body = {"name": name, "role": str(Role.parse(role)), "password": password}
        return _user(self._client.call("POST", "/users", json=body))

    def list_users(self) -> list[User]:
        return [_user(u) for u in self._client.call("GET", "/users")]

    def set_disabled(self, name: str, disabled: bool = True) -> User:
        return _user(
            self._client.call("PATCH", f"/users/{quote(name, safe='')}", json={"disabled": disabled})
        )

    def set_role(self, name: str, role: Role | str) -> User:
        body = {"role": str(Role.parse(role))}
        return _user(self._client.call("PATCH", f"/users/{quote(name, safe='')}", json=body))

    def set_password(self, name: str, password: str) -> User:
        body = {"password": password}
        return _user(self._client.call("PATCH", f"/users/{quote(name, safe='')}", json=body))

    def create_token(
        self, user: str | None, name: str = "token", *, expires_in_days: float | None = 90.0
    ) -> tuple[Token, str]:
        body = {"user": user, "name": name, "expires_in_days": expires_in_days}
        found = self._client.call("POST", "/tokens", json=body)
        secret = found.pop("token")
        return _token(found), secret

    def list_tokens(self, user: str | None = None) -> list[Token]:
        params = {"user": user} if user else {}
        return [_token(t) for t in self._client.call("GET", "/tokens", params=params)]

    def revoke_token(self, token_id: str) -> Token:
        return _token(self._client.call("DELETE", f"/tokens/{quote(token_id, safe='')}"))

    def grant(self, user: str, resource: str, permission: Permission | str, *, by: str = "") -> Grant:
        body = {"user": user, "resource": resource, "permission": str(Permission.parse(permission))}
        return _grant(self._client.call("PUT", "/grants", json=body))

    def revoke_grant(self, user: str, resource: str) -> None:
        self._client.call("DELETE", "/grants", params={"user": user, "resource": resource})

    def grants(self, user: str | None = None, resource: str | None = None) -> list[Grant]:
        params = {k: v for k, v in (("user", user), ("resource", resource)) if v}
        return [_grant(g) for g in self._client.call("GET", "/grants", params=params)]

    def audit(
        self, *, since: int | None = None, user: str | None = None, limit: int = 100
    ) -> list[AuditEvent]:
        params: dict[str, Any] = {"limit": limit}
        if since is not None:
            params["since"] = since
        if user:
            params["user"] = user
        return [AuditEvent(**e) for e in self._client.call("GET", "/audit", params=params)]


def _user(d: dict[str, Any]) -> User:
    return User(**{**d, "role": Role(d["role"])})


def _token(d: dict[str, Any]) -> Token:
    return Token(**d)


def _grant(d: dict[str, Any]) -> Grant:
    return Grant(
        **{**d, "resource_type": ResourceType(d["resource_type"]), "permission": Permission(d["permission"])}
    )
