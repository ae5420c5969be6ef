"""A simulated year: a cohort enrolled on 1 January 2027, ticked with a FrozenClock through 2027.

Ticks happen only at interesting instants (the next due send, reminder or window end, moved
to the next send slot), not every minute, so a year takes seconds. Patients behave in four
ways: answer everything, text STOP after the opening, answer only the first question, never
reply. The send window is Mon-Fri and Sunday, 08:00-18:00 London, so both DST changeover days
(Sunday 28 March and Sunday 31 October 2027) are send days and Saturdays are not.
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from datetime import UTC, date, datetime, time, timedelta
from itertools import count

import pytest
from sqlalchemy import func, select

from tests.conftest import make_settings
from tests.factories import make_episode
from tracker.app import App, build
from tracker.clock import FrozenClock
from tracker.db.engine import make_engine
from tracker.db.migrate import upgrade
from tracker.db.tables import CheckIn, Episode, Message, Patient
from tracker.domain import CheckInState
from tracker.schedule import local_instant, nominal_due
from tracker.services.dispatch import tick
from tracker.services.inbound import receive_and_reply, survey_for
from tracker.services.pacing import Unpaced
from tracker.sms.port import InboundSms

START = datetime(2027, 1, 1, 0, 0, tzinfo=UTC)
END = datetime(2028, 1, 31, 0, 0, tzinfo=UTC)
COHORT = 40
ANSWER_ALL, STOPS, ANSWERS_ONE, SILENT = range(4)

# Discharges spread over 2026 (so both waves fall in 2027), plus dates that put a due date on
# each DST Sunday and on Saturdays.
SPECIAL_DISCHARGES = [
    date(2026, 9, 28),  # +6 months = Sunday 28 March 2027 (clocks go forward)
    date(2026, 3, 28),  # +12 months = Sunday 28 March 2027
    date(2026, 10, 31),  # +12 months = Sunday 31 October 2027 (clocks go back)
    date(2026, 10, 30),  # +12 months = Saturday 30 October 2027 -> Sunday 31 October
    date(2026, 8, 31),  # +6 months = 28 February 2027 (month-end clipping; a Sunday)
    date(2026, 11, 13),  # +6 = Thursday 13 May; +12 = Saturday 13 November 2027
]


def discharges() -> list[date]:
    spread = [
        date(2026, 1, 5) + timedelta(days=round(i * 355 / (COHORT - len(SPECIAL_DISCHARGES))))
        for i in range(COHORT - len(SPECIAL_DISCHARGES))
    ]
    return SPECIAL_DISCHARGES + spread


def enrol(app: App) -> dict[int, int]:
    """The cohort, enrolled through the real enrolment service; {patient id: behaviour}."""
    kinds: dict[int, int] = {}
    for n, discharged in enumerate(discharges()):
        episode = make_episode(app, discharged_on=discharged, patient_ref=f"YEAR{n}")
        kinds[episode.patient_id] = n % 4
    return kinds


def next_instant(app: App, now: datetime) -> datetime | None:
    """The next moment the scheduler has something to do."""
    with app.sessions() as session:
        due = session.scalar(
            select(func.min(func.coalesce(CheckIn.next_attempt_at, CheckIn.due_at))).where(
                CheckIn.state == CheckInState.SCHEDULED
            )
        )
        reminder = session.scalar(
            select(func.min(CheckIn.next_reminder_at)).where(CheckIn.state == CheckInState.OPEN)
        )
        closing = session.scalar(
            select(func.min(CheckIn.window_closes_at)).where(
                CheckIn.state.in_([CheckInState.OPEN, CheckInState.SCHEDULED])
            )
        )
    candidates = []
    for send_time in (due, reminder):
        if send_time is not None:
            send_time = send_time.replace(tzinfo=UTC) if send_time.tzinfo is None else send_time
            candidates.append(app.window.next_slot(max(send_time, now)))
    if closing is not None:
        candidates.append(closing.replace(tzinfo=UTC) if closing.tzinfo is None else closing)
    later = [c for c in candidates if c > now]
    if not later and candidates:
        later = [now + timedelta(seconds=1)]
    return min(later) if later else None


def reply(app: App, patient_id: int, body: str, sids: count) -> None:
    with app.sessions() as session:
        blob = session.get(Patient, patient_id).phone_ciphertext  # type: ignore[union-attr]
    receive_and_reply(app, InboundSms(f"SMin{next(sids)}", app.crypto.decrypt_phone(blob), body))


def answer_for(question) -> str:  # type: ignore[no-untyped-def]
    kind = str(question.kind)
    if kind == "scale":
        return "6"
    if kind == "count":
        return "2"
    if kind == "yesno":
        return "no"
    return str(question.choices[0].value)


def converse(app: App, kinds: dict[int, int], opened_now: list[CheckIn], sids: count) -> None:
    """Patients answer the way their kind says, straight after their check-in opens."""
    survey = survey_for(app.settings)
    for checkin in opened_now:
        with app.sessions() as session:
            patient_id = session.get(Episode, checkin.episode_id).patient_id  # type: ignore[union-attr]
        kind = kinds[patient_id]
        if kind == STOPS:
            reply(app, patient_id, "STOP", sids)
        elif kind == ANSWERS_ONE:
            reply(app, patient_id, answer_for(survey.question(0)), sids)
        elif kind == ANSWER_ALL:
            for _ in range(len(survey) + 2):
                with app.sessions() as session:
                    current = session.get(CheckIn, checkin.id)
                if current is None or current.state != CheckInState.OPEN:
                    break
                reply(app, patient_id, answer_for(survey.question(current.question_index)), sids)


@pytest.mark.slow
def test_a_year_of_ticks_sends_every_text_once_at_a_polite_hour(db_url: str) -> None:
    settings = make_settings(db_url, send_days="mon,tue,wed,thu,fri,sun")
    engine = make_engine(settings.database_url)
    upgrade(engine)
    clock = FrozenClock(START)
    app = build(settings, clock=clock, engine=engine)
    kinds = enrol(app)
    sids = count()
    rng = random.Random(2027)
    ticks = 0
    now = START
    while now < END:
        opened_before = _open_ids(app)
        tick(app, worker_id="year", pacer=Unpaced(), rng=rng)
        ticks += 1
        with app.sessions() as session:
            opened_now = list(
                session.scalars(
                    select(CheckIn).where(
                        CheckIn.state == CheckInState.OPEN, CheckIn.id.not_in(opened_before)
                    )
                )
            )
        converse(app, kinds, opened_now, sids)
        upcoming = next_instant(app, now)
        if upcoming is None:
            break
        now = max(upcoming, now + timedelta(seconds=1))
        clock.set(now)
    assert ticks < 1200, ticks  # only interesting instants were ticked

    zone = settings.zone
    with app.sessions() as session:
        checkins = {c.id: c for c in session.scalars(select(CheckIn))}
        episodes = {e.id: e for e in session.scalars(select(Episode))}
        texts = list(session.scalars(select(Message).where(Message.direction == "outbound")))
        stop_times = {
            m.patient_id: m.created_at
            for m in session.scalars(
                select(Message).where(Message.direction == "inbound", Message.body == "STOP")
            )
        }

    # Every scheduler text: inside send hours, on an allowed local day.
    scheduler_texts = [m for m in texts if m.purpose in ("opening", "reminder")]
    assert scheduler_texts
    for m in texts:
        local = m.sent_at.astimezone(zone)
        assert local.weekday() != 5, (m.purpose, local)  # never on a Saturday
        assert time(8, 0) <= local.time() < time(18, 0), (m.purpose, local)

    openings = Counter(m.checkin_id for m in texts if m.purpose == "opening")
    reminders: defaultdict[int, list[Message]] = defaultdict(list)
    for m in texts:
        if m.purpose == "reminder":
            reminders[m.checkin_id].append(m)
    assert set(openings.values()) == {1}  # nothing twice

    dst_checked = 0
    for cid, c in checkins.items():
        patient = episodes[c.episode_id].patient_id
        kind = kinds[patient]
        if openings[cid] and c.target_date in (date(2027, 3, 28), date(2027, 10, 31)):
            opening = next(m for m in texts if m.checkin_id == cid and m.purpose == "opening")
            assert opening.sent_at == local_instant(c.target_date, time(8, 0), zone)
            dst_checked += 1
        if c.state in (CheckInState.MISSED, CheckInState.CANCELLED):
            assert cid not in reminders
            assert c.reason, c  # nothing silently dropped
            continue
        assert openings[cid] == 1, (cid, c.state, c.reason)
        opening = next(m for m in texts if m.checkin_id == cid and m.purpose == "opening")
        if c.due_at == nominal_due(c.target_date, app.window):
            # sent on time: the first allowed day on or after the target date, at 08:00
            expected = nominal_due(c.target_date, app.window)
            assert opening.sent_at == expected, (c.target_date, opening.sent_at)
        if kind == ANSWER_ALL:
            assert c.state == CheckInState.COMPLETED, (cid, c.state)
            assert all(r.sent_at < c.closed_at for r in reminders[cid] if c.closed_at)
            assert not reminders[cid]  # answered at once: no reminder was ever due
        elif kind == ANSWERS_ONE:
            assert c.state == CheckInState.PARTIAL
            assert len(reminders[cid]) == 2
        elif kind == SILENT:
            assert c.state == CheckInState.EXPIRED
            assert len(reminders[cid]) == 2 and c.reminders_sent == 2
            first, second = sorted(r.sent_at for r in reminders[cid])
            assert first >= opening.sent_at + timedelta(days=3)
            assert second >= opening.sent_at + timedelta(days=7)
        else:  # texted STOP after the opening: that check-in was cancelled (handled above)
            pytest.fail(f"check-in {cid} of a patient who texted STOP ended {c.state}")
    assert dst_checked >= 3
    for patient, stopped_at in stop_times.items():
        after = [m for m in texts if m.patient_id == patient and m.created_at > stopped_at]
        assert after == [], [(m.purpose, m.created_at) for m in after]
        # every later wave of someone who stopped is cancelled, with the reason
        for c in checkins.values():
            if episodes[c.episode_id].patient_id == patient and c.due_at > stopped_at:
                assert c.state == CheckInState.CANCELLED and c.reason
    assert len(stop_times) >= COHORT // 4 - 2
    app.close()


def _open_ids(app: App) -> list[int]:
    with app.sessions() as session:
        return list(session.scalars(select(CheckIn.id).where(CheckIn.state == CheckInState.OPEN)))
