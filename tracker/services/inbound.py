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

Round trips matter here (a webhook under load): one pooled connection serves both
transactions; the raw text is one autocommit INSERT ... ON CONFLICT DO NOTHING; the sender's
patient and open check-in come (locked) from one query; on PostgreSQL the usual answer writes
its answer rows, the check-in's new position and the outbox rows in one statement; and the
replies are sent with the recipient and body already in hand (`outbox.deliver_now`).

Nothing here logs a phone number or a message body.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from pathlib import Path

from sqlalchemy import Connection, Insert, bindparam, select, text, update
from sqlalchemy.orm import Session

from surveys import ServiceTexts, Survey, build_survey, load_service_texts
from surveys.gsm import sms_segments
from tracker import conversation
from tracker.app import App
from tracker.config import Settings
from tracker.db.tables import Answer, CheckIn, Episode, Message, Patient
from tracker.db.types import UTCDateTime
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
from tracker.sms.port import InboundSms, OutboundSms

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
    outgoing: list[OutboundSms] = field(default_factory=list)  # the replies, ready to send


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
    return _sender_number(raw or "")


# A patient texts several replies in a row: parsing the number once saves CPU per reply.
@lru_cache(maxsize=1024)
def _sender_number(raw: str) -> str:
    text = raw.strip()
    try:
        return normalise_mobile(text)
    except PhoneError:
        return text


def receive(app: App, sms: InboundSms, *, now: datetime | None = None) -> InboundResult:
    """Store one inbound text, interpret it once, queue the replies (not yet sent)."""
    now = now or app.clock.now()
    number = sender_number(sms.from_number)
    index = app.crypto.phone_index(number)
    # One pooled connection for both transactions (a Session would give it back after the
    # first commit and check out, and ping, another one for the second).
    with app.engine.connect() as conn:
        raw, duplicate = _store_raw(app, conn, sms, number, index, now)
        if raw.status != MessageStatus.PENDING:
            # A copy already interpreted: nothing more to do (and no transaction to open).
            return InboundResult(message_id=raw.id, duplicate=True)
        with app.sessions(bind=conn) as session:
            result = _interpret(app, session, raw, number, index, now)
    if result is None:
        return InboundResult(message_id=raw.id, duplicate=True)
    result.duplicate = duplicate
    return result


def deliver_replies(app: App, result: InboundResult) -> None:
    """Send the replies queued by `receive`, in order; failures stay in the outbox."""
    outgoing = result.outgoing or [None] * len(result.reply_ids)
    for reply_id, sms in zip(result.reply_ids, outgoing, strict=True):
        try:
            if sms is not None:
                outbox.deliver_now(app, sms)  # recipient and body already known: no re-read
            else:
                outbox.deliver(app, reply_id)
        except Exception:  # noqa: BLE001 - the row stays pending for the scheduler's reconciliation
            log.exception("delivering reply message %s failed; left in the outbox", reply_id)


def receive_and_reply(app: App, sms: InboundSms, *, now: datetime | None = None) -> InboundResult:
    """`receive` then `deliver_replies` (CLI, tests)."""
    result = receive(app, sms, now=now)
    deliver_replies(app, result)
    return result


