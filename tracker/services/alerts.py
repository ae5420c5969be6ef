"""Raising alerts that a person must act on. Details name a category, never a message body."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from tracker.db.tables import Alert, CheckIn, Episode, Patient
from tracker.domain import AlertKind, AlertState


def raise_alert(
    session: Session,
    *,
    kind: AlertKind,
    now: datetime,
    patient: Patient | None = None,
    checkin: CheckIn | None = None,
    message_id: int | None = None,
    phone_index: str | None = None,
    detail: str | None = None,
) -> Alert:
    """Add an alert. Risk alerts are always new; others reuse an open one for the same patient."""
    episode: Episode | None = checkin.episode if checkin is not None else None
    if episode is None and patient is not None and patient.episodes:
        episode = max(patient.episodes, key=lambda e: e.discharge_date)
    if kind != AlertKind.RISK and patient is not None:
        existing = session.scalars(
            select(Alert).where(
                Alert.kind == kind,
                Alert.patient_id == patient.id,
                Alert.state != AlertState.RESOLVED,
            )
        ).first()
        if existing is not None:
            return existing
    alert = Alert(
        kind=kind,
        state=AlertState.OPEN,
        patient_id=patient.id if patient is not None else None,
        episode_id=episode.id if episode is not None else None,
        checkin_id=checkin.id if checkin is not None else None,
        message_id=message_id,
        phone_index=phone_index if patient is None else None,
        site=episode.site if episode is not None else None,
        detail=detail,
        raised_at=now,
    )
    session.add(alert)
    return alert
