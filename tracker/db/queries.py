"""Small query functions: claiming scheduler work with conditional updates, and what one
site's staff may see of a patient (`patient_visible`, `patient_timeline`).

The database is the queue. Every state change below is a conditional UPDATE
(`... WHERE state = <expected>`) whose row count / RETURNING list says who won, so two
workers (or a worker and a `tracker tick` from cron) can never both act on one check-in.
On PostgreSQL the claim also takes `FOR UPDATE SKIP LOCKED` on the candidate rows, so
concurrent workers take disjoint batches instead of queueing behind each other; SQLite has
no row locks (and SQLAlchemy silently drops `with_for_update()` there), but a single
UPDATE statement is atomic in its write transaction and SQLite runs one worker only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Integer,
    String,
    Text,
    and_,
    exists,
    insert,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from tracker.db.tables import Alert, Answer, CheckIn, Episode, Message, Patient
from tracker.db.types import UTCDateTime
from tracker.domain import AnswerOutcome, CheckInState, Direction, MessageStatus

# Outbound statuses meaning "the provider has taken this text".
WENT_STATUSES = frozenset(
    {
        MessageStatus.QUEUED,
        MessageStatus.ACCEPTED,
        MessageStatus.SENDING,
        MessageStatus.SENT,
        MessageStatus.DELIVERED,
        MessageStatus.READ,
    }
)


def _is_postgres(bind: Session | Connection) -> bool:
    return bind.get_bind().dialect.name == "postgresql"


def due_condition(now: datetime) -> Any:
    """A scheduled check-in is due when its next attempt (or, before any attempt, due_at) is past."""
    return or_(
        CheckIn.next_attempt_at <= now,
        and_(CheckIn.next_attempt_at.is_(None), CheckIn.due_at <= now),
    )


def claim_due_checkins(session: Session, *, now: datetime, worker_id: str, limit: int) -> list[int]:
    """Move up to `limit` due `scheduled` check-ins to `sending` for this worker; their ids.

    Check-ins whose response window has closed are left for `miss_unsent_checkins`.
    The caller commits (keep the transaction short).
    """
    candidates = (
        select(CheckIn.id)
        .where(
            CheckIn.state == CheckInState.SCHEDULED,
            due_condition(now),
            CheckIn.window_closes_at > now,
        )
        .order_by(CheckIn.due_at)
        .limit(limit)
    )
    if _is_postgres(session):
        candidates = candidates.with_for_update(skip_locked=True)
    # A materialised CTE, not `id IN (subquery)`: PostgreSQL may re-run an IN-subquery while
    # updating and so take more than `limit` rows; the CTE picks the batch exactly once.
    due = candidates.cte("due").prefix_with("MATERIALIZED", dialect="postgresql")
    statement = (
        update(CheckIn)
        .where(CheckIn.id == due.c.id)
        .where(CheckIn.state == CheckInState.SCHEDULED)  # the conditional part
        .values(
            state=CheckInState.SENDING,
            claimed_by=worker_id,
            claimed_at=now,
            send_attempts=CheckIn.send_attempts + 1,
            updated_at=now,
        )
        .returning(CheckIn.id)
        .execution_options(synchronize_session=False)
    )
    return sorted(session.scalars(statement).all())


def claimed_rows(session: Session, ids: Sequence[int]) -> list[Any]:
    """What dispatch needs about claimed check-ins, in one query (no ORM objects)."""
    if not ids:
        return []
    return list(
        session.execute(
            select(
                CheckIn.id,
                CheckIn.wave,
                CheckIn.send_attempts,
                CheckIn.due_at,
                CheckIn.window_closes_at,
                Patient.id.label("patient_id"),
                Patient.contact_state,
                Patient.phone_ciphertext,
            )
            .join(Episode, Episode.id == CheckIn.episode_id)
            .join(Patient, Patient.id == Episode.patient_id)
            .where(CheckIn.id.in_(ids))
            .order_by(CheckIn.id)
        ).all()
    )


def dispatch_messages(session: Session, checkin_ids: Sequence[int]) -> list[Any]:
    """Earlier opening/question texts of these check-ins (to avoid resending what went)."""
    if not checkin_ids:
        return []
    return list(
        session.execute(
            select(
                Message.id,
                Message.checkin_id,
                Message.purpose,
                Message.status,
                Message.attempt,
                Message.sent_at,
            ).where(
                Message.checkin_id.in_(checkin_ids),
                Message.direction == Direction.OUTBOUND,
                Message.purpose.in_(("opening", "question")),
            )
        ).all()
    )


def transition_checkins(
    session: Session,
    rows: Sequence[dict[str, Any]],
    *,
    expected: CheckInState,
    values: Sequence[str],
    claimed_by: str | None = None,
) -> int:
    """Conditional UPDATE of many check-ins; returns how many changed.

    Each row dict holds `id` plus the named `values` columns. Only rows still in `expected`
    (and, when given, still claimed by `claimed_by`) change. Rows with identical values (the
    usual case within a batch) share one `WHERE id IN (...)` statement.
    """
    if not rows:
        return 0
    names = [name for name in values if name != "id"]
    groups: dict[tuple[Any, ...], list[int]] = {}
    for row in rows:
        groups.setdefault(tuple(row[name] for name in names), []).append(row["id"])
    changed = 0
    for key, ids in groups.items():
        statement = (
            update(CheckIn)
            .where(CheckIn.id.in_(ids), CheckIn.state == expected)
            .values(dict(zip(names, key, strict=True)))
            .execution_options(synchronize_session=False)
        )
        if claimed_by is not None:
            statement = statement.where(CheckIn.claimed_by == claimed_by)
        changed += session.execute(statement).rowcount or 0
    return changed


def expire_open_checkins(session: Session, *, now: datetime) -> tuple[int, int]:
    """Close open check-ins past their window: `partial` with any answer, else `expired`."""
    answered = exists().where(
        Answer.checkin_id == CheckIn.id,
        Answer.outcome.in_((AnswerOutcome.PARSED, AnswerOutcome.SKIPPED)),
    )
    closing = {
        "closed_at": now,
        "next_reminder_at": None,
        "claimed_by": None,
        "updated_at": now,
    }
    partial = session.execute(
        update(CheckIn)
        .where(CheckIn.state == CheckInState.OPEN, CheckIn.window_closes_at <= now, answered)
        .values(state=CheckInState.PARTIAL, **closing)
        .execution_options(synchronize_session=False)
    ).rowcount
    expired = session.execute(
        update(CheckIn)
        .where(CheckIn.state == CheckInState.OPEN, CheckIn.window_closes_at <= now)
        .values(state=CheckInState.EXPIRED, **closing)
        .execution_options(synchronize_session=False)
    ).rowcount
    return partial or 0, expired or 0


def unsent_past_window(session: Session, *, now: datetime, limit: int) -> list[Any]:
    """Scheduled check-ins whose response window closed before they could be sent."""
    return list(
        session.execute(
            select(CheckIn.id, CheckIn.due_at, CheckIn.window_closes_at, CheckIn.send_attempts)
            .where(CheckIn.state == CheckInState.SCHEDULED, CheckIn.window_closes_at <= now)
            .order_by(CheckIn.id)
            .limit(limit)
        ).all()
    )


def claim_due_reminders(
    session: Session, *, now: datetime, limit: int, max_reminders: int
) -> list[Any]:
    """Claim open check-ins of active patients whose next reminder is due: reminders_sent is
    incremented and next_reminder_at cleared in one conditional UPDATE (the caller sets the
    following reminder time in the same transaction). Rows carry the patient's phone."""
    active_episodes = (
        select(Episode.id)
        .join(Patient, Patient.id == Episode.patient_id)
        .where(Patient.contact_state == "active")
    )
    candidates = (
        select(CheckIn.id)
        .where(
            CheckIn.state == CheckInState.OPEN,
            CheckIn.next_reminder_at <= now,
            CheckIn.window_closes_at > now,
            CheckIn.reminders_sent < max_reminders,
            CheckIn.episode_id.in_(active_episodes),
        )
        .order_by(CheckIn.next_reminder_at)
        .limit(limit)
    )
    if _is_postgres(session):
        candidates = candidates.with_for_update(skip_locked=True)
    due = candidates.cte("due_reminders").prefix_with("MATERIALIZED", dialect="postgresql")
    claimed = session.execute(
        update(CheckIn)
        .where(
            CheckIn.id == due.c.id,
            CheckIn.state == CheckInState.OPEN,
            CheckIn.next_reminder_at <= now,
        )
        .values(reminders_sent=CheckIn.reminders_sent + 1, next_reminder_at=None, updated_at=now)
        .returning(
            CheckIn.id,
            CheckIn.reminders_sent,
            CheckIn.question_index,
            CheckIn.opened_at,
            CheckIn.window_closes_at,
            CheckIn.episode_id,
        )
        .execution_options(synchronize_session=False)
    ).all()
    if not claimed:
        return []
    phones = {
        row.episode_id: row
        for row in session.execute(
            select(
                Episode.id.label("episode_id"),
                Patient.id.label("patient_id"),
                Patient.phone_ciphertext,
            )
            .join(Patient, Patient.id == Episode.patient_id)
            .where(Episode.id.in_({row.episode_id for row in claimed}))
        )
    }
    return [
        ClaimedReminder(
            id=row.id,
            reminders_sent=row.reminders_sent,
            question_index=row.question_index,
            opened_at=row.opened_at,
            window_closes_at=row.window_closes_at,
            patient_id=phones[row.episode_id].patient_id,
            phone_ciphertext=phones[row.episode_id].phone_ciphertext,
        )
        for row in sorted(claimed, key=lambda r: r.id)
    ]


