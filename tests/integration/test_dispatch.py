"""One scheduler pass on real SQLite and PostgreSQL: dispatch, retries, reconciliation,
reminders, expiry and outages."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update

from tests.conftest import make_settings
from tests.integration.scheduler_support import seed_checkins, states, went_per_checkin
from tracker.app import App, build
from tracker.clock import FrozenClock
from tracker.db.engine import make_engine
from tracker.db.migrate import upgrade
from tracker.db.tables import Alert, Answer, CheckIn, Message, Patient
from tracker.domain import CheckInState, ContactState, MessageStatus
from tracker.services import contact
from tracker.services.dispatch import backoff_seconds, tick
from tracker.services.pacing import Pacer, Unpaced
from tracker.sms.port import SmsError
from tracker.sms.simulator import SENT_BUT_UNKNOWN, FaultPlan, SimulatorGateway

NOW = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)  # Thursday 10:00 in London


def run(app: App, **kwargs: object):
    return tick(app, worker_id="test", pacer=Unpaced(), rng=random.Random(1), **kwargs)


def checkins(app: App) -> list[CheckIn]:
    with app.sessions() as session:
        return list(session.scalars(select(CheckIn).order_by(CheckIn.id)))


def outbound(app: App, checkin_id: int) -> list[Message]:
    with app.sessions() as session:
        return list(
            session.scalars(
                select(Message).where(Message.checkin_id == checkin_id).order_by(Message.id)
            )
        )


@pytest.fixture
def faulty(app: App) -> FaultPlan:
    plan = FaultPlan()
    app._gateway = SimulatorGateway(app, faults=plan)
    return plan


def test_due_checkins_get_opening_and_first_question_once(app: App) -> None:
    due = seed_checkins(app, 5, due_at=NOW - timedelta(minutes=5))
    later = seed_checkins(app, 2, due_at=NOW + timedelta(days=1), first=100)

    report = run(app)

    assert (report.claimed, report.opened, report.messages_sent) == (5, 5, 10)
    by_id = {c.id: c for c in checkins(app)}
    for cid in due:
        c = by_id[cid]
        assert c.state == CheckInState.OPEN and c.opened_at == NOW and c.question_index == 0
        assert c.claimed_by is None
        # first reminder: 3 days later is a Sunday -> Monday 08:00 local
        assert c.next_reminder_at == datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
        texts = outbound(app, cid)
        assert [(m.purpose, m.status) for m in texts] == [("opening", "sent"), ("question", "sent")]
        assert texts[0].body.startswith("Hello from")
        assert texts[1].body.startswith("1/") and texts[1].question_key is not None
        assert texts[0].provider_sid and texts[1].provider_sid
    for cid in later:
        assert by_id[cid].state == CheckInState.SCHEDULED
    again = run(app)
    assert again.claimed == 0 and again.messages_sent == 0
    assert len(app.gateway.sent) == 10


def test_nothing_is_sent_while_the_send_window_is_closed(app: App, clock: FrozenClock) -> None:
    seed_checkins(app, 3, due_at=NOW)
    clock.set(datetime(2026, 11, 26, 18, 30, tzinfo=UTC))  # 18:30 London: closed
    report = run(app)
    assert not report.window_open and report.claimed == 0
    assert states(app) == {"scheduled": 3}
    clock.set(datetime(2026, 11, 27, 8, 0, tzinfo=UTC))  # Friday 08:00
    assert run(app).opened == 3


def test_patients_no_longer_active_are_cancelled_not_texted(app: App) -> None:
    seed_checkins(app, 2, due_at=NOW, contact_state=ContactState.PAUSED)
    report = run(app)
    assert report.cancelled == 2 and report.messages_sent == 0
    for c in checkins(app):
        assert c.state == CheckInState.CANCELLED and c.reason == "contact: patient is paused"


def test_transient_failure_backs_off_inside_the_window_then_sends_once(
    app: App, clock: FrozenClock, faulty: FaultPlan
) -> None:
    [cid] = seed_checkins(app, 1, due_at=NOW)
    faulty.add(SmsError("too many requests", code="20429", retry_after=30))
    report = run(app)
    assert report.retried == 1 and report.opened == 0
    [c] = checkins(app)
    assert c.state == CheckInState.SCHEDULED and c.send_attempts == 1
    assert NOW + timedelta(seconds=30) <= c.next_attempt_at <= NOW + timedelta(seconds=60)
    assert [(m.purpose, m.status, m.error_code) for m in outbound(app, cid)] == [
        ("opening", "failed", "20429"),
        ("question", "canceled", "not_attempted"),
    ]
    assert run(app).claimed == 0  # not before the backoff
    clock.set(c.next_attempt_at)
    assert run(app).opened == 1
    assert went_per_checkin(app, "opening") == {cid: 1}
    assert went_per_checkin(app, "question") == {cid: 1}


def test_when_only_the_question_failed_the_retry_sends_only_the_question(
    app: App, clock: FrozenClock, faulty: FaultPlan
) -> None:
    [cid] = seed_checkins(app, 1, due_at=NOW)
    faulty.add(None, SmsError("server error", code="500"))
    assert run(app).retried == 1
    [c] = checkins(app)
    clock.set(c.next_attempt_at)
    assert run(app).opened == 1
    texts = outbound(app, cid)
    assert [(m.purpose, m.status, m.attempt) for m in texts] == [
        ("opening", "sent", 1),
        ("question", "failed", 1),
        ("question", "sent", 2),
    ]
    [c] = checkins(app)
    assert c.opened_at == NOW  # reminders count from the opening text


def test_retries_give_up_after_the_configured_attempts(tmp_path, clock: FrozenClock) -> None:
    settings = make_settings(f"sqlite:///{tmp_path / 't.db'}", retry_max_attempts=2)
    engine = make_engine(settings.database_url)
    upgrade(engine)
    app = build(settings, clock=clock, engine=engine)
    app._gateway = SimulatorGateway(app, faults=lambda sms: SmsError("server error", code="500"))
    seed_checkins(app, 1, due_at=NOW)
    for _ in range(3):
        run(app)
        [c] = checkins(app)
        if c.state != CheckInState.SCHEDULED:
            break
        clock.set(c.next_attempt_at)
    assert c.state == CheckInState.FAILED and "3 times" in (c.reason or "")
    app.close()


def test_permanent_failure_fails_the_checkin_and_raises_an_alert(
    app: App, faulty: FaultPlan
) -> None:
    seed_checkins(app, 1, due_at=NOW)
    faulty.add(SmsError("invalid number", code="21211", permanent=True))
    report = run(app)
    assert report.failed == 1
    [c] = checkins(app)
    assert c.state == CheckInState.FAILED and "21211" in (c.reason or "")
    with app.sessions() as session:
        assert session.scalars(select(Alert.kind)).all() == ["delivery_problem"]


def test_recipient_stopped_at_provider_stops_the_patient(app: App, faulty: FaultPlan) -> None:
    seed_checkins(app, 1, due_at=NOW)
    faulty.add(SmsError("unsubscribed", code="21610", stopped=True))
    run(app)
    [c] = checkins(app)
    assert c.state == CheckInState.CANCELLED
    with app.sessions() as session:
        assert session.scalars(select(Patient.contact_state)).one() == ContactState.STOPPED


def test_unknown_outcome_is_reconciled_before_anything_is_resent(
    app: App, faulty: FaultPlan
) -> None:
    [cid] = seed_checkins(app, 1, due_at=NOW)
    faulty.add(SENT_BUT_UNKNOWN)
    first = run(app)
    assert first.awaiting_reconciliation == 1 and first.opened == 0
    assert [m.status for m in outbound(app, cid)] == ["unknown", "canceled"]
    second = run(app)
    # the provider had it: recorded as sent, and only question 1 goes now
    assert second.reconciled_sent == 1 and second.recovered == 1 and second.opened == 1
    assert went_per_checkin(app, "opening") == {cid: 1}
    assert went_per_checkin(app, "question") == {cid: 1}
    assert len(app.gateway.sent) == 2


def test_stale_pending_text_that_never_went_is_marked_and_retried(
    app: App, clock: FrozenClock
) -> None:
    """A crash after the outbox commit, before the provider call (simulated by hand)."""
    [cid] = seed_checkins(app, 1, due_at=NOW)
    with app.sessions.begin() as session:
        session.execute(
            update(CheckIn).values(
                state="sending", claimed_by="dead", claimed_at=NOW, send_attempts=1
            )
        )
        session.add(
            Message(
                direction="outbound",
                patient_id=1,
                checkin_id=cid,
                purpose="opening",
                body="Hello",
                status="pending",
                status_rank=0,
                attempt=1,
                created_at=NOW,
            )
        )
    assert run(app).claimed == 0  # the claim is fresh: left alone
    clock.advance(minutes=11)
    report = run(app)
    assert report.reconciled_not_sent == 1 and report.recovered == 1 and report.opened == 1
    assert went_per_checkin(app, "opening") == {cid: 1}


def test_reminders_at_plus_3_and_7_days_then_stop(app: App, clock: FrozenClock) -> None:
    [cid] = seed_checkins(app, 1, due_at=NOW)
    run(app)
    clock.set(datetime(2026, 11, 29, 12, 0, tzinfo=UTC))  # Sunday: window closed
    assert run(app).reminders == 0
    clock.set(datetime(2026, 11, 30, 8, 0, tzinfo=UTC))
    assert run(app).reminders == 1
    assert run(app).reminders == 0
    [c] = checkins(app)
    assert c.reminders_sent == 1 and c.next_reminder_at == datetime(2026, 12, 3, 10, 0, tzinfo=UTC)
    clock.set(datetime(2026, 12, 3, 10, 0, tzinfo=UTC))
    assert run(app).reminders == 1
    [c] = checkins(app)
    assert c.reminders_sent == 2 and c.next_reminder_at is None
    clock.set(datetime(2026, 12, 10, 10, 0, tzinfo=UTC))
    assert run(app).reminders == 0
    reminders = [m for m in outbound(app, cid) if m.purpose == "reminder"]
    assert len(reminders) == 2 and all("1/" in (m.body or "") for m in reminders)


def test_no_reminder_after_stop(app: App, clock: FrozenClock) -> None:
    seed_checkins(app, 1, due_at=NOW)
    run(app)
    with app.sessions.begin() as session:
        patient = session.scalars(select(Patient)).one()
        contact.set_contact_state(
            session, patient, ContactState.STOPPED, now=NOW, actor="test", reason="STOP"
        )
    clock.set(datetime(2026, 11, 30, 9, 0, tzinfo=UTC))
    assert run(app).reminders == 0


def test_expiry_partial_expired_and_missed(app: App, clock: FrozenClock) -> None:
    ids = seed_checkins(app, 2, due_at=NOW)
    run(app)
    with app.sessions.begin() as session:
        session.add(
            Answer(
                checkin_id=ids[0],
                question_key="life_satisfaction",
                value=7,
                outcome="parsed",
                answered_at=NOW,
            )
        )
    # a third check-in that should have gone while the worker was down
    [late] = seed_checkins(app, 1, due_at=NOW + timedelta(days=1), first=50)
    clock.set(NOW + timedelta(days=31))
    report = run(app)
    assert (report.partial, report.expired, report.missed) == (1, 1, 1)
    by_id = {c.id: c for c in checkins(app)}
    assert by_id[ids[0]].state == "partial" and by_id[ids[1]].state == "expired"
    assert by_id[late].state == "missed"
    assert "not sent before the response window closed" in (by_id[late].reason or "")
    assert "2026-11-27 10:00" in (by_id[late].reason or "")


def test_after_an_outage_due_checkins_go_at_the_next_slot(app: App, clock: FrozenClock) -> None:
    seed_checkins(app, 3, due_at=NOW)
    clock.set(datetime(2026, 11, 28, 12, 0, tzinfo=UTC))  # Saturday: worker back, window shut
    assert run(app).claimed == 0
    clock.set(datetime(2026, 11, 30, 8, 0, tzinfo=UTC))  # Monday 08:00
    report = run(app)
    assert report.opened == 3 and report.missed == 0


def test_pacing_spreads_sends_without_sleeping_for_real(app: App) -> None:
    seed_checkins(app, 10, due_at=NOW)
    fake = {"t": 0.0}
    pacer = Pacer(5, clock=lambda: fake["t"], sleep=lambda s: fake.__setitem__("t", fake["t"] + s))
    report = tick(app, worker_id="t", pacer=pacer, rng=random.Random(1))
    assert report.messages_sent == 20
    # 20 texts at 5/s with a burst of 5: 15 had to wait 0.2 s each
    assert report.paced_seconds == pytest.approx(3.0)


def test_backoff_grows_with_jitter() -> None:
    rng = random.Random(7)
    delays = [backoff_seconds(n, 60, rng) for n in range(1, 6)]
    for n, d in enumerate(delays, start=1):
        ceiling = 60 * 2 ** (n - 1)
        assert ceiling / 2 <= d <= ceiling
    assert backoff_seconds(30, 60, rng) <= 6 * 3600


def test_message_status_never_goes_backwards(app: App) -> None:
    """A delivery callback that arrived before we recorded the send is kept."""
    [cid] = seed_checkins(app, 1, due_at=NOW)
    original = app.gateway.send

    def send_then_callback(sms):
        result = original(sms)
        with app.sessions.begin() as session:
            session.execute(
                update(Message)
                .where(Message.id == sms.message_id)
                .values(status=MessageStatus.DELIVERED, status_rank=8)
            )
        return result

    app.gateway.send = send_then_callback  # type: ignore[method-assign]
    run(app)
    assert {m.status for m in outbound(app, cid)} == {"delivered"}
    assert all(m.provider_sid for m in outbound(app, cid))


def test_a_claim_takes_at_most_its_batch(app: App) -> None:
    from tracker.db.queries import claim_due_checkins

    seed_checkins(app, 10, due_at=NOW)
    with app.sessions.begin() as session:
        first = claim_due_checkins(session, now=NOW, worker_id="a", limit=3)
    with app.sessions.begin() as session:
        second = claim_due_checkins(session, now=NOW, worker_id="b", limit=30)
    assert len(first) == 3 and len(second) == 7 and not set(first) & set(second)


def test_tick_command_prints_counts_and_exits_0(app: App, monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    from typer.testing import CliRunner

    from tests.conftest import TEST_KEY
    from tracker.cli import app as cli

    seed_checkins(app, 3, due_at=NOW)
    monkeypatch.setenv("TRACKER_DATABASE_URL", app.settings.database_url)
    monkeypatch.setenv("TRACKER_SECRET_KEY", TEST_KEY)
    result = CliRunner().invoke(cli, ["tick", "--now", "2026-11-26T10:00:00+00:00", "--json"])
    assert result.exit_code == 0, result.output
    counts = json.loads(result.stdout.strip().splitlines()[-1])
    assert counts["opened"] == 3 and counts["messages_sent"] == 6
    again = CliRunner().invoke(cli, ["tick", "--now", "2026-11-26T10:01:00+00:00"])
    assert again.exit_code == 0 and "claimed=0" in again.stdout


def test_an_enrolled_episode_is_texted_on_its_due_day(app: App, clock: FrozenClock) -> None:
    from datetime import date

    from tests.factories import make_episode

    # discharged 26 May 2026: the 6-month text is due Thursday 26 November 2026 at 08:00
    episode = make_episode(app, discharged_on=date(2026, 5, 26), now=NOW - timedelta(days=200))
    six = next(c for c in episode.checkins if c.wave == 6)
    assert six.due_at == datetime(2026, 11, 26, 8, 0, tzinfo=UTC)
    report = run(app)
    assert report.opened == 1
    texts = outbound(app, six.id)
    assert [m.purpose for m in texts] == ["opening", "question"]
    assert "6 months" in (texts[0].body or "")
