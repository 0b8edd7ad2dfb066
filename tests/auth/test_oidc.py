"""Single sign-on: bearer JWTs signed by an issuer whose key set a real local HTTP server publishes."""

from __future__ import annotations

import http.server
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

jwt = pytest.importorskip("jwt", reason="single sign-on needs PyJWT (the sso extra)")

from cryptography.hazmat.primitives.asymmetric import rsa  # noqa: E402

from shipyard.auth.accounts import Accounts  # noqa: E402
from shipyard.auth.oidc import OidcVerifier, parse_role_map  # noqa: E402
from shipyard.auth.records import Role  # noqa: E402
from shipyard.errors import InvalidInput, Unauthorized  # noqa: E402
from shipyard.store import open_server_stores  # noqa: E402
from tests.conftest import make_settings, platform_server  # noqa: E402

AUDIENCE = "shipyard"


class Issuer:
    def __init__(self, url: str, key: rsa.RSAPrivateKey) -> None:
        self.url = url
        self.key = key

    def token(self, **claims: Any) -> str:
        now = int(time.time())
        body = {"iss": self.url, "aud": AUDIENCE, "iat": now, "exp": now + 300, **claims}
        return jwt.encode(body, self.key, algorithm="RS256", headers={"kid": "k1"})


@pytest.fixture(scope="module")
def issuer() -> Iterator[Issuer]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    documents: dict[str, bytes] = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = documents.get(self.path)
            self.send_response(200 if body else 404)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body or b"{}")

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    url = f"http://127.0.0.1:{server.server_port}"
    documents["/.well-known/openid-configuration"] = json.dumps(
        {"issuer": url, "jwks_uri": f"{url}/jwks"}
    ).encode()
    documents["/jwks"] = json.dumps(
        {"keys": [{**public, "kid": "k1", "use": "sig", "alg": "RS256"}]}
    ).encode()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Issuer(url, key)
    finally:
        server.shutdown()


def _verifier(issuer: Issuer) -> OidcVerifier:
    return OidcVerifier(issuer.url, AUDIENCE, parse_role_map("ml-admins=admin, ml-team=editor"))


def test_a_signed_token_maps_to_the_highest_role_of_its_groups(issuer: Issuer, tmp_path: Path) -> None:
    accounts = Accounts(open_server_stores(make_settings(tmp_path / "s")).auth)
    verifier = _verifier(issuer)
    principal = verifier.principal(
        issuer.token(preferred_username="ana", groups=["ml-team", "ml-admins"]), accounts
    )
    assert (principal.user, principal.role, principal.via) == ("ana", Role.ADMIN, "oidc")
    assert verifier.principal(issuer.token(sub="s-1", groups="ml-team"), accounts).user == "s-1"


def test_bad_tokens_are_refused_with_a_reason(issuer: Issuer, tmp_path: Path) -> None:
    accounts = Accounts(open_server_stores(make_settings(tmp_path / "s")).auth)
    verifier = _verifier(issuer)
    now = int(time.time())
    cases = {
        "expired": issuer.token(preferred_username="a", groups=["ml-team"], exp=now - 60),
        "audience": issuer.token(preferred_username="a", groups=["ml-team"], aud="another-app"),
        "issuer": jwt.encode(
            {"iss": "https://evil.example", "aud": AUDIENCE, "exp": now + 60, "groups": ["ml-team"]},
            issuer.key,
            algorithm="RS256",
            headers={"kid": "k1"},
        ),
        "no Shipyard role": issuer.token(preferred_username="a", groups=["finance"]),
    }
    for reason, token in cases.items():
        with pytest.raises(Unauthorized) as caught:
            verifier.principal(token, accounts)
        assert reason.split()[0].lower() in str(caught.value).lower(), (reason, str(caught.value))
        assert token not in str(caught.value)
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = jwt.encode(
        {"iss": issuer.url, "aud": AUDIENCE, "exp": now + 60, "groups": ["ml-admins"]},
        other,
        algorithm="RS256",
        headers={"kid": "k1"},
    )
    with pytest.raises(Unauthorized, match="invalid bearer token"):
        verifier.principal(forged, accounts)
    symmetric = jwt.encode({"iss": issuer.url, "aud": AUDIENCE, "exp": now + 60}, "s" * 32, algorithm="HS256")
    with pytest.raises(Unauthorized):
        verifier.principal(symmetric, accounts)
    with pytest.raises(InvalidInput, match="CLAIM_VALUE=ROLE"):
        parse_role_map("ml-admins")


def test_the_server_accepts_sso_tokens_beside_api_tokens(issuer: Issuer, tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "server")
    with platform_server(settings, require_auth=True, oidc=_verifier(issuer)) as url:
        token = issuer.token(preferred_username="ana", groups=["ml-team"])
        me = httpx.get(f"{url}/api/v1/users/me", headers={"Authorization": f"Bearer {token}"})
        assert me.json()["user"] == "ana" and me.json()["role"] == "editor" and me.json()["via"] == "oidc"
        made = httpx.post(
            f"{url}/api/v1/experiments", json={"name": "sso"}, headers={"Authorization": f"Bearer {token}"}
        )
        assert made.status_code == 201, made.text
        expired = issuer.token(preferred_username="ana", groups=["ml-team"], exp=int(time.time()) - 5)
        refused = httpx.get(f"{url}/api/v1/users/me", headers={"Authorization": f"Bearer {expired}"})
        assert refused.status_code == 401 and "expired" in refused.json()["error"]["message"].lower()