@dataclass(frozen=True)
class ClaimedReminder:
    id: int
    reminders_sent: int  # including the one being sent now
    question_index: int
    opened_at: datetime
    window_closes_at: datetime
    patient_id: int
    phone_ciphertext: bytes | None


def messages_to_reconcile(
    session: Session, *, now: datetime, pending_before: datetime, limit: int
) -> list[Message]:
    """Outbound texts whose fate is unknown: `unknown`, or `pending` since before a cut-off."""
    return list(
        session.scalars(
            select(Message)
            .where(
                Message.direction == Direction.OUTBOUND,
                or_(
                    Message.status == MessageStatus.UNKNOWN,
                    and_(
                        Message.status == MessageStatus.PENDING,
                        Message.created_at < pending_before,
                    ),
                ),
            )
            .order_by(Message.id)
            .limit(limit)
        ).all()
    )


def stuck_sending(session: Session, *, claimed_before: datetime, limit: int) -> list[Any]:
    """Check-ins left in `sending`: released after an unknown outcome, or claimed by a worker
    that has not finished in time (crashed)."""
    return list(
        session.execute(
            select(
                CheckIn.id,
                CheckIn.claimed_at,
                CheckIn.send_attempts,
                CheckIn.window_closes_at,
            )
            .where(
                CheckIn.state == CheckInState.SENDING,
                or_(CheckIn.claimed_by.is_(None), CheckIn.claimed_at < claimed_before),
            )
            .order_by(CheckIn.id)
            .limit(limit)
        ).all()
    )


