"""Users, API tokens and grants: the rules over the auth store (hashing, token secrets, login throttling).

API tokens read ``shy_<id>_<secret>``: the id finds the record, the secret (256 random bits) is compared by
its sha256 in constant time, and only that hash is stored — the whole token is shown once, at creation.
Passwords are argon2id hashes (``argon2-cffi``). After ``FREE_FAILURES`` failed logins in a row a user's
further attempts are refused unchecked for a window that doubles with each failure (capped), so guessing a
password over the API is slow; a good password resets the count.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Callable
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from shipyard.auth.records import (
    AuditEvent,
    Grant,
    Permission,
    Principal,
    ResourceType,
    Role,
    Token,
    User,
    parse_resource,
)
from shipyard.errors import Conflict, InvalidInput, NotFound, Unauthorized
from shipyard.store.protocol import AuthStore
from shipyard.tracking import naming
from shipyard.tracking.records import new_id, now_ms

TOKEN_PREFIX = "shy_"
_TOKEN_RE = re.compile(r"^shy_([0-9a-f]{32})_([A-Za-z0-9_-]{43})$")
_USER_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@+-]{0,127}$")
MIN_PASSWORD = 8
FREE_FAILURES = 5
MAX_LOCK_S = 300
_TOUCH_EVERY_MS = 60_000  # how stale a token's last use may be shown
_hasher = PasswordHasher()
# Verified against when a login names no user, so an unknown name takes as long as a wrong password.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


def check_user_name(name: object) -> str:
    if not isinstance(name, str) or not _USER_RE.match(name):
        raise InvalidInput(
            f"invalid user name {name!r}: 1-128 letters, digits, '_', '.', '@', '+' or '-', starting with a "
            "letter or digit"
        )
    return name


def token_id_of(raw: str) -> str | None:
    """The id of an API token (None when ``raw`` is not shaped like one); the secret is not checked."""
    match = _TOKEN_RE.match(raw)
    return None if match is None else match[1]


def secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class Accounts:
    """The server's users, tokens and grants.

    Args:
        store: the access records.
        exists: ``exists(kind, name)`` — whether a grant's resource exists (a grant on a missing one is
            `NotFound`); default: every resource exists.
        default_permission: what a user may do on a resource it has no grant on (within its role).
    """

    def __init__(
        self,
        store: AuthStore,
        *,
        exists: Callable[[ResourceType, str], bool] | None = None,
        default_permission: Permission = Permission.READ,
    ) -> None:
        self.store = store
        self._exists = exists
        self.default_permission = default_permission

    # ------------------------------------------------------------------ users
    def create_user(self, name: str, role: Role | str = Role.VIEWER, password: str | None = None) -> User:
        """A new enabled user; without a password it can only use API tokens."""
        check_user_name(name)
        role = Role.parse(role)
        return self.store.insert_user(
            {
                "user_id": new_id(),
                "name": name,
                "role": role.value,
                "password_hash": None if password is None else _hash_password(password),
                "disabled": False,
                "created_at": now_ms(),
            }
        )

    def list_users(self) -> list[User]:
        return self.store.list_users()

    def get_user(self, name: str) -> User:
        return self.store.user(name)

    def set_disabled(self, name: str, disabled: bool = True) -> User:
        """Disable (or enable) a user: a disabled user's tokens and password stop working at once."""
        user = self.store.user(name)
        if disabled and user.role is Role.ADMIN and not user.disabled and self.store.count_admins() <= 1:
            raise Conflict(f"{name!r} is the last enabled admin; create another admin before disabling it")
        return self.store.update_user(name, {"disabled": disabled})

    def set_role(self, name: str, role: Role | str) -> User:
        role = Role.parse(role)
        user = self.store.user(name)
        if user.role is Role.ADMIN and role is not Role.ADMIN and self.store.count_admins() <= 1:
            raise Conflict(f"{name!r} is the last enabled admin; create another admin first")
        return self.store.update_user(name, {"role": role.value})

    def set_password(self, name: str, password: str) -> User:
        self.store.user(name)
        return self.store.update_user(
            name, {"password_hash": _hash_password(password), "failed_logins": 0, "locked_until": None}
        )

    # ------------------------------------------------------------------ tokens
    def create_token(
        self, user: str, name: str = "token", *, expires_in_days: float | None = 90.0
    ) -> tuple[Token, str]:
        """A new API token for ``user``: its record and the token itself (shown once, never stored)."""
        naming.check_name(name, "token name")
        if expires_in_days is not None and expires_in_days <= 0:
            raise InvalidInput(f"a token's lifetime must be positive, got {expires_in_days} days")
        owner = self.store.user(user)
        if owner.disabled:
            raise Conflict(f"user {user!r} is disabled; enable it before giving it tokens")
        token_id, secret = new_id(), secrets.token_urlsafe(32)
        now = now_ms()
        expires = None if expires_in_days is None else now + int(expires_in_days * 86_400_000)
        record = self.store.insert_token(
            {
                "token_id": token_id,
                "user_id": owner.user_id,
                "name": name,
                "secret_sha256": secret_hash(secret),
                "created_at": now,
                "expires_at": expires,
                "revoked_at": None,
                "last_used_at": None,
            }
        )
        return record, f"{TOKEN_PREFIX}{token_id}_{secret}"

    def list_tokens(self, user: str | None = None) -> list[Token]:
        if user is not None:
            self.store.user(user)  # NotFound names an unknown user
        return self.store.list_tokens(user)

    def get_token(self, token_id: str) -> Token:
        return self.store.token(token_id)

    def revoke_token(self, token_id: str) -> Token:
        token = self.store.token(token_id)
        if token.revoked_at is None:
            self.store.update_token(token_id, {"revoked_at": now_ms()})
        return self.store.token(token_id)

    # ------------------------------------------------------------------ grants
    def grant(self, user: str, resource: str, permission: Permission | str, *, by: str) -> Grant:
        """Give ``user`` ``permission`` on ``resource`` (``experiment:NAME``, ``model:NAME`` or
        ``deployment:NAME``)."""
        kind, name = parse_resource(resource)
        permission = Permission.parse(permission)
        self.store.user(user)  # NotFound names an unknown user
        if not self.resource_exists(kind, name):
            raise NotFound(f"no {kind.noun} named {name!r} to grant on")
        return self.store.put_grant(user, kind, name, permission, by, now_ms())

    def resource_exists(self, kind: ResourceType, name: str) -> bool:
        """Whether the experiment, registered model or deployment ``name`` exists (always, without
        ``exists``)."""
        return self._exists is None or self._exists(kind, name)

    def revoke_grant(self, user: str, resource: str) -> None:
        kind, name = parse_resource(resource)
        if not self.store.delete_grant(user, kind, name):
            raise NotFound(f"user {user!r} has no grant on {kind.value}:{name}")

    def grants(self, user: str | None = None, resource: str | None = None) -> list[Grant]:
        kind, name = parse_resource(resource) if resource else (None, None)
        if user is not None:
            self.store.user(user)
        return self.store.grants_of(user, kind, name)

    def audit(
        self, *, since: int | None = None, user: str | None = None, limit: int = 100
    ) -> list[AuditEvent]:
        return self.store.audit(since=since, user=user, limit=limit)

    # ------------------------------------------------------------------ authentication
    def principal(self, user: User, *, via: str = "token") -> Principal:
        """What ``user`` may do: its role, its grants and the server's default permission."""
        grants = {(g.resource_type, g.resource): g.permission for g in self.store.grants_of(user.name)}
        return Principal(user.name, user.role, grants, self.default_permission, via)

    def authenticate_token(self, raw: str) -> Principal:
        """The principal of an API token; `Unauthorized` (never echoing the token) if it does not hold."""
        match = _TOKEN_RE.match(raw)
        if match is None:
            raise Unauthorized(
                "malformed API token: expected shy_<id>_<secret> (create one: shipyard tokens create)"
            )
        found = self.store.token_secret(match[1])
        if found is None or not hmac.compare_digest(found[1], secret_hash(match[2])):
            raise Unauthorized("unknown API token")
        token, _, user = found
        state = token.state(now_ms())
        if state != "active":
            raise Unauthorized(f"API token {token.token_id} is {state}")
        if user.disabled:
            raise Unauthorized(f"user {user.name!r} is disabled")
        now = now_ms()
        if token.last_used_at is None or now - token.last_used_at > _TOUCH_EVERY_MS:
            self.store.update_token(token.token_id, {"last_used_at": now})  # at most a write a minute
        return self.principal(user)

    def authenticate_password(self, name: str, password: str) -> Principal:
        """The principal of a user name and password; `Unauthorized` if they do not match, or while the user
        is locked after repeated failures."""
        found = self.store.credentials(name) if _USER_RE.match(name or "") else None
        if found is None:
            _verify(_DUMMY_HASH, password)
            raise Unauthorized("invalid user name or password")
        user, hashed, failed, locked_until = found
        now = now_ms()
        if locked_until is not None and locked_until > now:
            wait = (locked_until - now + 999) // 1000
            raise Unauthorized(f"too many failed logins for {name!r}; try again in {wait} s")
        if hashed is None or not _verify(hashed, password):
            failed += 1
            lock = None
            if failed >= FREE_FAILURES:
                lock = now + 1000 * min(2 ** (failed - FREE_FAILURES), MAX_LOCK_S)
            self.store.login_failed(name, failed, lock)
            raise Unauthorized("invalid user name or password")
        if user.disabled:
            raise Unauthorized(f"user {name!r} is disabled")
        if failed:
            self.store.login_failed(name, 0, None)
        return self.principal(user, via="password")

    def record(self, events: list[dict[str, Any]]) -> None:
        self.store.append_audit(events)


def _hash_password(password: str) -> str:
    if not isinstance(password, str) or len(password) < MIN_PASSWORD:
        raise InvalidInput(f"a password needs at least {MIN_PASSWORD} characters")
    if len(password) > 1024:
        raise InvalidInput("a password has at most 1024 characters")
    return _hasher.hash(password)


def _verify(hashed: str, password: str) -> bool:
    try:
        return _hasher.verify(hashed, password)
    except (VerificationError, InvalidHashError):
        return False


__all__ = ["TOKEN_PREFIX", "Accounts", "check_user_name"]
