"""`tracker sms receive` and `tracker alerts [--json]` through the real CLI (SQLite)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from tests.conftest import START, TEST_KEY, make_settings
from tests.sms_setup import PATIENT_PHONE, enrol_with_open_checkin
from tracker.app import build
from tracker.cli import app as cli
from tracker.clock import FrozenClock
from tracker.db.engine import make_engine
from tracker.db.migrate import upgrade


@pytest.fixture
def env(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("TRACKER_DATABASE_URL", sqlite_url)
    monkeypatch.setenv("TRACKER_SECRET_KEY", TEST_KEY)
    engine = make_engine(sqlite_url)
    upgrade(engine)
    app = build(make_settings(sqlite_url), clock=FrozenClock(START), engine=engine)
    enrol_with_open_checkin(app, ref="EP-77")
    app.close()
    return sqlite_url


def run(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_receive_prints_the_reply_and_replays_do_nothing(env: str) -> None:
    now = "2026-11-26T10:05:00+00:00"
    first = run(
        "sms", "receive", "--from", PATIENT_PHONE, "--body", "8", "--now", now, "--sid", "SMcli1"
    )
    assert first.exit_code == 0, first.output
    assert first.output.startswith("2/8 ")
    again = run(
        "sms", "receive", "--from", PATIENT_PHONE, "--body", "8", "--now", now, "--sid", "SMcli1"
    )
    assert again.exit_code == 0 and "Already received" in again.output


def test_alerts_json_lines_and_table(env: str) -> None:
    assert "No open alerts" in run("alerts").output
    run("sms", "receive", "--from", PATIENT_PHONE, "--body", "I want to end my life")
    run("sms", "receive", "--from", "+447700900555", "--body", "feeling suicidal")
    result = run("alerts", "--json")
    assert result.exit_code == 0
    lines = [json.loads(line) for line in result.output.splitlines()]
    assert [sorted(line) for line in lines] == [["episode_ref", "kind", "raised_at", "state"]] * 2
    assert [(a["kind"], a["episode_ref"], a["state"]) for a in lines] == [
        ("risk", "EP-77", "open"),
        ("risk", None, "open"),
    ]
    assert all("+" in a["raised_at"] or a["raised_at"].endswith("Z") for a in lines)
    table = run("alerts").output
    assert "risk" in table and "EP-77" in table and PATIENT_PHONE not in table


def test_receive_needs_a_number(env: str) -> None:
    result = CliRunner().invoke(cli, ["sms", "receive", "--from", " ", "--body", "8"])
    assert result.exit_code != 0
