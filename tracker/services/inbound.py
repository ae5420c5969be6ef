"""Receiving one inbound text: store it first, then interpret it, then reply at once.

    receive(app, sms)        -> InboundResult (raw text committed; outcome applied; replies queued)
    deliver_replies(app, r)  -> hand the queued replies to the provider (webhook: right after the
                                response; CLI: before printing)

Three short transactions, so that nothing a patient sends is ever lost:

1. The raw text is committed on its own, status `pending` (not yet interpreted). The provider
   MessageSid is unique: a replayed or concurrent duplicate hits the constraint and creates
   no new row.
2. Interpretation claims the row with a conditional UPDATE (`pending` -> `received`, row count
   checked), so exactly one copy is interpreted even when two arrive at the same moment; if the
   process dies before this commits, the row stays `pending` and the provider's retry (or a
   replay) interprets it then.
3. Replies are texts in the outbox (one record with delivery status), delivered right away.

Nothing here logs a phone number or a message body.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from pathlib import Path

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from surveys import ServiceTexts, Survey, build_survey, load_service_texts
from tracker import conversation
from tracker.app import App
from tracker.config import Settings
from tracker.db.tables import Answer, CheckIn, Episode, Message, Patient
from tracker.domain import (
    CheckInState,
    ContactState,
    Direction,
    MessageStatus,
    check_transition,
    status_rank,
)
from tracker.phone import PhoneError, normalise_mobile
from tracker.services import alerts, contact, outbox
from tracker.sms.port import InboundSms

log = logging.getLogger(__name__)

# Bodies beyond this are stored cut (a text is at most 1,600 characters; the rest is noise).
MAX_STORED_BODY = 1600 * 4


@dataclass
class InboundResult:
    message_id: int
    duplicate: bool = False
    route: str | None = None
    reply_ids: list[int] = field(default_factory=list)
    replies: list[str] = field(default_factory=list)  # bodies, for the simulator CLI only


# --- configuration: survey and service texts ---------------------------------------------


@lru_cache(maxsize=8)
def _survey(instruments: tuple[str, ...]) -> Survey:
    return build_survey(instruments)


@lru_cache(maxsize=8)
def _texts(path: str | None, service_name: str | None, contact_details: str | None) -> ServiceTexts:
    texts = load_service_texts(Path(path) if path else None)
    update_: dict[str, str] = {}
    if service_name:
        update_["service_name"] = service_name
    if contact_details:
        update_["contact_details"] = contact_details
    return texts.model_copy(update=update_) if update_ else texts


def survey_for(settings: Settings) -> Survey:
    """The survey this deployment asks (TRACKER_INSTRUMENTS)."""
    return _survey(tuple(settings.instruments))


def texts_for(settings: Settings) -> ServiceTexts:
    """Service texts: defaults, TRACKER_TEXTS_FILE, then TRACKER_SERVICE_NAME/_CONTACT if set."""
    fields = Settings.model_fields
    name = settings.service_name
    contact_ = settings.service_contact
    return _texts(
        str(settings.texts_file) if settings.texts_file else None,
        name if name != fields["service_name"].default else None,
        contact_ if contact_ != fields["service_contact"].default else None,
    )


# --- the pipeline ------------------------------------------------------------------------


def sender_number(raw: str) -> str:
    """The sender in E.164 (UK numbers written locally are normalised; others kept as given)."""
    text = (raw or "").strip()
    try:
        return normalise_mobile(text)
    except PhoneError:
        return text


def receive(app: App, sms: InboundSms, *, now: datetime | None = None) -> InboundResult:
    """Store one inbound text, interpret it once, queue the replies (not yet sent)."""
    now = now or app.clock.now()
    number = sender_number(sms.from_number)
    index = app.crypto.phone_index(number)
    # One session (one pooled connection) for both transactions: two separate commits.
    with app.sessions() as session:
        message_id, duplicate = _store_raw(app, session, sms, number, index, now)
        result = _interpret(app, session, message_id, number, index, now)
    if result is None:
        return InboundResult(message_id=message_id, duplicate=True)
    result.duplicate = duplicate
    return result


def deliver_replies(app: App, result: InboundResult) -> None:
    """Send the replies queued by `receive`, in order; failures stay in the outbox."""
    for reply_id in result.reply_ids:
        try:
            outbox.deliver(app, reply_id)
        except Exception:  # noqa: BLE001 - the row stays pending for the scheduler's reconciliation
            log.exception("delivering reply message %s failed; left in the outbox", reply_id)


def receive_and_reply(app: App, sms: InboundSms, *, now: datetime | None = None) -> InboundResult:
    """`receive` then `deliver_replies` (CLI, tests)."""
    result = receive(app, sms, now=now)
    deliver_replies(app, result)
    return result


def _store_raw(
    app: App, session: Session, sms: InboundSms, number: str, index: str, now: datetime
) -> tuple[int, bool]:
    # PostgreSQL text cannot hold NUL; nothing a person typed is lost by dropping it.
    body = (sms.body or "").replace("\x00", "")[:MAX_STORED_BODY]
    try:
        with session.begin():
            message = Message(
                direction=Direction.INBOUND,
                phone_index=index,
                phone_ciphertext=app.crypto.encrypt_phone(number),
                purpose="reply",
                body=body,
                media_count=max(0, sms.media_count),
                provider_sid=sms.provider_sid,
                status=MessageStatus.PENDING,
                status_rank=status_rank(MessageStatus.PENDING),
                created_at=now,
                status_updated_at=now,
            )
            session.add(message)
            session.flush()
            message_id = message.id
            session.expunge(message)
            return message_id, False
    except IntegrityError:
        # Same MessageSid already stored (a replay or a concurrent copy): no new row.
        with session.begin():
            existing = session.scalar(
                select(Message.id).where(Message.provider_sid == sms.provider_sid)
            )
        if existing is None:
            raise
        log.info("inbound message %s is a duplicate of message %s", sms.provider_sid, existing)
        return existing, True


@dataclass(frozen=True)
class _Raw:
    id: int
    body: str | None
    media_count: int


def _claim(session: Session, message_id: int, now: datetime) -> _Raw | None:
    """Mark the raw text as interpreted; None if another copy got there first."""
    row = session.execute(
        update(Message)
        .where(Message.id == message_id, Message.status == MessageStatus.PENDING)
        .values(
            status=MessageStatus.RECEIVED,
            status_rank=status_rank(MessageStatus.RECEIVED),
            status_updated_at=now,
        )
        .returning(Message.body, Message.media_count)
        .execution_options(synchronize_session=False)
    ).first()
    return _Raw(message_id, row.body, row.media_count) if row is not None else None


def _find_patient(session: Session, index: str) -> tuple[Patient | None, CheckIn | None]:
    """The sender's patient and the check-in a reply belongs to (one conversation per number)."""
    # Locking the sender's patient rows serialises texts from one number (STOP racing an
    # answer), while texts from different numbers run side by side.
    patients = session.scalars(
        select(Patient)
        .where(Patient.phone_index == index, Patient.erased_at.is_(None))
        .order_by(Patient.id)
        .with_for_update()
    ).all()
    if not patients:
        return None, None
    ids = [p.id for p in patients]
    # The patient id comes with the check-in (no lazy load of the episode: one round trip).
    found = session.execute(
        select(CheckIn, Episode.patient_id)
        .join(Episode, Episode.id == CheckIn.episode_id)
        .where(Episode.patient_id.in_(ids), CheckIn.state == CheckInState.OPEN)
        .order_by(CheckIn.opened_at.desc(), CheckIn.id.desc())
        .limit(1)
        .with_for_update(of=CheckIn)
    ).first()
    if found is None:
        # The most recent conversation that closed with its window: a reply now is late.
        found = session.execute(
            select(CheckIn, Episode.patient_id)
            .join(Episode, Episode.id == CheckIn.episode_id)
            .where(
                Episode.patient_id.in_(ids),
                CheckIn.opened_at.is_not(None),
                CheckIn.state.in_([CheckInState.EXPIRED, CheckInState.PARTIAL]),
            )
            .order_by(CheckIn.opened_at.desc(), CheckIn.id.desc())
            .limit(1)
        ).first()
    if found is not None:
        checkin, owner_id = found
        return next(p for p in patients if p.id == owner_id), checkin
    # Several patients can share a phone (carers); prefer one who can be texted.
    active = [p for p in patients if p.contact_state == ContactState.ACTIVE]
    return (active or patients)[0], None


