"""``shipyard users``, ``shipyard tokens``, ``shipyard grant`` and ``shipyard audit``: who may use the server.

On the server's machine (no SHIPYARD_TRACKING_URI) these work on its database directly — that is how the
first admin is made; in team mode they go through the server as the signed-in user (admins manage users
and read the audit log; anyone manages their own tokens).
"""

from __future__ import annotations

import getpass
import re
import sys
import time
from pathlib import Path
from typing import Any

import typer

from shipyard.cli.output import console, fmt_time, print_json, print_table
from shipyard.config import get_settings
from shipyard.errors import AlreadyExists, InvalidInput

users_app = typer.Typer(help="Manage the platform server's users.", no_args_is_help=True)
tokens_app = typer.Typer(help="Manage API tokens (shown once, stored as hashes).", no_args_is_help=True)


def _accounts() -> Any:
    """The access records: the server's own database on its machine, else through the server."""
    settings = get_settings()
    if settings.tracking_uri:
        from shipyard.auth.remote import RemoteAccounts
        from shipyard.store.http import HttpClient

        return RemoteAccounts(HttpClient(settings.tracking_uri, token=settings.tracking_token))
    from shipyard.auth.accounts import Accounts
    from shipyard.server.app import resource_exists
    from shipyard.store import open_server_stores

    stores = open_server_stores(settings)
    return Accounts(stores.auth, exists=resource_exists(stores))


def _local_actor() -> str:
    try:
        return f"local:{getpass.getuser()}"
    except (KeyError, OSError):
        return "local"


def _read_password(from_stdin: bool, from_file: Path | None = None) -> str:
    if from_file is not None:
        try:
            # A mounted Secret's file: its one line, without the newline editors and `echo` add.
            password = from_file.read_text(encoding="utf-8").rstrip("\r\n")
        except (OSError, UnicodeDecodeError) as exc:
            raise InvalidInput(f"--password-file {from_file}: cannot read it ({exc})") from exc
        if not password:
            raise InvalidInput(f"--password-file {from_file} holds no password")
        return password
    if from_stdin:
        line = sys.stdin.readline()
        password = line.rstrip("\r\n")
        if not password:
            raise InvalidInput("--password-stdin: stdin held no password")
        return password
    if not sys.stdin.isatty():
        raise InvalidInput("no terminal to ask for a password: pass it on stdin with --password-stdin")
    return typer.prompt("Password", hide_input=True, confirmation_prompt=True)