def _insert_new(conn: Connection) -> Callable[..., Insert]:
    """INSERT ... ON CONFLICT (provider_sid) DO NOTHING for this database."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return lambda values: (
            pg_insert(Message)
            .values(values)
            .on_conflict_do_nothing(index_elements=[Message.provider_sid])
        )
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return lambda values: (
        sqlite_insert(Message)
        .values(values)
        .on_conflict_do_nothing(index_elements=[Message.provider_sid])
    )


def _store_raw(
    app: App, conn: Connection, sms: InboundSms, number: str, index: str, now: datetime
) -> tuple[_Raw, bool]:
    """Commit the raw text (status `pending`); a known MessageSid gives the stored copy."""
    # PostgreSQL text cannot hold NUL; nothing a person typed is lost by dropping it.
    body = (sms.body or "").replace("\x00", "")[:MAX_STORED_BODY]
    media_count = max(0, sms.media_count)
    values = {
        "direction": Direction.INBOUND,
        "phone_index": index,
        "phone_ciphertext": app.crypto.encrypt_phone(number),
        "purpose": "reply",
        "body": body,
        "media_count": media_count,
        "segments": 1,
        "provider_sid": sms.provider_sid,
        "status": MessageStatus.PENDING,
        "status_rank": status_rank(MessageStatus.PENDING),
        "attempt": 1,
        "late": False,
        "created_at": now,
        "status_updated_at": now,
    }
    autocommit = conn.dialect.name == "postgresql"
    if autocommit:
        # One statement, its own transaction: no BEGIN/COMMIT round trips.
        conn.execution_options(isolation_level="AUTOCOMMIT")
    try:
        # Same MessageSid already stored (a replay or a concurrent copy): no new row. On
        # PostgreSQL a concurrent uncommitted copy is waited for, never raced.
        if autocommit:
            inserted = conn.execute(
                _PG_STORE_RAW,
                {
                    "phone_index": index,
                    "phone_ciphertext": values["phone_ciphertext"],
                    "body": body,
                    "media_count": media_count,
                    "provider_sid": sms.provider_sid,
                    "now": now,
                },
            ).scalar()
        else:
            inserted = conn.scalar(_insert_new(conn)(values).returning(Message.id))
        if inserted is not None:
            conn.commit()
            return _Raw(inserted, body, media_count, MessageStatus.PENDING), False
        existing = conn.execute(
            select(Message.id, Message.body, Message.media_count, Message.status).where(
                Message.provider_sid == sms.provider_sid
            )
        ).first()
        conn.commit()
    finally:
        if autocommit:
            conn.execution_options(isolation_level=conn.default_isolation_level)
    if existing is None:
        raise RuntimeError(f"inbound message {sms.provider_sid} neither stored nor found")
    log.info("inbound message %s is a duplicate of message %s", sms.provider_sid, existing.id)
    return _Raw(existing.id, existing.body, existing.media_count, existing.status), True


@dataclass(frozen=True)
class _Raw:
    id: int
    body: str | None
    media_count: int
    status: str


# --- PostgreSQL hot path: fixed-shape statements -----------------------------------------
#
# Every reply runs the same few statements. Written once as text() with bound parameters (and
# arrays for the variable parts), each is compiled by SQLAlchemy once per process and, after
# a few uses, prepared by psycopg on each connection: no per-request statement building or
# compiling. The ORM path below stays for SQLite and for the rarer routes (STOP, alerts,
# unknown senders), which write the same rows.

_NOW = bindparam("now", type_=UTCDateTime())

_PG_STORE_RAW = text(
    "INSERT INTO messages (direction, phone_index, phone_ciphertext, purpose, body,"
    " media_count, segments, provider_sid, status, status_rank, attempt, late, created_at,"
    " status_updated_at)"
    f" VALUES ('{Direction.INBOUND.value}', :phone_index, :phone_ciphertext, 'reply', :body,"
    f" :media_count, 1, :provider_sid, '{MessageStatus.PENDING.value}',"
    f" {status_rank(MessageStatus.PENDING)}, 1, false, :now, :now)"
    " ON CONFLICT (provider_sid) DO NOTHING RETURNING id"
).bindparams(_NOW)

# The sender's open check-in and its patient, both rows locked (see `_find_patient`).
_PG_FIND_OPEN = text(
    "SELECT p.id AS patient_id, p.contact_state, c.id AS checkin_id, c.state,"
    " c.question_index, c.clarifications, c.window_closes_at"
    " FROM patients p JOIN episodes e ON e.patient_id = p.id"
    " JOIN checkins c ON c.episode_id = e.id"
    f" WHERE p.phone_index = :index AND p.erased_at IS NULL AND c.state = '{CheckInState.OPEN.value}'"
    " ORDER BY c.opened_at DESC, c.id DESC LIMIT 1"
    " FOR UPDATE OF p, c"
).columns(window_closes_at=UTCDateTime())

# `_claim` with its links: NULL / false leave a link as it is.
_PG_CLAIM = text(
    f"UPDATE messages SET status = '{MessageStatus.RECEIVED.value}',"
    f" status_rank = {status_rank(MessageStatus.RECEIVED)}, status_updated_at = :now,"
    " patient_id = COALESCE(CAST(:patient_id AS bigint), patient_id),"
    " checkin_id = COALESCE(CAST(:checkin_id AS bigint), checkin_id),"
    " late = (late OR CAST(:late AS boolean))"
    f" WHERE id = :id AND status = '{MessageStatus.PENDING.value}'"
).bindparams(_NOW)

# `_claim` + `_write_answer` in one statement: the claim (as `_PG_CLAIM`), then, only if it
# took the row, the answers, the check-in's new position and the outbox rows. A concurrent
# copy waits on the message row, finds it no longer `pending` and writes nothing. Result: one
# row 0 for the claim plus the new outbox ids; no row at all if another copy got there first.
_PG_WRITE_ANSWER = text(
    "WITH m AS ("
    f" UPDATE messages SET status = '{MessageStatus.RECEIVED.value}',"
    f" status_rank = {status_rank(MessageStatus.RECEIVED)}, status_updated_at = :now,"
    " patient_id = :patient_id,"
    " checkin_id = COALESCE(CAST(:m_checkin_id AS bigint), checkin_id),"
    " late = (late OR CAST(:late AS boolean))"
    f" WHERE id = :message_id AND status = '{MessageStatus.PENDING.value}'"
    " RETURNING id"
    "), a AS ("
    " INSERT INTO answers (checkin_id, message_id, question_key, raw_text, value, outcome,"
    " answered_at)"
    " SELECT :checkin_id, :message_id, t.k, :raw_text, t.v, t.o, :now"
    " FROM unnest(CAST(:a_keys AS text[]), CAST(:a_values AS integer[]),"
    " CAST(:a_outcomes AS text[])) WITH ORDINALITY AS t(k, v, o, n)"
    " WHERE EXISTS (SELECT 1 FROM m) ORDER BY t.n"
    "), c AS ("
    " UPDATE checkins SET last_activity_at = :now, updated_at = :now,"
    " question_index = COALESCE(CAST(:question_index AS integer), question_index),"
    " clarifications = COALESCE(CAST(:clarifications AS integer), clarifications),"
    " state = COALESCE(CAST(:new_state AS text), state),"
    " closed_at = CASE WHEN CAST(:completed AS boolean) THEN :now ELSE closed_at END,"
    " next_reminder_at = CASE WHEN CAST(:completed AS boolean) THEN NULL"
    " ELSE next_reminder_at END"
    " WHERE id = :checkin_id AND CAST(:advance AS boolean) AND EXISTS (SELECT 1 FROM m)"
    "), r AS ("
    " INSERT INTO messages (direction, patient_id, checkin_id, purpose, question_key, body,"
    " media_count, segments, status, status_rank, attempt, late, created_at)"
    f" SELECT '{Direction.OUTBOUND.value}', :patient_id, r.cid, r.purpose, r.qk, r.body, 0,"
    f" r.seg, '{MessageStatus.PENDING.value}', {status_rank(MessageStatus.PENDING)}, 1, false,"
    " :now"
    " FROM unnest(CAST(:r_checkin AS bigint[]), CAST(:r_purpose AS text[]),"
    " CAST(:r_qk AS text[]), CAST(:r_body AS text[]), CAST(:r_seg AS integer[]))"
    " WITH ORDINALITY AS r(cid, purpose, qk, body, seg, n)"
    " WHERE EXISTS (SELECT 1 FROM m) ORDER BY r.n"
    " RETURNING id"
    ")"
    " SELECT 0 FROM m UNION ALL SELECT id FROM r"
).bindparams(_NOW)


@dataclass(frozen=True)
class _OpenCheckIn:
    """What the usual reply needs of the sender's patient and open check-in (no ORM objects)."""

    patient_id: int
    contact_state: str
    checkin_id: int
    state: str
    question_index: int
    clarifications: int
    window_closes_at: datetime


