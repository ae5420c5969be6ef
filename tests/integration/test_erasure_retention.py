"""Erasure and retention, verified by reading every column of every table afterwards."""

from __future__ import annotations

from datetime import timedelta

import pytest
from dateutil.relativedelta import relativedelta
from sqlalchemy import select
from typer.testing import CliRunner

from tracker.db.tables import Alert, Answer, AuditEvent, Base, CheckIn, Message, Patient
from tracker.domain import AlertKind, AnswerOutcome, CheckInState, ContactState, Direction
from tracker.services import audit
from tracker.services.erasure import erase_patient
from tracker.services.retention import PeriodError, parse_period, purge_bodies

from ..web_support import (
    cheap_argon2,  # noqa: F401 - autouse fixture
    seed_service,
)


def _every_value(app) -> list[str]:  # type: ignore[no-untyped-def]
    """Every non-null value in every table, as text (JSON columns included)."""
    values: list[str] = []
    with app.engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            for row in conn.execute(table.select()):
                values += [str(v) for v in row if v is not None]
    return values


def _decryptable(app, phone: str) -> int:  # type: ignore[no-untyped-def]
    """How many stored binary values anywhere decrypt to this phone number."""
    found = 0
    with app.engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            for row in conn.execute(table.select()):
                for value in row:
                    if isinstance(value, bytes | memoryview):
                        try:
                            found += app.crypto.decrypt_phone(bytes(value)) == phone
                        except Exception:  # noqa: BLE001 - not a phone ciphertext
                            pass
    return found


def _patient(app, ref):  # type: ignore[no-untyped-def]
    with app.sessions() as session:
        return session.scalars(select(Patient).where(Patient.patient_ref == ref)).one()


def test_erasure_leaves_nothing_identifiable_in_any_table(app) -> None:
    seeded = seed_service(app, north=2, south=1)
    ref = seeded.north_refs[0]
    patient = _patient(app, ref)
    phone = app.crypto.decrypt_phone(patient.phone_ciphertext)
    index = patient.phone_index
    now = app.clock.now()
    with app.sessions() as session:
        episode_ref = (
            session.scalars(
                select(CheckIn).where(CheckIn.id == seeded_checkin(session, patient.id))
            )
            .one()
            .episode.episode_ref
        )
        checkin_id = seeded_checkin(session, patient.id)
        inbound = session.scalars(
            select(Message).where(Message.direction == Direction.INBOUND)
        ).first()
        session.add(
            Answer(
                checkin_id=checkin_id, message_id=inbound.id, question_key="life_satisfaction",
                raw_text="seven-ish, thanks Dr Patel", value=7, outcome=AnswerOutcome.PARSED,
                answered_at=now,
            )
        )  # fmt: skip
        # A text from the same number before it matched a patient, and its alert.
        unknown = Message(
            direction=Direction.INBOUND, patient_id=None, phone_index=index,
            phone_ciphertext=app.crypto.encrypt_phone(phone), purpose="reply",
            body="who is this? Jane Smith", status="received", created_at=now,
        )  # fmt: skip
        session.add(unknown)
        session.flush()
        session.add(
            Alert(kind=AlertKind.RISK, state="resolved", phone_index=index, raised_at=now,
                  message_id=unknown.id, resolution_note="called Jane on her mobile")
        )  # fmt: skip
        audit.record(session, at=now, actor="staff@example.org", action="patient.view",
                     entity="patient", entity_ref=ref)  # fmt: skip
        audit.record(session, at=now, actor="cli", action="episode.update", entity="episode",
                     entity_ref=episode_ref, detail={"episode_ref": episode_ref})  # fmt: skip
        session.commit()
    secrets_before = [ref, episode_ref, index, "Dr Patel", "Jane Smith", "hopeless"]
    values = _every_value(app)
    assert all(any(s in v for v in values) for s in secrets_before)
    ciphertexts_before = _decryptable(app, phone)
    assert ciphertexts_before == 3  # patient, its inbound text, the unmatched text

    with app.sessions() as session:
        result = erase_patient(session, ref, now=now, actor="dpo@example.org", crypto=app.crypto)
        session.commit()

    assert _decryptable(app, phone) == 0
    values = _every_value(app)
    for secret in [*secrets_before, phone, phone[3:]]:
        assert not any(secret in v for v in values), f"{secret!r} survived erasure"
    with app.sessions() as session:
        erased = session.scalars(
            select(Patient).where(Patient.patient_ref == result.tombstone)
        ).one()
        assert erased.erased_at is not None and erased.contact_state == ContactState.WITHDRAWN
        assert erased.birth_year is None and erased.phone_ciphertext is None
        states = {
            c.state
            for e in erased.episodes
            for c in session.scalars(select(CheckIn).where(CheckIn.episode_id == e.id))
        }
        assert states <= {CheckInState.CANCELLED, CheckInState.MISSED}
        answer = session.scalars(select(Answer)).one()
        assert answer.raw_text is None and answer.value == 7  # the parsed value stays
        event = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "patient.erase")
        ).one()
        assert event.entity_ref == result.tombstone and event.actor == "dpo@example.org"
        # The other patients are untouched.
        other = _patient(app, seeded.north_refs[1])
        assert other.phone_ciphertext is not None
    with app.sessions() as session, pytest.raises(Exception, match="no patient"):
        erase_patient(session, ref, now=now, actor="x", crypto=app.crypto)


