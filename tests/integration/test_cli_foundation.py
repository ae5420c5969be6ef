"""The newcomer's path through the real `tracker` command, in a temporary directory:
init, import (good, bad, --skip-invalid), re-import, checkins --json and the table."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from tracker.clock import SystemClock
from tracker.importing import ALL_COLUMNS

LONDON = ZoneInfo("Europe/London")


def tracker(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The real command in a child process, as a user runs it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRACKER_", "TWILIO_"))}
    env["TRACKER_DATABASE_URL"] = f"sqlite:///{cwd / 'tracker.db'}"
    env["COLUMNS"] = "200"
    return subprocess.run(
        [sys.executable, "-c", "from tracker.cli import main; main()", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@dataclass
class Ran:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def cli(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Callable[..., Ran]:
    """The same entry point (`tracker.cli.main`) run in this process: quicker than a child."""
    for name in list(os.environ):
        if name.startswith(("TRACKER_", "TWILIO_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("TRACKER_DATABASE_URL", f"sqlite:///{tmp_path / 'tracker.db'}")
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.chdir(tmp_path)

    def run(*args: str) -> Ran:
        from tracker.cli import main

        capsys.readouterr()
        monkeypatch.setattr(sys, "argv", ["tracker", *args])
        try:
            main()
            code = 0
        except SystemExit as exc:
            code = int(exc.code or 0)
        captured = capsys.readouterr()
        return Ran(code, captured.out, captured.err)

    assert run("init").returncode == 0
    return run


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    result = tracker(tmp_path, "init")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "tracker.key").exists()
    return tmp_path


def write_episodes(path: Path, rows: list[dict[str, str]], *, bom: bool = True) -> Path:
    # As Excel saves "CSV UTF-8": a byte-order mark and CRLF line ends.
    with path.open("w", encoding="utf-8-sig" if bom else "utf-8", newline="") as handle:
        writer = csv.DictWriter(
            handle, fieldnames=list(ALL_COLUMNS), restval="", lineterminator="\r\n"
        )
        writer.writeheader()
        writer.writerows(rows)
    return path


def episode(ref: str, discharged: datetime, **changes: str) -> dict[str, str]:
    n = int(ref[1:])
    return {
        "episode_ref": ref,
        "patient_ref": f"P{n}",
        "phone": f"07400 {300000 + n:06d}",
        "birth_year": "1971",
        "gender": "male",
        "imd_quintile": "4",
        "site": "East",
        "referral_date": (discharged - timedelta(days=60)).strftime("%d/%m/%Y"),
        "discharge_date": discharged.strftime("%d/%m/%Y"),
        "sessions": "2",
        "connected_external": "y",
        "consent_sms": "yes",
        **changes,
    }


@pytest.mark.slow  # three child processes, each importing the whole CLI
def test_init_import_and_list_checkins(workdir: Path) -> None:
    # Real clock: the CLI runs with SystemClock, so dates are relative to today.
    today = SystemClock().now().astimezone(LONDON)
    discharged = today - timedelta(days=40)
    path = write_episodes(
        workdir / "episodes.csv",
        [episode("E1", discharged), episode("E2", discharged, consent_sms="no", phone="")],
    )

    first = tracker(workdir, "import", str(path))
    assert first.returncode == 0, first.stderr
    assert "2 created, 0 updated, 0 unchanged, 0 rejected" in first.stdout
    assert "2 scheduled, 2 missed" in first.stdout

    listed = tracker(workdir, "checkins", "--json")
    assert listed.returncode == 0, listed.stderr
    lines = [json.loads(line) for line in listed.stdout.splitlines()]
    assert len(lines) == 4
    assert all(set(line) == {"episode_ref", "wave", "due_at", "state"} for line in lines)
    scheduled = [line for line in lines if line["state"] == "scheduled"]
    assert {(line["episode_ref"], line["wave"]) for line in scheduled} == {("E1", 6), ("E1", 12)}
    for line in scheduled:
        due = datetime.fromisoformat(line["due_at"])
        assert due.utcoffset() == due.astimezone(LONDON).utcoffset()  # local offset shown
        assert (due.hour, due.minute) == (8, 0)  # first slot of the default window
        assert due.weekday() < 5
    missed = [line for line in lines if line["state"] == "missed"]
    assert {line["episode_ref"] for line in missed} == {"E2"}


def test_reimport_filters_and_table(cli: Callable[..., Ran], tmp_path: Path) -> None:
    today = SystemClock().now().astimezone(LONDON)
    discharged = today - timedelta(days=40)
    path = write_episodes(
        tmp_path / "episodes.csv",
        [episode("E1", discharged), episode("E2", discharged, consent_sms="no", phone="")],
        bom=False,
    )
    assert cli("import", str(path)).returncode == 0
    again = cli("import", str(path))
    assert again.returncode == 0
    assert "0 created, 0 updated, 2 unchanged" in again.stdout

    only_missed = cli("checkins", "--json", "--state", "missed")
    assert [json.loads(x)["episode_ref"] for x in only_missed.stdout.splitlines()] == ["E2", "E2"]
    east = cli("checkins", "--json", "--site", "East")
    assert len(east.stdout.splitlines()) == 4
    assert cli("checkins", "--json", "--site", "West").stdout == ""

    table = cli("checkins")
    assert table.returncode == 0
    # rich may wrap the reason column on narrow terminals; the words are what matter
    assert "E1" in table.stdout and "no consent" in table.stdout


def test_empty_database_says_what_to_do(cli: Callable[..., Ran]) -> None:
    result = cli("checkins")
    assert result.returncode == 0
    assert "tracker import" in result.stdout


def test_a_bad_file_imports_nothing_and_lists_every_problem(
    cli: Callable[..., Ran], tmp_path: Path
) -> None:
    workdir = tmp_path
    today = SystemClock().now().astimezone(LONDON)
    discharged = today - timedelta(days=40)
    path = write_episodes(
        workdir / "episodes.csv",
        [
            episode("E1", discharged),
            episode("E2", discharged, discharge_date="30/02/2026"),
            episode("E3", discharged, phone="020 7946 0018", pattern="sometimes"),
        ],
    )
    result = cli("import", str(path))
    assert result.returncode == 1
    assert "row 3, discharge_date: '30/02/2026' is not a date" in result.stderr
    assert "row 4, phone:" in result.stderr and "landline" in result.stderr
    assert "row 4, pattern: 'sometimes'" in result.stderr
    assert "nothing was imported" in result.stderr
    assert "7946" not in result.stderr  # numbers shown masked

    listed = cli("checkins", "--json")
    assert listed.stdout == ""

    skipped = cli("import", "--skip-invalid", str(path))
    assert skipped.returncode == 0, skipped.stderr
    assert "1 created" in skipped.stdout and "2 rejected" in skipped.stdout
    rejects = workdir / "episodes.rejects.csv"
    assert rejects.exists() and str(rejects) in skipped.stderr.replace("\n", "")
    with rejects.open(encoding="utf-8-sig", newline="") as handle:
        assert [r["episode_ref"] for r in csv.DictReader(handle)] == ["E2", "E3"]


def test_file_level_problems_are_one_clear_line(cli: Callable[..., Ran], tmp_path: Path) -> None:
    workdir = tmp_path
    path = workdir / "wrong.csv"
    path.write_text("episode_ref,phone,site,notes\nE1,07400 300001,North,x\n")
    result = cli("import", str(path))
    assert result.returncode == 1
    assert "error:" in result.stderr
    assert "patient_ref, birth_year, gender, imd_quintile" in result.stderr
    assert "Traceback" not in result.stderr

    missing = cli("import", str(workdir / "nope.csv"))
    assert missing.returncode == 1 and "does not exist" in missing.stderr


def test_unknown_state_filter_is_a_usage_error(cli: Callable[..., Ran]) -> None:
    result = cli("checkins", "--state", "pending")
    assert result.returncode == 2
    assert "unknown state pending" in result.stderr


def test_commands_have_help(cli: Callable[..., Ran]) -> None:
    for command in ("import", "checkins"):
        result = cli(command, "--help")
        assert result.returncode == 0
        assert "Usage" in result.stdout
