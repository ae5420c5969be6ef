"""Test set-up for the scheduler: many patients with scheduled check-ins, inserted with Core
bulk inserts (fast enough for thousands), and queries that count what was sent."""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import func, insert, select

from tracker.app import App
from tracker.db.tables import CheckIn, Episode, Message, Patient
from tracker.domain import CheckInState, Direction, MessageStatus

WENT = (
    MessageStatus.QUEUED,
    MessageStatus.ACCEPTED,
    MessageStatus.SENDING,
    MessageStatus.SENT,
    MessageStatus.DELIVERED,
    MessageStatus.READ,
)


def phone_for(n: int) -> str:
    return f"+4477009{n:05d}"


def seed_checkins(
    app: App,
    count: int,
    *,
    due_at: datetime,
    window_days: int = 28,
    wave: int = 6,
    contact_state: str = "active",
    first: int = 0,
    chunk: int = 2000,
) -> list[int]:
    """`count` patients, each with one episode and one scheduled check-in due at `due_at`."""
    now = app.clock.now()
    crypto = app.crypto
    checkin_ids: list[int] = []
    for start in range(first, first + count, chunk):
        stop = min(first + count, start + chunk)
        with app.sessions.begin() as session:
            patients = [
                {
                    "patient_ref": f"P{n}",
                    "phone_ciphertext": crypto.encrypt_phone(phone_for(n)),
                    "phone_index": crypto.phone_index(phone_for(n)),
                    "birth_year": 1960,
                    "gender": "female",
                    "imd_quintile": 3,
                    "ethnicity": None,
                    "contact_state": contact_state,
                    "contact_state_changed_at": None,
                    "erased_at": None,
                    "created_at": now,
                    "updated_at": now,
                }
                for n in range(start, stop)
            ]
            # Match returned ids on a column, not on order: keeps multi-row INSERTs fast.
            patient_ids = dict(
                session.execute(
                    insert(Patient).returning(Patient.patient_ref, Patient.id), patients
                ).all()
            )
            episodes = [
                _episode_row(f"E{n}", patient_ids[f"P{n}"], now) for n in range(start, stop)
            ]
            episode_ids = dict(
                session.execute(
                    insert(Episode).returning(Episode.episode_ref, Episode.id), episodes
                ).all()
            )
            episode_ids = [episode_ids[f"E{n}"] for n in range(start, stop)]
            checkins = [
                checkin_row(eid, wave=wave, due_at=due_at, window_days=window_days, now=now)
                for eid in episode_ids
            ]
            checkin_ids.extend(
                sorted(session.scalars(insert(CheckIn).returning(CheckIn.id), checkins).all())
            )
    return checkin_ids


def _episode_row(ref: str, patient_id: int, now: datetime, discharge: date | None = None) -> dict:
    return {
        "episode_ref": ref,
        "patient_id": patient_id,
        "site": "north",
        "referral_date": date(2025, 1, 1),
        "discharge_date": discharge or date(2026, 5, 26),
        "sessions": 4,
        "connected_external": True,
        "pattern": "anchored",
        "pattern_source": "recorded",
        "pattern_rule_version": None,
        "consent_sms": True,
        "created_at": now,
        "updated_at": now,
    }


def checkin_row(
    episode_id: int,
    *,
    wave: int,
    due_at: datetime,
    window_days: int,
    now: datetime,
    target: date | None = None,
) -> dict[str, Any]:
    return {
        "episode_id": episode_id,
        "wave": wave,
        "state": CheckInState.SCHEDULED,
        "target_date": target or due_at.date(),
        "due_at": due_at,
        "window_closes_at": due_at + timedelta(days=window_days),
        "next_attempt_at": due_at,
        "send_attempts": 0,
        "question_index": 0,
        "clarifications": 0,
        "reminders_sent": 0,
        "created_at": now,
        "updated_at": now,
    }


def states(app: App) -> Counter[str]:
    with app.sessions() as session:
        return Counter(
            dict(session.execute(select(CheckIn.state, func.count()).group_by(CheckIn.state)).all())
        )


def went_per_checkin(app: App, purpose: str) -> Counter[int]:
    """How many outbound texts of `purpose` the provider took, per check-in."""
    with app.sessions() as session:
        rows = session.execute(
            select(Message.checkin_id, func.count())
            .where(
                Message.direction == Direction.OUTBOUND,
                Message.purpose == purpose,
                Message.status.in_(WENT),
            )
            .group_by(Message.checkin_id)
        ).all()
    return Counter(dict(rows))
