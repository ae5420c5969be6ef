"""Research export end to end: a small cohort enrolled, texted and answered through the real
services, then exported in every format and read back, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import date, timedelta
from itertools import count
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pyreadstat
import pytest
from sqlalchemy import select

from surveys import fhir
from tests.factories import episode_phone, make_episode
from tracker.app import App
from tracker.db.tables import AuditEvent, Patient
from tracker.domain import ContactState
from tracker.export import FORMATS, ExportError, export_study
from tracker.services.contact import set_contact_state
from tracker.services.dispatch import tick
from tracker.services.erasure import erase_patient
from tracker.services.inbound import receive_and_reply
from tracker.sms.port import InboundSms

_sids = count(1)
DISCHARGED = date(2026, 5, 26)  # 6-month check-ins fall due on the conftest clock's day
NATIONAL = "07400 555123"  # typed inside a reply: must never reach an export
EVIL_SITE = '=HYPERLINK("http://x")'


class NoWait:
    waited = 0.0

    def acquire(self, count: float = 1.0) -> float:
        return 0.0

    def hold_off(self, seconds: float) -> None:
        pass


def text(app: App, phone: str, body: str) -> None:
    app.clock.advance(minutes=3)
    receive_and_reply(app, InboundSms(f"SMexp{next(_sids):027d}", phone, body))


def national(e164: str) -> str:
    return "0" + e164[3:]


@pytest.fixture
def cohort(app: App) -> dict[str, object]:
    full = make_episode(
        app,
        discharged_on=DISCHARGED,
        pattern="anchored",
        baseline={
            "life_satisfaction": 4,
            "worthwhile": 5,
            "happy": 3,
            "anxious": 7,
            "lonely": 4,
            "gp_visits": 6,
        },
    )
    partial = make_episode(
        app,
        discharged_on=DISCHARGED,
        pattern="rapid",
        sessions=2,
        site=EVIL_SITE,
        gender="-f",
        birth_year=1990,
    )
    quiet = make_episode(app, discharged_on=DISCHARGED, pattern=None, connected_external=False)
    no_consent = make_episode(
        app, discharged_on=DISCHARGED, consent_sms=False, baseline={"lonely": 5}
    )
    withdrawn = make_episode(app, discharged_on=DISCHARGED, patient_ref="WITHDRAWN-1")
    erased = make_episode(app, discharged_on=DISCHARGED, patient_ref="ERASED-1")
    phones = {
        name: episode_phone(app, ep)
        for name, ep in [
            ("full", full),
            ("partial", partial),
            ("quiet", quiet),
            ("withdrawn", withdrawn),
            ("erased", erased),
        ]
    }
    tick(app, worker_id="test", pacer=NoWait())  # opens the 6-month check-ins
    for body in ["8", "7/10", "seven", "2", "hardly ever", "3", "yes", "no"]:
        text(app, phones["full"], body)
    text(app, phones["partial"], "lots")  # unreadable: a clarification
    text(app, phones["partial"], f"call me on {NATIONAL}")  # second failure: invalid
    text(app, phones["partial"], "6")
    text(app, phones["withdrawn"], "9")
    text(app, phones["erased"], "9")
    with app.sessions.begin() as s:
        patient = s.scalars(select(Patient).where(Patient.patient_ref == "WITHDRAWN-1")).one()
        set_contact_state(
            s,
            patient,
            ContactState.WITHDRAWN,
            now=app.clock.now(),
            actor="test",
            reason="asked to leave the study",
        )
        erase_patient(s, "ERASED-1", now=app.clock.now(), actor="test", crypto=app.crypto)
    app.clock.advance(days=30)
    tick(app, worker_id="test", pacer=NoWait())  # closes windows: partial / expired
    refs = {
        "full": full.patient.patient_ref,
        "partial": partial.patient.patient_ref,
        "quiet": quiet.patient.patient_ref,
        "no_consent": no_consent.patient.patient_ref,
    }
    return {"phones": phones, "refs": refs}


def _phone_patterns(phones: dict[str, str]) -> list[str]:
    found = []
    for e164 in [*phones.values(), "+447400555123"]:
        nat = national(e164)
        found += [e164, e164[1:], nat, f"{nat[:5]} {nat[5:]}"]
    return found


def _all_text(folder: Path) -> str:
    """Every file's raw bytes, plus the decoded cells of the binary (compressed) formats."""
    chunks = []
    for path in sorted(folder.iterdir()):
        chunks.append(path.read_bytes().decode("latin-1"))
        if path.suffix == ".parquet":
            chunks.append(pd.read_parquet(path).to_csv())
        elif path.suffix == ".dta":
            chunks.append(pyreadstat.read_dta(str(path))[0].to_csv())
        elif path.suffix == ".sav":
            chunks.append(pyreadstat.read_sav(str(path))[0].to_csv())
    return "\n".join(chunks)


