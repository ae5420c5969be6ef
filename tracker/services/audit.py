"""Append-only audit trail. Callers pass references, never identifiable values."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from tracker.db.tables import AuditEvent


def record(
    session: Session,
    *,
    at: datetime,
    actor: str,
    action: str,
    entity: str | None = None,
    entity_ref: str | None = None,
    detail: dict[str, Any] | None = None,
) -> AuditEvent:
    """Add one audit event to the session's transaction (committed with the change it records)."""
    event = AuditEvent(
        at=at, actor=actor, action=action, entity=entity, entity_ref=entity_ref, detail=detail
    )
    session.add(event)
    return event