def queue_same_text(
    session: Session,
    checkin_ids: Sequence[int],
    *,
    purpose: str,
    body: str,
    question_key: str | None,
    segments: int,
    now: datetime,
    attempt_column: str = "send_attempts",
) -> dict[int, int]:
    """Queue one identical outbound text (status `pending`) for each check-in; {check-in: id}.

    One INSERT ... SELECT per distinct text: the per-row values (patient, check-in, attempt)
    come from the check-ins themselves, so a batch of hundreds costs one small statement.
    """
    if not checkin_ids:
        return {}
    table = Message.__table__
    attempt = CheckIn.send_attempts if attempt_column == "send_attempts" else CheckIn.reminders_sent
    source = (
        select(
            literal(Direction.OUTBOUND.value, String()),
            Episode.patient_id,
            CheckIn.id,
            literal(purpose, String()),
            literal(question_key, String()),
            literal(body, Text()),
            literal(0, Integer()),
            literal(segments, Integer()),
            literal(MessageStatus.PENDING.value, String()),
            literal(0, Integer()),
            attempt,
            literal(False, Boolean()),
            literal(now, UTCDateTime()),
        )
        .join(Episode, Episode.id == CheckIn.episode_id)
        .where(CheckIn.id.in_(list(checkin_ids)))
        .order_by(CheckIn.id)
    )
    columns = [
        "direction",
        "patient_id",
        "checkin_id",
        "purpose",
        "question_key",
        "body",
        "media_count",
        "segments",
        "status",
        "status_rank",
        "attempt",
        "late",
        "created_at",
    ]
    statement = (
        insert(table)
        .from_select([table.c[name] for name in columns], source)
        .returning(table.c.id, table.c.checkin_id)
    )
    return {checkin_id: message_id for message_id, checkin_id in session.execute(statement)}


