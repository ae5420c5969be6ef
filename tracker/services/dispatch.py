"""One scheduler pass: reconcile, recover, expire, dispatch due check-ins, send reminders.

    tick(app, worker_id=...) -> TickReport (counts only: no numbers, no bodies)

Order inside a pass, and why:
1. reconcile: outbound texts left `unknown` (timeout) or `pending` for more than
   STALE_AFTER (a crash between the outbox commit and the provider call or its recording)
   are looked up with `gateway.find_sent` before anything is resent: found -> recorded as
   sent; not found -> `failed` with error code `not_sent`.
2. recover: check-ins stuck in `sending` (claimed by a worker that died, or released after an
   unknown outcome) move to `open` when their opening and first question both went, else
   back to `scheduled` for the next slot (only the texts that did not go are sent again).
3. expire: open check-ins past their response window -> `partial` (some answer) or
   `expired`; scheduled ones whose window closed unsent -> `missed` with the reason.
4. dispatch (only while the send window is open): claim a batch (conditional UPDATE, SKIP
   LOCKED on PostgreSQL), queue the opening text and question 1 in the outbox in one short
   transaction, call the provider outside any transaction (paced), then record the results
   and open the check-ins in one transaction per chunk.
5. reminders (only while the send window is open): claim due reminders the same way, queue
   the reminder text (which repeats the current question), send, record.

Retry rule (decided here): a check-in opens only when both its opening text and question 1
have gone. If the opening went but question 1 failed transiently, the check-in goes back to
`scheduled` with backoff and the retry sends question 1 only; a text that went is never sent
again. Transient failures back off exponentially with jitter (TRACKER_RETRY_BASE_SECONDS,
TRACKER_RETRY_MAX_ATTEMPTS), never beyond the response window; permanent failures end the
check-in `failed` (outbox.apply_permanent_failure); an unknown outcome waits for reconciliation.

Test hook: `crash_hook`, if set, is called with the name of each point in CRASH_POINTS; the
crash-recovery test sets it to SIGKILL its own process at one of them. It is None in
production, where the calls cost nothing.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any, Protocol

from sqlalchemy import bindparam, case, func, update
from sqlalchemy import text as sql_text
from sqlalchemy.orm import Session

from surveys import render_opening, render_question, render_reminder
from surveys.gsm import sms_segments
from surveys.model import Survey
from surveys.texts import ServiceTexts
from tracker.app import App
from tracker.config import Settings
from tracker.db import queries
from tracker.db.tables import CheckIn, Message
from tracker.domain import CheckInState, ContactState, MessageStatus, status_rank
from tracker.schedule import SendWindow, reminder_at, resend_slot
from tracker.services import outbox
from tracker.services.contact import CONTACT_PREFIX
from tracker.services.inbound import survey_for, texts_for
from tracker.services.pacing import Pacer
from tracker.sms.port import OutboundSms, SendResult, SmsError

log = logging.getLogger(__name__)

# A claim or a pending text older than this belongs to a worker that died. Claim batches are
# sized (claim_limit) to finish well inside it even when paced.
STALE_AFTER = timedelta(minutes=10)
# Longest backoff between two send attempts of one check-in.
MAX_BACKOFF = timedelta(hours=6)
# How long a batch may collect provider results before they are recorded (seconds), so a
# patient who replies quickly finds the check-in open.
RECORD_EVERY_SECONDS = 1.0
RECONCILE_BATCH = 500

CRASH_POINTS = ("after_claim", "after_provider_call", "before_recording")
crash_hook: Callable[[str], None] | None = None


def _crash_point(name: str) -> None:
    if crash_hook is not None:
        crash_hook(name)


class SendPacer(Protocol):
    def acquire(self, count: float = 1.0) -> float: ...

    def hold_off(self, seconds: float) -> None: ...


@dataclass
class TickReport:
    """What one pass did; counts only, safe to log."""

    window_open: bool = False
    reconciled_sent: int = 0
    reconciled_not_sent: int = 0
    recovered: int = 0
    expired: int = 0
    partial: int = 0
    missed: int = 0
    claimed: int = 0
    opened: int = 0
    retried: int = 0
    failed: int = 0
    cancelled: int = 0
    awaiting_reconciliation: int = 0
    reminders: int = 0
    messages_sent: int = 0
    paced_seconds: float = field(default=0.0)

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def summary(self) -> str:
        parts = [
            f"{k}={round(v, 2) if isinstance(v, float) else v}" for k, v in self.as_dict().items()
        ]
        return " ".join(parts)


# --- wording -----------------------------------------------------------------------------


@dataclass(eq=False)
class Wording:
    survey: Survey
    texts: ServiceTexts
    first_question: str
    first_question_key: str
    openings: dict[int, str] = field(default_factory=dict)

    def opening(self, months: int) -> str:
        if months not in self.openings:
            self.openings[months] = render_opening(self.survey, months=months, texts=self.texts)
        return self.openings[months]


def wording_for(settings: Settings) -> Wording:
    """Survey and texts exactly as the conversation uses them (tracker.services.inbound)."""
    survey, texts = survey_for(settings), texts_for(settings)
    key = (id(survey), id(texts))  # both come from lru caches: same objects while alive
    wording = _WORDINGS.get(key)
    if wording is None or wording.survey is not survey or wording.texts is not texts:
        wording = Wording(
            survey=survey,
            texts=texts,
            first_question=render_question(survey, 0, texts),
            first_question_key=survey.question(0).key,
        )
        _WORDINGS[key] = wording
    return wording


_WORDINGS: dict[tuple[int, int], Wording] = {}


# --- the pass ----------------------------------------------------------------------------


def claim_limit(settings: Settings) -> int:
    """Check-ins per claim: the batch size, but small enough that a paced batch (two texts per
    check-in) finishes in about two minutes, far inside STALE_AFTER."""
    paced = int(settings.send_rate_per_second * 60)
    return max(1, min(settings.batch_size, paced))


def tick(
    app: App,
    *,
    worker_id: str,
    pacer: SendPacer | None = None,
    rng: random.Random | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> TickReport:
    """One scheduler pass. `should_stop` is checked between batches (SIGTERM: finish the
    batch in hand, then return)."""
    pacer = pacer if pacer is not None else Pacer(app.settings.send_rate_per_second)
    rng = rng or random.Random()
    stop = should_stop or (lambda: False)
    report = TickReport(window_open=app.window.contains(app.clock.now()))
    reconcile_messages(app, report)
    recover_stuck_checkins(app, report)
    expire_checkins(app, report)
    if report.window_open:
        dispatch_due_checkins(app, report, worker_id=worker_id, pacer=pacer, rng=rng, stop=stop)
        send_due_reminders(app, report, pacer=pacer, rng=rng, stop=stop)
    report.paced_seconds = getattr(pacer, "waited", 0.0)
    return report


# --- 1. reconciliation -------------------------------------------------------------------


def reconcile_messages(app: App, report: TickReport) -> None:
    """Ask the provider about texts whose outcome we do not know, before any resend."""
    now = app.clock.now()
    checks: list[tuple[int, OutboundSms | None, datetime]] = []
    with app.sessions() as session:
        for message in queries.messages_to_reconcile(
            session, now=now, pending_before=now - STALE_AFTER, limit=RECONCILE_BATCH
        ):
            try:
                sms: OutboundSms | None = outbox.outbound_sms(app, session, message)
            except ValueError:
                sms = None  # no recipient any more (erased): it cannot have gone later
            checks.append((message.id, sms, message.created_at))
    if not checks:
        return
    found: dict[int, SendResult | None] = {}
    for message_id, sms, created_at in checks:
        if sms is None:
            found[message_id] = None
            continue
        try:
            found[message_id] = app.gateway.find_sent(sms, created_at - timedelta(minutes=1))
        except SmsError:
            continue  # provider unreachable: ask again next pass; never resend meanwhile
    now = app.clock.now()
    open_statuses = (MessageStatus.UNKNOWN, MessageStatus.PENDING)
    with app.sessions.begin() as session:
        for message_id, result in found.items():
            if result is not None:
                changed = _record_results(session, [(message_id, result)], now, open_statuses)
                report.reconciled_sent += changed
            else:
                changed = (
                    session.execute(
                        update(Message)
                        .where(Message.id == message_id, Message.status.in_(open_statuses))
                        .values(
                            status=MessageStatus.FAILED,
                            status_rank=status_rank(MessageStatus.FAILED),
                            error_code="not_sent",
                            status_updated_at=now,
                        )
                    ).rowcount
                    or 0
                )
                report.reconciled_not_sent += changed


# --- 2. recovery of stuck claims ---------------------------------------------------------


def recover_stuck_checkins(app: App, report: TickReport) -> None:
    now = app.clock.now()
    with app.sessions.begin() as session:
        rows = queries.stuck_sending(
            session, claimed_before=now - STALE_AFTER, limit=app.settings.batch_size * 5
        )
        if not rows:
            return
        history = _history(queries.dispatch_messages(session, [r.id for r in rows]))
        for row in rows:
            sent = history.get(row.id, _Sent())
            if sent.in_doubt_attempts and row.send_attempts in sent.in_doubt_attempts:
                report.awaiting_reconciliation += 1
                continue
            condition = (
                CheckIn.id == row.id,
                CheckIn.state == CheckInState.SENDING,
                CheckIn.claimed_at == row.claimed_at,
            )
            if sent.opening_at is not None and sent.question:
                values = _open_values(app, opened_at=sent.opening_at, closes=row.window_closes_at)
                values["updated_at"] = now
            else:
                slot = resend_slot(
                    now=now, window=app.window, window_closes_at=row.window_closes_at
                )
                if slot is None:
                    values = _missed_values(now, row.window_closes_at, app)
                else:
                    values = {
                        "state": CheckInState.SCHEDULED,
                        "next_attempt_at": slot,
                        "claimed_by": None,
                        "updated_at": now,
                    }
            changed = session.execute(update(CheckIn).where(*condition).values(values)).rowcount
            report.recovered += changed or 0


@dataclass
class _Sent:
    opening_at: datetime | None = None
    question: bool = False
    in_doubt_attempts: set[int] = field(default_factory=set)


def _history(rows: Sequence[Any]) -> dict[int, _Sent]:
    """Per check-in: did the opening / question 1 go (in any attempt), which attempts are
    still in doubt (pending or unknown)."""
    result: dict[int, _Sent] = {}
    for row in rows:
        sent = result.setdefault(row.checkin_id, _Sent())
        if row.status in queries.WENT_STATUSES:
            if row.purpose == "opening":
                sent.opening_at = row.sent_at or sent.opening_at
            else:
                sent.question = True
        elif row.status in (MessageStatus.PENDING, MessageStatus.UNKNOWN):
            sent.in_doubt_attempts.add(row.attempt)
    return result


# --- 3. expiry ---------------------------------------------------------------------------


def expire_checkins(app: App, report: TickReport) -> None:
    now = app.clock.now()
    with app.sessions.begin() as session:
        partial, expired = queries.expire_open_checkins(session, now=now)
        report.partial += partial
        report.expired += expired
        while True:
            rows = queries.unsent_past_window(session, now=now, limit=app.settings.batch_size)
            if not rows:
                break
            changes = [
                {"id": row.id, **_missed_values(now, row.window_closes_at, app, due=row.due_at)}
                for row in rows
            ]
            report.missed += queries.transition_checkins(
                session, changes, expected=CheckInState.SCHEDULED, values=list(changes[0])
            )
            if len(rows) < app.settings.batch_size:
                break


def _local(app: App, instant: datetime) -> str:
    return instant.astimezone(app.settings.zone).strftime("%Y-%m-%d %H:%M")


def _missed_values(
    now: datetime, closes: datetime, app: App, due: datetime | None = None
) -> dict[str, Any]:
    since = f" between {_local(app, due)} and {_local(app, closes)}" if due is not None else ""
    return {
        "state": CheckInState.MISSED,
        "reason": (
            f"not sent before the response window closed on {_local(app, closes)}: "
            f"no scheduler pass sent it{since} (was the worker stopped, or the send "
            "window closed throughout?)"
        ),
        "closed_at": now,
        "next_reminder_at": None,
        "claimed_by": None,
        "updated_at": now,
    }


def _open_values(app: App, *, opened_at: datetime, closes: datetime) -> dict[str, Any]:
    settings = app.settings
    return {
        "state": CheckInState.OPEN,
        "opened_at": opened_at,
        "question_index": 0,
        "clarifications": 0,
        "reminders_sent": 0,
        "next_reminder_at": _first_reminder(
            opened_at,
            closes,
            tuple(settings.reminder_days),
            settings.max_reminders,
            app.window,
        ),
        "last_activity_at": opened_at,
        "claimed_by": None,
        "reason": None,
    }


@lru_cache(maxsize=4096)
def _first_reminder(
    opened_at: datetime,
    closes: datetime,
    reminder_days: tuple[int, ...],
    max_reminders: int,
    window: SendWindow,
) -> datetime | None:
    # A batch opens hundreds of check-ins at the same instant with the same window end.
    return reminder_at(
        first_sent_at=opened_at,
        reminders_sent=0,
        reminder_days=list(reminder_days),
        max_reminders=max_reminders,
        window=window,
        window_closes_at=closes,
    )


# --- 4. dispatch -------------------------------------------------------------------------


@dataclass
class _Text:
    message_id: int
    purpose: str
    body: str


@dataclass
class _Job:
    """One claimed check-in and the texts it still needs."""

    checkin_id: int
    attempt: int
    window_closes_at: datetime
    phone: bytes
    texts: list[_Text]
    opening_at: datetime | None = None  # when the opening went (this or an earlier attempt)
    question_went: bool = False
    results: list[tuple[int, SendResult]] = field(default_factory=list)
    error: SmsError | None = None
    failed_message_id: int | None = None


def dispatch_due_checkins(
    app: App,
    report: TickReport,
    *,
    worker_id: str,
    pacer: SendPacer,
    rng: random.Random,
    stop: Callable[[], bool],
) -> None:
    limit = claim_limit(app.settings)
    wording = wording_for(app.settings)
    while not stop():
        now = app.clock.now()
        if not app.window.contains(now):
            break
        with app.sessions.begin() as session:
            ids = queries.claim_due_checkins(session, now=now, worker_id=worker_id, limit=limit)
        if not ids:
            break
        report.claimed += len(ids)
        _crash_point("after_claim")
        jobs = _prepare(app, ids, wording, worker_id=worker_id, report=report)
        _send_jobs(app, jobs, worker_id=worker_id, pacer=pacer, rng=rng, report=report)
        if len(ids) < limit:
            break


def _prepare(
    app: App, ids: list[int], wording: Wording, *, worker_id: str, report: TickReport
) -> list[_Job]:
    """One short transaction: drop claims that must not be sent, queue the texts."""
    now = app.clock.now()
    jobs: list[_Job] = []
    groups: dict[tuple[str, str, str | None], list[int]] = {}  # one INSERT per distinct text
    cancelled: list[dict[str, Any]] = []
    opened: list[dict[str, Any]] = []
    with app.sessions.begin() as session:
        rows = queries.claimed_rows(session, ids)
        retried = [r.id for r in rows if r.send_attempts > 1]
        history = _history(queries.dispatch_messages(session, retried)) if retried else {}
        for row in rows:
            if row.contact_state != ContactState.ACTIVE or row.phone_ciphertext is None:
                why = (
                    f"patient is {row.contact_state}"
                    if row.contact_state != ContactState.ACTIVE
                    else "no mobile number on record"
                )
                cancelled.append(
                    {
                        "id": row.id,
                        "state": CheckInState.CANCELLED,
                        "reason": CONTACT_PREFIX + why,
                        "closed_at": now,
                        "claimed_by": None,
                        "updated_at": now,
                    }
                )
                continue
            sent = history.get(row.id, _Sent())
            job = _Job(
                checkin_id=row.id,
                attempt=row.send_attempts,
                window_closes_at=row.window_closes_at,
                phone=row.phone_ciphertext,
                texts=[],
                opening_at=sent.opening_at,
                question_went=sent.question,
            )
            wanted: list[tuple[str, str, str | None]] = []
            if sent.opening_at is None:
                wanted.append(("opening", wording.opening(row.wave), None))
            if not sent.question:
                wanted.append(("question", wording.first_question, wording.first_question_key))
            if not wanted:  # everything went in an earlier attempt: just open it
                opened.append(
                    {
                        "id": row.id,
                        **_open_values(
                            app, opened_at=sent.opening_at or now, closes=row.window_closes_at
                        ),
                        "updated_at": now,
                    }
                )
                continue
            for purpose, body, key in wanted:
                groups.setdefault((purpose, body, key), []).append(row.id)
                job.texts.append(_Text(0, purpose, body))
            jobs.append(job)
        report.cancelled += queries.transition_checkins(
            session,
            cancelled,
            expected=CheckInState.SENDING,
            values=list(cancelled[0]) if cancelled else [],
            claimed_by=worker_id,
        )
        report.opened += queries.transition_checkins(
            session,
            opened,
            expected=CheckInState.SENDING,
            values=list(opened[0]) if opened else [],
            claimed_by=worker_id,
        )
        new_ids: dict[tuple[int, str], int] = {}
        # openings first, so each check-in's opening has the lower id
        for (purpose, body, key), checkin_ids in sorted(
            groups.items(), key=lambda item: item[0][0] != "opening"
        ):
            queued = queries.queue_same_text(
                session,
                checkin_ids,
                purpose=purpose,
                body=body,
                question_key=key,
                segments=sms_segments(body),
                now=now,
            )
            new_ids.update({(cid, purpose): mid for cid, mid in queued.items()})
        for job in jobs:
            for text in job.texts:
                text.message_id = new_ids[(job.checkin_id, text.purpose)]
    return jobs


def _send_one(app: App, pacer: SendPacer, sms: OutboundSms) -> SendResult:
    pacer.acquire()
    return app.gateway.send(sms)


def _send_jobs(
    app: App,
    jobs: list[_Job],
    *,
    worker_id: str,
    pacer: SendPacer,
    rng: random.Random,
    report: TickReport,
) -> None:
    """Provider calls outside any transaction; results recorded in chunks."""
    done: list[_Job] = []
    started = time.monotonic()
    for job in jobs:
        to = app.crypto.decrypt_phone(job.phone)
        for text in job.texts:
            try:
                result = _send_one(app, pacer, OutboundSms(text.message_id, to, text.body))
            except SmsError as error:
                job.error = error
                job.failed_message_id = text.message_id
                if error.retry_after:
                    pacer.hold_off(error.retry_after)
                break
            job.results.append((text.message_id, result))
            _crash_point("after_provider_call")
        done.append(job)
        if time.monotonic() - started >= RECORD_EVERY_SECONDS:
            _crash_point("before_recording")
            _record_jobs(app, done, worker_id=worker_id, rng=rng, report=report)
            done, started = [], time.monotonic()
    if done:
        _crash_point("before_recording")
        _record_jobs(app, done, worker_id=worker_id, rng=rng, report=report)


def _record_results(
    session: Session,
    results: Sequence[tuple[int, SendResult]],
    now: datetime,
    only_from: Sequence[str] | None = None,
) -> int:
    """Store provider ids and statuses for many texts at once (executemany). A status that a
    callback already moved further is never moved back (monotonic rank)."""
    if not results:
        return 0
    if session.get_bind().dialect.name == "postgresql":
        return _record_results_postgres(session, results, now, only_from)
    table = Message.__table__
    rank = bindparam("b_rank")
    condition = table.c.id == bindparam("b_id")
    if only_from is not None:
        condition = condition & table.c.status.in_(list(only_from))
    statement = (
        update(table)
        .where(condition)
        .values(
            provider_sid=bindparam("b_sid"),
            sent_at=func.coalesce(table.c.sent_at, bindparam("b_now", type_=Message.sent_at.type)),
            status=case((table.c.status_rank < rank, bindparam("b_status")), else_=table.c.status),
            status_rank=case((table.c.status_rank < rank, rank), else_=table.c.status_rank),
            status_updated_at=bindparam("b_now2", type_=Message.status_updated_at.type),
        )
    )
    params = [
        {
            "b_id": message_id,
            "b_sid": result.provider_sid,
            "b_now": now,
            "b_now2": now,
            "b_status": result.status,
            "b_rank": status_rank(result.status),
        }
        for message_id, result in results
    ]
    return session.connection().execute(statement, params).rowcount or 0


_RECORD_POSTGRES = """
UPDATE messages AS m SET
    provider_sid = v.sid,
    sent_at = COALESCE(m.sent_at, :now),
    status = CASE WHEN m.status_rank < v.rank THEN v.status ELSE m.status END,
    status_rank = GREATEST(m.status_rank, v.rank),
    status_updated_at = :now
