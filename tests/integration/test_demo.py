"""`tracker demo` at a small size: the whole loop runs and its outputs hold together.

The demo runs once per module (about 10 s of CPU for 40 patients) and every test reads its
database and files: every wave accounted for, no duplicate sends, STOP respected, the scripted
risk disclosure raised one alert, the export and the report exist and open.
"""

from __future__ import annotations

import fcntl
import json
import pickle
import sqlite3
from collections import Counter
from datetime import UTC, datetime, time
from pathlib import Path
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
from typer.testing import CliRunner

from tracker.demo import DEMO_DB, DemoError, DemoResult, run_demo
from tracker.demo_behaviour import Plan, draw_cohort
from tracker.domain import TERMINAL_CHECKIN_STATES

pytestmark = pytest.mark.slow

PATIENTS = 40
SEED = 7


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> DemoResult:
    """One demo run shared by the module's tests, also across xdist workers (the pattern from
    pytest-xdist's docs: the first worker runs it under a file lock, the others reuse it)."""
    if worker_id == "master":
        return run_demo(tmp_path_factory.mktemp("demo"), patients=PATIENTS, seed=SEED)
    shared = tmp_path_factory.getbasetemp().parent
    with (shared / "demo.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        saved = shared / "demo-result.pickle"
        if saved.exists():
            return pickle.loads(saved.read_bytes())
        result = run_demo(shared / "demo", patients=PATIENTS, seed=SEED)
        saved.write_bytes(pickle.dumps(result))
        return result


def rows(result: DemoResult, sql: str) -> list[tuple]:
    with sqlite3.connect(result.database) as db:
        return db.execute(sql).fetchall()


def test_every_patient_has_both_waves_and_every_wave_ended(demo: DemoResult) -> None:
    checkins = rows(
        demo,
        "select e.episode_ref, c.wave, c.state, c.reason from checkins c "
        "join episodes e on e.id = c.episode_id",
    )
    waves = Counter(ref for ref, _, _, _ in checkins)
    assert len(waves) == PATIENTS
    assert set(waves.values()) == {2}
    assert {wave for _, wave, _, _ in checkins} == {6, 12}
    terminal = {s.value for s in TERMINAL_CHECKIN_STATES}
    open_ones = [(ref, wave, state) for ref, wave, state, _ in checkins if state not in terminal]
    assert not open_ones, f"check-ins left unfinished after 13 months: {open_ones}"
    for ref, wave, state, reason in checkins:
        if state in ("missed", "cancelled", "failed"):
            assert reason, f"{ref} wave {wave} is {state} without a reason"


def test_no_check_in_got_its_opening_text_twice(demo: DemoResult) -> None:
    openings = rows(
        demo,
        "select checkin_id, count(*) from messages where direction = 'outbound' "
        "and purpose = 'opening' and provider_sid is not null group by checkin_id",
    )
    assert openings, "the demo sent no opening texts"
    assert max(n for _, n in openings) == 1
    assert demo.summary.opening_texts_per_checkin_max == 1
    opened = rows(demo, "select count(*) from checkins where opened_at is not null")[0][0]
    assert len(openings) == opened


def test_no_duplicate_question_texts(demo: DemoResult) -> None:
    """Each question goes out once per check-in, apart from clarifications and reminders."""
    repeats = rows(
        demo,
        "select checkin_id, question_key, count(*) from messages where direction = 'outbound' "
        "and purpose = 'question' and provider_sid is not null "
        "group by checkin_id, question_key having count(*) > 1",
    )
    assert repeats == []


def test_scheduled_texts_go_out_only_inside_the_send_window(demo: DemoResult) -> None:
    """Openings and reminders (the scheduler's texts) fall Mon-Fri 08:00-18:00 London time,
    across both 2026 clock changes; replies to a patient may go at any hour."""
    zone = ZoneInfo("Europe/London")
    sent = rows(
        demo,
        "select purpose, sent_at from messages where direction = 'outbound' "
        "and purpose in ('opening', 'reminder') and sent_at is not null",
    )
    assert {purpose for purpose, _ in sent} == {"opening", "reminder"}
    for purpose, sent_at in sent:
        local = datetime.fromisoformat(sent_at).replace(tzinfo=UTC).astimezone(zone)
        assert local.weekday() < 5 and time(8) <= local.time() < time(18), (purpose, local)


def test_stopped_patients_get_no_further_texts(demo: DemoResult) -> None:
    stopped = rows(
        demo,
        "select id, contact_state_changed_at from patients where contact_state = 'stopped'",
    )
    cohort = draw_cohort(PATIENTS, seed=SEED)
    stoppers = [p for p in cohort.patients if any(w.plan is Plan.STOP for w in p.waves.values())]
    assert 1 <= len(stopped) <= len(stoppers)
    review = rows(demo, "select count(*) from alerts where kind = 'opt_out_review'")[0][0]
    assert review == 1  # the one who wrote "please stop texting me"
    for patient_id, stopped_at in stopped:
        later = rows(
            demo,
            f"select count(*) from messages where patient_id = {patient_id} "
            f"and direction = 'outbound' and created_at > '{stopped_at}'",
        )[0][0]
        assert later == 0


def test_alerts_match_the_scripted_behaviour(demo: DemoResult) -> None:
    alerts = Counter(kind for (kind,) in rows(demo, "select kind from alerts"))
    assert alerts["risk"] == 1, "the scripted risk disclosure must raise exactly one risk alert"
    crisis = rows(demo, "select count(*) from messages where purpose = 'crisis'")[0][0]
    assert crisis == 1
    assert alerts["recontact"] >= 1
    assert demo.summary.alerts_by_kind == dict(alerts)
    # The demo's link worker resolves alerts with a note; some recontacts stay in the queue.
    risk = rows(demo, "select state, resolved_by, resolution_note from alerts where kind='risk'")
    assert risk[0][0] == "resolved" and risk[0][1] and risk[0][2]
    still_open = rows(demo, "select count(*) from alerts where state != 'resolved'")[0][0]
    assert demo.summary.alerts_open == still_open


def test_answers_were_read_from_messy_replies(demo: DemoResult) -> None:
    outcomes = Counter(o for (o,) in rows(demo, "select outcome from answers"))
    assert outcomes["parsed"] > PATIENTS  # several answers per responding patient
    inbound = rows(demo, "select body from messages where direction = 'inbound'")
    bodies = [b for (b,) in inbound]
    assert any(not b.strip().isdigit() for b in bodies if b)
    assert demo.summary.texts_received == len(bodies)


def test_export_exists_and_opens(demo: DemoResult) -> None:
    csv_dir, parquet_dir = demo.exports["csv"], demo.exports["parquet"]
    from_csv = pd.read_csv(csv_dir / "outcomes.csv")
    from_parquet = pd.read_parquet(parquet_dir / "outcomes.parquet")
    assert len(from_csv) == len(from_parquet) == 3 * PATIENTS
    assert sorted(from_csv["wave"].unique()) == [0, 6, 12]
    assert set(from_csv["pattern"]) <= {"rapid", "anchored", "with_only"}
    assert from_csv["pid"].nunique() == PATIENTS
    assert not from_csv["pid"].astype(str).str.startswith("DEMO-").any()  # pseudonymised
    follow = from_csv[from_csv["wave"] > 0]
    assert 0 < follow["responded"].sum() < len(follow)
    # The export's account of each wave matches the database's.
    exported = Counter(follow["checkin_state"])
    states = Counter(dict(rows(demo, "select state, count(*) from checkins group by state")))
    assert exported == states
    contacts = pd.read_parquet(parquet_dir / "contacts.parquet")
    assert len(contacts) > 0
    codebook = json.loads((csv_dir / "codebook.json").read_text(encoding="utf-8"))
    assert codebook


def test_report_exists_and_opens(demo: DemoResult) -> None:
    if demo.analysis_problem is not None:
        pytest.skip(demo.analysis_problem)
    assert demo.report_html is not None and demo.results_json is not None
    html = demo.report_html.read_text(encoding="utf-8")
    assert "<html" in html.lower() and "</html>" in html.lower()
    results = json.loads(demo.results_json.read_text(encoding="utf-8"))
    assert "life_satisfaction_mixed" in results["models"]


def test_summary_counts_match_the_database(demo: DemoResult) -> None:
    states = dict(rows(demo, "select state, count(*) from checkins group by state"))
    assert demo.summary.checkins_by_state == states
    answered = sum(a for a, _ in demo.summary.answered_by_pattern.values())
    texted = sum(t for _, t in demo.summary.answered_by_pattern.values())
    assert 0 < answered < texted


def test_rerunning_starts_fresh_and_tells_the_same_story(tmp_path: Path) -> None:
    def states() -> list[tuple]:
        with sqlite3.connect(tmp_path / DEMO_DB) as db:
            return db.execute(
                "select wave, state, count(*) from checkins group by wave, state order by 1, 2"
            ).fetchall()

    run_demo(tmp_path, patients=12, seed=3, analyse=False)
    first = states()
    run_demo(tmp_path, patients=12, seed=3, analyse=False)
    assert states() == first
    with sqlite3.connect(tmp_path / DEMO_DB) as db:
        assert db.execute("select count(*) from patients").fetchone()[0] == 12  # not appended


def test_the_command_prints_the_summary_and_the_paths(tmp_path: Path) -> None:
    from tracker.cli import app

    result = CliRunner().invoke(
        app, ["demo", "--patients", "10", "--seed", "3", "--out", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    for text in ("patients enrolled", "texts sent / received", "alerts raised", "export:", "took"):
        assert text in result.output
    assert "report:" in result.output or "analysis not run" in result.output


def test_refuses_to_replace_a_database_it_did_not_write(tmp_path: Path) -> None:
    (tmp_path / DEMO_DB).write_bytes(b"someone else's data")
    with pytest.raises(DemoError, match="not written by `tracker demo`"):
        run_demo(tmp_path, patients=10)
    assert (tmp_path / DEMO_DB).read_bytes() == b"someone else's data"