# --- what one site's staff may see of a patient -----------------------------------------
#
# A patient may have episodes at several sites (referred twice). Staff of one site see:
# - the patient's own fields (masked phone, contact state, year of birth, ...);
# - their site's episodes and check-ins, and the texts and answers of those check-ins;
# - texts tied to no check-in (STOP, HELP, unknown or late replies with checkin_id NULL): they
#   belong to the patient as a whole, so every site with an episode of the patient sees them;
# - alerts whose `site` is theirs (the same rule as the alerts queue, the API and the alert
#   actions; an alert not raised from a check-in goes to the site of the latest episode).
# `site=None` (admins) means every site. Each query starts from the patient's indexed foreign
# keys and joins on primary keys: no per-row queries, whatever the size of the tables.


def patient_visible(session: Session, patient_id: int, *, site: str | None) -> bool:
    """Whether staff of `site` may open this patient (they have an episode there)."""
    if site is None:
        return True
    return bool(
        session.scalar(
            select(exists().where(Episode.patient_id == patient_id, Episode.site == site))
        )
    )


@dataclass(frozen=True)
class PatientTimeline:
    episodes: list[Episode]
    checkins: list[CheckIn]
    messages: list[Message]
    answers: list[Answer]
    alerts: list[Alert]


def patient_timeline(session: Session, patient_id: int, *, site: str | None) -> PatientTimeline:
    """A patient's episodes, check-ins, texts, answers and alerts as staff of `site` may see
    them (everything when `site` is None)."""
    episodes_q = (
        select(Episode)
        .where(Episode.patient_id == patient_id)
        .order_by(Episode.discharge_date, Episode.id)
    )
    checkins_q = (
        select(CheckIn)
        .join(Episode, Episode.id == CheckIn.episode_id)
        .where(Episode.patient_id == patient_id)
        .order_by(CheckIn.due_at, CheckIn.id)
    )
    answers_q = (
        select(Answer)
        .join(CheckIn, CheckIn.id == Answer.checkin_id)
        .join(Episode, Episode.id == CheckIn.episode_id)
        .where(Episode.patient_id == patient_id)
        .order_by(Answer.answered_at, Answer.id)
    )
    messages_q = (
        select(Message)
        .outerjoin(CheckIn, CheckIn.id == Message.checkin_id)
        .outerjoin(Episode, Episode.id == CheckIn.episode_id)
        .where(Message.patient_id == patient_id)
        .order_by(Message.created_at, Message.id)
    )
    alerts_q = (
        select(Alert).where(Alert.patient_id == patient_id).order_by(Alert.raised_at, Alert.id)
    )
    if site is not None:
        episodes_q = episodes_q.where(Episode.site == site)
        checkins_q = checkins_q.where(Episode.site == site)
        answers_q = answers_q.where(Episode.site == site)
        messages_q = messages_q.where(or_(Message.checkin_id.is_(None), Episode.site == site))
        alerts_q = alerts_q.where(Alert.site == site)
    return PatientTimeline(
        episodes=list(session.scalars(episodes_q).all()),
        checkins=list(session.scalars(checkins_q).all()),
        messages=list(session.scalars(messages_q).all()),
        answers=list(session.scalars(answers_q).all()),
        alerts=list(session.scalars(alerts_q).all()),
    )
