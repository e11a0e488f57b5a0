"""``rapport users``: sign-in accounts (for ``RAPPORT_AUTH=on``)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated

import typer

from cli.shared import load_settings

if TYPE_CHECKING:
    from training.users import UserStore

users_app = typer.Typer(no_args_is_help=True, help="Sign-in accounts (for RAPPORT_AUTH=on).")


@contextmanager
def _user_store() -> Iterator[UserStore]:
    """The accounts, closed on the way out; a ``UserError`` inside stops the command with
    its message (exit 1)."""
    from storage import open_store
    from training.users import UserError, UserStore

    settings = load_settings()
    settings.ensure_dirs()
    users = UserStore(open_store(settings))
    try:
        yield users
    except UserError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    finally:
        users.store.close()


def _read_password(password_stdin: bool) -> str:
    if password_stdin:
        password = sys.stdin.read()
        password = password[:-1] if password.endswith("\n") else password
        return password[:-1] if password.endswith("\r") else password
    return str(typer.prompt("Password", hide_input=True, confirmation_prompt=True))


@users_app.command("add")
def users_add(
    name: Annotated[str, typer.Argument(help="Sign-in name: letters, digits, '.', '_', '-'")],
    role: Annotated[str, typer.Option("--role", help="trainee or trainer")] = "trainee",
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input")
    ] = False,
) -> None:
    """Add an account. Prompts for the password twice unless --password-stdin."""
    from training.users import ROLES, UserError, check_password, normalise_name

    if role not in ROLES:
        typer.echo(f"error: --role must be trainee or trainer, not {role!r}", err=True)
        raise typer.Exit(2)
    try:
        name = normalise_name(name)
        password = _read_password(password_stdin)
        check_password(password)
    except UserError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    with _user_store() as users:
        user = users.add_user(name, role, password)
    typer.echo(f"added {user.role} {user.name}")


@users_app.command("passwd")
def users_passwd(
    name: Annotated[str, typer.Argument(help="An existing account")],
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input")
    ] = False,
) -> None:
    """Set a new password for an account."""
    from training.users import UserError

    with _user_store() as users:
        if users.get(name) is None:
            raise UserError(f"No user named {name!r}.")
        users.set_password(name, _read_password(password_stdin))
    typer.echo(f"password changed for {name.strip().lower()}")


@users_app.command("list")
def users_list() -> None:
    """List accounts: name, role, created."""
    with _user_store() as users:
        rows = users.list_users()
    for u in rows:
        typer.echo(f"{u.name:32} {u.role:8} {u.created_at}")
    if not rows:
        typer.echo("no users yet: add one with 'rapport users add NAME --role trainer'")