def _interpret(
    app: App, session: Session, message_id: int, number: str, index: str, now: datetime
) -> InboundResult | None:
    settings = app.settings
    survey, texts = survey_for(settings), texts_for(settings)
    with session.begin():
        message = _claim(session, message_id, now)
        if message is None:
            return None
        patient, checkin = _find_patient(session, index)
        state = None
        if checkin is not None:
            state = conversation.Conversation(
                question_index=checkin.question_index,
                clarifications=checkin.clarifications,
                window_closes_at=checkin.window_closes_at,
                open=checkin.state == CheckInState.OPEN,
            )
        outcome = conversation.interpret(
            body=message.body,
            media_count=message.media_count,
            now=now,
            contact_state=patient.contact_state if patient is not None else None,
            conversation=state,
            survey=survey,
            texts=texts,
        )
        links: dict[str, object] = {}
        if patient is not None:
            links["patient_id"] = patient.id
        if checkin is not None and outcome.route in _CHECKIN_ROUTES:
            links["checkin_id"] = checkin.id
        if outcome.late:
            links["late"] = True
        if links:
            session.execute(
                update(Message)
                .where(Message.id == message_id)
                .values(**links)
                .execution_options(synchronize_session=False)
            )
        _apply(app, session, outcome, message, patient, checkin, number, index, now)
        queued = _queue_replies(session, outcome, patient, checkin, number, index, now, app)
        session.flush()
        result = InboundResult(
            message_id=message_id,
            route=outcome.route,
            reply_ids=[m.id for m in queued],
            replies=[m.body or "" for m in queued],
        )
    log.info("inbound message %s: %s, %d replies", message_id, result.route, len(queued))
    return result


