"""A scheduler process SIGKILLed mid-batch, then restarted: every check-in is sent exactly once.

The subprocess (this module run with `python -m`) ticks with a provider that writes every
accepted text to a ledger file before answering, the way a real provider keeps its record even
when we never hear back. `tracker.services.dispatch.crash_hook` (the documented test hook)
kills the process at a named point: after claiming, after the N-th provider call, or before
recording the results. The restart runs in the test process: an early one (inside the
stale-claim limit) must leave the dead worker's claims alone; a later one must reconcile (ask
the ledger) before resending anything.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tracker.sms.port import OutboundSms, SendResult

NOW = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
REPO = Path(__file__).resolve().parents[2]
TEST_KEY = "dGVzdC1rZXktdGVzdC1rZXktdGVzdC1rZXktdGVzdC0="


class LedgerGateway:
    """A provider whose record survives our crash: one JSON line per accepted text."""

    name = "ledger"

    def __init__(self, path: Path) -> None:
        self.path = path

    def send(self, sms: OutboundSms) -> SendResult:
        sid = f"SM{sms.message_id:032d}"
        with open(self.path, "a", encoding="utf-8") as ledger:
            ledger.write(json.dumps({"message_id": sms.message_id, "sid": sid}) + "\n")
            ledger.flush()
            os.fsync(ledger.fileno())
        return SendResult(provider_sid=sid, status="sent")

    def find_sent(self, sms: OutboundSms, since: datetime) -> SendResult | None:
        for entry in read_ledger(self.path):
            if entry["message_id"] == sms.message_id:
                return SendResult(provider_sid=entry["sid"], status="sent")
        return None


def read_ledger(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def run_tick(url: str, now: str, ledger: str, crash_at: str, nth: str) -> None:
    """Subprocess entry point: one tick, SIGKILLed at `crash_at` the `nth` time it is reached."""
    from tracker import app as app_module
    from tracker.clock import FrozenClock, parse_instant
    from tracker.config import load_settings
    from tracker.services import dispatch
    from tracker.services.pacing import Unpaced

    seen: Counter[str] = Counter()

    def crash(point: str) -> None:
        seen[point] += 1
        if point == crash_at and seen[point] == int(nth):
            os.kill(os.getpid(), signal.SIGKILL)

    dispatch.crash_hook = crash
    settings = load_settings({}, database_url=url, secret_key=TEST_KEY, batch_size=8)
    app = app_module.build(
        settings, clock=FrozenClock(parse_instant(now)), gateway=LedgerGateway(Path(ledger))
    )
    report = dispatch.tick(app, worker_id=f"crash-test:{os.getpid()}", pacer=Unpaced())
    print(json.dumps(report.as_dict()))


if __name__ == "__main__":
    run_tick(*sys.argv[1:6])


# --- the tests ---------------------------------------------------------------------------

import pytest  # noqa: E402
from sqlalchemy import select  # noqa: E402

from tests.conftest import make_settings  # noqa: E402
from tests.integration.scheduler_support import seed_checkins, states  # noqa: E402
from tracker.app import build  # noqa: E402
from tracker.clock import FrozenClock  # noqa: E402
from tracker.db.engine import make_engine  # noqa: E402
from tracker.db.migrate import upgrade  # noqa: E402
from tracker.db.tables import CheckIn, Message  # noqa: E402
from tracker.services.dispatch import tick  # noqa: E402
from tracker.services.pacing import Unpaced  # noqa: E402


def _sending(app) -> set[int]:  # type: ignore[no-untyped-def]
    with app.sessions() as session:
        return set(session.scalars(select(CheckIn.id).where(CheckIn.state == "sending")))


def _opened(app, exclude: set[int]) -> int:  # type: ignore[no-untyped-def]
    with app.sessions() as session:
        opened = session.scalars(select(CheckIn.id).where(CheckIn.state == "open")).all()
    return len(set(opened) - exclude)


def _restarted_tick(settings, at: datetime, ledger: Path) -> dict:  # type: ignore[no-untyped-def]
    app = build(settings, clock=FrozenClock(at), gateway=LedgerGateway(ledger))
    try:
        return tick(app, worker_id="restarted", pacer=Unpaced()).as_dict()
    finally:
        app.close()


def _tick_process(url: str, at: datetime, ledger: Path, crash_at: str = "", nth: int = 0):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.integration.test_crash_recovery",
            url,
            at.isoformat(),
            str(ledger),
            crash_at,
            str(nth),
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    ("crash_at", "nth"),
    [
        ("after_claim", 2),  # second batch claimed, nothing of it sent
        ("after_provider_call", 5),  # mid check-in: an opening went, its question did not
        ("before_recording", 1),  # every text of the batch went, none recorded
    ],
)
def test_killed_worker_restarts_and_sends_each_checkin_exactly_once(
    db_url: str, tmp_path: Path, crash_at: str, nth: int
) -> None:
    settings = make_settings(db_url)
    engine = make_engine(settings.database_url)
    upgrade(engine)
    app = build(settings, clock=FrozenClock(NOW), engine=engine)
    ids = seed_checkins(app, 20, due_at=NOW - timedelta(minutes=1))
    ledger = tmp_path / "provider-ledger.jsonl"

    crashed = _tick_process(db_url, NOW, ledger, crash_at, nth)
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr
    assert states(app)["sending"] > 0  # the crash left claimed work behind

    # Restart (in this process: only the crash needs its own) inside the stale-claim limit:
    # the dead worker's claims are left alone (it might still be alive), only unclaimed
    # check-ins go.
    stuck = _sending(app)
    untouched = 20 - len(stuck) - _opened(app, stuck)
    early = _restarted_tick(settings, NOW + timedelta(minutes=2), ledger)
    assert early["recovered"] == 0 and early["claimed"] == untouched
    assert _sending(app) == stuck

    # Later: reconcile with the provider, recover the claims, finish the job.
    later = _restarted_tick(settings, NOW + timedelta(minutes=11), ledger)
    assert later["recovered"] > 0

    assert states(app) == {"open": 20}
    with app.sessions() as session:
        purpose_of = dict(session.execute(select(Message.id, Message.purpose)).all())
        checkin_of = dict(session.execute(select(Message.id, Message.checkin_id)).all())
    sends = Counter(
        (checkin_of[e["message_id"]], purpose_of[e["message_id"]]) for e in read_ledger(ledger)
    )
    for cid in ids:
        assert sends[(cid, "opening")] == 1, (cid, sends)
        assert sends[(cid, "question")] == 1, (cid, sends)
    assert sum(sends.values()) == 40
    app.close()
