"""Sign-in: argon2 hashes, cookie flags, CSRF on every form, throttling, disabled accounts."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from tracker.db.tables import AuditEvent, User
from tracker.services import users
from tracker.web.auth import lock_seconds

from ..conftest import make_settings
from ..web_support import (
    PASSWORD,
    add_account,
    cheap_argon2,  # noqa: F401 - autouse fixture
    csrf_from,
    sign_in,
    web_client,
)


@pytest.fixture
def settings(sqlite_url: str):  # type: ignore[no-untyped-def]
    """Sign-in does not depend on the database engine: SQLite only keeps this file fast."""
    return make_settings(sqlite_url)


def test_passwords_are_argon2_hashed(app) -> None:
    add_account(app, "Jo@Example.org", "admin")
    with app.sessions() as session:
        user = session.scalars(select(User)).one()
    assert user.email == "jo@example.org"
    assert user.password_hash.startswith("$argon2id$") and PASSWORD not in user.password_hash
    assert users.verify_password(user, PASSWORD) and not users.verify_password(user, "nope")


def test_session_cookie_flags(app) -> None:
    add_account(app, "jo@example.org", "admin")
    client = web_client(app)
    response = sign_in(client, "jo@example.org")
    assert response.status_code == 303 and response.headers["location"] == "/"
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie
    assert PASSWORD.lower() not in cookie
    # With the default (cookie_secure=True) the cookie is marked Secure.
    from fastapi.testclient import TestClient

    from tracker.web.app import create_app

    app.settings = app.settings.model_copy(update={"cookie_secure": True})
    secure = TestClient(create_app(app), base_url="https://testserver", follow_redirects=False)
    assert "secure" in sign_in(secure, "jo@example.org").headers["set-cookie"].lower()


def test_signed_out_pages_redirect_and_open_redirects_are_refused(app) -> None:
    add_account(app, "jo@example.org", "admin")
    client = web_client(app)
    page = client.get("/alerts")
    assert page.status_code == 303 and page.headers["location"].startswith("/login?next=")
    token = csrf_from(client, "/login")
    response = client.post(
        "/login",
        data={"email": "jo@example.org", "password": PASSWORD, "csrf_token": token,
              "next": "https://evil.example/"},
    )  # fmt: skip
    assert response.headers["location"] == "/"


def test_login_without_or_with_wrong_csrf_is_refused(app) -> None:
    add_account(app, "jo@example.org", "admin")
    client = web_client(app)
    csrf_from(client, "/login")
    for data in ({}, {"csrf_token": "forged"}):
        response = client.post(
            "/login", data={"email": "jo@example.org", "password": PASSWORD, **data}
        )
        assert response.status_code == 403 and "Form expired" in response.text
    assert client.get("/").status_code == 303  # still signed out


def test_account_lockout_grows_exponentially(app, clock) -> None:
    add_account(app, "jo@example.org", "staff", "North")
    client = web_client(app)
    for _ in range(5):
        assert sign_in(client, "jo@example.org", "wrong password!").status_code == 401
    # Locked now, even with the right password, for 30 s.
    blocked = sign_in(client, "jo@example.org")
    assert blocked.status_code == 429 and "Try again in" in blocked.text
    client.app.state.login_throttle.failures.clear()  # isolate the per-account lock
    clock.advance(timedelta(seconds=31))
    assert sign_in(client, "jo@example.org", "wrong again!!").status_code == 401
    with app.sessions() as session:
        user = users.find_user(session, "jo@example.org")
        assert user.failed_logins == 6
        assert user.locked_until - clock.now() == timedelta(seconds=60)
    assert lock_seconds(4) == 0 and lock_seconds(5) == 30 and lock_seconds(20) == 3600
    clock.advance(timedelta(seconds=61))
    client.app.state.login_throttle.failures.clear()
    assert sign_in(client, "jo@example.org").status_code == 303
    with app.sessions() as session:
        assert users.find_user(session, "jo@example.org").failed_logins == 0


def test_address_throttle_covers_unknown_accounts(app, clock) -> None:
    add_account(app, "jo@example.org", "admin")
    client = web_client(app)
    for n in range(5):
        assert sign_in(client, f"nobody{n}@example.org", "guess guess guess").status_code == 401
    blocked = sign_in(client, "jo@example.org")
    assert blocked.status_code == 429 and "from this computer" in blocked.text
    clock.advance(timedelta(seconds=31))
    assert sign_in(client, "jo@example.org").status_code == 303
    with app.sessions() as session:
        failed = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "login.failed")
        ).all()
    assert len(failed) == 5 and all("guess" not in str(e.detail) for e in failed)


def test_disabled_accounts_lose_their_session_at_once(app) -> None:
    add_account(app, "jo@example.org", "admin")
    client = web_client(app)
    sign_in(client, "jo@example.org")
    assert client.get("/").status_code == 200
    with app.sessions() as session:
        users.disable_user(session, "jo@example.org", now=app.clock.now(), actor="test")
        session.commit()
    assert client.get("/").status_code == 303
    assert sign_in(client, "jo@example.org").status_code == 401


def test_logout_needs_csrf_and_ends_the_session(app) -> None:
    add_account(app, "jo@example.org", "admin")
    client = web_client(app)
    sign_in(client, "jo@example.org")
    assert client.post("/logout", data={}).status_code == 403
    token = csrf_from(client, "/")
    assert client.post("/logout", data={"csrf_token": token}).status_code == 303
    assert client.get("/").status_code == 303


def test_security_headers(app) -> None:
    client = web_client(app)
    page = client.get("/login")
    assert page.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert page.headers["cache-control"] == "no-store"


def test_user_and_token_commands(app, monkeypatch) -> None:
    from typer.testing import CliRunner

    from tracker.cli import app as cli

    monkeypatch.setenv("TRACKER_DATABASE_URL", app.settings.database_url)
    monkeypatch.setenv("TRACKER_SECRET_KEY", app.settings.secret_key.get_secret_value())
    runner = CliRunner()
    added = runner.invoke(
        cli, ["user", "add", "Sam@Example.org", "--role", "staff", "--site", "North",
              "--password-stdin"], input=PASSWORD + "\n",
    )  # fmt: skip
    assert added.exit_code == 0, added.output
    assert PASSWORD not in added.output
    no_site = runner.invoke(
        cli, ["user", "add", "x@example.org", "--role", "staff", "--password-stdin"],
        input=PASSWORD + "\n",
    )  # fmt: skip
    assert no_site.exit_code != 0 and "--site" in str(no_site.exception)
    short = runner.invoke(
        cli, ["user", "add", "y@example.org", "--role", "admin", "--password-stdin"], input="x\n"
    )
    assert short.exit_code != 0 and "too short" in str(short.exception)
    listed = runner.invoke(cli, ["user", "list"])
    assert "sam@example.org\tstaff\tNorth\tactive" in listed.output
    created = runner.invoke(
        cli, ["token", "create", "nightly", "--role", "staff", "--site", "North"]
    )
    assert created.exit_code == 0
    secret = created.output.splitlines()[0].strip()
    assert secret.startswith("trk_")
    with app.sessions() as session:
        assert users.find_token(session, secret) is not None
    tokens = runner.invoke(cli, ["token", "list"])
    assert "nightly" in tokens.output and secret not in tokens.output
    assert runner.invoke(cli, ["token", "revoke", "nightly"]).exit_code == 0
    assert runner.invoke(cli, ["user", "disable", "sam@example.org"]).exit_code == 0
    with app.sessions() as session:
        assert users.find_token(session, secret) is None
        assert users.find_user(session, "sam@example.org").disabled
