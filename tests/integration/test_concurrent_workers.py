"""Four workers with their own engines racing over 5,000 due check-ins on PostgreSQL:
each check-in is claimed once and each text handed to the provider exactly once."""

from __future__ import annotations

import random
import threading
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from tests.conftest import make_settings
from tests.integration.scheduler_support import seed_checkins, states
from tracker.app import build
from tracker.clock import FrozenClock
from tracker.db.engine import make_engine
from tracker.db.migrate import upgrade
from tracker.db.tables import Message
from tracker.services.dispatch import tick
from tracker.services.pacing import Unpaced
from tracker.sms.port import OutboundSms, SendResult

NOW = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)


class CountingProvider:
    """Shared by all workers: counts every text handed over, by our message id."""

    name = "counting"

    def __init__(self) -> None:
        self.calls: Counter[int] = Counter()
        self.by_worker: Counter[str] = Counter()
        self._lock = threading.Lock()

    def send(self, sms: OutboundSms) -> SendResult:
        with self._lock:
            self.calls[sms.message_id] += 1
            self.by_worker[threading.current_thread().name] += 1
        return SendResult(provider_sid=f"SM{sms.message_id:032d}", status="sent")

    def find_sent(self, sms: OutboundSms, since: datetime) -> SendResult | None:
        with self._lock:
            seen = self.calls[sms.message_id] > 0
        return SendResult(f"SM{sms.message_id:032d}", "sent") if seen else None


@pytest.mark.postgres
@pytest.mark.slow
def test_four_workers_send_each_of_5000_checkins_exactly_once(pg_schema_url: str) -> None:
    settings = make_settings(pg_schema_url, batch_size=100, send_rate_per_second=1e6)
    engine = make_engine(settings.database_url)
    upgrade(engine)
    provider = CountingProvider()
    seeder = build(settings, clock=FrozenClock(NOW), engine=engine, gateway=provider)
    ids = seed_checkins(seeder, 5000, due_at=NOW - timedelta(minutes=1))

    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def worker(n: int) -> None:
        app = build(
            settings,
            clock=FrozenClock(NOW),
            engine=make_engine(settings.database_url, pool_size=2),
            gateway=provider,
        )
        try:
            start.wait()
            while True:
                report = tick(app, worker_id=f"w{n}", pacer=Unpaced(), rng=random.Random(n))
                if report.claimed == 0:
                    break
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            app.close()

    threads = [threading.Thread(target=worker, args=(n,), name=f"w{n}") for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=240)
    assert not errors, errors
    assert states(seeder) == {"open": 5000}

    with seeder.sessions() as session:
        rows = session.execute(select(Message.id, Message.checkin_id, Message.purpose)).all()
    assert len(rows) == 10_000  # no check-in was queued twice
    assert set(provider.calls.values()) == {1}  # no text handed over twice
    per_checkin = Counter((cid, purpose) for _, cid, purpose in rows)
    assert set(per_checkin.values()) == {1} and len(per_checkin) == 2 * len(ids)
    # the work was actually shared (SKIP LOCKED lets workers take disjoint batches)
    assert sum(1 for n in provider.by_worker.values() if n > 0) >= 2
    seeder.close()