def _claim(session: Session, message_id: int, now: datetime, links: dict[str, object]) -> bool:
    """Mark the raw text as interpreted (with its links); False if another copy got there first.

    The conditional UPDATE takes the row lock: a concurrent copy waits here, then finds the
    row no longer `pending` and backs out before writing anything.
    """
    claimed = session.execute(
        update(Message)
        .where(Message.id == message_id, Message.status == MessageStatus.PENDING)
        .values(
            status=MessageStatus.RECEIVED,
            status_rank=status_rank(MessageStatus.RECEIVED),
            status_updated_at=now,
            **links,
        )
        .execution_options(synchronize_session=False)
    )
    return claimed.rowcount == 1


def _find_patient(
    session: Session, index: str, *, try_open: bool = True
) -> tuple[Patient | None, CheckIn | None]:
    """The sender's patient and the check-in a reply belongs to (one conversation per number).

    `try_open=False`: the caller has already looked for an open check-in (`_find_open`).
    """
    # Usual case, one round trip: the open check-in and its patient, both rows locked. Texts
    # from one number serialise on that patient row (the general path below locks it too).
    # If the row changed while we waited for the lock (no longer open), fall through.
    found = (
        None
        if not try_open
        else session.execute(
            select(Patient, CheckIn)
            .join(Episode, Episode.patient_id == Patient.id)
            .join(CheckIn, CheckIn.episode_id == Episode.id)
            .where(
                Patient.phone_index == index,
                Patient.erased_at.is_(None),
                CheckIn.state == CheckInState.OPEN,
            )
            .order_by(CheckIn.opened_at.desc(), CheckIn.id.desc())
            .limit(1)
            .with_for_update(of=[Patient, CheckIn])
        ).first()
    )
    if found is not None:
        return found[0], found[1]
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
    app: App, session: Session, message: _Raw, number: str, index: str, now: datetime
) -> InboundResult | None:
    settings = app.settings
    survey, texts = survey_for(settings), texts_for(settings)
    # SQLite: a transaction that reads before it writes cannot wait for the write lock (it
    # fails "database is locked" at once), so there the claim comes first, as its own
    # statement. PostgreSQL: read and lock, decide, then claim with the links in one UPDATE.
    postgres = session.get_bind().dialect.name == "postgresql"
    with session.begin():
        if not postgres and not _claim(session, message.id, now, {}):
            return None
        # Nothing but the claim is written before the sender is known and the text decided.
        # PostgreSQL, usual case: the open check-in and its patient as plain values.
        found = _find_open(session.connection(), index) if postgres else None
        patient: Patient | None = None
        checkin: CheckIn | None = None
        if found is None:
            patient, checkin = _find_patient(session, index, try_open=not postgres)
        state = None
        if found is not None:
            state = conversation.Conversation(
                question_index=found.question_index,
                clarifications=found.clarifications,
                window_closes_at=found.window_closes_at,
                open=found.state == CheckInState.OPEN,
            )
            contact_state: str | None = found.contact_state
        else:
            if checkin is not None:
                state = conversation.Conversation(
                    question_index=checkin.question_index,
                    clarifications=checkin.clarifications,
                    window_closes_at=checkin.window_closes_at,
                    open=checkin.state == CheckInState.OPEN,
                )
            contact_state = patient.contact_state if patient is not None else None
        outcome = conversation.interpret(
            body=message.body,
            media_count=message.media_count,
            now=now,
            contact_state=contact_state,
            conversation=state,
            survey=survey,
            texts=texts,
        )
        plain = outcome.contact_change is None and not outcome.alerts
        if found is not None and not plain:
            # A rarer route (STOP, an alert): the ORM path below (rows already locked).
            patient = session.get(Patient, found.patient_id)
            checkin = session.get(CheckIn, found.checkin_id)
            found = None
        if found is not None:
            ids: tuple[int, int, str] | None = (found.patient_id, found.checkin_id, found.state)
        elif postgres and plain and patient is not None and checkin is not None:
            ids = (patient.id, checkin.id, checkin.state)
        else:
            ids = None
        links: dict[str, object] = {}
        if ids is not None:
            links["patient_id"] = ids[0]
        elif patient is not None:
            links["patient_id"] = patient.id
        if outcome.route in _CHECKIN_ROUTES:
            if ids is not None:
                links["checkin_id"] = ids[1]
            elif checkin is not None:
                links["checkin_id"] = checkin.id
        if outcome.late:
            links["late"] = True
        if not postgres:
            if links:
                session.execute(
                    update(Message)
                    .where(Message.id == message.id)
                    .values(**links)
                    .execution_options(synchronize_session=False)
                )
        elif ids is None and not _claim_pg(session.connection(), message.id, now, links):
            return None
        if ids is not None:
            queued = _write_answer(session.connection(), outcome, message, *ids, now)
            if queued is None:
                return None  # another copy claimed the text first
        else:
            _apply(app, session, outcome, message, patient, checkin, number, index, now)
            messages = _queue_replies(session, outcome, patient, checkin, number, index, now, app)
            session.flush()
            queued = [(m.id, m.body or "") for m in messages]
        result = InboundResult(
            message_id=message.id,
            route=outcome.route,
            reply_ids=[reply_id for reply_id, _ in queued],
            replies=[body for _, body in queued],
            # Every reply goes back to the number that texted (a patient's own number has the
            # same blind index, so it is this very number): no need to read it again.
            outgoing=[OutboundSms(message_id=i, to=number, body=body) for i, body in queued],
        )
    log.info("inbound message %s: %s, %d replies", message.id, result.route, len(queued))
    return result


