"""What a person does with an alert: acknowledge it (I'm on it), resolve it (done, with a note).

Who did it and when is kept on the alert and in the audit trail; notes are kept on the alert
only (they may hold clinical detail) and the audit notes merely that one was written.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from tracker.db.tables import Alert, Episode, Patient
from tracker.domain import AlertState, DomainError
from tracker.services import audit

MAX_NOTE = 2000


def _clean_note(note: str | None) -> str:
    text = (note or "").strip()
    if len(text) > MAX_NOTE:
        raise DomainError(f"the note is too long: keep it under {MAX_NOTE} characters")
    return text


def acknowledge(
    session: Session, alert: Alert, *, now: datetime, actor: str, note: str | None = None
) -> Alert:
    """Mark an open alert as being handled. Acknowledging twice is refused."""
    text = _clean_note(note)
    if alert.state != AlertState.OPEN:
        raise DomainError(f"alert {alert.id} is already {alert.state}; nothing changed")
    alert.state = AlertState.ACKNOWLEDGED
    alert.acknowledged_by = actor
    alert.acknowledged_at = now
    if text:
        alert.resolution_note = text
    audit.record(
        session,
        at=now,
        actor=actor,
        action="alert.acknowledge",
        entity="alert",
        entity_ref=str(alert.id),
        detail={"kind": alert.kind, "note": bool(text)},
    )
    return alert


def resolve(
    session: Session, alert: Alert, *, now: datetime, actor: str, note: str | None = None
) -> Alert:
    """Close an alert with a note saying what was done (required)."""
    text = _clean_note(note)
    if not text:
        raise DomainError("say what was done before resolving (e.g. 'phoned, safe, GP informed')")
    if alert.state == AlertState.RESOLVED:
        raise DomainError(f"alert {alert.id} is already resolved; nothing changed")
    if alert.acknowledged_at is None:
        alert.acknowledged_by = actor
        alert.acknowledged_at = now
    alert.state = AlertState.RESOLVED
    alert.resolved_by = actor
    alert.resolved_at = now
    previous = alert.resolution_note
    alert.resolution_note = f"{previous}\n{text}" if previous else text
    audit.record(
        session,
        at=now,
        actor=actor,
        action="alert.resolve",
        entity="alert",
        entity_ref=str(alert.id),
        detail={"kind": alert.kind, "note": True},
    )
    return alert


def with_refs(
    session: Session, alerts: Sequence[Alert]
) -> list[tuple[Alert, str | None, str | None]]:
    """Each alert with its patient_ref and episode_ref, looked up by id after paging.

    (An outer join before the LIMIT lets PostgreSQL pick a hash join over every patient.)
    """
    patient_ids = {a.patient_id for a in alerts if a.patient_id is not None}
    episode_ids = {a.episode_id for a in alerts if a.episode_id is not None}
    patients: dict[int, str] = {}
    episodes: dict[int, str] = {}
    if patient_ids:
        query = select(Patient.id, Patient.patient_ref).where(Patient.id.in_(patient_ids))
        patients = {pid: ref for pid, ref in session.execute(query)}
    if episode_ids:
        query = select(Episode.id, Episode.episode_ref).where(Episode.id.in_(episode_ids))
        episodes = {eid: ref for eid, ref in session.execute(query)}
    return [
        (a, patients.get(a.patient_id), episodes.get(a.episode_id))  # type: ignore[arg-type]
        for a in alerts
    ]
