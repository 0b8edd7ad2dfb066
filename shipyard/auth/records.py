"""Users, API tokens, roles, per-resource grants and audit events: the platform server's access records.

Roles set what a user may do at all: a ``viewer`` only reads, an ``editor`` also creates experiments,
models and deployments and writes where permitted, an ``admin`` does everything, users and grants included.
Within its role, a user's permission on one resource (an experiment, a registered model, a deployment) is its
grant there, else the server's default permission — MLflow's names: ``NO_PERMISSIONS`` < ``READ`` < ``EDIT``
< ``MANAGE``. The role caps the grant: a viewer granted ``EDIT`` still only reads.
"""

from __future__ import annotations

import contextvars
import enum
from dataclasses import dataclass, field
from typing import Any

from shipyard.errors import InvalidInput

# Who the records a store writes now are by: the signed-in user of the server request being handled (runs and
# registry events record it instead of the server process's OS user). Unset outside a signed-in request.
ACTOR: contextvars.ContextVar[str | None] = contextvars.ContextVar("shipyard_actor", default=None)


class Role(enum.StrEnum):
    VIEWER = "viewer"
    EDITOR = "editor"
    ADMIN = "admin"

    @classmethod
    def parse(cls, value: str) -> Role:
        try:
            return cls(str(value).strip().lower())
        except ValueError:
            raise InvalidInput(
                f"unknown role {value!r}; roles are: {', '.join(r.value for r in cls)}"
            ) from None


class Permission(enum.StrEnum):
    NO_PERMISSIONS = "NO_PERMISSIONS"
    READ = "READ"
    EDIT = "EDIT"
    MANAGE = "MANAGE"

    @property
    def rank(self) -> int:
        return _RANKS[self]

    def allows(self, needed: Permission) -> bool:
        return self.rank >= needed.rank

    @classmethod
    def parse(cls, value: str) -> Permission:
        try:
            return cls(str(value).strip().upper())
        except ValueError:
            raise InvalidInput(
                f"unknown permission {value!r}; permissions are: {', '.join(p.value for p in cls)}"
            ) from None


_RANKS = {Permission.NO_PERMISSIONS: 0, Permission.READ: 1, Permission.EDIT: 2, Permission.MANAGE: 3}
# The most a role allows on any resource, whatever its grants say.
ROLE_CEILING = {Role.VIEWER: Permission.READ, Role.EDITOR: Permission.MANAGE, Role.ADMIN: Permission.MANAGE}


class ResourceType(enum.StrEnum):
    EXPERIMENT = "experiment"
    REGISTERED_MODEL = "registered_model"
    DEPLOYMENT = "deployment"
    DATASET = "dataset"

    @property
    def noun(self) -> str:
        """What a message calls a resource of this type ("registered model")."""
        return self.value.replace("_", " ")

    @classmethod
    def parse(cls, value: str) -> ResourceType:
        value = str(value).strip().lower()
        value = {"model": "registered_model", "registered-model": "registered_model"}.get(value, value)
        try:
            return cls(value)
        except ValueError:
            raise InvalidInput(
                f"unknown resource type {value!r}; grants name an experiment, a registered model, a "
                "deployment or a dataset (experiment:NAME, model:NAME, deployment:NAME, dataset:NAME)"
            ) from None


def parse_resource(text: str) -> tuple[ResourceType, str]:
    """``experiment:churn``, ``model:churn-clf`` or ``deployment:churn`` → (type, name)."""
    kind, sep, name = str(text).partition(":")
    if not sep or not name.strip():
        raise InvalidInput(
            f"resource {text!r} must be TYPE:NAME, e.g. experiment:churn, model:churn-clf or deployment:churn"
        )
    return ResourceType.parse(kind), name.strip()


@dataclass(frozen=True)
class User:
    user_id: str
    name: str
    role: Role
    disabled: bool
    created_at: int
    has_password: bool = False


@dataclass(frozen=True)
class Token:
    """An API token's record; its secret is shown once, at creation, and stored only as a hash."""

    token_id: str
    user: str
    name: str
    created_at: int
    expires_at: int | None
    revoked_at: int | None
    last_used_at: int | None = None

    def state(self, now_ms: int) -> str:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= now_ms:
            return "expired"
        return "active"


@dataclass(frozen=True)
class Grant:
    user: str
    resource_type: ResourceType
    resource: str
    permission: Permission
    granted_by: str
    created_at: int

    def describe(self) -> str:
        return f"{self.resource_type.value}:{self.resource}"


@dataclass(frozen=True)
class AuditEvent:
    """One write through the server: who, what, when, from which address, and how it ended."""

    event_id: int
    at: int
    user: str
    method: str
    path: str
    status: int
    address: str


@dataclass(frozen=True)
class Principal:
    """The authenticated caller of one request, with what it may do."""

    user: str
    role: Role
    grants: dict[tuple[ResourceType, str], Permission] = field(default_factory=dict)
    default: Permission = Permission.READ
    via: str = "token"

    def permission(self, kind: ResourceType, name: str) -> Permission:
        if self.role is Role.ADMIN:
            return Permission.MANAGE
        found = self.grants.get((kind, name), self.default)
        ceiling = ROLE_CEILING[self.role]
        return found if ceiling.allows(found) else ceiling

    def at_least(self, role: Role) -> bool:
        order = [Role.VIEWER, Role.EDITOR, Role.ADMIN]
        return order.index(self.role) >= order.index(role)


def to_json(record: Any) -> dict[str, Any]:
    from dataclasses import asdict

    out = asdict(record)
    return {k: (v.value if isinstance(v, enum.Enum) else v) for k, v in out.items()}