def _find_open(conn: Connection, index: str) -> _OpenCheckIn | None:
    """PostgreSQL: the sender's open check-in and its patient, both rows locked, or None."""
    row = conn.execute(_PG_FIND_OPEN, {"index": index}).first()
    return _OpenCheckIn(*row) if row is not None else None


def _claim_pg(conn: Connection, message_id: int, now: datetime, links: dict[str, object]) -> bool:
    """`_claim` on PostgreSQL as one fixed-shape UPDATE."""
    claimed = conn.execute(
        _PG_CLAIM,
        {
            "id": message_id,
            "now": now,
            "patient_id": links.get("patient_id"),
            "checkin_id": links.get("checkin_id"),
            "late": bool(links.get("late", False)),
        },
    )
    return claimed.rowcount == 1


def _write_answer(
    conn: Connection,
    outcome: conversation.Outcome,
    message: _Raw,
    patient_id: int,
    checkin_id: int,
    checkin_state: str,
    now: datetime,
) -> list[tuple[int, str]] | None:
    """`_claim` + `_apply` + `_queue_replies` for a plain answer on PostgreSQL, one statement.

    The claim, the answers, the check-in's new position and the outbox rows are written by
    one statement of data-modifying CTEs (one round trip instead of four), always the same
    statement (arrays for the variable parts); the ORM objects are not touched. None if
    another copy of the text claimed it first (then nothing is written).
    """
    advance = checkin_state == CheckInState.OPEN and not outcome.late
    new_state = None
    if advance and outcome.completed:
        new_state = str(check_transition(checkin_state, CheckInState.COMPLETED))
    replies = outcome.replies
    ids = (
        conn.execute(
            _PG_WRITE_ANSWER,
            {
                "checkin_id": checkin_id,
                "m_checkin_id": checkin_id if outcome.route in _CHECKIN_ROUTES else None,
                "late": outcome.late,
                "message_id": message.id,
                "raw_text": message.body,
                "now": now,
                "a_keys": [record.question_key for record in outcome.answers],
                "a_values": [record.value for record in outcome.answers],
                "a_outcomes": [str(record.outcome) for record in outcome.answers],
                "question_index": outcome.question_index if advance else None,
                "clarifications": outcome.clarifications if advance else None,
                "new_state": new_state,
                "completed": new_state is not None,
                "advance": advance,
                "patient_id": patient_id,
                "r_checkin": [
                    checkin_id if reply.purpose in _CONVERSATION_PURPOSES else None
                    for reply in replies
                ],
                "r_purpose": [str(reply.purpose) for reply in replies],
                "r_qk": [reply.question_key for reply in replies],
                "r_body": [reply.body for reply in replies],
                "r_seg": [sms_segments(reply.body) for reply in replies],
            },
        )
        .scalars()
        .all()
    )
    if not ids:
        return None
    # Ids come from the sequence in row order: sorted, they match the replies' order.
    ids = sorted(ids)[1:]  # the claim's 0 first
    return list(zip(ids, (reply.body for reply in replies), strict=True))


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
