"""The scheduler against a misbehaving provider: the real Twilio adapter and client talking to
the local Twilio-compatible server (tests/contract/twilio_fake.py), which answers 429 with
Retry-After, 500/503, hangs past the client timeout after creating the text, and drops the
connection. Every check-in ends open with each text created at the provider exactly once."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from tests.conftest import TEST_KEY
from tests.contract.twilio_fake import Drop, Fail, FakeTwilio, Hang, Ok
from tests.integration.scheduler_support import phone_for, seed_checkins, states
from tracker.app import build
from tracker.clock import FrozenClock
from tracker.config import load_settings
from tracker.db.engine import make_engine
from tracker.db.migrate import upgrade
from tracker.db.tables import CheckIn, Message
from tracker.services.dispatch import tick
from tracker.services.pacing import Pacer
from tracker.sms.twilio import TwilioGateway

NOW = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
ACCOUNT = "AC" + "2" * 32


@pytest.fixture
def fake() -> Iterator[FakeTwilio]:
    server = FakeTwilio(account_sid=ACCOUNT).start()
    try:
        yield server
    finally:
        server.stop()


def test_429_500_timeouts_and_drops_back_off_without_duplicates(
    db_url: str, fake: FakeTwilio
) -> None:
    env = {
        "TWILIO_ACCOUNT_SID": ACCOUNT,
        "TWILIO_AUTH_TOKEN": "test-token",
        "TWILIO_FROM_NUMBER": "+447700900000",
        "TWILIO_API_BASE_URL": fake.base_url,
        "TRACKER_SMS_BACKEND": "twilio",
        "TRACKER_PUBLIC_URL": "https://tracker.example.org",
    }
    settings = load_settings(
        env,
        database_url=db_url,
        secret_key=TEST_KEY,
        twilio_timeout_seconds=0.5,
        retry_base_seconds=60,
    )
    engine = make_engine(settings.database_url)
    upgrade(engine)
    clock = FrozenClock(NOW)
    app = build(settings, clock=clock, engine=engine, gateway=TwilioGateway(settings))
    ids = seed_checkins(app, 8, due_at=NOW)
    fake.then(
        Fail(429, 20429, retry_after="30"),  # check-in 1 opening: rate limited
        Fail(500, None),  # check-in 2 opening: server error
        Hang(1.5),  # check-in 3 opening: created, but the client gives up (unknown)
        Drop(),  # check-in 4 opening: connection closed before anything was created
        Ok(),  # check-in 5 opening goes ...
        Fail(503, None),  # ... its question 1 does not
    )
    fake_time = {"t": 0.0}
    pacer = Pacer(
        50,
        clock=lambda: fake_time["t"],
        sleep=lambda s: fake_time.__setitem__("t", fake_time["t"] + s),
    )
    rng = random.Random(3)

    first = tick(app, worker_id="w", pacer=pacer, rng=rng)
    assert first.opened == 3 and first.retried >= 3 and first.awaiting_reconciliation >= 1
    assert pacer.waited >= 30  # the 429's Retry-After paused the sender
    with app.sessions() as session:
        retry_at = {
            c.id: c.next_attempt_at
            for c in session.scalars(select(CheckIn).where(CheckIn.state == "scheduled"))
        }
    assert retry_at[ids[0]] >= NOW + timedelta(seconds=30)  # honours Retry-After
    assert all(
        NOW + timedelta(seconds=30) <= at <= NOW + timedelta(minutes=2) for at in retry_at.values()
    )  # backoff with jitter, not a fixed instant

    for _ in range(6):
        if states(app).get("open") == 8:
            break
        clock.advance(minutes=3)
        tick(app, worker_id="w", pacer=pacer, rng=rng)
    assert states(app) == {"open": 8}

    created = Counter(
        (m["to"], "opening" if str(m["body"]).startswith("Hello") else "question")
        for m in fake.messages
    )
    for n in range(8):
        assert created[(phone_for(n), "opening")] == 1, (n, created)
        assert created[(phone_for(n), "question")] == 1, (n, created)
    assert len(fake.messages) == 16

    with app.sessions() as session:
        errors = Counter(
            session.scalars(select(Message.error_code).where(Message.error_code.is_not(None)))
        )
        sids = session.scalars(
            select(Message.provider_sid).where(Message.provider_sid.is_not(None))
        ).all()
    assert errors["20429"] == 1 and errors["500"] >= 1 and errors["503"] == 1
    assert sorted(sids) == sorted(str(m["sid"]) for m in fake.messages)  # all recorded, once
    app.close()
