"""SQLAlchemy 2 typed tables. No behaviour: rules live in domain.py and the services.

String columns hold the enum values from tracker.domain. Phone numbers are never stored in
clear: `phone_ciphertext` (AES-GCM) plus `phone_index` (keyed HMAC blind index for lookup).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from tracker.db.types import BigId, UTCDateTime

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON()}


class Patient(Base):
    __tablename__ = "patients"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    patient_ref: Mapped[str] = mapped_column(String(64), unique=True)
    phone_ciphertext: Mapped[bytes | None] = mapped_column(LargeBinary)
    phone_index: Mapped[str | None] = mapped_column(String(64), index=True)
    birth_year: Mapped[int | None] = mapped_column(Integer)
    gender: Mapped[str | None] = mapped_column(String(32))
    imd_quintile: Mapped[int | None] = mapped_column(Integer)
    ethnicity: Mapped[str | None] = mapped_column(String(64))
    contact_state: Mapped[str] = mapped_column(String(16), default="active")
    contact_state_changed_at: Mapped[datetime | None]
    erased_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    episodes: Mapped[list[Episode]] = relationship(back_populates="patient")


class Episode(Base):
    __tablename__ = "episodes"
    # Dashboard overview: episodes by pattern for one site (index-only scan).
    __table_args__ = (Index("ix_episodes_site_pattern", "site", "pattern"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    episode_ref: Mapped[str] = mapped_column(String(64), unique=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    site: Mapped[str] = mapped_column(String(64), index=True)
    referral_date: Mapped[date] = mapped_column(Date)
    discharge_date: Mapped[date] = mapped_column(Date)
    sessions: Mapped[int] = mapped_column(Integer)
    connected_external: Mapped[bool] = mapped_column(Boolean)
    pattern: Mapped[str] = mapped_column(String(16), index=True)
    pattern_source: Mapped[str] = mapped_column(String(16))  # recorded | derived
    pattern_rule_version: Mapped[str | None] = mapped_column(String(32))
    consent_sms: Mapped[bool] = mapped_column(Boolean)
    baseline_life_satisfaction: Mapped[int | None] = mapped_column(Integer)
    baseline_worthwhile: Mapped[int | None] = mapped_column(Integer)
    baseline_happy: Mapped[int | None] = mapped_column(Integer)
    baseline_anxious: Mapped[int | None] = mapped_column(Integer)
    baseline_lonely: Mapped[int | None] = mapped_column(Integer)
    baseline_gp_visits: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    patient: Mapped[Patient] = relationship(back_populates="episodes")
    checkins: Mapped[list[CheckIn]] = relationship(back_populates="episode")


class CheckIn(Base):
    __tablename__ = "checkins"
    __table_args__ = (
        UniqueConstraint("episode_id", "wave", name="uq_checkins_episode_wave"),
        Index("ix_checkins_state_due", "state", "due_at"),
        # Dashboard overview counts by wave and state (index-only scan).
        Index("ix_checkins_wave_state", "wave", "state"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    episode_id: Mapped[int] = mapped_column(ForeignKey("episodes.id"), index=True)
    wave: Mapped[int] = mapped_column(Integer)  # months after discharge: 6 or 12
    state: Mapped[str] = mapped_column(String(16), default="scheduled")
    # Nominal date (discharge + wave months) and the first allowed send slot for it.
    target_date: Mapped[date] = mapped_column(Date)
    due_at: Mapped[datetime]
    window_closes_at: Mapped[datetime]
    # When the next send attempt may happen (retry backoff); equals due_at until a retry.
    next_attempt_at: Mapped[datetime | None]
    send_attempts: Mapped[int] = mapped_column(Integer, default=0)
    opened_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    question_index: Mapped[int] = mapped_column(Integer, default=0)
    clarifications: Mapped[int] = mapped_column(Integer, default=0)  # on the current question
    reminders_sent: Mapped[int] = mapped_column(Integer, default=0)
    next_reminder_at: Mapped[datetime | None] = mapped_column(index=True)
    last_activity_at: Mapped[datetime | None]
    reason: Mapped[str | None] = mapped_column(Text)
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    claimed_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    episode: Mapped[Episode] = relationship(back_populates="checkins")


class Message(Base):
    """Every text in or out: the outbox, the inbox and the contact-attempt record."""

    __tablename__ = "messages"
    __table_args__ = (Index("ix_messages_status_created", "status", "created_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    direction: Mapped[str] = mapped_column(String(8))  # outbound | inbound
    patient_id: Mapped[int | None] = mapped_column(ForeignKey("patients.id"), index=True)
    checkin_id: Mapped[int | None] = mapped_column(ForeignKey("checkins.id"), index=True)
    # The other party's number, for texts not tied to a patient (unknown senders).
    phone_index: Mapped[str | None] = mapped_column(String(64), index=True)
    phone_ciphertext: Mapped[bytes | None] = mapped_column(LargeBinary)
    # opening | question | clarification | reminder | closing | crisis | help | neutral | reply
    purpose: Mapped[str] = mapped_column(String(24))
    question_key: Mapped[str | None] = mapped_column(String(64))
    body: Mapped[str | None] = mapped_column(Text)  # raw text; purged after retention
    media_count: Mapped[int] = mapped_column(Integer, default=0)
    segments: Mapped[int] = mapped_column(Integer, default=1)
    provider_sid: Mapped[str | None] = mapped_column(String(64), unique=True)
    status: Mapped[str] = mapped_column(String(16))
    status_rank: Mapped[int] = mapped_column(Integer, default=0)
    error_code: Mapped[str | None] = mapped_column(String(16))
    attempt: Mapped[int] = mapped_column(Integer, default=1)
    late: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]
    status_updated_at: Mapped[datetime | None]
    body_purged_at: Mapped[datetime | None]


class Answer(Base):
    __tablename__ = "answers"
    __table_args__ = (Index("ix_answers_checkin_question", "checkin_id", "question_key"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    checkin_id: Mapped[int] = mapped_column(ForeignKey("checkins.id"))
    message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id"), index=True)
    question_key: Mapped[str] = mapped_column(String(64))
    raw_text: Mapped[str | None] = mapped_column(Text)  # purged with the message body
    value: Mapped[int | None] = mapped_column(Integer)
    outcome: Mapped[str] = mapped_column(String(16))  # parsed|skipped|ambiguous|invalid|late
    answered_at: Mapped[datetime]


class Alert(Base):
    __tablename__ = "alerts"
    __table_args__ = (Index("ix_alerts_state_kind", "state", "kind"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kind: Mapped[str] = mapped_column(String(24))
    state: Mapped[str] = mapped_column(String(16), default="open")
    patient_id: Mapped[int | None] = mapped_column(ForeignKey("patients.id"), index=True)
    episode_id: Mapped[int | None] = mapped_column(ForeignKey("episodes.id"))
    checkin_id: Mapped[int | None] = mapped_column(ForeignKey("checkins.id"))
    message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id"))
    phone_index: Mapped[str | None] = mapped_column(String(64))  # unknown senders
    site: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[str | None] = mapped_column(Text)  # category/reason, never the message body
    raised_at: Mapped[datetime]
    acknowledged_by: Mapped[str | None] = mapped_column(String(254))
    acknowledged_at: Mapped[datetime | None]
    resolved_by: Mapped[str | None] = mapped_column(String(254))
    resolved_at: Mapped[datetime | None]
    resolution_note: Mapped[str | None] = mapped_column(Text)


class AuditEvent(Base):
    """Append-only: who read, changed or exported what. Holds no identifiable values."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    at: Mapped[datetime] = mapped_column(index=True)
    actor: Mapped[str] = mapped_column(String(254))  # user email, "cli", "system", "twilio"
    action: Mapped[str] = mapped_column(String(64))
    entity: Mapped[str | None] = mapped_column(String(32))
    entity_ref: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[dict[str, Any] | None]


class ErasedRef(Base):
    """Keyed hashes of patient and episode references erased on request.

    Imports check against them so that a source file still listing an erased patient cannot
    enrol (and text) them again. Holds no reference in clear.
    """

    __tablename__ = "erased_refs"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    token: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(16))  # patient | episode
    erased_at: Mapped[datetime]


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str | None] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))  # admin | staff | researcher
    site: Mapped[str | None] = mapped_column(String(64))
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None]
    last_login_at: Mapped[datetime | None]
    created_at: Mapped[datetime]


class ApiToken(Base):
    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    name: Mapped[str] = mapped_column(String(128))
    token_hash: Mapped[str] = mapped_column(String(128), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    site: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]
