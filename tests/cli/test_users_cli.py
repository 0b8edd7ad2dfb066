"""`shipyard users create` for start-up scripts and init containers: the password from a mounted file, and
--exists-ok that leaves an existing user as it is."""

from __future__ import annotations

from pathlib import Path

import pytest

from shipyard.auth.accounts import Accounts
from shipyard.config import get_settings
from shipyard.errors import Unauthorized
from shipyard.store import open_server_stores
from tests.cli.test_cli import run_cli


def _accounts() -> Accounts:
    return Accounts(open_server_stores(get_settings()).auth)


def test_password_file_and_exists_ok(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    secret = tmp_path / "password"
    # A Secret made with `echo` ends in a newline, which is not part of the password.
    secret.write_text("first-pass-phrase\n")
    args = ("users", "create", "admin", "--role", "admin", "--password-file", str(secret), "--exists-ok")
    code, out, err = run_cli(capsys, *args)
    assert code == 0, err
    assert "created user admin (admin)" in out
    assert _accounts().authenticate_password("admin", "first-pass-phrase").user == "admin"
    # Run again (the next pod's start) with another password and role: nothing changes.
    secret.write_text("second-pass-phrase")
    again = ("users", "create", "admin", "--role", "viewer", "--password-file", str(secret), "--exists-ok")
    code, out, _ = run_cli(capsys, *again)
    assert code == 0 and "user admin exists (left as it is; its role is admin, not viewer)" in out
    assert _accounts().authenticate_password("admin", "first-pass-phrase").user == "admin"
    with pytest.raises(Unauthorized):
        _accounts().authenticate_password("admin", "second-pass-phrase")
    # Without --exists-ok an existing name is still an error.
    code, _, err = run_cli(capsys, "users", "create", "admin", "--password-file", str(secret))
    assert code == 4 and "already exists" in err


def test_password_file_refusals(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    empty = tmp_path / "empty"
    empty.write_text("\n")
    code, _, err = run_cli(capsys, "users", "create", "a", "--password-file", str(empty))
    assert code == 2 and f"--password-file {empty} holds no password" in err
    code, _, err = run_cli(capsys, "users", "create", "a", "--password-file", str(tmp_path / "absent"))
    assert code == 2 and "--password-file" in err and "cannot read it" in err
    code, _, err = run_cli(capsys, "users", "create", "a", "--password-file", str(empty), "--no-password")
    assert code == 2 and "give one of --password-stdin, --password-file and --no-password" in err
    assert [u.name for u in _accounts().list_users()] == []
