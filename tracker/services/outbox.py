"""The outbox: a text is committed before the provider is called, and its fate recorded after.

    queue_text()  -> row committed with status `pending` (by the caller's transaction)
    deliver()     -> provider call outside any transaction, then one short transaction that
                     records the provider id / status, or the failure and its consequences
    deliver_now() -> the same for a text the caller has just queued and already holds
                     (recipient, body): no re-read of the message and patient

A crash between the two leaves a `pending` row; a timeout leaves `unknown`. Neither is ever
resent blindly: `reconcile_unknown()` asks the provider first (see the scheduler).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import Connection, bindparam, select, text
from sqlalchemy.orm import Session

from surveys.gsm import sms_segments
from tracker.app import App
from tracker.db.tables import CheckIn, Message, Patient
from tracker.db.types import UTCDateTime
from tracker.domain import (
    TERMINAL_CHECKIN_STATES,
    AlertKind,
    CheckInState,
    ContactState,
    Direction,
    MessageStatus,
    status_rank,
)
from tracker.services import alerts, contact
from tracker.sms.port import OutboundSms, SendResult, SmsError

# Provider codes that mean "this number cannot take our texts": flag it for a person.
UNREACHABLE_CODES = frozenset({"30005", "30006", "21211", "21614"})


class DeliveryOutcome(StrEnum):
    SENT = "sent"
    RETRY = "retry"  # transient: try again later with backoff
    PERMANENT = "permanent"  # will never work for this number
    STOPPED = "stopped"  # recipient opted out at the provider (21610)
    UNKNOWN = "unknown"  # timed out after the call: reconcile before anything is resent


@dataclass(frozen=True)
class Delivery:
    outcome: DeliveryOutcome
    message_id: int
    error_code: str | None = None
    retry_after: float | None = None


def queue_text(
    session: Session,
    *,
    now: datetime,
    body: str,
    purpose: str,
    patient: Patient | None = None,
    checkin: CheckIn | None = None,
    question_key: str | None = None,
    phone_ciphertext: bytes | None = None,
    phone_index: str | None = None,
    attempt: int = 1,
) -> Message:
    """Add an outbound text to the outbox (status `pending`); the caller commits."""
    if patient is None and phone_ciphertext is None:
        raise ValueError("a text needs a patient or a phone number")
    message = Message(
        **outbox_row(
            now=now,
            body=body,
            purpose=purpose,
            patient_id=patient.id if patient is not None else None,
            checkin_id=checkin.id if checkin is not None else None,
            question_key=question_key,
            phone_ciphertext=phone_ciphertext,
            phone_index=phone_index,
            attempt=attempt,
        )
    )
    session.add(message)
    return message


def outbox_row(
    *,
    now: datetime,
    body: str,
    purpose: str,
    patient_id: int | None,
    checkin_id: int | None = None,
    question_key: str | None = None,
    phone_ciphertext: bytes | None = None,
    phone_index: str | None = None,
    attempt: int = 1,
) -> dict[str, object]:
    """The column values of a `pending` outbound text (for `queue_text` and bulk inserts)."""
    return {
        "direction": Direction.OUTBOUND,
        "patient_id": patient_id,
        "checkin_id": checkin_id,
        "phone_ciphertext": phone_ciphertext,
        "phone_index": phone_index,
        "purpose": purpose,
        "question_key": question_key,
        "body": body,
        "media_count": 0,
        "segments": sms_segments(body),
        "status": MessageStatus.PENDING,
        "status_rank": status_rank(MessageStatus.PENDING),
        "attempt": attempt,
        "late": False,
        "created_at": now,
    }


def outbound_sms(app: App, session: Session, message: Message) -> OutboundSms:
    blob = message.phone_ciphertext
    if blob is None and message.patient_id is not None:
        blob = session.get(Patient, message.patient_id).phone_ciphertext  # type: ignore[union-attr]
    if blob is None:
        raise ValueError(f"message {message.id} has no recipient (patient erased?)")
    return OutboundSms(
        message_id=message.id, to=app.crypto.decrypt_phone(blob), body=message.body or ""
    )


def deliver(app: App, message_id: int) -> Delivery:
    """Send one committed `pending` text and record what happened."""
    with app.sessions() as session:
        message = session.get(Message, message_id)
        if message is None or message.status != MessageStatus.PENDING:
            # Someone else already handled it (or it was erased): never send twice.
            return _not_pending(message_id, message.status if message is not None else None)
        sms = outbound_sms(app, session, message)
    return _send(app, sms)


def deliver_now(app: App, sms: OutboundSms) -> Delivery:
    """`deliver` for a text whose recipient and body the caller already has (a fresh reply).

    One autocommit read of the status (still `pending`?), the provider call outside any
    transaction, then one UPDATE to record the result.
    """
    with _autocommit(app) as conn:
        status = conn.execute(_STATUS_OF, {"id": sms.message_id}).scalar()
        conn.commit()
    if status != MessageStatus.PENDING:
        return _not_pending(sms.message_id, status)
    return _send(app, sms)


def _not_pending(message_id: int, status: str | None) -> Delivery:
    """Someone else already handled it (or it was erased): never send twice."""
    outcome = DeliveryOutcome.SENT if status is not None else DeliveryOutcome.PERMANENT
    return Delivery(outcome, message_id)


def _send(app: App, sms: OutboundSms) -> Delivery:
    try:
        result = app.gateway.send(sms)
    except SmsError as error:
        return _record_failure(app, sms.message_id, error)
    _record_sent(app, sms.message_id, result)
    return Delivery(DeliveryOutcome.SENT, sms.message_id)


@contextmanager
def _autocommit(app: App) -> Iterator[Connection]:
    """A pooled connection for single statements: on PostgreSQL no BEGIN/COMMIT round trips."""
    with app.engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            conn.execution_options(isolation_level="AUTOCOMMIT")
        yield conn


# Fixed-shape statements for the per-reply path: compiled once per process, then prepared by
# the driver (no statement building per text).
_STATUS_OF = text("SELECT status FROM messages WHERE id = :id")

# Record a send as one conditional UPDATE (SET sees the row as it was): a status
# callback that came first (higher rank) is never undone.
_RECORD_SENT = text(
    "UPDATE messages SET provider_sid = :sid, sent_at = COALESCE(sent_at, :now),"
    " status = CASE WHEN status_rank < :rank THEN :status ELSE status END,"
    " status_updated_at = CASE WHEN status_rank < :rank THEN :now ELSE status_updated_at END,"
    " status_rank = CASE WHEN status_rank < :rank THEN :rank ELSE status_rank END"
    " WHERE id = :id"
).bindparams(bindparam("now", type_=UTCDateTime()))


def _record_sent(app: App, message_id: int, result: SendResult) -> None:
    """Store the provider id and status; a status callback that came first is never undone."""
    params = {
        "id": message_id,
        "sid": result.provider_sid,
        "now": app.clock.now(),
        "rank": status_rank(result.status),
        "status": str(result.status),
    }
    with _autocommit(app) as conn:
        conn.execute(_RECORD_SENT, params)
        conn.commit()


def _record_failure(app: App, message_id: int, error: SmsError) -> Delivery:
    now = app.clock.now()
    with app.sessions.begin() as session:
        message = session.get(Message, message_id, with_for_update=True)
        assert message is not None
        if error.outcome_unknown:
            message.status = MessageStatus.UNKNOWN
            message.status_rank = status_rank(MessageStatus.UNKNOWN)
            message.status_updated_at = now
            message.error_code = error.code
            return Delivery(DeliveryOutcome.UNKNOWN, message_id, error.code)
        message.status = MessageStatus.FAILED
        message.status_rank = status_rank(MessageStatus.FAILED)
        message.status_updated_at = now
        message.error_code = error.code
        if not error.permanent:
            return Delivery(DeliveryOutcome.RETRY, message_id, error.code, error.retry_after)
        apply_permanent_failure(session, message, error.code, error.stopped, now=now)
        outcome = DeliveryOutcome.STOPPED if error.stopped else DeliveryOutcome.PERMANENT
        return Delivery(outcome, message_id, error.code)


def apply_permanent_failure(
    session: Session, message: Message, code: str | None, stopped: bool, *, now: datetime
) -> None:
    """What a permanent failure means for the patient and the check-in (also for callbacks)."""
    patient = session.get(Patient, message.patient_id) if message.patient_id else None
    checkin = session.get(CheckIn, message.checkin_id) if message.checkin_id else None
    if stopped and patient is not None and patient.contact_state == ContactState.ACTIVE:
        contact.set_contact_state(
            session,
            patient,
            ContactState.STOPPED,
            now=now,
            actor="provider",
            reason="recipient has opted out at the provider (21610)",
        )
        return
    if checkin is not None and checkin.state not in TERMINAL_CHECKIN_STATES:
        checkin.state = CheckInState.FAILED
        checkin.reason = f"provider error {code}: the text cannot be delivered to this number"
        checkin.closed_at = now
        checkin.next_reminder_at = None
        checkin.updated_at = now
    if patient is not None and (code in UNREACHABLE_CODES or code is None):
        alerts.raise_alert(
            session,
            kind=AlertKind.DELIVERY_PROBLEM,
            now=now,
            patient=patient,
            checkin=checkin,
            message_id=message.id,
            detail=f"provider error {code}: check the patient's mobile number",
        )


def stale_pending(session: Session, *, now: datetime, older_than: timedelta) -> list[int]:
    """Outbound texts left `pending` by a crash (provider maybe called): candidates to reconcile."""
    return list(
        session.scalars(
            select(Message.id).where(
                Message.direction == Direction.OUTBOUND,
                Message.status == MessageStatus.PENDING,
                Message.created_at < now - older_than,
            )
        )
    )
