"""The token bucket: a ceiling on sends per second, tested on a fake clock (no real sleeps)."""

from __future__ import annotations

import pytest

from tracker.services.pacing import Pacer, Unpaced


class FakeTime:
    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_burst_then_steady_rate() -> None:
    t = FakeTime()
    pacer = Pacer(5, clock=t.clock, sleep=t.sleep)
    for _ in range(5):
        assert pacer.acquire() == 0.0  # a full bucket lets a burst of `rate` through
    start = t.now
    for _ in range(50):
        pacer.acquire()
    assert t.now - start == pytest.approx(10.0)  # 50 more at 5/s
    assert pacer.waited == pytest.approx(10.0)


def test_ceiling_holds_over_any_window() -> None:
    t = FakeTime()
    pacer = Pacer(2, clock=t.clock, sleep=t.sleep)
    stamps = []
    for _ in range(40):
        pacer.acquire()
        stamps.append(t.now)
    for i in range(len(stamps)):
        in_one_second = [s for s in stamps[i:] if s < stamps[i] + 1.0 - 1e-9]
        assert len(in_one_second) <= 2 + 1  # rate plus at most the burst edge


def test_idle_time_refills_but_never_beyond_the_burst() -> None:
    t = FakeTime()
    pacer = Pacer(1, burst=3, clock=t.clock, sleep=t.sleep)
    for _ in range(3):
        pacer.acquire()
    t.now += 3600  # an hour idle
    waited = sum(pacer.acquire() for _ in range(4))
    assert waited == pytest.approx(1.0)  # 3 free, the 4th waits a second


def test_hold_off_after_a_429() -> None:
    t = FakeTime()
    pacer = Pacer(10, clock=t.clock, sleep=t.sleep)
    pacer.hold_off(2.0)
    assert pacer.acquire() == pytest.approx(2.1)


def test_fractional_rates_do_not_spin() -> None:
    t = FakeTime()
    pacer = Pacer(3, clock=t.clock, sleep=t.sleep)
    for _ in range(1000):
        pacer.acquire()
    assert t.now - 100.0 == pytest.approx((1000 - 3) / 3)


def test_rate_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        Pacer(0)


def test_unpaced_never_waits() -> None:
    assert Unpaced().acquire() == 0.0
