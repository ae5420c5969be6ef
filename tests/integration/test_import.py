"""Importing episodes into real databases (SQLite and PostgreSQL): enrol, re-import,
reschedule, consent, skip-invalid, all-or-nothing, and no phone number in clear."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select, update

from tracker.app import App, build
from tracker.clock import FrozenClock
from tracker.db.engine import make_engine
from tracker.db.migrate import upgrade
from tracker.db.tables import AuditEvent, CheckIn, Episode, Patient
from tracker.domain import PATTERN_RULE_VERSION, CheckInState, ContactState
from tracker.importing import ALL_COLUMNS, ImportFileError
from tracker.phone import normalise_mobile
from tracker.sample import write_sample_csv
from tracker.services.checkins import list_checkins
from tracker.services.contact import set_contact_state
from tracker.services.enrolment import import_csv

from ..conftest import make_settings
from ..factories import make_episode

LONDON = ZoneInfo("Europe/London")


def row(ref: str, **changes: str) -> dict[str, str]:
    n = int("".join(ch for ch in ref if ch.isdigit()) or 0)
    base = {
        "episode_ref": ref,
        "patient_ref": f"P-{ref}",
        "phone": f"07400 {200000 + n:06d}",
        "birth_year": "1958",
        "gender": "female",
        "imd_quintile": "2",
        "site": "North",
        "referral_date": "2026-02-01",
        "discharge_date": "31/08/2026",
        "sessions": "5",
        "connected_external": "yes",
        "consent_sms": "yes",
        "pattern": "",
    }
    return {**base, **changes}


def write(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(ALL_COLUMNS), restval="")
        writer.writeheader()
        writer.writerows(rows)
    return path


def counts(app: App) -> tuple[int, int, int, int]:
    with app.sessions() as s:
        return tuple(  # type: ignore[return-value]
            s.scalar(select(func.count()).select_from(t))
            for t in (Patient, Episode, CheckIn, AuditEvent)
        )


def checkins_of(app: App, ref: str) -> list[CheckIn]:
    with app.sessions() as s:
        return list(
            s.scalars(
                select(CheckIn)
                .join(Episode)
                .where(Episode.episode_ref == ref)
                .order_by(CheckIn.wave)
            )
        )


def test_import_enrols_and_plans_checkins(app: App, tmp_path: Path) -> None:
    path = write(
        tmp_path / "episodes.csv",
        [
            row("E1"),
            row("E2", pattern="with_only", phone="+44 7400 200099"),
            row(
                "E3", patient_ref="P-E1", phone="07400200001", discharge_date="2026-06-01"
            ),  # the same patient again, number written differently
        ],
    )
    report = import_csv(app, path)
    assert report.imported and report.rejected == 0
    c = report.counts
    assert (c.episodes_created, c.patients_created, c.checkins_scheduled) == (3, 2, 6)
    assert counts(app)[:3] == (2, 3, 6)

    six, twelve = checkins_of(app, "E1")
    assert six.target_date == date(2027, 2, 28)
    assert six.due_at.astimezone(LONDON).isoformat() == "2027-03-01T08:00:00+00:00"
    assert twelve.due_at.astimezone(LONDON).isoformat() == "2027-08-31T08:00:00+01:00"
    assert six.state == CheckInState.SCHEDULED and six.next_attempt_at == six.due_at
    assert six.window_closes_at == six.due_at + timedelta(days=28)

    with app.sessions() as s:
        e1 = s.scalars(select(Episode).where(Episode.episode_ref == "E1")).one()
        e2 = s.scalars(select(Episode).where(Episode.episode_ref == "E2")).one()
        assert (e1.pattern, e1.pattern_source, e1.pattern_rule_version) == (
            "anchored",
            "derived",
            PATTERN_RULE_VERSION,
        )
        assert (e2.pattern, e2.pattern_source, e2.pattern_rule_version) == (
            "with_only",
            "recorded",
            None,
        )
        patient = s.get(Patient, e1.patient_id)
        assert patient is not None and patient.phone_ciphertext is not None
        assert app.crypto.decrypt_phone(patient.phone_ciphertext) == "+447400200001"
        assert patient.phone_index == app.crypto.phone_index("+447400200001")
        [event] = s.scalars(select(AuditEvent).where(AuditEvent.action == "import")).all()
        assert event.detail is not None and event.detail["episodes_created"] == 3


def test_reimport_of_the_same_file_changes_nothing(app: App, tmp_path: Path) -> None:
    path = write(tmp_path / "episodes.csv", [row("E1"), row("E2", consent_sms="no")])
    import_csv(app, path)
    before = counts(app)
    with app.sessions() as s:
        stamps = s.execute(select(Episode.updated_at, Patient.updated_at).join(Patient)).all()
    app.clock.advance(hours=1)  # type: ignore[attr-defined]
    report = import_csv(app, path)
    assert report.imported
    assert report.counts.episodes_unchanged == 2
    assert report.counts.episodes_updated == report.counts.episodes_created == 0
    assert report.counts.patients_updated == 0
    assert counts(app) == before  # no new rows, no new audit event
    with app.sessions() as s:
        assert (
            s.execute(select(Episode.updated_at, Patient.updated_at).join(Patient)).all() == stamps
        )


def test_changed_discharge_date_reschedules_unsent_checkins_only(app: App, tmp_path: Path) -> None:
    first = write(tmp_path / "v1.csv", [row("E1", discharge_date="2026-05-20")])
    import_csv(app, first)
    six, twelve = checkins_of(app, "E1")
    # The 6-month text already went out (Fri 20 Nov 2026 was before "now").
    assert six.state == CheckInState.SCHEDULED
    with app.sessions() as s, s.begin():
        s.execute(
            update(CheckIn)
            .where(CheckIn.id == six.id)
            .values(state=CheckInState.OPEN, opened_at=app.now(), send_attempts=1)
        )

    corrected = write(tmp_path / "v2.csv", [row("E1", discharge_date="2026-06-03")])
    report = import_csv(app, corrected)
    assert report.counts.episodes_updated == 1
    assert report.counts.checkins_rescheduled == 1

    six_after, twelve_after = checkins_of(app, "E1")
    assert (six_after.state, six_after.due_at) == (CheckInState.OPEN, six.due_at)
    assert twelve_after.target_date == date(2027, 6, 3)
    assert twelve_after.due_at.astimezone(LONDON).isoformat() == "2027-06-03T08:00:00+01:00"
    assert twelve_after.next_attempt_at == twelve_after.due_at
    assert twelve_after.due_at != twelve.due_at

    with app.sessions() as s:
        [event] = s.scalars(select(AuditEvent).where(AuditEvent.action == "episode.updated")).all()
    assert (event.entity, event.entity_ref, event.actor) == ("episode", "E1", "cli")
    assert event.detail == {"changed": ["discharge_date"], "checkins_replanned": 1}
    assert "2026" not in str(event.detail)  # names of fields, never their values


def test_other_changes_update_without_moving_checkins(app: App, tmp_path: Path) -> None:
    import_csv(app, write(tmp_path / "v1.csv", [row("E1")]))
    before = [c.due_at for c in checkins_of(app, "E1")]
    report = import_csv(
        app, write(tmp_path / "v2.csv", [row("E1", site="South", phone="07400 299999")])
    )
    assert (report.counts.episodes_updated, report.counts.patients_updated) == (1, 1)
    assert [c.due_at for c in checkins_of(app, "E1")] == before
    with app.sessions() as s:
        patient = s.scalars(select(Patient).where(Patient.patient_ref == "P-E1")).one()
        assert app.crypto.decrypt_phone(patient.phone_ciphertext) == "+447400299999"  # type: ignore[arg-type]
        assert patient.phone_index == app.crypto.phone_index("+447400299999")


def test_no_consent_enrols_but_records_waves_as_missed(app: App, tmp_path: Path) -> None:
    report = import_csv(app, write(tmp_path / "a.csv", [row("E1", consent_sms="no", phone="")]))
    assert report.counts.checkins_missed == 2 and report.counts.checkins_scheduled == 0
    waves = checkins_of(app, "E1")
    assert [(c.state, c.reason) for c in waves] == [
        (CheckInState.MISSED, "no consent to texts"),
        (CheckInState.MISSED, "no consent to texts"),
    ]
    assert all(c.next_attempt_at is None for c in waves)
    # Consent given later: the waves are planned again.
    report = import_csv(app, write(tmp_path / "b.csv", [row("E1", consent_sms="yes")]))
    assert report.counts.checkins_rescheduled == 2
    assert {c.state for c in checkins_of(app, "E1")} == {CheckInState.SCHEDULED}


def test_late_enrolment_is_missed_with_a_reason(app: App, tmp_path: Path) -> None:
    import_csv(app, write(tmp_path / "a.csv", [row("E1", discharge_date="2026-03-02")]))
    six, twelve = checkins_of(app, "E1")
    assert six.state == CheckInState.MISSED
    assert six.reason is not None and "response window closed" in six.reason
    assert twelve.state == CheckInState.SCHEDULED


def test_a_stopped_patient_gets_no_texts_for_a_new_episode(app: App, tmp_path: Path) -> None:
    first = make_episode(app, patient_ref="P-STOP", episode_ref="E-OLD")
    with app.sessions() as s, s.begin():
        patient = s.get(Patient, first.patient_id)
        set_contact_state(
            s,
            patient,
            ContactState.STOPPED,
            now=app.now(),
            actor="test",
            reason="STOP",  # type: ignore[arg-type]
        )
    report = import_csv(app, write(tmp_path / "a.csv", [row("E-NEW", patient_ref="P-STOP")]))
    assert report.counts.checkins_cancelled == 2
    assert {c.state for c in checkins_of(app, "E-NEW")} == {CheckInState.CANCELLED}


def test_all_or_nothing_leaves_nothing_when_a_late_row_fails(app: App, tmp_path: Path) -> None:
    rows = [row(f"E{i}") for i in range(1, 8)] + [row("E8", discharge_date="2026-02-30")]
    path = write(tmp_path / "a.csv", rows)
    report = import_csv(app, path, batch_size=2)  # several batches went in before the failure
    assert not report.imported
    assert [str(e) for e in report.errors] == [
        "row 9, discharge_date: '2026-02-30' is not a date (use YYYY-MM-DD or DD/MM/YYYY)"
    ]
    assert counts(app) == (0, 0, 0, 0)
    assert not (tmp_path / "a.rejects.csv").exists()


def test_skip_invalid_imports_the_rest_and_writes_rejects(app: App, tmp_path: Path) -> None:
    rows = [
        row("E1"),
        row("E2", phone="020 7946 0018"),
        row("E3"),
        row("E1"),  # duplicate
        row("E4", sessions="-1", imd_quintile="7"),
    ]
    path = write(tmp_path / "episodes.csv", rows)
    report = import_csv(app, path, skip_invalid=True)
    assert report.imported and report.rejected == 3
    assert report.counts.episodes_created == 2
    assert report.rejects_file == tmp_path / "episodes.rejects.csv"
    with report.rejects_file.open(encoding="utf-8-sig", newline="") as handle:
        rejects = list(csv.DictReader(handle))
    assert [r["episode_ref"] for r in rejects] == ["E2", "E1", "E4"]
    assert rejects[0]["phone"] == "020 7946 0018"  # the user's own row, as they wrote it
    assert "landline" in rejects[0]["reason"]
    assert "first on row 2" in rejects[1]["reason"]
    assert "sessions:" in rejects[2]["reason"] and "imd_quintile:" in rejects[2]["reason"]
    with app.sessions() as s:
        assert sorted(s.scalars(select(Episode.episode_ref))) == ["E1", "E3"]


def test_missing_columns_stop_before_any_row(app: App, tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_text("episode_ref,patient_ref,site\nE1,P1,North\n")
    with pytest.raises(ImportFileError, match="phone, birth_year"):
        import_csv(app, path)
    assert counts(app) == (0, 0, 0, 0)


def test_listing_checkins_for_the_cli(app: App, tmp_path: Path) -> None:
    import_csv(
        app,
        write(tmp_path / "a.csv", [row("E1"), row("E2", site="South", consent_sms="no")]),
    )
    with app.sessions() as s:
        everything = list(list_checkins(s))
        south = list(list_checkins(s, site="South"))
        scheduled = list(list_checkins(s, states=["scheduled"]))
    assert len(everything) == 4
    assert {c.episode_ref for c in south} == {"E2"}
    assert {(c.episode_ref, c.wave) for c in scheduled} == {("E1", 6), ("E1", 12)}
    assert [c.due_at for c in everything] == sorted(c.due_at for c in everything)
    line = scheduled[0].as_json(LONDON)
    assert line == {
        "episode_ref": "E1",
        "wave": 6,
        "due_at": "2027-03-01T08:00:00+00:00",
        "state": "scheduled",
    }


def test_a_sample_file_imports_whole(app: App, tmp_path: Path) -> None:
    today = app.now().astimezone(LONDON).date()
    path = write_sample_csv(tmp_path / "sample.csv", 1500, seed=3, today=today)
    report = import_csv(app, path, batch_size=400)
    assert report.imported and report.rejected == 0, [str(e) for e in report.errors[:3]]
    assert report.counts.episodes_created == 1500
    planned = report.counts.checkins_scheduled + report.counts.checkins_missed
    assert planned == 3000
    again = import_csv(app, path, batch_size=400)
    assert again.counts.episodes_unchanged == 1500


@pytest.fixture
def sqlite_app(sqlite_url: str, clock: FrozenClock) -> Iterator[App]:
    engine = make_engine(sqlite_url)
    upgrade(engine)
    application = build(make_settings(sqlite_url), clock=clock, engine=engine)
    yield application
    application.close()


def test_the_sqlite_file_holds_no_phone_number_in_clear(sqlite_app: App, tmp_path: Path) -> None:
    app = sqlite_app
    today = app.now().astimezone(LONDON).date()
    path = write_sample_csv(tmp_path / "sample.csv", 300, seed=11, today=today)
    assert import_csv(app, path).imported
    app.engine.dispose()  # checkpoint the WAL into the main file
    with path.open(newline="") as handle:
        numbers = [normalise_mobile(r["phone"]) for r in csv.DictReader(handle)]
    db_file = Path(app.settings.sqlite_path)  # type: ignore[arg-type]
    raw = b"".join(p.read_bytes() for p in db_file.parent.glob(db_file.name + "*") if p.is_file())
    assert len(raw) > 10_000
    for e164 in set(numbers):
        national = "0" + e164[3:]
        spaced = f"{national[:5]} {national[5:]}"
        for form in (e164, e164[1:], national, spaced, e164[3:]):
            assert form.encode() not in raw, "a phone number is stored in clear"
            assert form.encode("utf-16-le") not in raw


def test_service_today_decides_what_is_in_the_future(app: App, tmp_path: Path) -> None:
    # 23:30 UTC on 30 June is already 1 July in London: a 1 July discharge is not "future".
    app.clock.set(datetime(2027, 6, 30, 23, 30, tzinfo=ZoneInfo("UTC")))  # type: ignore[attr-defined]
    report = import_csv(app, write(tmp_path / "a.csv", [row("E1", discharge_date="01/07/2027")]))
    assert report.imported, [str(e) for e in report.errors]


def test_factory_inside_a_callers_transaction(app: App) -> None:
    with app.sessions() as s, s.begin():
        episode = make_episode(s, discharged_on=date(2026, 8, 31), pattern=None, sessions=2)
        assert (episode.pattern, episode.pattern_source) == ("rapid", "derived")
        assert [c.wave for c in episode.checkins] == [6, 12]
        assert episode.checkins[0].due_at.isoformat() == "2027-03-01T08:00:00+00:00"
    assert counts(app)[1] == 1


def test_a_database_failure_midway_leaves_nothing(
    app: App, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tracker.services import enrolment

    real = enrolment.Enroller.enrol
    calls = {"n": 0}

    def failing(self: enrolment.Enroller, rows: list) -> None:  # type: ignore[type-arg]
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("database went away")
        real(self, rows)

    monkeypatch.setattr(enrolment.Enroller, "enrol", failing)
    path = write(tmp_path / "a.csv", [row(f"E{i}") for i in range(1, 12)])
    with pytest.raises(RuntimeError, match="database went away"):
        import_csv(app, path, batch_size=2)
    assert counts(app) == (0, 0, 0, 0)


def test_rejects_keep_the_users_own_header(app: App, tmp_path: Path) -> None:
    path = tmp_path / "Export May.csv"
    header = [c.replace("_", " ").title() for c in ALL_COLUMNS]
    with path.open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        for item in (row("E1"), row("E2", gender="Ménage", sessions="-3")):
            writer.writerow([item.get(c, "") for c in ALL_COLUMNS])
    report = import_csv(app, path, skip_invalid=True)
    assert report.counts.episodes_created == 1
    assert report.rejects_file == tmp_path / "Export May.rejects.csv"
    with report.rejects_file.open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == [*header, "reason"]
    assert rows[1][header.index("Gender")] == "Ménage"
    assert rows[1][-1].startswith("sessions: is negative")
