"""Test set-up for the SMS conversation: an enrolled patient with a check-in opened the way the
scheduler opens one (opening text + question 1 in the outbox, state open, question_index 0)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from tracker.app import App
from tracker.db.tables import CheckIn, Episode, Patient
from tracker.domain import CheckInState, ContactState
from tracker.services import outbox
from tracker.services.inbound import survey_for, texts_for

PATIENT_PHONE = "+447700900123"
OTHER_PHONE = "+447700900999"


@dataclass(frozen=True)
class Opened:
    patient_id: int
    episode_id: int
    checkin_id: int
    episode_ref: str


def enrol_with_open_checkin(
    app: App,
    *,
    phone: str = PATIENT_PHONE,
    ref: str = "E1",
    wave: int = 6,
    opened_at: datetime | None = None,
    window_days: int = 28,
    contact_state: ContactState = ContactState.ACTIVE,
    state: CheckInState = CheckInState.OPEN,
    send_opening: bool = True,
) -> Opened:
    """Insert a patient, an episode and an opened check-in; queue and send the first texts."""
    from surveys import render_opening, render_question

    now = opened_at or app.clock.now()
    survey, texts = survey_for(app.settings), texts_for(app.settings)
    with app.sessions.begin() as session:
        patient = Patient(
            patient_ref=f"P-{ref}",
            phone_ciphertext=app.crypto.encrypt_phone(phone),
            phone_index=app.crypto.phone_index(phone),
            birth_year=1960,
            gender="female",
            imd_quintile=2,
            contact_state=contact_state,
            created_at=now,
            updated_at=now,
        )
        session.add(patient)
        session.flush()
        episode = Episode(
            episode_ref=ref,
            patient_id=patient.id,
            site="north",
            referral_date=date(2025, 11, 1),
            discharge_date=date(2026, 5, 26),
            sessions=4,
            connected_external=True,
            pattern="anchored",
            pattern_source="recorded",
            consent_sms=True,
            created_at=now,
            updated_at=now,
        )
        session.add(episode)
        session.flush()
        checkin = CheckIn(
            episode_id=episode.id,
            wave=wave,
            state=state,
            target_date=date(2026, 11, 26),
            due_at=now,
            window_closes_at=now + timedelta(days=window_days),
            next_attempt_at=now,
            send_attempts=1,
            opened_at=now if state == CheckInState.OPEN else None,
            question_index=0,
            clarifications=0,
            reminders_sent=0,
            next_reminder_at=now + timedelta(days=3),
            created_at=now,
            updated_at=now,
        )
        session.add(checkin)
        session.flush()
        ids = []
        if send_opening and state == CheckInState.OPEN:
            for purpose, body, key in (
                ("opening", render_opening(survey, months=wave, texts=texts), None),
                ("question", render_question(survey, 0, texts), survey.question(0).key),
            ):
                msg = outbox.queue_text(
                    session,
                    now=now,
                    body=body,
                    purpose=purpose,
                    patient=patient,
                    checkin=checkin,
                    question_key=key,
                )
                session.flush()
                ids.append(msg.id)
        opened = Opened(patient.id, episode.id, checkin.id, ref)
    for message_id in ids:
        outbox.deliver(app, message_id)
    return opened
