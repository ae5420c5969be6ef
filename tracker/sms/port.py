"""The SMS port: what the service needs from any provider, and how providers fail.

Errors say whether retrying can help (`permanent`), whether the recipient has opted out at the
provider (`stopped`), and whether we cannot know if the text went (`outcome_unknown`: never
resend blindly; reconcile first).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True)
class OutboundSms:
    message_id: int  # our id; carried in the status callback URL so callbacks always match
    to: str  # E.164
    body: str


@dataclass(frozen=True)
class SendResult:
    provider_sid: str
    status: str  # a MessageStatus value, usually queued/accepted/sent


@dataclass(frozen=True)
class InboundSms:
    provider_sid: str
    from_number: str  # E.164 as the provider gives it
    body: str
    media_count: int = 0
    to_number: str | None = None


@dataclass(frozen=True)
class DeliveryReport:
    provider_sid: str | None
    message_id: int | None  # our id from the callback URL, when present
    status: str
    error_code: str | None = None


class SmsError(Exception):
    """A send failed. Flags say what may be done next."""

    def __init__(
        self,
        reason: str,
        *,
        code: str | None = None,
        permanent: bool = False,
        stopped: bool = False,
        outcome_unknown: bool = False,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code
        self.permanent = permanent or stopped
        self.stopped = stopped
        self.outcome_unknown = outcome_unknown
        self.retry_after = retry_after


class SmsGateway(Protocol):
    name: str

    def send(self, sms: OutboundSms) -> SendResult:
        """Hand one text to the provider. Raises SmsError."""
        ...

    def find_sent(self, sms: OutboundSms, since: datetime) -> SendResult | None:
        """After an unknown outcome: the provider's record of this text, or None if it never went."""
        ...
