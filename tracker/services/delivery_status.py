"""Provider delivery callbacks: move a text's status forward, never backwards.

Callbacks arrive late, twice or shuffled; the one conditional UPDATE below (`status_rank <
new rank`) makes the final state the highest-ranked one on SQLite and PostgreSQL alike. They
match by our own message id (carried in the callback URL, so a callback that arrives before
the send was recorded still matches) or by the provider id. Unknown ids are ignored: the
webhook answers 200 so the provider stops retrying.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from tracker.app import App
from tracker.db.tables import Message
from tracker.domain import Direction, MessageStatus, status_rank
from tracker.services import outbox
from tracker.sms.port import DeliveryReport

log = logging.getLogger(__name__)

STOPPED_CODE = "21610"
FAILED_STATUSES = frozenset({MessageStatus.UNDELIVERED, MessageStatus.FAILED})


@dataclass(frozen=True)
class StatusApplied:
    message_id: int | None  # None: no such message (ignored)
    changed: bool
    status: str | None = None


def apply_report(app: App, report: DeliveryReport, *, now: datetime | None = None) -> StatusApplied:
    """Apply one callback in its own transaction."""
    now = now or app.clock.now()
    try:
        status = MessageStatus(report.status.strip().lower())
    except ValueError:
        log.info("ignoring delivery status %r we do not track", report.status[:24])
        return StatusApplied(None, False)
    with app.sessions.begin() as session:
        message_id = _match(session, report)
        if message_id is None:
            log.info("delivery callback for an unknown message; ignored")
            return StatusApplied(None, False)
        rank = status_rank(status)
        values: dict[str, object] = {
            "status": status,
            "status_rank": rank,
            "status_updated_at": now,
        }
        if report.error_code:
            values["error_code"] = report.error_code[:16]
        result = session.execute(
            update(Message)
            .where(Message.id == message_id, Message.status_rank < rank)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        changed = (result.rowcount or 0) == 1
        message = session.get(Message, message_id)
        assert message is not None
        if report.provider_sid and message.provider_sid is None:
            _adopt_sid(session, message, report.provider_sid)
        if changed and status in FAILED_STATUSES and _permanent(report.error_code):
            outbox.apply_permanent_failure(
                session,
                message,
                report.error_code,
                report.error_code == STOPPED_CODE,
                now=now,
            )
        return StatusApplied(message_id, changed, message.status)


def _match(session: Session, report: DeliveryReport) -> int | None:
    conditions = []
    if report.message_id is not None:
        conditions.append(Message.id == report.message_id)
    if report.provider_sid:
        conditions.append(Message.provider_sid == report.provider_sid)
    if not conditions:
        return None
    rows = session.execute(
        select(Message.id, Message.provider_sid).where(
            Message.direction == Direction.OUTBOUND, or_(*conditions)
        )
    ).all()
    for row_id, sid in rows:
        # Our id wins, but only when the provider id (if both known) agrees.
        if row_id == report.message_id and (
            sid is None or not report.provider_sid or sid == report.provider_sid
        ):
            return row_id
    for row_id, sid in rows:
        if report.provider_sid and sid == report.provider_sid:
            return row_id
    return None


def _adopt_sid(session: Session, message: Message, sid: str) -> None:
    """The callback came before the send was recorded: keep its provider id."""
    taken = session.scalar(select(Message.id).where(Message.provider_sid == sid))
    if taken is None:
        session.execute(
            update(Message)
            .where(Message.id == message.id, Message.provider_sid.is_(None))
            .values(provider_sid=sid[:64])
            .execution_options(synchronize_session=False)
        )


def _permanent(code: str | None) -> bool:
    return code == STOPPED_CODE or code in outbox.UNREACHABLE_CODES
