"""Erasure: remove or irreversibly pseudonymise one patient's identifiable data everywhere.

What happens to each table (tests query every one of them afterwards):
- patients: phone ciphertext and blind index nulled; patient_ref replaced by a random
  tombstone; birth year, gender, IMD quintile and ethnicity nulled; contact state `withdrawn`
  so the patient also drops out of research exports; erased_at set.
- episodes: episode_ref replaced by `<tombstone>-<n>` (the service's own reference is gone).
- checkins: live ones cancelled (reason `erased`); nothing identifiable is stored on them.
- messages (inbox and outbox, also unmatched texts from the same number): body, phone
  ciphertext and phone index nulled, body_purged_at set.
- answers: raw_text nulled; parsed values stay (they identify no one without the rest).
- alerts: phone index nulled; free-text resolution notes replaced, as staff may have written
  names or numbers there.
- erased_refs: a keyed hash of each old reference, so that re-importing a source file that
  still lists the patient enrols nothing (the import reports such rows).
- audit_events: earlier events that named the old references are re-keyed to the tombstone (what
  happened, who did it and when is kept); one new `patient.erase` event records the erasure
  under the tombstone, with row counts only.
Export files written before the erasure are outside the database: re-run exports to drop them.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import String, cast, or_, select, update
from sqlalchemy.orm import Session

from tracker.db.tables import (
    Alert,
    Answer,
    AuditEvent,
    CheckIn,
    Episode,
    ErasedRef,
    Message,
    Patient,
)
from tracker.domain import ContactState, DomainError
from tracker.privacy import Crypto
from tracker.services import audit
from tracker.services.contact import cancel_live_checkins

TOMBSTONE_PREFIX = "erased-"
ERASED_NOTE = "[erased with the patient's data]"


@dataclass(frozen=True)
class ErasureResult:
    tombstone: str
    episodes: int
    checkins_cancelled: int
    messages: int
    answers: int
    alerts: int
    audit_events_rekeyed: int


def erase_patient(
    session: Session, patient_ref: str, *, now: datetime, actor: str, crypto: Crypto
) -> ErasureResult:
    """Erase one patient (caller commits). Raises DomainError if unknown or already erased."""
    patient = session.scalars(select(Patient).where(Patient.patient_ref == patient_ref)).first()
    if patient is None:
        raise DomainError(f"no patient with reference {patient_ref!r} (check the reference)")
    if patient.erased_at is not None:
        raise DomainError("this patient's data was already erased")
    tombstone = TOMBSTONE_PREFIX + secrets.token_hex(8)
    old_refs = {patient.patient_ref: tombstone}
    phone_index = patient.phone_index

    episodes = list(
        session.scalars(
            select(Episode).where(Episode.patient_id == patient.id).order_by(Episode.id)
        )
    )
    for n, episode in enumerate(episodes, start=1):
        old_refs[episode.episode_ref] = f"{tombstone}-{n}"
        episode.episode_ref = f"{tombstone}-{n}"
        episode.updated_at = now

    cancelled = cancel_live_checkins(session, patient, now=now, reason="erased")

    message_filter = Message.patient_id == patient.id
    if phone_index is not None:
        message_filter = or_(message_filter, Message.phone_index == phone_index)
    messages = session.execute(
        update(Message)
        .where(message_filter)
        .values(body=None, phone_ciphertext=None, phone_index=None, body_purged_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount

    checkin_ids = select(CheckIn.id).join(Episode).where(Episode.patient_id == patient.id)
    answers = session.execute(
        update(Answer)
        .where(Answer.checkin_id.in_(checkin_ids))
        .values(raw_text=None)
        .execution_options(synchronize_session=False)
    ).rowcount

    alert_filter = Alert.patient_id == patient.id
    if phone_index is not None:
        alert_filter = or_(alert_filter, Alert.phone_index == phone_index)
    alerts = 0
    for alert in session.scalars(select(Alert).where(alert_filter)):
        alert.phone_index = None
        if alert.resolution_note:
            alert.resolution_note = ERASED_NOTE
        alerts += 1

    rekeyed = _rekey_audit(session, old_refs)
    _remember_erased(session, old_refs, patient_ref=patient.patient_ref, now=now, crypto=crypto)

    patient.patient_ref = tombstone
    patient.phone_ciphertext = None
    patient.phone_index = None
    patient.birth_year = None
    patient.gender = None
    patient.imd_quintile = None
    patient.ethnicity = None
    patient.contact_state = ContactState.WITHDRAWN
    patient.contact_state_changed_at = now
    patient.erased_at = now
    patient.updated_at = now

    result = ErasureResult(
        tombstone=tombstone,
        episodes=len(episodes),
        checkins_cancelled=cancelled,
        messages=messages or 0,
        answers=answers or 0,
        alerts=alerts,
        audit_events_rekeyed=rekeyed,
    )
    audit.record(
        session,
        at=now,
        actor=actor,
        action="patient.erase",
        entity="patient",
        entity_ref=tombstone,
        detail={
            "episodes": result.episodes,
            "checkins_cancelled": result.checkins_cancelled,
            "messages": result.messages,
            "answers": result.answers,
            "alerts": result.alerts,
            "audit_events_rekeyed": result.audit_events_rekeyed,
        },
    )
    return result


def _rekey_audit(session: Session, old_refs: dict[str, str]) -> int:
    """Replace the erased references in earlier audit events (entity_ref and detail values)."""
    session.flush()
    changed = 0
    refs = list(old_refs)
    clauses = [AuditEvent.entity_ref.in_(refs)]
    clauses += [cast(AuditEvent.detail, String).contains(ref) for ref in refs]
    for event in session.scalars(select(AuditEvent).where(or_(*clauses))):
        if event.entity_ref in old_refs:
            event.entity_ref = old_refs[event.entity_ref]
        if event.detail:
            event.detail = _replace_refs(event.detail, old_refs)
        changed += 1
    return changed


def _replace_refs(value: object, old_refs: dict[str, str]) -> object:
    if isinstance(value, str):
        for old, new in old_refs.items():
            value = value.replace(old, new) if old in value else value
        return value
    if isinstance(value, dict):
        return {k: _replace_refs(v, old_refs) for k, v in value.items()}
    if isinstance(value, list):
        return [_replace_refs(v, old_refs) for v in value]
    return value


def _remember_erased(
    session: Session, old_refs: dict[str, str], *, patient_ref: str, now: datetime, crypto: Crypto
) -> None:
    """Record keyed hashes of the erased references so imports refuse them from now on."""
    for ref in old_refs:
        token = crypto.erased_ref_token(ref)
        if session.scalars(select(ErasedRef.id).where(ErasedRef.token == token)).first():
            continue
        kind = "patient" if ref == patient_ref else "episode"
        session.add(ErasedRef(token=token, kind=kind, erased_at=now))
