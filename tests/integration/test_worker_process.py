"""`tracker worker` as a real process: ticks, refuses a second worker on SQLite, stops on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import TEST_KEY

TRACKER = [sys.executable, "-c", "from tracker.cli import main; main()"]


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRACKER_", "TWILIO_"))}
    env.update(
        TRACKER_DATABASE_URL=f"sqlite:///{tmp_path / 'tracker.db'}",
        TRACKER_SECRET_KEY=TEST_KEY,
        TRACKER_LOG_LEVEL="WARNING",
    )
    return env


def _wait_for(path: Path, text: str, timeout: float = 20.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        content = path.read_text(encoding="utf-8") if path.exists() else ""
        if text in content:
            return content
        time.sleep(0.1)
    raise AssertionError(f"{text!r} not seen in {path}:\n{content}")


@pytest.mark.slow
def test_worker_ticks_refuses_a_second_one_on_sqlite_and_stops_on_sigterm(
    tmp_path: Path,
) -> None:
    env = _env(tmp_path)
    subprocess.run([*TRACKER, "init"], env=env, cwd=tmp_path, check=True, capture_output=True)
    log = tmp_path / "worker.log"
    with open(log, "w", encoding="utf-8") as sink:
        first = subprocess.Popen(
            [*TRACKER, "worker", "--interval", "0.3"], env=env, cwd=tmp_path, stderr=sink
        )
    try:
        content = _wait_for(log, "INFO tracker.worker: tick ")
        assert "claimed=0" in content and "+44" not in content
        second = subprocess.run(
            [*TRACKER, "worker"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60
        )
        assert second.returncode == 1
        assert "SQLite supports one worker only" in second.stderr
        assert "PostgreSQL" in second.stderr
        # a cron tick alongside the worker steps aside instead of failing
        cron = subprocess.run(
            [*TRACKER, "tick"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60
        )
        assert cron.returncode == 0 and "skipped" in cron.stdout
    finally:
        first.send_signal(signal.SIGTERM)
        assert first.wait(timeout=30) == 0
    assert "stopped after" in log.read_text(encoding="utf-8")
