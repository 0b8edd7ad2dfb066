"""Users, tokens and grants on a real SQLite store: hashing, token checks, throttled logins."""

from __future__ import annotations

from pathlib import Path

import pytest

from shipyard.auth.accounts import FREE_FAILURES, Accounts
from shipyard.auth.records import Permission, ResourceType, Role
from shipyard.config import Settings
from shipyard.errors import Conflict, InvalidInput, NotFound, Unauthorized
from shipyard.server.app import resource_exists
from shipyard.store import open_server_stores
from shipyard.tracking.client import TrackingClient

PASSWORD = "correct horse battery"


@pytest.fixture
def accounts(settings: Settings) -> Accounts:
    return Accounts(open_server_stores(settings).auth, exists=resource_exists(open_server_stores(settings)))


def test_a_token_works_until_revoked_and_only_its_hash_is_stored(
    accounts: Accounts, settings: Settings
) -> None:
    accounts.create_user("alice", "editor", PASSWORD)
    record, token = accounts.create_token("alice", "laptop")
    assert token.startswith(f"shy_{record.token_id}_")
    principal = accounts.authenticate_token(token)
    assert (principal.user, principal.role) == ("alice", Role.EDITOR)

    path = Path(settings.db_url.removeprefix("sqlite:///"))
    database = b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))  # with its WAL
    secret = token.split("_", 2)[2]
    assert secret.encode() not in database and PASSWORD.encode() not in database
    assert b"$argon2id$" in database

    accounts.revoke_token(record.token_id)
    with pytest.raises(Unauthorized, match="revoked") as caught:
        accounts.authenticate_token(token)
    assert secret not in str(caught.value)


def test_expired_malformed_unknown_and_disabled_are_refused(accounts: Accounts) -> None:
    accounts.create_user("admin", "admin", PASSWORD)
    accounts.create_user("bob", "viewer")
    _, short = accounts.create_token("bob", expires_in_days=1e-9)
    with pytest.raises(Unauthorized, match="expired"):
        accounts.authenticate_token(short)
    with pytest.raises(Unauthorized, match="malformed"):
        accounts.authenticate_token("shy_nothex_x")
    _, good = accounts.create_token("bob")
    forged = good[:-4] + ("AAAA" if not good.endswith("AAAA") else "BBBB")
    with pytest.raises(Unauthorized, match="unknown API token") as caught:
        accounts.authenticate_token(forged)
    assert forged not in str(caught.value)
    accounts.set_disabled("bob")
    with pytest.raises(Unauthorized, match="disabled"):
        accounts.authenticate_token(good)
    with pytest.raises(Conflict, match="last enabled admin"):
        accounts.set_disabled("admin")
    with pytest.raises(InvalidInput, match="at least 8"):
        accounts.create_user("carol", "viewer", "short")
    with pytest.raises(InvalidInput, match="unknown role 'root'"):
        accounts.create_user("carol", "root")
    with pytest.raises(InvalidInput, match="invalid user name"):
        accounts.create_user("../etc", "viewer")


def test_repeated_failed_logins_lock_the_user_for_a_growing_while(accounts: Accounts) -> None:
    accounts.create_user("alice", "admin", PASSWORD)
    assert accounts.authenticate_password("alice", PASSWORD).via == "password"
    for _ in range(FREE_FAILURES):
        with pytest.raises(Unauthorized, match="invalid user name or password"):
            accounts.authenticate_password("alice", "wrong password")
    # Locked now: even the right password is refused, unchecked, until the lock runs out.
    with pytest.raises(Unauthorized, match="too many failed logins for 'alice'; try again in"):
        accounts.authenticate_password("alice", PASSWORD)
    accounts.store.login_failed("alice", FREE_FAILURES, None)  # the lock ran out
    assert accounts.authenticate_password("alice", PASSWORD).user == "alice"
    with pytest.raises(Unauthorized, match="invalid user name or password"):
        accounts.authenticate_password("nobody", PASSWORD)  # an unknown name reads the same


def test_grants_name_existing_users_and_resources(accounts: Accounts, settings: Settings) -> None:
    TrackingClient(settings).create_experiment("churn")
    accounts.create_user("bob", "editor")
    grant = accounts.grant("bob", "experiment:churn", "edit", by="admin")
    assert (grant.resource_type, grant.permission) == (ResourceType.EXPERIMENT, Permission.EDIT)
    assert (
        accounts.principal(accounts.get_user("bob")).permission(ResourceType.EXPERIMENT, "churn")
        is Permission.EDIT
    )
    with pytest.raises(NotFound, match="no user named 'mallory'"):
        accounts.grant("mallory", "experiment:churn", "READ", by="admin")
    with pytest.raises(NotFound, match="no experiment named 'nope'"):
        accounts.grant("bob", "experiment:nope", "READ", by="admin")
    with pytest.raises(NotFound, match="no registered model named 'm'"):
        accounts.grant("bob", "model:m", "READ", by="admin")
    with pytest.raises(InvalidInput, match="unknown permission 'OWN'"):
        accounts.grant("bob", "experiment:churn", "OWN", by="admin")
    with pytest.raises(InvalidInput, match="TYPE:NAME"):
        accounts.grant("bob", "churn", "READ", by="admin")


def test_a_role_caps_what_grants_give(accounts: Accounts) -> None:
    accounts.create_user("viv", "viewer")
    accounts.store.put_grant("viv", ResourceType.EXPERIMENT, "churn", Permission.MANAGE, "admin", 0)
    principal = accounts.principal(accounts.get_user("viv"))
    assert principal.permission(ResourceType.EXPERIMENT, "churn") is Permission.READ
    strict = Accounts(accounts.store, default_permission=Permission.NO_PERMISSIONS)
    assert strict.principal(accounts.get_user("viv")).permission(ResourceType.EXPERIMENT, "other") is (
        Permission.NO_PERMISSIONS
    )


def test_grants_on_deployments_name_registered_ones_and_go_with_them(
    accounts: Accounts, settings: Settings
) -> None:
    from shipyard.deployments import Deployments

    deployments = Deployments(open_server_stores(settings).deployments)
    accounts.create_user("bob", "editor")
    with pytest.raises(NotFound, match="no deployment named 'churn' to grant on"):
        accounts.grant("bob", "deployment:churn", "EDIT", by="admin")
    deployments.register("churn", "http://10.0.0.5:8080/", by="alice")
    grant = accounts.grant("bob", "deployment:churn", "EDIT", by="admin")
    assert (grant.resource_type, grant.describe()) == (ResourceType.DEPLOYMENT, "deployment:churn")
    assert accounts.principal(accounts.get_user("bob")).permission(ResourceType.DEPLOYMENT, "churn") is (
        Permission.EDIT
    )
    # A deployment deleted and registered again under its name does not inherit the old grants.
    deployments.delete("churn")
    assert accounts.grants("bob") == []
    deployments.register("churn", "http://10.0.0.6:8080", by="carol")
    assert accounts.principal(accounts.get_user("bob")).permission(ResourceType.DEPLOYMENT, "churn") is (
        Permission.READ
    )
    with pytest.raises(InvalidInput, match="deployment:NAME"):
        accounts.grant("bob", "service:churn", "READ", by="admin")
