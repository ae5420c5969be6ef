"""Accounts, API tokens, erasure and retention: `tracker user|token|patient|purge`."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from tracker.cli.common import UserError, app_for, out
from tracker.services import erasure, retention, users

CLI_ACTOR = "cli"

user_app = typer.Typer(help="Dashboard accounts: add, disable, list.", no_args_is_help=True)
token_app = typer.Typer(help="API bearer tokens: create, revoke, list.", no_args_is_help=True)
patient_app = typer.Typer(help="Act on one patient's data (erasure).", no_args_is_help=True)

RoleOption = Annotated[str, typer.Option("--role", help="admin, staff or researcher.")]
SiteOption = Annotated[
    str | None, typer.Option("--site", help="The one site a staff account may see (required).")
]


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            raise UserError("no password on standard input (pipe one line in)")
        return password
    first = typer.prompt("Password", hide_input=True)
    second = typer.prompt("Repeat the password", hide_input=True)
    if first != second:
        raise UserError("the two passwords differ; run the command again")
    return first


@user_app.command("add")
def user_add(
    email: Annotated[str, typer.Argument(help="The person's email; they sign in with it.")],
    role: RoleOption,
    site: SiteOption = None,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input.")
    ] = False,
) -> None:
    """Add a dashboard account (prompts twice for the password unless --password-stdin)."""
    users.parse_role(role)
    password = _read_password(password_stdin)
    with app_for() as app, app.sessions() as session:
        user = users.add_user(
            session,
            email=email,
            role=role,
            password=password,
            site=site,
            now=app.clock.now(),
            actor=CLI_ACTOR,
        )
        session.commit()
        out.print(f"Added {user.email} ({user.role}{', site ' + user.site if user.site else ''}).")


@user_app.command("disable")
def user_disable(email: Annotated[str, typer.Argument(help="The account's email.")]) -> None:
    """Disable an account: it can no longer sign in, and its API tokens stop working."""
    with app_for() as app, app.sessions() as session:
        user = users.disable_user(session, email, now=app.clock.now(), actor=CLI_ACTOR)
        session.commit()
        out.print(f"Disabled {user.email}.")


@user_app.command("list")
def user_list() -> None:
    """List accounts: email, role, site, state, last sign-in."""
    with app_for() as app, app.sessions() as session:
        rows = users.list_users(session)
        if not rows:
            out.print("No accounts yet: add one with `tracker user add EMAIL --role admin`.")
        for user in rows:
            state = "disabled" if user.disabled else "active"
            last = user.last_login_at.isoformat() if user.last_login_at else "never"
            typer.echo(
                f"{user.email}\t{user.role}\t{user.site or '-'}\t{state}\tlast sign-in {last}"
            )


@token_app.command("create")
def token_create(
    name: Annotated[str, typer.Argument(help="What the token is for, e.g. 'emis-import'.")],
    role: RoleOption,
    site: SiteOption = None,
    user: Annotated[
        str | None, typer.Option("--user", help="Tie the token to this account (dies with it).")
    ] = None,
) -> None:
    """Create an API token; it is printed once and only its hash is stored."""
    with app_for() as app, app.sessions() as session:
        created = users.create_token(
            session,
            name=name,
            role=role,
            site=site,
            user_email=user,
            now=app.clock.now(),
            actor=CLI_ACTOR,
        )
        session.commit()
        typer.echo(created.secret)
        out.print(
            f"Token {created.token.id} '{created.token.name}' ({created.token.role}). "
            "Copy it now: it cannot be shown again.",
            style="dim",
        )


@token_app.command("revoke")
def token_revoke(
    id_or_name: Annotated[str, typer.Argument(help="The token's id or name.")],
) -> None:
    """Revoke an API token at once."""
    with app_for() as app, app.sessions() as session:
        token = users.revoke_token(session, id_or_name, now=app.clock.now(), actor=CLI_ACTOR)
        session.commit()
        out.print(f"Revoked token {token.id} '{token.name}'.")


@token_app.command("list")
def token_list() -> None:
    """List API tokens (never their secrets)."""
    with app_for() as app, app.sessions() as session:
        for token in users.list_tokens(session):
            state = "revoked" if token.revoked_at else "active"
            used = token.last_used_at.isoformat() if token.last_used_at else "never"
            typer.echo(
                f"{token.id}\t{token.name}\t{token.role}\t{token.site or '-'}\t{state}\tused {used}"
            )


@patient_app.command("erase")
def patient_erase(
    ref: Annotated[str, typer.Argument(help="The patient's reference (patient_ref).")],
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
) -> None:
    """Erase a patient's identifiable data in every table (cannot be undone)."""
    if not yes and not typer.confirm(
        f"Erase every identifiable detail of patient {ref}? This cannot be undone."
    ):
        raise UserError("nothing erased", 1)
    with app_for() as app, app.sessions() as session:
        result = erasure.erase_patient(
            session, ref, now=app.clock.now(), actor=CLI_ACTOR, crypto=app.crypto
        )
        session.commit()
    out.print(
        f"Erased: {result.episodes} episode(s), {result.messages} text(s), {result.answers} "
        f"answer text(s), {result.alerts} alert(s); {result.checkins_cancelled} check-in(s) "
        f"cancelled. The record is now {result.tombstone}."
    )


def purge(
    older_than: Annotated[
        str,
        typer.Option("--older-than", help="Retention period: e.g. 90d, 18m (months), 2y."),
    ],
) -> None:
    """Remove raw message bodies and reply texts older than the retention period."""
    try:
        period = retention.parse_period(older_than)
    except retention.PeriodError as exc:
        raise UserError(str(exc), 2) from exc
    with app_for() as app, app.sessions() as session:
        result = retention.purge_bodies(session, period, now=app.clock.now(), actor=CLI_ACTOR)
        session.commit()
    out.print(
        f"Purged {result.messages} message bod(ies) and {result.answers} reply text(s) from "
        f"before {result.cutoff.isoformat()}; parsed answers are kept."
    )


def register(app: typer.Typer) -> None:
    app.add_typer(user_app, name="user")
    app.add_typer(token_app, name="token")
    app.add_typer(patient_app, name="patient")
    app.command("purge")(purge)