def seeded_checkin(session, patient_id: int) -> int:  # type: ignore[no-untyped-def]
    message = session.scalars(
        select(Message).where(Message.patient_id == patient_id, Message.checkin_id.is_not(None))
    ).first()
    return message.checkin_id


def test_cli_erase_and_purge(app, monkeypatch) -> None:
    from tracker.cli import app as cli

    seeded = seed_service(app, north=1, south=1)
    monkeypatch.setenv("TRACKER_DATABASE_URL", app.settings.database_url)
    monkeypatch.setenv("TRACKER_SECRET_KEY", app.settings.secret_key.get_secret_value())
    runner = CliRunner()
    refused = runner.invoke(cli, ["patient", "erase", seeded.north_refs[0]], input="n\n")
    assert refused.exit_code != 0
    done = runner.invoke(cli, ["patient", "erase", seeded.north_refs[0], "--yes"])
    assert done.exit_code == 0, done.output
    assert "erased-" in done.output
    purge = runner.invoke(cli, ["purge", "--older-than", "18m"])
    assert purge.exit_code == 0 and "parsed answers are kept" in purge.output
    bad = runner.invoke(cli, ["purge", "--older-than", "18 weeks"])
    assert bad.exit_code != 0


def test_parse_period() -> None:
    assert parse_period("18m") == relativedelta(months=18)
    assert parse_period("2y") == relativedelta(years=2)
    assert parse_period(" 90D ") == relativedelta(days=90)
    for bad in ("", "18", "0m", "-3d", "1.5y", "18w"):
        with pytest.raises(PeriodError):
            parse_period(bad)


def test_purge_removes_old_bodies_and_keeps_parsed_answers(app, clock) -> None:
    seed_service(app, north=1, south=0 + 1)
    old = clock.now() - relativedelta(months=19)
    recent = clock.now() - timedelta(days=30)
    with app.sessions() as session:
        messages = session.scalars(select(Message).order_by(Message.id)).all()
        messages[0].created_at = old
        messages[1].created_at = recent
        checkin_id = messages[0].checkin_id
        session.add_all(
            [
                Answer(checkin_id=checkin_id, question_key="happy", raw_text="six", value=6,
                       outcome=AnswerOutcome.PARSED, answered_at=old),
                Answer(checkin_id=checkin_id, question_key="anxious", raw_text="two", value=2,
                       outcome=AnswerOutcome.PARSED, answered_at=recent),
            ]
        )  # fmt: skip
        session.commit()
    with app.sessions() as session:
        result = purge_bodies(session, parse_period("18m"), now=clock.now(), actor="cli")
        session.commit()
    assert (result.messages, result.answers) == (1, 1)
    with app.sessions() as session:
        first, second = session.scalars(select(Message).order_by(Message.id)).all()[:2]
        assert first.body is None and first.body_purged_at == clock.now()
        assert second.body is not None and second.body_purged_at is None
        answers = {a.question_key: a for a in session.scalars(select(Answer))}
        assert answers["happy"].raw_text is None and answers["happy"].value == 6
        assert answers["anxious"].raw_text == "two"
        event = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "retention.purge")
        ).one()
        assert event.detail["messages"] == 1 and "six" not in str(event.detail)
    assert not any("six" == v for v in _every_value(app))


def test_an_erased_patient_is_never_enrolled_again(app, tmp_path) -> None:
    """A source file that still lists an erased patient must not bring them (or texts) back."""
    from tracker.db.tables import Episode, ErasedRef
    from tracker.services.enrolment import import_csv

    from ..factories import make_episode

    make_episode(app, episode_ref="EP-GONE", patient_ref="PT-GONE", phone="07400 123456")
    with app.sessions() as session:
        erase_patient(session, "PT-GONE", now=app.clock.now(), actor="dpo", crypto=app.crypto)
        session.commit()
    with app.sessions() as session:
        tokens = list(session.scalars(select(ErasedRef.token)))
        assert len(tokens) == 2 and not any("GONE" in t for t in tokens)

    header = (
        "episode_ref,patient_ref,phone,birth_year,gender,imd_quintile,site,referral_date,"
        "discharge_date,sessions,connected_external,pattern,consent_sms"
    )
    csv = tmp_path / "again.csv"
    csv.write_text(
        header + "\n"
        "EP-GONE,PT-GONE,07400 123456,1960,female,3,North,2026-01-05,2026-05-20,4,yes,anchored,yes\n"
        "EP-NEW,PT-GONE,07400 123456,1960,female,3,North,2026-01-05,2026-05-21,4,yes,,yes\n"
        "EP-KEPT,PT-KEPT,07400 123457,1961,male,2,North,2026-01-05,2026-05-20,2,yes,,yes\n",
        encoding="utf-8",
    )
    report = import_csv(app, csv, actor="test")
    assert report.imported and report.counts.rows_erased == 2
    assert report.counts.episodes_created == 1
    with app.sessions() as session:
        refs = set(session.scalars(select(Episode.episode_ref)))
        assert "EP-KEPT" in refs and "EP-GONE" not in refs and "EP-NEW" not in refs
        assert (
            session.scalars(select(Patient).where(Patient.patient_ref == "PT-GONE")).first() is None
        )
