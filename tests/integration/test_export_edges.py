"""Export edge cases set up row by row, on SQLite and PostgreSQL: the response window to the
microsecond, invalid and clarified replies, a patient with two episodes, and reads that keep
to the export's snapshot while the database changes underneath."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pandas as pd
import pyarrow as pa
import pytest
from sqlalchemy import func, select, text

from tests.factories import make_episode
from tracker.app import App
from tracker.db.tables import Answer, CheckIn, Message, Patient
from tracker.export import export_study
from tracker.export.fetch import SnapshotReads

CLOSES = datetime(2026, 7, 24, 17, 30, 0, 250_000, tzinfo=UTC)  # a window end with a fraction
MICRO = timedelta(microseconds=1)


def _message(checkin: CheckIn | None, patient_id: int, at: datetime, **kw: object) -> Message:
    return Message(
        patient_id=patient_id,
        checkin_id=checkin.id if checkin else None,
        created_at=at,
        sent_at=at if kw.get("direction") == "outbound" else None,
        status=kw.pop("status", "delivered"),
        **kw,
    )


def _seed_two_episodes(app: App) -> dict[str, object]:
    phone = "07400 900001"
    first = make_episode(app, discharged_on=date(2026, 1, 20), patient_ref="PAT-A", phone=phone)
    later = make_episode(app, discharged_on=date(2026, 3, 2), patient_ref="PAT-A", phone=phone)
    with app.sessions.begin() as s:
        c6 = s.get(CheckIn, first.checkins[0].id)
        other = s.get(CheckIn, later.checkins[0].id)
        assert c6 is not None and other is not None and c6.wave == 6
        patient_id = first.patient.id
        c6.state, c6.opened_at, c6.window_closes_at = "partial", CLOSES - timedelta(days=28), CLOSES
        other.state, other.opened_at = "completed", other.due_at
        opened = CLOSES - timedelta(hours=5)
        s.add_all(
            [
                # Exactly at the window's end: scored. One microsecond after: not scored.
                Answer(checkin_id=c6.id, question_key="life_satisfaction", value=7,
                       outcome="parsed", answered_at=CLOSES),
                Answer(checkin_id=c6.id, question_key="worthwhile", value=9,
                       outcome="parsed", answered_at=CLOSES + MICRO),
                # The larger of two parsed answers to one question; the first sets responded.
                Answer(checkin_id=c6.id, question_key="happy", value=5,
                       outcome="parsed", answered_at=opened + timedelta(hours=1)),
                Answer(checkin_id=c6.id, question_key="happy", value=6,
                       outcome="parsed", answered_at=opened + timedelta(hours=2)),
                Answer(checkin_id=c6.id, question_key="anxious", value=None,
                       outcome="invalid", answered_at=opened + timedelta(hours=3)),
                Answer(checkin_id=c6.id, question_key="anxious", value=None,
                       outcome="skipped", answered_at=opened + timedelta(hours=4)),
                # The later episode's check-in is not exported, so neither is its answer.
                Answer(checkin_id=other.id, question_key="life_satisfaction", value=1,
                       outcome="parsed", answered_at=other.due_at),
            ]
        )  # fmt: skip
        s.add_all(
            [
                _message(c6, patient_id, opened, direction="outbound", purpose="opening",
                         question_key="life_satisfaction", segments=1),
                _message(c6, patient_id, opened + timedelta(hours=1), direction="inbound",
                         purpose="reply", status="received"),
                _message(c6, patient_id, opened + timedelta(hours=1, minutes=1),
                         direction="outbound", purpose="clarification", segments=2),
                _message(other, patient_id, other.due_at, direction="outbound",
                         purpose="opening"),
                _message(None, patient_id, opened + timedelta(days=2), direction="outbound",
                         purpose="help"),
            ]
        )  # fmt: skip
    return {"target": first.checkins[0].target_date}


def test_window_end_invalid_replies_and_the_earliest_episode(app: App, tmp_path: Path) -> None:
    seeded = _seed_two_episodes(app)
    report = export_study(app, fmt="parquet", out_dir=tmp_path, study="edge")
    assert report.patients == 1

    outcomes = pd.read_parquet(tmp_path / "outcomes.parquet").set_index("wave")
    six = outcomes.loc[6]
    assert six["checkin_state"] == "partial" and six["responded"] == 1
    assert six["life_satisfaction"] == 7  # answered at the window's last microsecond
    assert pd.isna(six["worthwhile"])  # one microsecond late
    assert six["happy"] == 6
    assert pd.isna(six["anxious"])
    first_local = (CLOSES - timedelta(hours=4)).astimezone(ZoneInfo("Europe/London")).date()
    assert six["days_from_due"] == (first_local - seeded["target"]).days  # type: ignore[operator]
    assert outcomes.loc[12, "checkin_state"] == "scheduled"

    contacts = pd.read_parquet(tmp_path / "contacts.parquet")
    # The later episode's opening is left out; the untied help text is kept, without a wave.
    assert contacts["purpose"].tolist() == ["opening", "reply", "clarification", "help"]
    assert contacts["wave"].tolist()[:3] == [6, 6, 6] and pd.isna(contacts["wave"].iloc[3])
    # One answer stored invalid plus one clarification text.
    assert contacts["invalid_replies"].tolist()[:3] == [2, 2, 2]
    assert contacts["reply_delay_hours"].iloc[0] == 1.0
    assert pd.isna(contacts["reply_delay_hours"].iloc[1])  # inbound
    assert contacts["segments"].tolist() == [1, 1, 2, 1]


def test_reads_keep_to_the_snapshot_while_rows_are_added(app: App) -> None:
    make_episode(app, patient_ref="BEFORE")
    with app.engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            conn = conn.execution_options(isolation_level="REPEATABLE READ")
        with conn.begin():
            conn.execute(select(func.count()).select_from(Patient)).scalar_one()
            with SnapshotReads(conn) as reads:
                make_episode(app, patient_ref="AFTER")  # commits elsewhere
                seen = reads.submit(
                    "SELECT patient_ref FROM patients", {"patient_ref": pa.string()}
                ).result()
    assert seen["patient_ref"].to_pylist() == ["BEFORE"]
    with app.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM patients")).scalar_one() == 2


def test_contacts_written_in_patient_aligned_slices_match_one_slice(
    app: App, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    start = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
    with app.sessions.begin() as s:
        for i in range(5):
            episode = make_episode(s, discharged_on=date(2026, 1, 5))
            patient_id, checkin = episode.patient.id, episode.checkins[0]
            for j, (direction, purpose) in enumerate(
                [("outbound", "opening"), ("inbound", "reply"), ("outbound", "closing")]
            ):
                # Interleaved in time across patients, so the database order is not the
                # export's order.
                at = start + timedelta(minutes=10 * j + i)
                s.add(_message(checkin, patient_id, at, direction=direction, purpose=purpose))
    whole = tmp_path / "whole"
    export_study(app, fmt="csv", out_dir=whole, study="s")
    export_study(app, fmt="parquet", out_dir=whole, study="s")
    monkeypatch.setattr("tracker.export.dataset.CONTACT_SLICE_ROWS", 2)
    sliced = tmp_path / "sliced"
    export_study(app, fmt="csv", out_dir=sliced, study="s")
    export_study(app, fmt="parquet", out_dir=sliced, study="s")

    assert (whole / "contacts.csv").read_bytes() == (sliced / "contacts.csv").read_bytes()
    frame = pd.read_parquet(sliced / "contacts.parquet")
    assert frame.equals(pd.read_parquet(whole / "contacts.parquet"))
    assert len(frame) == 15 and frame["pid"].nunique() == 5
    # Patient, then time order; each opening's reply delay is its own patient's reply.
    assert (frame.groupby("pid", sort=False).size() == 3).all()
    assert frame["purpose"].tolist()[:3] == ["opening", "reply", "closing"]
    assert set(frame.loc[frame["purpose"] == "opening", "reply_delay_hours"]) == {0.167}
