"""A ceiling on messages per second per sender (token bucket).

Twilio queues texts a long code cannot send at once (about 1-10 per second in the UK) and
starts refusing or expiring them when the queue grows; pacing on our side spreads a backlog
of thousands over minutes instead. The ceiling is per worker process: with several workers
sharing one sender, set TRACKER_SEND_RATE_PER_SECOND to the sender's rate divided by the
number of workers.

`clock` and `sleep` are injectable so tests never sleep for real.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class Pacer:
    """Token bucket: at most `rate` sends per second on average, bursts up to `burst`."""

    def __init__(
        self,
        rate: float,
        *,
        burst: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate <= 0:
            raise ValueError("the send rate must be positive (messages per second)")
        self.rate = float(rate)
        self.capacity = float(burst) if burst is not None else max(1.0, self.rate)
        self._clock = clock
        self._sleep = sleep
        self._tokens = self.capacity
        self._stamp = clock()
        self.waited = 0.0  # total seconds spent waiting (for the tick report and tests)

    def _refill(self) -> None:
        now = self._clock()
        elapsed = max(0.0, now - self._stamp)
        self._stamp = now
        self._tokens = min(self.capacity, self._tokens + elapsed * self.rate)

    def acquire(self, count: float = 1.0) -> float:
        """Take `count` tokens, sleeping until they are there; returns seconds waited."""
        waited = 0.0
        self._refill()
        while self._tokens < count - 1e-9:  # tolerance: float steps must not loop forever
            pause = (count - self._tokens) / self.rate
            self._sleep(pause)
            waited += pause
            self._refill()
        self._tokens -= count
        self.waited += waited
        return waited

    def hold_off(self, seconds: float) -> None:
        """The provider asked us to slow down (429 Retry-After): empty the bucket for a while."""
        self._refill()
        self._tokens = min(self._tokens, -seconds * self.rate)


class Unpaced:
    """No ceiling (benchmarks, or a provider that paces itself)."""

    waited = 0.0

    def acquire(self, count: float = 1.0) -> float:
        return 0.0

    def hold_off(self, seconds: float) -> None:
        return None


def pacer_for(rate: float) -> Pacer:
    return Pacer(rate)