def test_every_format_reads_back_without_identifiers(
    app: App, cohort: dict, tmp_path: Path
) -> None:
    patterns = _phone_patterns(cohort["phones"])
    for fmt in FORMATS:
        folder = tmp_path / fmt
        report = export_study(app, fmt=fmt, out_dir=folder, study="alpha", include_free_text=True)
        assert report.patients == 4  # withdrawn and erased patients are left out
        assert report.outcome_rows == 12
        names = {p.name for p in folder.iterdir()}
        ext = {"stata": "dta", "spss": "sav", "fhir": "csv"}.get(fmt, fmt)
        assert {f"outcomes.{ext}", f"contacts.{ext}", "codebook.json", "codebook.csv"} <= names
        blob = _all_text(folder)
        for pattern in patterns:
            assert pattern not in blob, (fmt, pattern)
        for ref in ["WITHDRAWN-1", "ERASED-1", *cohort["refs"].values()]:
            assert ref not in blob

    csv = pd.read_csv(tmp_path / "csv" / "outcomes.csv")
    parquet = pd.read_parquet(tmp_path / "parquet" / "outcomes.parquet")
    dta, dta_meta = pyreadstat.read_dta(str(tmp_path / "stata" / "outcomes.dta"))
    sav, sav_meta = pyreadstat.read_sav(str(tmp_path / "spss" / "outcomes.sav"))
    for frame in (csv, parquet, dta, sav):
        assert list(frame.columns[:18]) == [
            "pid",
            "site",
            "pattern",
            "sessions",
            "age",
            "gender",
            "imd_quintile",
            "wave",
            "responded",
            "days_from_due",
            "life_satisfaction",
            "worthwhile",
            "happy",
            "anxious",
            "lonely",
            "gp_visits",
            "community_activity",
            "recontact_requested",
        ]
        assert len(frame) == 12
        assert sorted(frame.groupby("pid")["wave"].apply(tuple).unique()) == [(0, 6, 12)]
    schema = pq.read_schema(tmp_path / "parquet" / "outcomes.parquet")
    assert schema.field("life_satisfaction").type == pa.int64()  # nullable integers
    assert schema.field("wave").type == pa.int64()
    assert dta_meta.column_names_to_labels["lonely"] == "How often do you feel lonely?"
    assert dta_meta.variable_value_labels["lonely"][5] == "often or always"
    assert sav_meta.variable_value_labels["wave"][0] == "baseline"
    assert sav_meta.column_names_to_labels["age"].startswith("Age in years")

    rows = parquet.set_index(["pid", "wave"])
    pid = app.crypto.pseudonym("alpha", cohort["refs"]["full"])
    assert rows.loc[(pid, 0), "responded"] == 1
    assert rows.loc[(pid, 0), "life_satisfaction"] == 4
    assert rows.loc[(pid, 6), "responded"] == 1
    assert rows.loc[
        (pid, 6),
        [
            "life_satisfaction",
            "worthwhile",
            "happy",
            "anxious",
            "lonely",
            "gp_visits",
            "community_activity",
            "recontact_requested",
        ],
    ].tolist() == [8, 7, 7, 2, 2, 3, 1, 0]
    assert rows.loc[(pid, 6), "days_from_due"] == 0
    assert rows.loc[(pid, 6), "checkin_state"] == "completed"
    assert rows.loc[(pid, 12), "responded"] == 0
    assert rows.loc[(pid, 0), "age"] == 2026 - 1960  # referred 90 days before discharge
    partial = rows.loc[(app.crypto.pseudonym("alpha", cohort["refs"]["partial"]), 6)]
    assert partial["checkin_state"] == "partial"
    assert partial["responded"] == 1 and pd.isna(partial["life_satisfaction"])
    assert partial["worthwhile"] == 6
    quiet = rows.loc[(app.crypto.pseudonym("alpha", cohort["refs"]["quiet"]), 6)]
    assert quiet["responded"] == 0 and quiet["checkin_state"] == "expired"
    assert rows.loc[(app.crypto.pseudonym("alpha", cohort["refs"]["quiet"]), 0), "pattern"] == (
        "with_only"
    )
    nc = app.crypto.pseudonym("alpha", cohort["refs"]["no_consent"])
    assert rows.loc[(nc, 0), "lonely"] == 5 and rows.loc[(nc, 6), "responded"] == 0

    # The analysis package reads every tabular export folder (DESIGN section 6 contract).
    from analysis.dataset import load_study

    for fmt in ("csv", "parquet", "stata", "spss", "fhir"):
        study = load_study(tmp_path / fmt)
        assert len(study.outcomes) == 12 and study.study == "alpha"
        assert EVIL_SITE in set(study.outcomes["site"])

    # Formula injection: text cells are quoted, negative numbers stay numbers.
    raw = (tmp_path / "csv" / "outcomes.csv").read_text("utf-8")
    assert "'=HYPERLINK" in raw and "\n=" not in raw and ",=" not in raw
    assert ',"\'-f",' in raw and ',"=' not in raw
    contacts = pd.read_parquet(tmp_path / "parquet" / "contacts.parquet")
    partial_pid = app.crypto.pseudonym("alpha", cohort["refs"]["partial"])
    inv = contacts.loc[contacts["pid"] == partial_pid, "invalid_replies"].dropna()
    assert set(inv) == {2}  # "lots" (ambiguous or invalid) and the phone-number reply
    assert "[number removed]" in " ".join(contacts["body"].dropna())
    out = contacts[(contacts["pid"] == pid) & (contacts["direction"] == "outbound")]
    assert (out["reply_delay_hours"].dropna() > 0).all()
    assert out["sent_day"].iloc[0] == (date(2026, 11, 26) - DISCHARGED).days
    assert set(contacts["pid"]) <= set(parquet["pid"])

    cb = json.loads((tmp_path / "csv" / "codebook.json").read_text("utf-8"))
    assert cb["study"] == "alpha" and cb["pattern_rule_version"]
    names = [c["name"] for c in cb["tables"]["outcomes"]["columns"]]
    assert names == list(csv.columns) and [c["name"] for c in cb["columns"]] == names
    lonely = next(c for c in cb["columns"] if c["name"] == "lonely")
    assert lonely["question_text"] == "How often do you feel lonely?"
    assert lonely["value_labels"]["1"] == "never"
    contact_names = [c["name"] for c in cb["tables"]["contacts"]["columns"]]
    assert contact_names == list(pd.read_csv(tmp_path / "csv" / "contacts.csv").columns)

    # FHIR: every resource validates; one response per opened follow-up check-in.
    folder = tmp_path / "fhir"
    bundle = json.loads((folder / "questionnaire.json").read_text("utf-8"))
    fhir.validate_r4(bundle)
    assert [e["resource"]["id"] for e in bundle["entry"]] == ["followup-6m", "followup-12m"]
    lines = (folder / "questionnaire_responses.ndjson").read_text("utf-8").splitlines()
    responses = [json.loads(line) for line in lines]
    assert len(responses) == 3  # full, partial and quiet opened their 6-month check-in
    for resource in responses:
        fhir.validate_r4(resource)
        assert set(resource["subject"]) == {"identifier", "display"}
    by_pid = {r["subject"]["identifier"]["value"]: r for r in responses}
    assert by_pid[pid]["status"] == "completed" and len(by_pid[pid]["item"]) == 8
    assert by_pid[partial_pid]["status"] == "stopped"


