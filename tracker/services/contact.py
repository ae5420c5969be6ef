"""Changes to whether a patient may be texted: STOP, START, pause, resume, withdraw."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from tracker.db.tables import CheckIn, Episode, Patient
from tracker.domain import CheckInState, ContactState
from tracker.schedule import SendWindow, resend_slot
from tracker.services import audit

# Cancellation reasons written here start with this, so a later START/resume can find them.
CONTACT_PREFIX = "contact: "

# Check-ins that have not finished and would still send something.
_LIVE = (CheckInState.SCHEDULED, CheckInState.SENDING, CheckInState.OPEN)


def cancel_live_checkins(session: Session, patient: Patient, *, now: datetime, reason: str) -> int:
    """Cancel every check-in of this patient that could still send a text; returns how many."""
    episode_ids = select(Episode.id).where(Episode.patient_id == patient.id)
    result = session.execute(
        update(CheckIn)
        .where(CheckIn.episode_id.in_(episode_ids), CheckIn.state.in_(_LIVE))
        .values(
            state=CheckInState.CANCELLED,
            reason=reason,
            closed_at=now,
            next_reminder_at=None,
            updated_at=now,
        )
        .execution_options(synchronize_session="fetch")
    )
    return result.rowcount or 0


def set_contact_state(
    session: Session,
    patient: Patient,
    state: ContactState,
    *,
    now: datetime,
    actor: str,
    reason: str,
    window: SendWindow | None = None,
) -> int:
    """Move a patient to `state`; stopping, pausing or withdrawing cancels live check-ins.

    Returns the number of check-ins cancelled (or restored, for ACTIVE). Moving back to ACTIVE
    (START, resume) reschedules waves that were cancelled by a contact change before their
    first text and whose response window is still open.
    """
    previous = patient.contact_state
    patient.contact_state = state
    patient.contact_state_changed_at = now
    patient.updated_at = now
    if state != ContactState.ACTIVE:
        changed = cancel_live_checkins(session, patient, now=now, reason=CONTACT_PREFIX + reason)
    else:
        changed = restore_checkins(session, patient, now=now, window=window)
    audit.record(
        session,
        at=now,
        actor=actor,
        action=f"contact_state.{state}",
        entity="patient",
        entity_ref=patient.patient_ref,
        detail={"from": previous, "reason": reason, "checkins_changed": changed},
    )
    return changed


def restore_checkins(
    session: Session, patient: Patient, *, now: datetime, window: SendWindow | None
) -> int:
    """Reschedule unsent waves cancelled by a contact change whose window is still open."""
    if window is None:
        return 0
    rows = session.scalars(
        select(CheckIn)
        .join(Episode)
        .where(
            Episode.patient_id == patient.id,
            CheckIn.state == CheckInState.CANCELLED,
            CheckIn.opened_at.is_(None),
            CheckIn.reason.startswith(CONTACT_PREFIX),
            CheckIn.window_closes_at > now,
        )
    ).all()
    restored = 0
    for checkin in rows:
        slot = resend_slot(
            now=max(now, checkin.due_at), window=window, window_closes_at=checkin.window_closes_at
        )
        if slot is None:
            continue
        checkin.state = CheckInState.SCHEDULED
        checkin.due_at = slot
        checkin.next_attempt_at = slot
        checkin.reason = None
        checkin.closed_at = None
        checkin.updated_at = now
        restored += 1
    return restored
