"""Helpers for dashboard and API tests: accounts, sign-in with CSRF, a small seeded service."""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient

from tracker.app import App
from tracker.db.tables import Alert, Message
from tracker.domain import AlertKind, AlertState, Direction, MessageStatus
from tracker.services import users
from tracker.web.app import create_app

from .factories import make_episode

PASSWORD = "correct horse battery staple"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture(autouse=True)
def cheap_argon2(monkeypatch: pytest.MonkeyPatch) -> None:
    """Still argon2id, with test-sized cost: the default costs ~0.1-0.7 s per hash here.

    Import this fixture into a test module to use it there (it is autouse)."""
    from tracker.services import users

    monkeypatch.setattr(
        users, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    )
    monkeypatch.setattr(users, "_dummy_hash", None)


def web_client(app: App, exports_dir: Path | None = None) -> TestClient:
    # TestClient talks http://testserver: secure cookies would never be sent back.
    exports_dir = exports_dir or Path(tempfile.mkdtemp(prefix="tracker-exports-"))
    app.settings = app.settings.model_copy(
        update={"cookie_secure": False, "exports_dir": exports_dir}
    )
    return TestClient(create_app(app), follow_redirects=False)


def add_account(app: App, email: str, role: str, site: str | None = None) -> None:
    with app.sessions() as session:
        users.add_user(
            session, email=email, role=role, password=PASSWORD, site=site,
            now=app.clock.now(), actor="test",
        )  # fmt: skip
        session.commit()


def add_token(app: App, name: str, role: str, site: str | None = None) -> str:
    with app.sessions() as session:
        created = users.create_token(
            session, name=name, role=role, site=site, now=app.clock.now(), actor="test"
        )
        session.commit()
        return created.secret


def csrf_from(client: TestClient, path: str) -> str:
    page = client.get(path)
    match = _CSRF.search(page.text)
    assert match, f"no CSRF token on {path} ({page.status_code})"
    return match.group(1)


def sign_in(client: TestClient, email: str, password: str = PASSWORD) -> object:
    token = csrf_from(client, "/login")
    return client.post(
        "/login", data={"email": email, "password": password, "csrf_token": token, "next": "/"}
    )


@dataclass
class Seeded:
    north_refs: list[str]
    south_refs: list[str]
    risk_alert_id: int
    south_alert_id: int


def seed_service(app: App, *, north: int = 3, south: int = 7) -> Seeded:
    """Episodes on two sites, one inbound and one outbound text, a risk alert on each site."""
    north_eps = [
        make_episode(app, site="North", discharged_on=date(2026, 5, 20) + timedelta(days=i))
        for i in range(north)
    ]
    south_eps = [
        make_episode(app, site="South", discharged_on=date(2026, 5, 28) + timedelta(days=i))
        for i in range(south)
    ]
    now = app.clock.now()
    with app.sessions() as session:
        first = north_eps[0]
        phone = app.crypto.decrypt_phone(first.patient.phone_ciphertext)
        session.add_all(
            [
                Message(
                    direction=Direction.OUTBOUND, patient_id=first.patient_id,
                    checkin_id=first.checkins[0].id, purpose="question",
                    body="1/8 Overall, how satisfied are you with your life nowadays?",
                    status=MessageStatus.DELIVERED, status_rank=8, created_at=now,
                    phone_index=None,
                ),
                Message(
                    direction=Direction.INBOUND, patient_id=first.patient_id,
                    checkin_id=first.checkins[0].id, purpose="reply", body="I feel hopeless 3",
                    status=MessageStatus.RECEIVED, status_rank=9, created_at=now,
                    phone_index=app.crypto.phone_index(phone),
                    phone_ciphertext=app.crypto.encrypt_phone(phone),
                ),
            ]
        )  # fmt: skip
        risk = Alert(
            kind=AlertKind.RISK, state=AlertState.OPEN, patient_id=first.patient_id,
            episode_id=first.id, site="North", detail="suicide", raised_at=now - timedelta(hours=6),
        )  # fmt: skip
        south = Alert(
            kind=AlertKind.RECONTACT, state=AlertState.OPEN, patient_id=south_eps[0].patient_id,
            episode_id=south_eps[0].id, site="South", detail="asked to be contacted",
            raised_at=now - timedelta(hours=1),
        )  # fmt: skip
        session.add_all([risk, south])
        session.commit()
        return Seeded(
            [e.patient.patient_ref for e in north_eps],
            [e.patient.patient_ref for e in south_eps],
            risk.id,
            south.id,
        )