def test_pseudonyms_stable_within_study_and_differ_across(
    app: App, cohort: dict, tmp_path: Path
) -> None:
    a1 = export_study(app, fmt="csv", out_dir=tmp_path / "a1", study="alpha")
    app.clock.advance(days=1)
    a2 = export_study(app, fmt="parquet", out_dir=tmp_path / "a2", study="alpha")
    b = export_study(app, fmt="csv", out_dir=tmp_path / "b", study="beta")
    one = set(pd.read_csv(a1.out_dir / "outcomes.csv")["pid"])
    two = set(pd.read_parquet(a2.out_dir / "outcomes.parquet")["pid"])
    other = set(pd.read_csv(b.out_dir / "outcomes.csv")["pid"])
    assert one == two and len(one) == 4
    assert not one & other
    # Without --include-free-text no message text leaves the database.
    contacts = pd.read_csv(a1.out_dir / "contacts.csv")
    assert "body" not in contacts.columns
    assert "call me" not in (a1.out_dir / "contacts.csv").read_text("utf-8")

    with app.sessions() as s:
        events = s.scalars(select(AuditEvent).where(AuditEvent.action == "export")).all()
    assert len(events) == 3
    assert events[-1].actor == "cli"
    assert events[-1].detail["study"] == "beta"
    assert events[-1].detail["outcome_rows"] == 12
    blob = json.dumps([e.detail for e in events])
    assert not any(ref in blob for ref in cohort["refs"].values())