# ---------------------------------------------------------------------- users
@users_app.command("create")
def create_user(
    name: str,
    role: str = typer.Option("viewer", "--role", help="viewer, editor or admin."),
    password_stdin: bool = typer.Option(False, "--password-stdin", help="Read the password from stdin."),
    password_file: Path = typer.Option(
        None,
        "--password-file",
        help="Read the password from this file (a mounted Secret).",
        show_default=False,
    ),
    no_password: bool = typer.Option(False, "--no-password", help="A user that signs in with tokens only."),
    exists_ok: bool = typer.Option(
        False,
        "--exists-ok",
        help="Succeed without changing anything when the user exists (for start-up scripts and init "
        "containers that run on every start).",
    ),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Create a user (asks for its password; never pass one on the command line).

    Examples:

        shipyard users create alice --role admin

        shipyard users create ci-bot --role editor --password-stdin

        shipyard users create admin --role admin --password-file /run/secrets/admin/password --exists-ok

        shipyard users create reader --no-password
    """
    if sum((password_stdin, password_file is not None, no_password)) > 1:
        raise InvalidInput("give one of --password-stdin, --password-file and --no-password")
    accounts = _accounts()
    # Looked up in the list: the team-mode client (a platform server's users) has no lookup by name.
    existing = next((u for u in accounts.list_users() if u.name == name), None) if exists_ok else None
    if existing is not None:
        _say_exists(existing, role, as_json)
        return
    password = None if no_password else _read_password(password_stdin, password_file)
    try:
        user = accounts.create_user(name, role, password)
    except AlreadyExists:
        if not exists_ok:
            raise
        # Another replica's init container created it between the check and the insert.
        _say_exists(next(u for u in accounts.list_users() if u.name == name), role, as_json)
        return
    if as_json:
        print_json(user)
    else:
        console.print(f"created user [bold]{user.name}[/] ({user.role.value})")


def _say_exists(user: Any, role: str, as_json: bool) -> None:
    if as_json:
        print_json(user)
        return
    note = "" if user.role.value == role else f"; its role is {user.role.value}, not {role}"
    console.print(f"user {user.name} exists (left as it is{note})", markup=False)


@users_app.command("list")
def list_users(as_json: bool = typer.Option(False, "--json")) -> None:
    """List users.

    Examples:

        shipyard users list
    """
    found = _accounts().list_users()
    if as_json:
        print_json(found)
        return
    rows = [
        (
            u.name,
            u.role.value,
            "disabled" if u.disabled else "enabled",
            "yes" if u.has_password else "no",
            fmt_time(u.created_at),
        )
        for u in found
    ]
    print_table("Users", ["name", "role", "status", "password", "created (UTC)"], rows)


@users_app.command("disable")
def disable_user(
    name: str,
    enable: bool = typer.Option(False, "--enable", help="Enable the user again instead."),
) -> None:
    """Disable a user: its tokens and password stop working at once (or --enable it again).

    Examples:

        shipyard users disable bob

        shipyard users disable bob --enable
    """
    user = _accounts().set_disabled(name, not enable)
    console.print(f"user [bold]{user.name}[/] is {'disabled' if user.disabled else 'enabled'}")


@users_app.command("set-role")
def set_role(name: str, role: str) -> None:
    """Change a user's role (viewer, editor or admin).

    Examples:

        shipyard users set-role bob editor
    """
    user = _accounts().set_role(name, role)
    console.print(f"user [bold]{user.name}[/] is now {user.role.value}")


@users_app.command("set-password")
def set_password(
    name: str,
    password_stdin: bool = typer.Option(False, "--password-stdin", help="Read the password from stdin."),
) -> None:
    """Set a user's password (admins, or the user itself).

    Examples:

        shipyard users set-password alice
    """
    user = _accounts().set_password(name, _read_password(password_stdin))
    console.print(f"password of [bold]{user.name}[/] set")


# ---------------------------------------------------------------------- tokens
@tokens_app.command("create")
def create_token(
    user: str = typer.Option(None, "--user", help="Whose token (default: yours; another's needs an admin)."),
    name: str = typer.Option("token", "--name", help="What the token is for."),
    expires_days: float = typer.Option(90.0, "--expires-days", min=0.001, help="Days until it expires."),
    no_expiry: bool = typer.Option(False, "--no-expiry", help="A token that never expires."),
    as_json: bool = typer.Option(False, "--json"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print the token alone (for scripts)."),
) -> None:
    """Create an API token. It is printed once: store it (SHIPYARD_TRACKING_TOKEN); the server keeps a hash.

    Examples:

        shipyard tokens create --name laptop

        shipyard tokens create --user ci-bot --name ci --expires-days 30

        shipyard tokens create --user admin --quiet
    """
    if user is None and not get_settings().tracking_uri:
        raise InvalidInput("name the user (--user) when creating a token on the server's own database")
    record, secret = _accounts().create_token(user, name, expires_in_days=None if no_expiry else expires_days)
    if as_json:
        print_json({**_plain(record), "token": secret})
        return
    if quiet:
        typer.echo(secret)
        return
    expiry = "never expires" if record.expires_at is None else f"expires {fmt_time(record.expires_at)} UTC"
    console.print(f"token {record.token_id} for [bold]{record.user}[/] ({record.name}, {expiry}):")
    typer.echo(secret)
    console.print(
        "[dim]shown once: set it as SHIPYARD_TRACKING_TOKEN; revoke it with shipyard tokens revoke[/]"
    )


@tokens_app.command("list")
def list_tokens(
    user: str = typer.Option(None, "--user", help="Whose tokens (default: yours; all users' on the server)."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """List API tokens (never their secrets).

    Examples:

        shipyard tokens list

        shipyard tokens list --user ci-bot --json
    """
    found = _accounts().list_tokens(user)
    if as_json:
        print_json(found)
        return
    now = int(time.time() * 1000)
    rows = [
        (
            t.token_id,
            t.user,
            t.name,
            t.state(now),
            fmt_time(t.created_at),
            "never" if t.expires_at is None else fmt_time(t.expires_at),
            "never" if t.last_used_at is None else fmt_time(t.last_used_at),
        )
        for t in found
    ]
    columns = ["id", "user", "name", "state", "created (UTC)", "expires (UTC)", "last used (UTC)"]
    print_table("API tokens", columns, rows)


@tokens_app.command("revoke")
def revoke_token(token_id: str) -> None:
    """Revoke an API token: it stops working at once.

    Examples:

        shipyard tokens revoke 3f2a91c0d4e5f60718293a4b5c6d7e8f
    """
    token = _accounts().revoke_token(token_id)
    console.print(f"token {token.token_id} of [bold]{token.user}[/] revoked")


# ---------------------------------------------------------------------- grants and audit
def grant(
    user: str = typer.Argument(..., help="The user to grant to."),
    resource: str = typer.Argument(..., help="experiment:NAME, model:NAME or deployment:NAME."),
    permission: str = typer.Argument(None, help="READ, EDIT, MANAGE or NO_PERMISSIONS."),
    revoke: bool = typer.Option(False, "--revoke", help="Remove the user's grant on the resource instead."),
    list_: bool = typer.Option(False, "--list", help="List the user's grants instead."),
) -> None:
    """Give a user a permission on one experiment, registered model or deployment (MLflow's permission names).

    Examples:

        shipyard grant bob experiment:churn EDIT

        shipyard grant bob model:churn-clf READ

        shipyard grant bob deployment:churn EDIT

        shipyard grant bob experiment:churn --revoke
    """
    accounts = _accounts()
    if revoke:
        accounts.revoke_grant(user, resource)
        console.print(f"removed [bold]{user}[/]'s grant on {resource}")
        return
    if permission is None:
        raise InvalidInput("name the permission: READ, EDIT, MANAGE or NO_PERMISSIONS (or --revoke)")
    found = accounts.grant(user, resource, permission, by=_local_actor())
    console.print(f"[bold]{found.user}[/] has {found.permission.value} on {found.describe()}")


def grants(
    user: str = typer.Option(None, "--user", help="One user's grants."),
    resource: str = typer.Option(
        None, "--resource", help="The grants on experiment:NAME, model:NAME or deployment:NAME."
    ),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """List grants.

    Examples:

        shipyard grants --user bob

        shipyard grants --resource experiment:churn
    """
    found = _accounts().grants(user, resource)
    if as_json:
        print_json(found)
        return
    rows = [(g.user, g.describe(), g.permission.value, g.granted_by, fmt_time(g.created_at)) for g in found]
    print_table("Grants", ["user", "resource", "permission", "granted by", "when (UTC)"], rows)


_SINCE = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")


def parse_since(text: str) -> int:
    """``90m``, ``12h``, ``7d`` (ago) or an ISO date/time (UTC) → epoch ms."""
    match = _SINCE.match(text.strip())
    if match:
        seconds = float(match[1]) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[match[2]]
        return int((time.time() - seconds) * 1000)
    from datetime import UTC, datetime

    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InvalidInput(f"--since {text!r}: use 30m, 12h, 7d or an ISO date like 2026-12-01") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def audit(
    since: str = typer.Option(None, "--since", help="30m, 12h, 7d or an ISO date (UTC)."),
    user: str = typer.Option(None, "--user", help="One user's writes."),
    limit: int = typer.Option(100, "--limit", min=1, max=10_000),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """The server's audit log: every write, who made it, when and from where (newest first).

    Examples:

        shipyard audit --since 1d

        shipyard audit --user bob --limit 20 --json
    """
    found = _accounts().audit(since=None if since is None else parse_since(since), user=user, limit=limit)
    if as_json:
        print_json(found)
        return
    rows = [(fmt_time(e.at), e.user, e.method, e.path, e.status, e.address) for e in found]
    print_table("Audit log", ["when (UTC)", "user", "method", "path", "status", "address"], rows)


def _plain(record: Any) -> dict[str, Any]:
    from shipyard.auth.records import to_json

    return to_json(record)
