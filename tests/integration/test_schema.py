"""The migration creates exactly what tables.py describes, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import inspect
from sqlalchemy.exc import IntegrityError

from tracker.db.engine import make_engine
from tracker.db.migrate import current_revision, head_revision, schema_drift, upgrade
from tracker.db.tables import Base


def test_migration_matches_models_and_is_idempotent(db_url: str) -> None:
    engine = make_engine(db_url)
    upgrade(engine)
    upgrade(engine)  # re-running `tracker init` is harmless
    assert current_revision(engine) == head_revision()
    assert schema_drift(engine) == []
    names = set(inspect(engine).get_table_names())
    assert set(Base.metadata.tables) <= names
    engine.dispose()


def test_unique_constraints_make_duplicates_impossible(db_url: str) -> None:
    engine = make_engine(db_url)
    upgrade(engine)
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO patients (id, patient_ref, contact_state, created_at, updated_at) "
            "VALUES (1, 'P1', 'active', '2026-01-01', '2026-01-01')"
        )
        conn.exec_driver_sql(
            "INSERT INTO episodes (id, episode_ref, patient_id, site, referral_date, "
            "discharge_date, sessions, connected_external, pattern, pattern_source, "
            "consent_sms, created_at, updated_at) VALUES (1, 'E1', 1, 'S', '2026-01-01', "
            "'2026-02-01', 3, true, 'rapid', 'recorded', true, '2026-01-01', '2026-01-01')"
        )
    checkin = (
        "INSERT INTO checkins (episode_id, wave, state, target_date, due_at, window_closes_at, "
        "send_attempts, question_index, clarifications, reminders_sent, created_at, updated_at) "
        "VALUES (1, 6, 'scheduled', '2026-08-01', '2026-08-03', '2026-08-31', 0, 0, 0, 0, "
        "'2026-01-01', '2026-01-01')"
    )
    with engine.begin() as conn:
        conn.exec_driver_sql(checkin)
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.exec_driver_sql(checkin)
    message = (
        "INSERT INTO messages (direction, purpose, status, status_rank, media_count, segments, "
        "attempt, late, provider_sid, created_at) VALUES "
        "('inbound', 'reply', 'received', 9, 0, 1, 1, false, 'SM123', '2026-01-01')"
    )
    with engine.begin() as conn:
        conn.exec_driver_sql(message)
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.exec_driver_sql(message)
    engine.dispose()