FROM unnest(CAST(:ids AS bigint[]), CAST(:sids AS text[]), CAST(:statuses AS text[]),
            CAST(:ranks AS integer[])) AS v(id, sid, status, rank)
WHERE m.id = v.id
"""


def _record_results_postgres(
    session: Session,
    results: Sequence[tuple[int, SendResult]],
    now: datetime,
    only_from: Sequence[str] | None,
) -> int:
    """The same as the executemany path, as one statement over arrays (PostgreSQL)."""
    sql = _RECORD_POSTGRES
    params: dict[str, Any] = {
        "now": now,
        "ids": [mid for mid, _ in results],
        "sids": [r.provider_sid for _, r in results],
        "statuses": [str(r.status) for _, r in results],
        "ranks": [status_rank(r.status) for _, r in results],
    }
    if only_from is not None:
        sql += " AND m.status = ANY(CAST(:only AS text[]))"
        params["only"] = [str(s) for s in only_from]
    return session.execute(sql_text(sql), params).rowcount or 0


def _record_jobs(
    app: App, jobs: list[_Job], *, worker_id: str, rng: random.Random, report: TickReport
) -> None:
    now = app.clock.now()
    with app.sessions.begin() as session:
        results = [r for job in jobs for r in job.results]
        _record_results(session, results, now)
        report.messages_sent += len(results)
        opened: list[dict[str, Any]] = []
        for job in jobs:
            went = {mid for mid, _ in job.results}
            opening_at = job.opening_at
            question_went = job.question_went
            for text in job.texts:
                if text.message_id in went:
                    if text.purpose == "opening":
                        opening_at = now
                    else:
                        question_went = True
            if job.error is None and opening_at is not None and question_went:
                opened.append(
                    {
                        "id": job.checkin_id,
                        **_open_values(app, opened_at=opening_at, closes=job.window_closes_at),
                        "updated_at": now,
                    }
                )
                continue
            _cancel_unattempted(session, job, went, now)
            _handle_failure(app, session, job, worker_id=worker_id, now=now, rng=rng, report=report)
        report.opened += queries.transition_checkins(
            session,
            opened,
            expected=CheckInState.SENDING,
            values=list(opened[0]) if opened else [],
            claimed_by=worker_id,
        )


def _cancel_unattempted(session: Session, job: _Job, went: set[int], now: datetime) -> None:
    """Texts queued after the one that failed were never handed to the provider."""
    skipped = [
        t.message_id
        for t in job.texts
        if t.message_id not in went and t.message_id != job.failed_message_id
    ]
    if skipped:
        session.execute(
            update(Message)
            .where(Message.id.in_(skipped), Message.status == MessageStatus.PENDING)
            .values(
                status=MessageStatus.CANCELED,
                status_rank=status_rank(MessageStatus.CANCELED),
                error_code="not_attempted",
                status_updated_at=now,
            )
        )


def _handle_failure(
    app: App,
    session: Session,
    job: _Job,
    *,
    worker_id: str,
    now: datetime,
    rng: random.Random,
    report: TickReport,
) -> None:
    error = job.error
    assert error is not None and job.failed_message_id is not None
    message = session.get(Message, job.failed_message_id)
    assert message is not None
    message.error_code = error.code
    message.status_updated_at = now
    mine = (
        CheckIn.id == job.checkin_id,
        CheckIn.state == CheckInState.SENDING,
        CheckIn.claimed_by == worker_id,
    )
    if error.outcome_unknown:
        message.status = MessageStatus.UNKNOWN
        message.status_rank = status_rank(MessageStatus.UNKNOWN)
        # Release the claim so that the next pass reconciles it straight away.
        session.execute(update(CheckIn).where(*mine).values(claimed_by=None, updated_at=now))
        report.awaiting_reconciliation += 1
        return
    message.status = MessageStatus.FAILED
    message.status_rank = status_rank(MessageStatus.FAILED)
    if error.permanent:
        session.flush()
        outbox.apply_permanent_failure(session, message, error.code, error.stopped, now=now)
        if error.stopped:
            report.cancelled += 1
        else:
            report.failed += 1
        return
    values = retry_values(
        app, attempt=job.attempt, error=error, now=now, rng=rng, closes=job.window_closes_at
    )
    changed = session.execute(update(CheckIn).where(*mine).values(values)).rowcount or 0
    if values["state"] == CheckInState.SCHEDULED:
        report.retried += changed
    else:
        report.failed += changed


def backoff_seconds(attempt: int, base: float, rng: random.Random) -> float:
    """Exponential backoff with jitter: between half and all of base * 2^(attempt-1), capped."""
    ceiling = min(MAX_BACKOFF.total_seconds(), base * 2 ** max(0, attempt - 1))
    return ceiling / 2 + rng.uniform(0, ceiling / 2)


def retry_values(
    app: App,
    *,
    attempt: int,
    error: SmsError,
    now: datetime,
    rng: random.Random,
    closes: datetime,
) -> dict[str, Any]:
    """Back to `scheduled` for a later attempt inside the window, or `failed` with the reason."""
    settings = app.settings
    code = error.code or "none"
    if attempt > settings.retry_max_attempts:
        return {
            "state": CheckInState.FAILED,
            "reason": f"the provider failed {attempt} times (last error {code}); gave up",
            "closed_at": now,
            "claimed_by": None,
            "updated_at": now,
        }
    delay = max(backoff_seconds(attempt, settings.retry_base_seconds, rng), error.retry_after or 0)
    slot = resend_slot(
        now=now + timedelta(seconds=delay), window=app.window, window_closes_at=closes
    )
    if slot is None:
        return {
            "state": CheckInState.FAILED,
            "reason": f"temporary provider errors (last {code}) until the response window closed",
            "closed_at": now,
            "claimed_by": None,
            "updated_at": now,
        }
    return {
        "state": CheckInState.SCHEDULED,
        "next_attempt_at": slot,
        "reason": f"attempt {attempt} failed (provider error {code}); retrying",
        "claimed_by": None,
        "updated_at": now,
    }


# --- 5. reminders ------------------------------------------------------------------------


def send_due_reminders(
    app: App,
    report: TickReport,
    *,
    pacer: SendPacer,
    rng: random.Random,
    stop: Callable[[], bool],
) -> None:
    settings = app.settings
    wording = wording_for(settings)
    limit = claim_limit(settings)
    while not stop():
        now = app.clock.now()
        if not app.window.contains(now):
            break
        sends: list[tuple[int, int, int, bytes, str]] = []  # checkin, message, count, phone, body
        with app.sessions.begin() as session:
            claimed = queries.claim_due_reminders(
                session, now=now, limit=limit, max_reminders=settings.max_reminders
            )
            if not claimed:
                break
            updates = []
            groups: dict[tuple[str, str], list[int]] = {}
            for row in claimed:
                following = reminder_at(
                    first_sent_at=row.opened_at,
                    reminders_sent=row.reminders_sent,
                    reminder_days=list(settings.reminder_days),
                    max_reminders=settings.max_reminders,
                    window=app.window,
                    window_closes_at=row.window_closes_at,
                )
                updates.append({"id": row.id, "next_reminder_at": following, "updated_at": now})
                if row.question_index >= len(wording.survey) or row.phone_ciphertext is None:
                    continue
                body = render_reminder(wording.survey, row.question_index, wording.texts)
                key = wording.survey.question(row.question_index).key
                groups.setdefault((body, key), []).append(row.id)
                sends.append((row.id, 0, row.reminders_sent, row.phone_ciphertext, body))
            queries.transition_checkins(
                session,
                updates,
                expected=CheckInState.OPEN,
                values=["next_reminder_at", "updated_at"],
            )
            new_ids: dict[int, int] = {}
            for (body, key), checkin_ids in groups.items():
                new_ids |= queries.queue_same_text(
                    session,
                    checkin_ids,
                    purpose="reminder",
                    body=body,
                    question_key=key,
                    segments=sms_segments(body),
                    now=now,
                    attempt_column="reminders_sent",
                )
            sends = [(c, new_ids[c], n, p, b) for (c, _, n, p, b) in sends]
        results: list[tuple[int, SendResult]] = []
        failures: list[tuple[int, int, int, SmsError]] = []
        for checkin_id, message_id, count, phone, body in sends:
            sms = OutboundSms(message_id, app.crypto.decrypt_phone(phone), body)
            try:
                results.append((message_id, _send_one(app, pacer, sms)))
            except SmsError as error:
                failures.append((checkin_id, message_id, count, error))
                if error.retry_after:
                    pacer.hold_off(error.retry_after)
        now = app.clock.now()
        with app.sessions.begin() as session:
            _record_results(session, results, now)
            report.messages_sent += len(results)
            report.reminders += len(results)
            for checkin_id, message_id, count, error in failures:
                _reminder_failure(app, session, checkin_id, message_id, count, error, now, rng)
        if len(claimed) < limit:
            break


def _reminder_failure(
    app: App,
    session: Session,
    checkin_id: int,
    message_id: int,
    count: int,
    error: SmsError,
    now: datetime,
    rng: random.Random,
) -> None:
    message = session.get(Message, message_id)
    assert message is not None
    message.error_code = error.code
    message.status_updated_at = now
    if error.outcome_unknown:
        message.status = MessageStatus.UNKNOWN
        message.status_rank = status_rank(MessageStatus.UNKNOWN)
        return
    message.status = MessageStatus.FAILED
    message.status_rank = status_rank(MessageStatus.FAILED)
    if error.permanent:
        session.flush()
        outbox.apply_permanent_failure(session, message, error.code, error.stopped, now=now)
        return
    # Transient: give the reminder back and try again after a backoff, inside the window.
    checkin = session.get(CheckIn, checkin_id)
    if checkin is None:
        return
    delay = backoff_seconds(1, app.settings.retry_base_seconds, rng)
    slot = resend_slot(
        now=now + timedelta(seconds=delay),
        window=app.window,
        window_closes_at=checkin.window_closes_at,
    )
    session.execute(
        update(CheckIn)
        .where(
            CheckIn.id == checkin_id,
            CheckIn.state == CheckInState.OPEN,
            CheckIn.reminders_sent == count,
        )
        .values(reminders_sent=count - 1, next_reminder_at=slot, updated_at=now)
    )