_CHECKIN_ROUTES = {
    conversation.Route.ANSWER,
    conversation.Route.CLARIFY,
    conversation.Route.PICTURE,
    conversation.Route.LATE,
    conversation.Route.RISK,
}


def _apply(
    app: App,
    session: Session,
    outcome: conversation.Outcome,
    message: _Raw,
    patient: Patient | None,
    checkin: CheckIn | None,
    number: str,
    index: str,
    now: datetime,
) -> None:
    if patient is not None and outcome.contact_change is not None:
        if patient.contact_state != outcome.contact_change:
            contact.set_contact_state(
                session,
                patient,
                outcome.contact_change,
                now=now,
                actor="patient",
                reason=outcome.contact_reason or "patient text",
                window=app.window,
            )
        if outcome.contact_change == ContactState.STOPPED:
            _cancel_pending_texts(session, patient, now)
    if checkin is not None:
        for record in outcome.answers:
            session.add(
                Answer(
                    checkin_id=checkin.id,
                    message_id=message.id,
                    question_key=record.question_key,
                    raw_text=message.body,
                    value=record.value,
                    outcome=record.outcome,
                    answered_at=now,
                )
            )
        if checkin.state == CheckInState.OPEN and not outcome.late:
            if outcome.question_index is not None:
                checkin.question_index = outcome.question_index
            if outcome.clarifications is not None:
                checkin.clarifications = outcome.clarifications
            checkin.last_activity_at = now
            checkin.updated_at = now
            if outcome.completed:
                checkin.state = check_transition(checkin.state, CheckInState.COMPLETED)
                checkin.closed_at = now
                checkin.next_reminder_at = None  # a completed check-in sends no reminders
    for record in outcome.alerts:
        alerts.raise_alert(
            session,
            kind=record.kind,
            now=now,
            patient=patient,
            checkin=checkin,
            message_id=message.id,
            phone_index=index if patient is None else None,
            detail=record.detail,
        )


def _cancel_pending_texts(session: Session, patient: Patient, now: datetime) -> None:
    """STOP means no text at all: outbox rows not yet handed to the provider are cancelled."""
    session.execute(
        update(Message)
        .where(
            Message.patient_id == patient.id,
            Message.direction == Direction.OUTBOUND,
            Message.status == MessageStatus.PENDING,
        )
        .values(
            status=MessageStatus.CANCELED,
            status_rank=status_rank(MessageStatus.CANCELED),
            status_updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )


def _queue_replies(
    session: Session,
    outcome: conversation.Outcome,
    patient: Patient | None,
    checkin: CheckIn | None,
    number: str,
    index: str,
    now: datetime,
    app: App,
) -> list[Message]:
    queued = []
    for reply in outcome.replies:
        in_conversation = checkin is not None and reply.purpose in _CONVERSATION_PURPOSES
        if patient is not None:
            message = outbox.queue_text(
                session,
                now=now,
                body=reply.body,
                purpose=reply.purpose,
                patient=patient,
                checkin=checkin if in_conversation else None,
                question_key=reply.question_key,
            )
        else:
            message = outbox.queue_text(
                session,
                now=now,
                body=reply.body,
                purpose=reply.purpose,
                phone_ciphertext=app.crypto.encrypt_phone(number),
                phone_index=index,
            )
        queued.append(message)
    return queued


# Replies that belong to the check-in's record (a failure to deliver them fails the check-in).
_CONVERSATION_PURPOSES = {
    conversation.Purpose.QUESTION,
    conversation.Purpose.CLARIFICATION,
    conversation.Purpose.CLOSING,
}
