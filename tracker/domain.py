"""Pure domain vocabulary: states, kinds, the engagement-pattern rule, domain errors.

No I/O here. Stored values are the enum values (plain lowercase strings).
"""

from __future__ import annotations

from enum import StrEnum


class DomainError(Exception):
    """A rule of the domain was broken; the message says what to do instead."""


class Pattern(StrEnum):
    """Engagement pattern seen during link-worker support (Tierney et al. 2024)."""

    RAPID = "rapid"
    ANCHORED = "anchored"
    WITH_ONLY = "with_only"


class ContactState(StrEnum):
    ACTIVE = "active"
    STOPPED = "stopped"  # texted STOP (or a synonym): no texts of any kind
    WITHDRAWN = "withdrawn"  # withdrew from research: no texts, left out of exports
    PAUSED = "paused"  # paused by staff: no texts until resumed


class CheckInState(StrEnum):
    SCHEDULED = "scheduled"
    SENDING = "sending"  # claimed by a worker; opening text in the outbox
    OPEN = "open"  # opening text sent; awaiting replies inside the response window
    COMPLETED = "completed"
    PARTIAL = "partial"  # window closed with some answers
    EXPIRED = "expired"  # window closed with no answers
    MISSED = "missed"  # never sent (no consent, late enrolment past window, outage); see reason
    CANCELLED = "cancelled"  # STOP, withdrawal, erasure, rescheduling
    FAILED = "failed"  # permanent provider failure; see reason


TERMINAL_CHECKIN_STATES = frozenset(
    {
        CheckInState.COMPLETED,
        CheckInState.PARTIAL,
        CheckInState.EXPIRED,
        CheckInState.MISSED,
        CheckInState.CANCELLED,
        CheckInState.FAILED,
    }
)

# Allowed moves; anything else is a bug and raises.
CHECKIN_TRANSITIONS: dict[CheckInState, frozenset[CheckInState]] = {
    CheckInState.SCHEDULED: frozenset(
        {CheckInState.SENDING, CheckInState.MISSED, CheckInState.CANCELLED}
    ),
    CheckInState.SENDING: frozenset(
        {
            CheckInState.OPEN,
            CheckInState.SCHEDULED,  # transient failure: back in the queue with a later due time
            CheckInState.FAILED,
            CheckInState.CANCELLED,
            CheckInState.MISSED,
        }
    ),
    CheckInState.OPEN: frozenset(
        {
            CheckInState.COMPLETED,
            CheckInState.PARTIAL,
            CheckInState.EXPIRED,
            CheckInState.CANCELLED,
            CheckInState.FAILED,
        }
    ),
}


def check_transition(current: CheckInState | str, target: CheckInState | str) -> CheckInState:
    """Return `target` if a check-in may move there from `current`, else raise DomainError."""
    cur, tgt = CheckInState(current), CheckInState(target)
    if tgt not in CHECKIN_TRANSITIONS.get(cur, frozenset()):
        raise DomainError(f"a check-in cannot move from {cur} to {tgt}")
    return tgt


class Direction(StrEnum):
    OUTBOUND = "outbound"
    INBOUND = "inbound"


class MessageStatus(StrEnum):
    """Delivery status of a text. Outbound statuses only move up in RANK."""

    PENDING = "pending"  # committed to the outbox, provider not yet called
    UNKNOWN = "unknown"  # provider call timed out: reconcile before any resend
    QUEUED = "queued"
    ACCEPTED = "accepted"
    SENDING = "sending"
    SENT = "sent"
    DELIVERED = "delivered"
    READ = "read"
    UNDELIVERED = "undelivered"
    FAILED = "failed"
    CANCELED = "canceled"
    RECEIVED = "received"  # inbound


# Monotonic rank: a late or shuffled callback never moves a message backwards. Final outcomes
# (delivered/undelivered/failed) outrank the in-flight ones; `read` is the last word.
STATUS_RANK: dict[MessageStatus, int] = {
    MessageStatus.PENDING: 0,
    MessageStatus.UNKNOWN: 1,
    MessageStatus.QUEUED: 2,
    MessageStatus.ACCEPTED: 3,
    MessageStatus.SENDING: 4,
    MessageStatus.SENT: 5,
    MessageStatus.CANCELED: 6,
    MessageStatus.FAILED: 7,
    MessageStatus.UNDELIVERED: 7,
    MessageStatus.DELIVERED: 8,
    MessageStatus.READ: 9,
    MessageStatus.RECEIVED: 9,
}


def status_rank(status: MessageStatus | str) -> int:
    return STATUS_RANK[MessageStatus(status)]


class AnswerOutcome(StrEnum):
    PARSED = "parsed"
    SKIPPED = "skipped"
    AMBIGUOUS = "ambiguous"  # kept for research on reply quality; not a value
    INVALID = "invalid"  # second failed attempt: the conversation moved on
    LATE = "late"  # arrived after the response window: stored, not scored


class AlertKind(StrEnum):
    RISK = "risk"
    RECONTACT = "recontact"
    OPT_OUT_REVIEW = "opt_out_review"
    DELIVERY_PROBLEM = "delivery_problem"


class AlertState(StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


# --- engagement pattern rule -------------------------------------------------------------

PATTERN_RULE_VERSION = "2026.1"
PATTERN_RULE_TEXT = (
    "not connected to external support -> with_only; "
    "else sessions <= {rapid_max_sessions} -> rapid; else anchored"
)


def derive_pattern(
    *, sessions: int, connected_external: bool, rapid_max_sessions: int = 3
) -> Pattern:
    """Versioned rule (PATTERN_RULE_VERSION) used when the service records no pattern."""
    if not connected_external:
        return Pattern.WITH_ONLY
    if sessions <= rapid_max_sessions:
        return Pattern.RAPID
    return Pattern.ANCHORED
