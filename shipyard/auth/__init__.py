"""Who may use a platform server: users, API tokens, roles, per-resource grants, single sign-on, audit."""

from shipyard.auth.records import (
    AuditEvent,
    Grant,
    Permission,
    Principal,
    ResourceType,
    Role,
    Token,
    User,
)

__all__ = ["AuditEvent", "Grant", "Permission", "Principal", "ResourceType", "Role", "Token", "User"]
