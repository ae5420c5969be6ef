"""The local SMS gateway: texts never leave the machine.

The outbox has already stored every outbound text in the messages table; "sending" here only
gives it a provider id ("SM" + 32 hex digits, like Twilio's) and the status `sent`. Replies are
fed in with `tracker sms receive` (or by tests) through the same pipeline as real ones.

Tests make it fail on purpose with a fault plan: a callable that looks at each text and returns
an `SmsError` to raise, `SENT_BUT_UNKNOWN` (the provider took the text but we never heard back:
the id is recorded on the row as the provider would know it, so `find_sent` finds it), or None.
`FaultPlan([...])` scripts the next outcomes in order.
"""

from __future__ import annotations

import threading
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Final

from sqlalchemy import update

from tracker.db.tables import Message
from tracker.domain import MessageStatus
from tracker.sms.port import OutboundSms, SendResult, SmsError

if TYPE_CHECKING:
    from tracker.app import App

SENT_BUT_UNKNOWN: Final = "sent_but_unknown"

Fault = SmsError | str | None
FaultSource = Callable[[OutboundSms], Fault]


def new_sid() -> str:
    """A provider id shaped like Twilio's message sids."""
    return "SM" + uuid.uuid4().hex


class FaultPlan:
    """Scripted outcomes for the next sends, in order; after the script, every send works."""

    def __init__(self, outcomes: Iterable[Fault] = ()) -> None:
        self._outcomes: deque[Fault] = deque(outcomes)
        self._lock = threading.Lock()

    def add(self, *outcomes: Fault) -> None:
        with self._lock:
            self._outcomes.extend(outcomes)

    def __call__(self, sms: OutboundSms) -> Fault:
        with self._lock:
            return self._outcomes.popleft() if self._outcomes else None


class SimulatorGateway:
    name = "simulator"

    def __init__(self, app: App, faults: FaultSource | None = None) -> None:
        self._app = app
        self.faults: FaultSource | None = faults
        self.sent: list[OutboundSms] = []  # this process's sends, for tests and the demo

    def send(self, sms: OutboundSms) -> SendResult:
        fault = self.faults(sms) if self.faults is not None else None
        if isinstance(fault, SmsError):
            raise fault
        sid = new_sid()
        if fault == SENT_BUT_UNKNOWN:
            self._record_provider_copy(sms.message_id, sid)
            self.sent.append(sms)
            raise SmsError("simulated timeout after the text was accepted", outcome_unknown=True)
        self.sent.append(sms)
        return SendResult(provider_sid=sid, status=MessageStatus.SENT)

    def find_sent(self, sms: OutboundSms, since: datetime) -> SendResult | None:
        """The simulator's record is the messages table: a row with a provider id was sent."""
        with self._app.sessions() as session:
            message = session.get(Message, sms.message_id)
            if message is None or message.provider_sid is None:
                return None
            if message.sent_at is not None and message.sent_at < since:
                return None
            return SendResult(provider_sid=message.provider_sid, status=MessageStatus.SENT)

    def _record_provider_copy(self, message_id: int, sid: str) -> None:
        with self._app.sessions.begin() as session:
            session.execute(
                update(Message)
                .where(Message.id == message_id, Message.provider_sid.is_(None))
                .values(provider_sid=sid)
                .execution_options(synchronize_session=False)
            )
