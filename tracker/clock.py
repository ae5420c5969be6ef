"""The only place that reads the wall clock.

Everything else receives a `Clock` (or a `now` argument) so that tests, the demo and the
scheduler's simulated year can move time by hand.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current instant, timezone-aware, in UTC."""
        ...


class SystemClock:
    """The real clock."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class FrozenClock:
    """A clock that only moves when told to (tests, demo, simulations)."""

    def __init__(self, at: datetime) -> None:
        self._now = _require_aware(at)

    def now(self) -> datetime:
        return self._now

    def advance(self, delta: timedelta | None = None, **kwargs: float) -> datetime:
        """Move forward by `delta` (or timedelta(**kwargs)) and return the new now."""
        step = delta if delta is not None else timedelta(**kwargs)
        if step < timedelta(0):
            raise ValueError("a FrozenClock only moves forward")
        self._now = self._now + step
        return self._now

    def set(self, at: datetime) -> None:
        """Jump to `at` (forward only)."""
        at = _require_aware(at)
        if at < self._now:
            raise ValueError("a FrozenClock only moves forward")
        self._now = at


def _require_aware(at: datetime) -> datetime:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("clock instants must be timezone-aware")
    return at.astimezone(UTC)


def parse_instant(text: str) -> datetime:
    """Parse an ISO-8601 instant given on a command line (`--now`); naive means UTC."""
    try:
        at = datetime.fromisoformat(text)
    except ValueError as exc:
        raise ValueError(
            f"{text!r} is not an ISO-8601 instant (use e.g. 2026-03-01T09:00:00+00:00)"
        ) from exc
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return at.astimezone(UTC)
