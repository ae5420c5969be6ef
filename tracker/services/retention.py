"""Retention: raw message bodies and raw answer texts are removed after a set period.

Parsed answers, delivery statuses and the contact-attempt record stay (researchers need them);
only what a person typed, or what we sent them, goes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from dateutil.relativedelta import relativedelta
from sqlalchemy import update
from sqlalchemy.orm import Session

from tracker.db.tables import Answer, Message
from tracker.services import audit

_PERIOD = re.compile(r"^\s*(\d+)\s*([dmy])\s*$", re.IGNORECASE)


class PeriodError(ValueError):
    pass


def parse_period(text: str) -> relativedelta:
    """'18m' -> 18 months, '2y' -> 2 years, '90d' -> 90 days."""
    match = _PERIOD.match(text or "")
    if not match or int(match.group(1)) <= 0:
        raise PeriodError(
            f"{text!r} is not a retention period: give a whole number and d, m or y "
            "(e.g. 90d, 18m, 2y)"
        )
    amount, unit = int(match.group(1)), match.group(2).lower()
    if unit == "d":
        return relativedelta(days=amount)
    if unit == "m":
        return relativedelta(months=amount)
    return relativedelta(years=amount)


@dataclass(frozen=True)
class PurgeResult:
    cutoff: datetime
    messages: int
    answers: int


def purge_bodies(
    session: Session,
    older_than: relativedelta | timedelta,
    *,
    now: datetime,
    actor: str = "system",
) -> PurgeResult:
    """Null message bodies and answers.raw_text older than `now - older_than` (caller commits)."""
    cutoff = now - older_than
    if cutoff >= now:
        raise PeriodError("the retention period must be positive")
    messages = session.execute(
        update(Message)
        .where(Message.created_at < cutoff, Message.body.is_not(None))
        .values(body=None, body_purged_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount
    answers = session.execute(
        update(Answer)
        .where(Answer.answered_at < cutoff, Answer.raw_text.is_not(None))
        .values(raw_text=None)
        .execution_options(synchronize_session=False)
    ).rowcount
    result = PurgeResult(cutoff=cutoff, messages=messages or 0, answers=answers or 0)
    audit.record(
        session,
        at=now,
        actor=actor,
        action="retention.purge",
        entity="messages",
        detail={
            "cutoff": cutoff.isoformat(),
            "messages": result.messages,
            "answers": result.answers,
        },
    )
    return result