def test_bad_arguments_say_what_to_do(app: App, tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="unknown export format"):
        export_study(app, fmt="xlsx", out_dir=tmp_path)
    (tmp_path / "file").write_text("x")
    with pytest.raises(ExportError, match="not a folder"):
        export_study(app, fmt="csv", out_dir=tmp_path / "file")


def test_empty_database_exports_empty_tables(app: App, tmp_path: Path) -> None:
    report = export_study(app, fmt="parquet", out_dir=tmp_path, study="empty")
    assert report.patients == 0
    assert list(pd.read_parquet(tmp_path / "outcomes.parquet").columns)[:2] == ["pid", "site"]
    assert (tmp_path / "codebook.json").exists()
    _ = timedelta  # noqa: F841


def test_cli_export_writes_the_folder(
    app: App, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from tests.conftest import TEST_KEY
    from tracker.cli import app as cli

    make_episode(app, discharged_on=DISCHARGED, baseline={"happy": 5})
    monkeypatch.setenv("TRACKER_DATABASE_URL", app.settings.database_url)
    monkeypatch.setenv("TRACKER_SECRET_KEY", TEST_KEY)
    runner = CliRunner()
    result = runner.invoke(
        cli, ["export", "--format", "stata", "--out", str(tmp_path / "x"), "--study", "s1"]
    )
    assert result.exit_code == 0, result.output
    assert "1 patients, 3 outcome rows" in result.output
    data, meta = pyreadstat.read_dta(str(tmp_path / "x" / "outcomes.dta"))
    assert data["happy"].tolist()[0] == 5 and meta.variable_value_labels["responded"]
    bad = runner.invoke(cli, ["export", "--format", "xlsx", "--out", str(tmp_path / "y")])
    assert bad.exit_code != 0
    assert "analyse" in runner.invoke(cli, ["--help"]).output
