"""`SqlAuthStore`: users, API tokens, grants and the audit log in the SQL metadata database.

The store keeps rows; hashing, token secrets and permission rules live in :mod:`shipyard.auth`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import sqlalchemy as sa

from shipyard.auth.records import AuditEvent, Grant, Permission, ResourceType, Role, Token, User
from shipyard.errors import AlreadyExists, NotFound
from shipyard.store.db import MetadataStore
from shipyard.store.schema import api_tokens, audit_events, grants, users


class SqlAuthStore:
    """Access records in one SQL metadata database. Thread-safe; any number may share a database."""

    def __init__(self, db: MetadataStore) -> None:
        self.db = db

    # users
    def insert_user(self, row: Mapping[str, Any]) -> User:
        try:
            with self.db.write() as conn:
                conn.execute(users.insert().values(**row, failed_logins=0, locked_until=None))
        except sa.exc.IntegrityError as exc:
            raise AlreadyExists(f"a user named {row['name']!r} already exists") from exc
        return self.user(row["name"])

    def user(self, name: str) -> User:
        return _user(self._user_row(name))

    def credentials(self, name: str) -> tuple[User, str | None, int, int | None] | None:
        """A user, its password hash, failed-login count and lock (epoch ms); None for no such user."""
        with self.db.read() as conn:
            row = conn.execute(sa.select(users).where(users.c.name == name)).first()
        if row is None:
            return None
        m = row._mapping
        return _user(m), m["password_hash"], m["failed_logins"], m["locked_until"]

    def list_users(self) -> list[User]:
        with self.db.read() as conn:
            rows = conn.execute(sa.select(users).order_by(users.c.name)).all()
        return [_user(r._mapping) for r in rows]

    def update_user(self, name: str, values: Mapping[str, Any]) -> User:
        with self.db.write() as conn:
            if not conn.execute(users.update().where(users.c.name == name).values(**values)).rowcount:
                raise NotFound(f"no user named {name!r}; list them with: shipyard users list")
        return self.user(name)

    def count_admins(self) -> int:
        query = sa.select(sa.func.count()).where(
            users.c.role == Role.ADMIN.value, users.c.disabled.is_(False)
        )
        with self.db.read() as conn:
            return int(conn.execute(query).scalar_one())

    def login_failed(self, name: str, failed: int, locked_until: int | None) -> None:
        with self.db.write() as conn:
            conn.execute(
                users.update()
                .where(users.c.name == name)
                .values(failed_logins=failed, locked_until=locked_until)
            )

    # tokens
    def insert_token(self, row: Mapping[str, Any]) -> Token:
        with self.db.write() as conn:
            conn.execute(api_tokens.insert().values(**row))
        return self.token(row["token_id"])

    def token(self, token_id: str) -> Token:
        found = self.token_secret(token_id)
        if found is None:
            raise NotFound(f"no API token {token_id!r}; list them with: shipyard tokens list")
        return found[0]

    def token_secret(self, token_id: str) -> tuple[Token, str, User] | None:
        """A token, the sha256 of its secret and its user; None if there is no such token."""
        query = sa.select(
            api_tokens,
            users.c.name.label("user_name"),
            users.c.role,
            users.c.disabled,
            users.c.created_at.label("user_created_at"),
            users.c.password_hash,
        ).join(users, users.c.user_id == api_tokens.c.user_id)
        with self.db.read() as conn:
            row = conn.execute(query.where(api_tokens.c.token_id == token_id)).first()
        if row is None:
            return None
        m = row._mapping
        user = User(
            m["user_id"],
            m["user_name"],
            Role(m["role"]),
            bool(m["disabled"]),
            m["user_created_at"],
            m["password_hash"] is not None,
        )
        return _token(m), m["secret_sha256"], user

    def list_tokens(self, user: str | None = None) -> list[Token]:
        query = sa.select(api_tokens, users.c.name.label("user_name")).join(
            users, users.c.user_id == api_tokens.c.user_id
        )
        if user is not None:
            query = query.where(users.c.name == user)
        with self.db.read() as conn:
            rows = conn.execute(query.order_by(api_tokens.c.created_at)).all()
        return [_token(r._mapping) for r in rows]

    def update_token(self, token_id: str, values: Mapping[str, Any]) -> None:
        with self.db.write() as conn:
            conn.execute(api_tokens.update().where(api_tokens.c.token_id == token_id).values(**values))

    # grants
    def put_grant(
        self, user: str, kind: ResourceType, resource: str, permission: Permission, by: str, at: int
    ) -> Grant:
        user_id = self._user_row(user)["user_id"]
        with self.db.write() as conn:
            conn.execute(grants.delete().where(_grant_key(user_id, kind, resource)))
            conn.execute(
                grants.insert().values(
                    user_id=user_id,
                    resource_type=kind.value,
                    resource=resource,
                    permission=permission.value,
                    granted_by=by,
                    created_at=at,
                )
            )
        return Grant(user, kind, resource, permission, by, at)

    def delete_grant(self, user: str, kind: ResourceType, resource: str) -> bool:
        user_id = self._user_row(user)["user_id"]
        with self.db.write() as conn:
            return bool(conn.execute(grants.delete().where(_grant_key(user_id, kind, resource))).rowcount)

    def grants_of(
        self, user: str | None = None, kind: ResourceType | None = None, resource: str | None = None
    ) -> list[Grant]:
        query = sa.select(grants, users.c.name.label("user_name")).join(
            users, users.c.user_id == grants.c.user_id
        )
        if user is not None:
            query = query.where(users.c.name == user)
        if kind is not None:
            query = query.where(grants.c.resource_type == kind.value)
        if resource is not None:
            query = query.where(grants.c.resource == resource)
        with self.db.read() as conn:
            rows = conn.execute(query.order_by(users.c.name, grants.c.resource_type, grants.c.resource)).all()
        return [
            Grant(
                r.user_name,
                ResourceType(r.resource_type),
                r.resource,
                Permission(r.permission),
                r.granted_by,
                r.created_at,
            )
            for r in rows
        ]

    # audit
    def append_audit(self, events: Iterable[Mapping[str, Any]]) -> None:
        rows = list(events)
        if rows:
            with self.db.write() as conn:
                conn.execute(audit_events.insert(), rows)

    def audit(
        self, *, since: int | None = None, user: str | None = None, limit: int = 100
    ) -> list[AuditEvent]:
        """The latest events (newest first), optionally since ``since`` (epoch ms) or by one user."""
        query = sa.select(audit_events)
        if since is not None:
            query = query.where(audit_events.c.at >= since)
        if user is not None:
            query = query.where(audit_events.c.user_name == user)
        with self.db.read() as conn:
            rows = conn.execute(query.order_by(audit_events.c.id.desc()).limit(limit)).all()
        return [AuditEvent(r.id, r.at, r.user_name, r.method, r.path, r.status, r.address) for r in rows]

    def _user_row(self, name: str) -> Mapping[str, Any]:
        with self.db.read() as conn:
            row = conn.execute(sa.select(users).where(users.c.name == name)).first()
        if row is None:
            raise NotFound(f"no user named {name!r}; list them with: shipyard users list")
        return row._mapping


def move_grants(conn: sa.Connection, kind: ResourceType, old: str, new: str) -> None:
    """Inside a rename's transaction: grants key by name, so the renamed resource's go with it, and any left
    on ``new`` by a deleted namesake are dropped (they must not open the renamed resource to others)."""
    conn.execute(grants.delete().where(grants.c.resource_type == kind.value, grants.c.resource == new))
    conn.execute(
        grants.update()
        .where(grants.c.resource_type == kind.value, grants.c.resource == old)
        .values(resource=new)
    )


def _grant_key(user_id: str, kind: ResourceType, resource: str) -> Any:
    return (
        (grants.c.user_id == user_id)
        & (grants.c.resource_type == kind.value)
        & (grants.c.resource == resource)
    )


def _user(m: Mapping[str, Any]) -> User:
    return User(
        m["user_id"],
        m["name"],
        Role(m["role"]),
        bool(m["disabled"]),
        m["created_at"],
        m["password_hash"] is not None,
    )


def _token(m: Mapping[str, Any]) -> Token:
    return Token(
        m["token_id"],
        m["user_name"],
        m["name"],
        m["created_at"],
        m["expires_at"],
        m["revoked_at"],
        m["last_used_at"],
    )
