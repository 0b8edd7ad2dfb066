"""Single sign-on: bearer JWTs from an OIDC issuer, verified against its JWKS, roles from a claim.

The server trusts a token only if its signature checks against a key the issuer publishes (asymmetric
algorithms only: never ``none`` or a shared secret), it was issued by ``issuer`` for ``audience``, and it has
not expired. The user is the ``user_claim`` (``preferred_username`` by default); the role is the highest one
``role_map`` gives any value of ``roles_claim`` (``groups`` by default) — an identity none maps is refused.
Needs ``pip install 'shipyard[sso]'`` (PyJWT).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import httpx

from shipyard.auth.records import Principal, Role
from shipyard.errors import InvalidInput, StoreError, Unauthorized

if TYPE_CHECKING:
    from shipyard.auth.accounts import Accounts

ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"]
_ORDER = [Role.VIEWER, Role.EDITOR, Role.ADMIN]


def parse_role_map(text: str) -> dict[str, Role]:
    """``ml-admins=admin,ml-team=editor`` → {claim value: role}."""
    mapping: dict[str, Role] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        value, sep, role = part.rpartition("=")
        if not sep or not value:
            raise InvalidInput(f"OIDC role map entry {part!r} must be CLAIM_VALUE=ROLE, e.g. ml-admins=admin")
        mapping[value.strip()] = Role.parse(role)
    return mapping


class OidcVerifier:
    """Verifies an issuer's bearer JWTs and maps them to principals."""

    def __init__(
        self,
        issuer: str,
        audience: str,
        role_map: Mapping[str, Role],
        *,
        jwks_uri: str | None = None,
        roles_claim: str = "groups",
        user_claim: str = "preferred_username",
    ) -> None:
        try:
            import jwt  # noqa: F401
        except ImportError:
            raise InvalidInput("single sign-on needs PyJWT: pip install 'shipyard[sso]'") from None
        if not role_map:
            raise InvalidInput(
                "--oidc-role-map is required with --oidc-issuer (e.g. ml-admins=admin,ml=editor)"
            )
        self.issuer = issuer.rstrip("/")
        self.audience = audience
        self.role_map = dict(role_map)
        self.roles_claim = roles_claim
        self.user_claim = user_claim
        self._jwks_uri = jwks_uri

    @functools.cached_property
    def _keys(self) -> Any:
        import jwt

        uri = self._jwks_uri
        if uri is None:
            discovery = f"{self.issuer}/.well-known/openid-configuration"
            try:
                response = httpx.get(discovery, timeout=10.0)
                response.raise_for_status()
                uri = response.json()["jwks_uri"]
            except (httpx.HTTPError, ValueError, KeyError) as exc:
                raise StoreError(
                    f"cannot read the OIDC issuer's configuration at {discovery}: {exc}"
                ) from None
        return jwt.PyJWKClient(uri, cache_keys=True, lifespan=300)

    def claims(self, token: str) -> dict[str, Any]:
        """The verified claims of ``token``; `Unauthorized` naming why it does not hold (never the token)."""
        import jwt

        try:
            key = self._keys.get_signing_key_from_jwt(token).key
            return jwt.decode(
                token,
                key,
                algorithms=ALGORITHMS,
                audience=self.audience,
                issuer=self.issuer,
                options={"require": ["exp", "iss", "aud"]},
            )
        except jwt.PyJWKClientConnectionError as exc:
            raise StoreError(f"cannot fetch the OIDC issuer's keys: {exc}") from None
        except jwt.PyJWTError as exc:
            raise Unauthorized(f"invalid bearer token: {exc}") from None

    def principal(self, token: str, accounts: Accounts) -> Principal:
        claims = self.claims(token)
        user = claims.get(self.user_claim) or claims.get("sub")
        if not isinstance(user, str) or not user:
            raise Unauthorized(f"the bearer token has no {self.user_claim!r} or 'sub' claim")
        values = claims.get(self.roles_claim, [])
        values = [values] if isinstance(values, str) else list(values or [])
        roles = [self.role_map[v] for v in values if isinstance(v, str) and v in self.role_map]
        if not roles:
            raise Unauthorized(
                f"identity {user!r} has no Shipyard role: none of its {self.roles_claim!r} claim values is "
                "mapped (--oidc-role-map)"
            )
        role = max(roles, key=_ORDER.index)
        found = accounts.store.credentials(user)
        if found is not None and found[0].disabled:
            raise Unauthorized(f"user {user!r} is disabled")
        grants = accounts.principal(found[0]).grants if found is not None else {}
        return Principal(user, role, grants, accounts.default_permission, via="oidc")
